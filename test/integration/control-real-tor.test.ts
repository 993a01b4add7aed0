/**
 * TorControl against a real tor (0.4.9.x) with DisableNetwork 1. Self-contained: starts its
 * own tor (it does not use the shared test network from global-setup.ts). Checks SAFECOOKIE
 * against tor itself, GETINFO/SETCONF/RESETCONF, real CONF_CHANGED events, tor's HSPOST
 * error replies (554 garbage body, 512 malformed address, 552 unknown server), the 551 for
 * a missing cached consensus, kill -9 → TB_ERR_TOR_CONTROL_CLOSED, and that
 * ReconnectingTorControl comes back (and re-subscribes) after tor restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchMicrodescConsensus } from '../../src/adapters/tor/consensus-feed.js';
import {
  ControlReplyError,
  ReconnectingTorControl,
  TorControl,
  connectWithRetry,
  type ControlEndpoint,
} from '../../src/adapters/tor/control.js';
import { parseReplyArgs } from '../../src/core/torctl/reply.js';
import { renderTorrc } from '../../src/core/torrc.js';

const LABEL = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';

// Unix socket paths must be short: use /tmp directly.
const dir = mkdtempSync('/tmp/tb-ctl-');
const dataDir = join(dir, 'data');
const endpoint: ControlEndpoint = { kind: 'unix', path: join(dir, 'control') };
let tor: ChildProcess | undefined;

function startTor(): ChildProcess {
  const p = spawn('tor', ['-f', join(dir, 'torrc'), '--defaults-torrc', '/dev/null'], {
    stdio: 'ignore',
  });
  return p;
}

async function killTor(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

async function connectSoon(): Promise<TorControl> {
  return connectWithRetry(endpoint, {
    signal: AbortSignal.timeout(30_000),
    initialDelayMs: 100,
    maxDelayMs: 500,
  });
}

beforeAll(() => {
  mkdirSync(dataDir, { mode: 0o700 });
  writeFileSync(
    join(dir, 'torrc'),
    renderTorrc([
      ['DataDirectory', dataDir],
      ['DisableNetwork', '1'],
      ['SocksPort', '0'],
      ['ControlPort', `unix:${endpoint.path}`],
      ['CookieAuthentication', '1'],
      ['Log', `notice file ${join(dir, 'notice.log')}`],
    ]),
  );
  tor = startTor();
});

afterAll(async () => {
  if (tor !== undefined) await killTor(tor);
  rmSync(dir, { recursive: true, force: true });
});

describe('TorControl with a real tor', () => {
  it('authenticates with SAFECOOKIE and runs GETINFO, SETCONF, RESETCONF, events and HSPOST', async () => {
    const c = await connectSoon();
    try {
      expect(c.protocolInfo.methods).toContain('SAFECOOKIE');
      expect(c.protocolInfo.cookieFile).toBe(join(dataDir, 'control_auth_cookie'));
      const version = await c.getInfo('version');
      expect(version).toMatch(/^0\.4\.\d+\.\d+/);
      expect(c.protocolInfo.torVersion).toBe(version.split(' ')[0]);

      // A real multi-line async event: CONF_CHANGED (650-CONF_CHANGED … 650 OK).
      const changed: string[][] = [];
      c.onEvent('CONF_CHANGED', (e) => changed.push([...e.lines]));
      await c.setEvents(['CONF_CHANGED']);

      const contact = 'a "b" \\c #d é';
      await c.setConf([['ContactInfo', contact]]);
      const got = await c.request('GETCONF ContactInfo');
      expect(parseReplyArgs(got.lines[0]!.text)).toEqual([
        { key: 'ContactInfo', value: contact, quoted: true },
      ]);
      await expect.poll(() => changed.length).toBeGreaterThan(0);
      expect(changed[0]![0]).toBe('CONF_CHANGED');

      await c.resetConf(['ContactInfo']);
      expect((await c.request('GETCONF ContactInfo')).lines[0]!.text).toBe('ContactInfo');

      // Data replies: config-text is a "250+config-text=" block.
      expect(await c.getInfo('config-text')).toContain('DisableNetwork 1');

      // HSPOST: garbage body → 554; malformed HSADDRESS → 512; unknown SERVER → 552.
      const e554 = await c
        .hsPost('garbage\n.leading dot\n', { hsAddress: LABEL, servers: [], allowNoServers: true })
        .catch((e: unknown) => e);
      expect(e554).toBeInstanceOf(ControlReplyError);
      expect(e554).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_REPLY', status: 554 });
      expect((e554 as Error).message).toContain('554 Invalid descriptor');
      await expect(c.request('+HSPOST HSADDRESS=aaaa', 'x')).rejects.toMatchObject({ status: 512 });
      await expect(c.request(`+HSPOST HSADDRESS=${LABEL}.onion`, 'x')).rejects.toMatchObject({
        status: 512,
      });
      await expect(
        c.hsPost('x', { hsAddress: LABEL, servers: ['0123456789ABCDEF0123456789ABCDEF01234567'] }),
      ).rejects.toMatchObject({ status: 552 });

      // No cached consensus with DisableNetwork → 551.
      await expect(fetchMicrodescConsensus(c)).rejects.toMatchObject({
        code: 'TB_ERR_TOR_CONTROL_REPLY',
        status: 551,
      });

      // The connection is still healthy after all those errors.
      expect(await c.getInfo('version')).toBe(version);
    } finally {
      await c.close();
    }
  });

  it('reports TB_ERR_TOR_CONTROL_CLOSED when tor is killed, and the reconnecting wrapper comes back', async () => {
    const r = ReconnectingTorControl.start(endpoint, { initialDelayMs: 100, maxDelayMs: 500 });
    const events: string[] = [];
    r.onEvent('CONF_CHANGED', (e) => events.push(e.lines.join('|')));
    try {
      await r.setEvents(['CONF_CHANGED']);
      const first = await r.ready();
      const direct = await connectSoon();

      await killTor(tor!);
      expect(await direct.closed).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
      await expect(direct.getInfo('version')).rejects.toMatchObject({
        code: 'TB_ERR_TOR_CONTROL_CLOSED',
      });
      expect(await first.closed).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });

      tor = startTor();
      const second = await r.ready();
      expect(second).not.toBe(first);
      expect(r.connections).toBe(2);
      expect(await second.getInfo('version')).toMatch(/^0\.4\./);
      // SETEVENTS was re-applied on the new connection: a SETCONF produces CONF_CHANGED.
      await second.setConf([['ContactInfo', 'after-restart']]);
      await expect
        .poll(() => events.some((e) => e.includes('ContactInfo=after-restart')))
        .toBe(true);
    } finally {
      await r.close();
    }
  });
});
