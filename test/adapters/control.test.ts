/**
 * TorControl against the fake control server (test/helpers/fake-control-server.ts): auth
 * flows, pipelining, timeouts, dropped connections, interleaved events, exact HSPOST bytes
 * and reconnection.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ControlReplyError,
  ReconnectingTorControl,
  TorControl,
  connectWithRetry,
  type ControlEvent,
} from '../../src/adapters/tor/control.js';
import { fetchAllMicrodescriptors, fetchMicrodescConsensus, fetchMicrodescriptors } from '../../src/adapters/tor/consensus-feed.js';
import { startFakeControlServer, type FakeControlServer, type FakeServerOptions } from '../helpers/fake-control-server.js';

const LABEL = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';
const FP1 = '0123456789ABCDEF0123456789ABCDEF01234567';
const FP2 = '89ABCDEF0123456789ABCDEF0123456789ABCDEF';

const servers: FakeControlServer[] = [];
const clients: TorControl[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function start(options: FakeServerOptions = {}): Promise<FakeControlServer> {
  const s = await startFakeControlServer(options);
  servers.push(s);
  return s;
}

async function connect(s: FakeControlServer, options: Parameters<typeof TorControl.connect>[1] = {}): Promise<TorControl> {
  const c = await TorControl.connect(s.endpoint, options);
  clients.push(c);
  return c;
}

function simpleGetInfo(cmd: { line: string }): string | undefined {
  if (cmd.line === 'GETINFO version') return '250-version=0.4.9.11\r\n250 OK\r\n';
  return undefined;
}

describe('authentication', () => {
  for (const transport of ['tcp', 'unix'] as const) {
    it(`SAFECOOKIE over ${transport}: verifies the server hash, then GETINFO works`, async () => {
      const s = await start({ transport, onCommand: simpleGetInfo });
      const c = await connect(s);
      expect(await c.getInfo('version')).toBe('0.4.9.11');
      expect(c.protocolInfo).toMatchObject({ methods: ['COOKIE', 'SAFECOOKIE'], cookieFile: s.cookieFile, torVersion: '0.4.9.11' });
      const lines = s.connections[0]!.commands.map((x) => x.line);
      expect(lines[0]).toBe('PROTOCOLINFO 1');
      expect(lines[1]).toMatch(/^AUTHCHALLENGE SAFECOOKIE [0-9A-F]{64}$/);
      expect(lines[2]).toMatch(/^AUTHENTICATE [0-9A-F]{64}$/);
      expect(lines[3]).toBe('GETINFO version');
    });
  }

  it('COOKIE when only COOKIE is offered', async () => {
    const s = await start({ methods: 'COOKIE', onCommand: simpleGetInfo });
    await connect(s);
    expect(s.connections[0]!.commands[1]!.line).toBe(`AUTHENTICATE ${Buffer.from(s.cookie).toString('hex').toUpperCase()}`);
  });

  it('HASHEDPASSWORD with a configured password (quoted), and a clear error without one', async () => {
    const s = await start({ methods: 'HASHEDPASSWORD', password: 'pa "ss"' });
    await connect(s, { password: 'pa "ss"' });
    expect(s.connections[0]!.commands[1]!.line).toBe('AUTHENTICATE "pa \\"ss\\""');
    await expect(TorControl.connect(s.endpoint)).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_AUTH', kind: 'config' });
    await expect(TorControl.connect(s.endpoint, { password: 'wrong' })).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_AUTH' });
  });

  it('NULL', async () => {
    const s = await start({ methods: 'NULL' });
    await connect(s);
    expect(s.connections[0]!.commands[1]!.line).toBe('AUTHENTICATE');
  });

  it('refuses a server that does not know the cookie (wrong SAFECOOKIE server hash) without answering', async () => {
    const s = await start({ lyingServerHash: true });
    await expect(TorControl.connect(s.endpoint)).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_AUTH' });
    expect(s.connections[0]!.commands.map((x) => x.line.split(' ')[0])).toEqual(['PROTOCOLINFO', 'AUTHCHALLENGE']);
  });

  it('refuses a cookie file that is not 32 bytes', async () => {
    const s = await start();
    writeFileSync(s.cookieFile, new Uint8Array(33));
    await expect(TorControl.connect(s.endpoint)).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_COOKIE' });
    await expect(TorControl.connect(s.endpoint, { cookieFile: join(s.dir, 'missing') })).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_COOKIE' });
  });

  it('connect errors: refused → TB_ERR_TOR_CONTROL_CONNECT, silent server → TB_ERR_TOR_CONTROL_TIMEOUT', async () => {
    await expect(TorControl.connect({ kind: 'unix', path: '/nonexistent/tb/control' })).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CONNECT' });
    const s = await start({ silent: true });
    await expect(TorControl.connect(s.endpoint, { connectTimeoutMs: 200 })).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_TIMEOUT' });
  });
});

describe('commands', () => {
  it('pipelines commands and matches replies in order, rejecting 5xx with ControlReplyError', async () => {
    const s = await start({
      onCommand: (cmd) => {
        if (cmd.line === 'GETINFO a b') return '250-a=1\r\n250+b=\r\nx\r\n..y\r\n.\r\n250 OK\r\n';
        if (cmd.line.startsWith('SETCONF')) return '250 OK\r\n';
        if (cmd.line === 'GETINFO nope') return '552 Unrecognized key "nope"\r\n';
        if (cmd.line === 'RESETCONF SocksPort') return '250 OK\r\n';
        return '510 Unrecognized command\r\n';
      },
    });
    const c = await connect(s);
    const [m, set, bad, reset] = await Promise.allSettled([
      c.getInfoMany(['a', 'b']),
      c.setConf([['ContactInfo', 'x y'], ['Nickname', null]]),
      c.getInfo('nope'),
      c.resetConf(['SocksPort']),
    ]);
    expect(m).toEqual({ status: 'fulfilled', value: new Map([['a', '1'], ['b', 'x\n.y']]) });
    expect(set.status).toBe('fulfilled');
    expect(reset.status).toBe('fulfilled');
    if (bad.status !== 'rejected') throw new Error('expected rejection');
    expect(bad.reason).toBeInstanceOf(ControlReplyError);
    expect(bad.reason).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_REPLY', status: 552 });
    expect((bad.reason as Error).message).toContain('552 Unrecognized key "nope"');
    expect(s.connections[0]!.commands.map((x) => x.line).slice(3)).toEqual([
      'GETINFO a b',
      'SETCONF ContactInfo="x y" Nickname',
      'GETINFO nope',
      'RESETCONF SocksPort',
    ]);
  });

  it('sends HSPOST with SERVER= and HSADDRESS= and a dot-stuffed body (exact bytes)', async () => {
    const s = await start({ onCommand: (cmd) => (cmd.line.startsWith('+HSPOST') ? '250 OK\r\n' : undefined) });
    const c = await connect(s);
    const before = s.connections[0]!.received.length;
    await c.hsPost('hs-descriptor 3\n.dotted line\nsignature abc\n', { hsAddress: `${LABEL}.onion`, servers: [FP1, `$${FP2.toLowerCase()}`] });
    expect(s.connections[0]!.received.slice(before)).toBe(
      `+HSPOST SERVER=${FP1} SERVER=${FP2} HSADDRESS=${LABEL}\r\nhs-descriptor 3\r\n..dotted line\r\nsignature abc\r\n.\r\n`,
    );
  });

  it('refuses bad HSPOST arguments before sending anything', async () => {
    const s = await start({ onCommand: () => '250 OK\r\n' });
    const c = await connect(s);
    const before = s.connections[0]!.received.length;
    await expect(c.hsPost('x', { hsAddress: 'aaaa', servers: [FP1] })).rejects.toMatchObject({ code: 'TB_ERR_ONION_LENGTH' });
    await expect(c.hsPost('x', { hsAddress: LABEL.slice(0, 10) + 'd' + LABEL.slice(11), servers: [FP1] })).rejects.toMatchObject({ code: 'TB_ERR_ONION_CHECKSUM' });
    await expect(c.hsPost('x', { hsAddress: LABEL, servers: [] })).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_ARG' });
    await expect(c.hsPost('x', { hsAddress: LABEL, servers: ['nothex'] })).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_ARG' });
    await expect(c.request('GETINFO a\r\nSIGNAL HALT')).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_ARG' });
    expect(s.connections[0]!.received.length).toBe(before);
    // allowNoServers is explicit.
    await c.hsPost('x\n', { hsAddress: LABEL, servers: [], allowNoServers: true });
    expect(s.connections[0]!.received.slice(before)).toBe(`+HSPOST HSADDRESS=${LABEL}\r\nx\r\n.\r\n`);
  });

  it('typed helpers send the expected lines', async () => {
    const s = await start({ onCommand: () => '250 OK\r\n' });
    const c = await connect(s);
    await c.hsFetch(LABEL, [FP1]);
    await c.signal('NEWNYM');
    await c.closeCircuit('42');
    await c.takeOwnership();
    await c.setEvents(['HS_DESC', 'STATUS_CLIENT']);
    await c.request('+HSPOST HSADDRESS=' + LABEL, 'body');
    expect(s.connections[0]!.commands.slice(3).map((x) => x.line)).toEqual([
      `HSFETCH ${LABEL} SERVER=${FP1}`,
      'SIGNAL NEWNYM',
      'CLOSECIRCUIT 42',
      'TAKEOWNERSHIP',
      'SETEVENTS HS_DESC STATUS_CLIENT',
      `+HSPOST HSADDRESS=${LABEL}`,
    ]);
    expect(c.subscribedEvents).toEqual(['HS_DESC', 'STATUS_CLIENT']);
    await expect(c.closeCircuit('1; x')).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_ARG' });
  });
});

describe('failures', () => {
  it('a command tor never answers times out and poisons the connection', async () => {
    const s = await start({ onCommand: () => undefined });
    const c = await connect(s, { commandTimeoutMs: 150 });
    const first = c.getInfo('version');
    const second = c.getInfo('version', { timeoutMs: 60_000 });
    await expect(first).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_TIMEOUT' });
    await expect(second).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
    expect(await c.closed).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_TIMEOUT' });
    await expect(c.getInfo('version')).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
    expect(c.isOpen).toBe(false);
  });

  it('a connection dropped in the middle of a reply fails pending commands with TB_ERR_TOR_CONTROL_CLOSED', async () => {
    const s = await start({
      onCommand: (_cmd, conn) => {
        conn.write('250+hs/service/desc/id/x=\r\nhs-descriptor 3\r\n');
        setTimeout(() => conn.socket.destroy(), 20);
        return undefined;
      },
    });
    const c = await connect(s);
    await expect(c.getInfo('hs/service/desc/id/x')).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
    expect(await c.closed).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
  });

  it('an oversized reply closes the connection (limit), a per-call limit allows it', async () => {
    const big = '250+md/all=\r\n' + 'onion-key x\r\n'.repeat(2000) + '.\r\n250 OK\r\n';
    const s = await start({ onCommand: () => big });
    const c = await connect(s, { maxReplyBytes: 4096 });
    expect((await c.getInfo('md/all', { maxReplyBytes: 64 * 1024 })).length).toBe(2000 * 12 - 1);
    const err = await c.getInfo('md/all').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
    expect(await c.closed).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_LIMIT' });
  });

  it('applies each pipelined command its own reply limit, even when replies share one chunk', async () => {
    const big = '250+md/all=\r\n' + 'onion-key x\r\n'.repeat(2000) + '.\r\n250 OK\r\n';
    const s = await start({
      onCommand: (cmd, conn) => {
        // Answer both commands in a single write once the second arrives.
        if (cmd.line === 'GETINFO md/all') conn.write('250-version=1\r\n250 OK\r\n' + big);
        return undefined;
      },
    });
    const c = await connect(s, { maxReplyBytes: 4096 });
    const small = c.getInfo('version');
    const large = c.getInfo('md/all', { maxReplyBytes: 64 * 1024 });
    expect(await small).toBe('1');
    expect((await large).length).toBe(2000 * 12 - 1);
  });

  it('an unsolicited reply closes the connection', async () => {
    const s = await start();
    const c = await connect(s);
    s.connections[0]!.write('250 OK\r\n');
    expect(await c.closed).toMatchObject({ code: 'TB_ERR_TOR_CONTROL_PROTOCOL' });
  });

  it('close() resolves closed with undefined and fails later commands', async () => {
    const s = await start();
    const c = await connect(s);
    await c.close();
    expect(await c.closed).toBeUndefined();
    await expect(c.getInfo('version')).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
  });
});

describe('events', () => {
  it('dispatches events interleaved with replies, never mixing them up; a throwing listener is isolated', async () => {
    const s = await start({
      onCommand: (cmd) => {
        if (cmd.line === 'GETINFO version') {
          return (
            '650 HS_DESC UPLOADED ' + LABEL + ' UNKNOWN $' + FP1 + '~r1\r\n' +
            '250-version=0.4.9.11\r\n' +
            '250 OK\r\n' +
            '650+HS_DESC_CONTENT ' + LABEL + ' mW7dCKMFD6Q8lR+zJx/3A2kC9LrHdS0cZpgpQh6fTq4 $' + FP2 + '~r2\r\nhs-descriptor 3\r\n.\r\n650 OK\r\n'
          );
        }
        return '250 OK\r\n';
      },
    });
    const errors: unknown[] = [];
    const c = await connect(s, { onListenerError: (e) => errors.push(e) });
    const got: ControlEvent[] = [];
    const all: string[] = [];
    c.onEvent('HS_DESC', () => {
      throw new Error('listener bug');
    });
    c.onEvent('HS_DESC', (e) => got.push(e));
    const off = c.onEvent('HS_DESC_CONTENT', (e) => got.push(e));
    c.onEvent('*', (e) => all.push(e.type));
    expect(await c.getInfo('version')).toBe('0.4.9.11');
    // The content event follows the reply on the wire; wait for it.
    await new Promise((r) => setTimeout(r, 50));
    expect(got.map((e) => e.type)).toEqual(['HS_DESC', 'HS_DESC_CONTENT']);
    expect(got[1]!.reply.lines[0]!.data).toBe('hs-descriptor 3');
    expect(all).toEqual(['HS_DESC', 'HS_DESC_CONTENT']);
    expect(errors).toHaveLength(1);
    off();
    expect(await c.getInfo('version')).toBe('0.4.9.11');
    await new Promise((r) => setTimeout(r, 50));
    expect(got.map((e) => e.type)).toEqual(['HS_DESC', 'HS_DESC_CONTENT', 'HS_DESC']);
  });
});

describe('consensus feed', () => {
  it('fetches documents via GETINFO with a final newline', async () => {
    const s = await start({
      onCommand: (cmd) => {
        if (cmd.line === 'GETINFO dir/status-vote/current/consensus-microdesc') return '250+dir/status-vote/current/consensus-microdesc=\r\nnetwork-status-version 3 microdesc\r\ndirectory-footer\r\n.\r\n250 OK\r\n';
        if (cmd.line === 'GETINFO md/all') return '250+md/all=\r\n.\r\n250 OK\r\n';
        if (cmd.line === `GETINFO md/id/${FP1} md/id/${FP2}`) return `250+md/id/${FP1}=\r\nonion-key\r\n.\r\n250+md/id/${FP2}=\r\nonion-key 2\r\n.\r\n250 OK\r\n`;
        return '552 Unrecognized key\r\n';
      },
    });
    const c = await connect(s);
    expect(await fetchMicrodescConsensus(c)).toBe('network-status-version 3 microdesc\ndirectory-footer\n');
    expect(await fetchAllMicrodescriptors(c)).toBe('');
    expect(await fetchMicrodescriptors(c, [FP1, `$${FP2}`])).toEqual(new Map([[FP1, 'onion-key\n'], [FP2, 'onion-key 2\n']]));
  });
});

describe('reconnection', () => {
  it('connectWithRetry waits for the server; ReconnectingTorControl reconnects and re-subscribes', async () => {
    const s = await start({ onCommand: (cmd) => (cmd.line === 'GETINFO version' ? '250-version=0.4.9.11\r\n250 OK\r\n' : '250 OK\r\n') });
    const ac = new AbortController();
    const direct = await connectWithRetry(s.endpoint, { signal: ac.signal, initialDelayMs: 10 });
    clients.push(direct);

    const onConnectCalls: number[] = [];
    const r = ReconnectingTorControl.start(s.endpoint, { initialDelayMs: 20, maxDelayMs: 50 }, async (c) => {
      onConnectCalls.push(1);
      await c.takeOwnership();
    });
    const events: string[] = [];
    r.onEvent('STATUS_CLIENT', (e) => events.push(e.lines[0]!));
    await r.setEvents(['STATUS_CLIENT']);
    const first = await r.ready();
    expect(await first.getInfo('version')).toBe('0.4.9.11');
    const conn1 = s.connections[s.connections.length - 1]!;
    // Drop the connection as a tor restart would.
    conn1.socket.destroy();
    await first.closed;
    const second = await r.ready();
    expect(second).not.toBe(first);
    expect(r.connections).toBe(2);
    const conn2 = s.connections[s.connections.length - 1]!;
    expect(conn2.commands.slice(3).map((x) => x.line)).toEqual(['TAKEOWNERSHIP', 'SETEVENTS STATUS_CLIENT']);
    conn2.write('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n');
    await expect.poll(() => events.length).toBe(1);
    expect(await r.use((c) => c.getInfo('version'))).toBe('0.4.9.11');
    expect(onConnectCalls).toHaveLength(2);
    await r.close();
    await expect(r.ready()).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
  });

  it('aborting the signal closes the live connection of ReconnectingTorControl', async () => {
    const s = await start();
    const ac = new AbortController();
    const r = ReconnectingTorControl.start(s.endpoint, { signal: ac.signal, initialDelayMs: 10 });
    const c = await r.ready();
    ac.abort();
    expect(await c.closed).toBeUndefined();
    await r.close();
    expect(r.current).toBeUndefined();
  });

  it('connectWithRetry stops when aborted', async () => {
    const ac = new AbortController();
    const p = connectWithRetry({ kind: 'unix', path: '/nonexistent/tb/control' }, { signal: ac.signal, initialDelayMs: 10 });
    setTimeout(() => { ac.abort(); }, 50);
    await expect(p).rejects.toMatchObject({ code: 'TB_ERR_TOR_CONTROL_CLOSED' });
  });
});
