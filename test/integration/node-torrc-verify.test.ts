/**
 * The rendered node torrc is accepted by the real tor (`tor --verify-config`, offline, fast),
 * including HiddenServiceOnionBalanceInstance with its ob_config, PoW and the unix-socket
 * HiddenServicePort, and the join port (`extraPorts`: a second HiddenServicePort inside the
 * master service's group); and tor rejects it without the ob_config (so the check is
 * meaningful). The torrc's shape alone: test/adapters/node-torrc-join-port.test.ts,
 * test/unit/node-torrc.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject, extraConfigLines } from '../../src/adapters/config/load.js';
import { writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { testnetCommonTorrc } from '../../src/adapters/tor/testnet.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { nodeTorrcEntries, obConfigContent, type NodeTorrcInput } from '../../src/core/node-torrc.js';
import { renderTorrc } from '../../src/core/torrc.js';

const run = promisify(execFile);
const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A node directory with its torrc (`over`: input fields, or a function of the directory giving them). */
async function setup(withObConfig: boolean, over: Partial<NodeTorrcInput> | ((d: string) => Partial<NodeTorrcInput>) = {}): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-vc-'));
  dirs.push(d);
  await chmod(d, 0o700);
  await mkdir(join(d, 'tor'), { mode: 0o700 });
  await writeKeyDirectory(join(d, 'hs'), MASTER);
  if (withObConfig) await writeFile(join(d, 'hs', 'ob_config'), obConfigContent(MASTER.address), { mode: 0o600 });
  const entries = nodeTorrcEntries({
    hsDir: join(d, 'hs'),
    socksPort: 19999,
    virtualPort: 80,
    proxyListen: { kind: 'unix', path: join(d, 'proxy.sock') },
    numIntroPoints: 5,
    maxStreamsPerCircuit: 16,
    pow: { enabled: true, queueRate: 250, queueBurst: 2500 },
    publishDescriptors: true,
    extra: [['DisableNetwork', '1']],
    ...(typeof over === 'function' ? over(d) : over),
  });
  // What the supervisor (src/adapters/tor/process.ts) prepends.
  const base = renderTorrc([
    ['DataDirectory', join(d, 'tor')],
    ['ControlPort', `unix:${join(d, 'tor', 'control.sock')}`],
    ['CookieAuthentication', '1'],
  ]);
  await writeFile(join(d, 'torrc'), base + renderTorrc(entries), { mode: 0o600 });
  await writeFile(join(d, 'torrc-defaults'), '', { mode: 0o600 });
  return d;
}

async function verify(d: string): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run('tor', ['--verify-config', '-f', join(d, 'torrc'), '--defaults-torrc', join(d, 'torrc-defaults')], { timeout: 30_000 });
    return { ok: true, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

describe('node torrc against tor --verify-config', () => {
  it('is valid and registers the OnionBalance master address', async () => {
    const r = await verify(await setup(true));
    expect(r.out).toContain('Configuration was valid');
    expect(r.out).toContain(`OnionBalance: MasterOnionAddress ${MASTER.address} registered`);
    expect(r.ok).toBe(true);
  });

  it('is valid with a TCP proxy target and without PoW', async () => {
    const r = await verify(await setup(true, { proxyListen: { kind: 'tcp', host: '127.0.0.1', port: 18080 }, pow: { enabled: false, queueRate: 1, queueBurst: 1 }, numIntroPoints: 20 }));
    expect(r.out).toContain('Configuration was valid');
  });

  it('is rejected by tor without ob_config', async () => {
    const r = await verify(await setup(false));
    expect(r.ok).toBe(false);
    expect(r.out).not.toContain('Configuration was valid');
  });
});

describe('the join port (extraPorts) against tor --verify-config', () => {
  it('tor accepts the torrc with the join port', async () => {
    const d = await setup(true, (dir) => ({ extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: join(dir, 'join.sock') } }] }));
    const r = await verify(d);
    expect(r.out).toContain('Configuration was valid');
    expect(r.ok).toBe(true);
    expect(await readFile(join(d, 'torrc'), 'utf8')).toContain(`HiddenServicePort "7101 unix:${join(d, 'join.sock')}"`);
  });
});

describe('private test network lines through tor.extra_config', () => {
  it('testnetCommonTorrc lines survive the config schema and tor accepts the result', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tb-vc-'));
    dirs.push(d);
    const fpr = 'A'.repeat(40);
    const common = testnetCommonTorrc(
      { dirAuthorities: [`auth0 orport=5000 no-v2 v3ident=${'B'.repeat(40)} 127.0.0.1:7000 ${fpr}`], infoLogs: true },
      'tbnode1',
      join(d, 'tor'),
    );
    const config = configFromObject(
      { target: { address: TARGET }, node: { data_dir: d }, tor: { extra_config: extraConfigLines(common) } },
      { baseDir: d },
    );
    expect(config.tor.extra_config).toEqual(common);
    const r = await verify(await setup(true, { extra: config.tor.extra_config }));
    expect(r.out).toContain('Configuration was valid');
    expect(r.ok).toBe(true);
  });
});
