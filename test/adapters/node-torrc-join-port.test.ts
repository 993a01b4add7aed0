/**
 * The join port (`extraPorts` of nodeTorrcEntries): a second HiddenServicePort inside the
 * MASTER service's group, accepted by the real tor (`tor --verify-config`), and refused
 * input (duplicate virtual port, bad target) with TB_ERR_NODE_TORRC.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { nodeTorrcEntries, obConfigContent, type NodeTorrcInput } from '../../src/core/node-torrc.js';
import { renderTorrc } from '../../src/core/torrc.js';

const run = promisify(execFile);
const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function input(d: string, over: Partial<NodeTorrcInput> = {}): NodeTorrcInput {
  return {
    hsDir: join(d, 'hs'),
    socksPort: 19999,
    virtualPort: 80,
    proxyListen: { kind: 'unix', path: join(d, 'proxy.sock') },
    numIntroPoints: 3,
    maxStreamsPerCircuit: 16,
    pow: { enabled: false, queueRate: 250, queueBurst: 2500 },
    publishDescriptors: true,
    extra: [['DisableNetwork', '1']],
    extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: join(d, 'join.sock') } }],
    ...over,
  };
}

describe('nodeTorrcEntries extraPorts (join port)', () => {
  it('adds the port right after the main HiddenServicePort, inside the master group', () => {
    const e = nodeTorrcEntries(input('/srv/tb'));
    const kw = e.map(([k]) => k);
    const dir = kw.indexOf('HiddenServiceDir');
    expect(e[dir]).toEqual(['HiddenServiceDir', '/srv/tb/hs']);
    expect(e[dir + 1]).toEqual(['HiddenServicePort', '80 unix:/srv/tb/proxy.sock']);
    expect(e[dir + 2]).toEqual(['HiddenServicePort', '7101 unix:/srv/tb/join.sock']);
    expect(kw.filter((k) => k === 'HiddenServiceDir')).toHaveLength(1);
    // without extraPorts: one HiddenServicePort only
    expect(nodeTorrcEntries(input('/srv/tb', { extraPorts: [] })).filter(([k]) => k === 'HiddenServicePort')).toHaveLength(1);
  });

  it('rejects a duplicate virtual port, a bad port and a bad target', () => {
    const bad: Partial<NodeTorrcInput>[] = [
      { extraPorts: [{ virtualPort: 80, target: { kind: 'unix', path: '/a/join.sock' } }] },
      { extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: '/a/j.sock' } }, { virtualPort: 7101, target: { kind: 'unix', path: '/a/k.sock' } }] },
      { extraPorts: [{ virtualPort: 0, target: { kind: 'unix', path: '/a/join.sock' } }] },
      { extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: 'relative.sock' } }] },
      { extraPorts: [{ virtualPort: 7101, target: { kind: 'tcp', host: '0.0.0.0', port: 1 } }] },
    ];
    for (const b of bad) expect(() => nodeTorrcEntries(input('/srv/tb', b)), JSON.stringify(b)).toThrow(expect.objectContaining({ code: 'TB_ERR_NODE_TORRC' }));
  });

  it('tor --verify-config accepts the torrc with the join port', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tb-jp-'));
    dirs.push(d);
    await chmod(d, 0o700);
    await mkdir(join(d, 'tor'), { mode: 0o700 });
    await writeKeyDirectory(join(d, 'hs'), MASTER);
    await writeFile(join(d, 'hs', 'ob_config'), obConfigContent(MASTER.address), { mode: 0o600 });
    const entries = nodeTorrcEntries(input(d));
    const base = renderTorrc([
      ['DataDirectory', join(d, 'tor')],
      ['ControlPort', `unix:${join(d, 'tor', 'control.sock')}`],
      ['CookieAuthentication', '1'],
    ]);
    await writeFile(join(d, 'torrc'), base + renderTorrc(entries), { mode: 0o600 });
    await writeFile(join(d, 'torrc-defaults'), '', { mode: 0o600 });
    let out: string;
    let ok: boolean;
    try {
      const r = await run('tor', ['--verify-config', '-f', join(d, 'torrc'), '--defaults-torrc', join(d, 'torrc-defaults')], { timeout: 30_000 });
      out = r.stdout + r.stderr;
      ok = true;
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string };
      out = `${x.stdout ?? ''}${x.stderr ?? ''}`;
      ok = false;
    }
    expect(out).toContain('Configuration was valid');
    expect(ok).toBe(true);
    expect(renderTorrc(entries)).toContain(`HiddenServicePort "7101 unix:${join(d, 'join.sock')}"`);
  });
});
