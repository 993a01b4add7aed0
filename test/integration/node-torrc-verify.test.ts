/**
 * The rendered node torrc is accepted by the real tor (`tor --verify-config`, offline, fast),
 * including HiddenServiceOnionBalanceInstance with its ob_config, PoW, the intro-point DoS
 * defence and the unix-socket HiddenServicePort, and the join port (`extraPorts`: a second
 * HiddenServicePort inside the master service's group); and tor rejects it without the ob_config
 * (so the check is meaningful). tor.extra_config: the abbreviations tor accepts for managed
 * options are refused, the accepted names are real tor options, and a tor started with a
 * managed option changed behind torbalance's back (GETCONF) is refused by the supervisor.
 * The torrc's shape alone: test/adapters/node-torrc-join-port.test.ts, test/unit/node-torrc.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject, extraConfigLines } from '../../src/adapters/config/load.js';
import { writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { TorProcess } from '../../src/adapters/tor/process.js';
import { testnetCommonTorrc } from '../../src/adapters/tor/testnet.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { EXTRA_TOR_OPTIONS, MANAGED_TOR_OPTIONS, nodeTorrcEntries, obConfigContent, type NodeTorrcInput } from '../../src/core/node-torrc.js';
import { renderTorrc, type TorrcEntry } from '../../src/core/torrc.js';

const run = promisify(execFile);
const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const dirs: string[] = [];
const procs: TorProcess[] = [];
afterAll(async () => {
  for (const p of procs) await p.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A node directory with its torrc (`over`: input fields, or a function of the directory giving them; `raw`: extra entries). */
async function setup(
  withObConfig: boolean,
  over: Partial<NodeTorrcInput> | ((d: string) => Partial<NodeTorrcInput>) = {},
  raw: readonly TorrcEntry[] = [],
): Promise<string> {
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
  // `raw`: lines added behind the schema's back (what an unchecked extra_config would do).
  await writeFile(join(d, 'torrc'), base + renderTorrc([...raw, ...entries]), { mode: 0o600 });
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

  it('is valid with the intro-point DoS defence and HiddenServiceMaxStreamsCloseCircuit; tor refuses a burst below the rate', async () => {
    const ok = await verify(await setup(true, { maxStreamsCloseCircuit: true, introDos: { enabled: true, ratePerSec: 30, burstPerSec: 300 } }));
    expect(ok.out).toContain('Configuration was valid');
    expect(ok.ok).toBe(true);
    // the same group with the burst below the rate, written by hand (the renderer refuses it)
    const bad = await verify(await setup(true, {}, []).then(async (d) => {
      const text = renderTorrc(nodeTorrcEntries({ hsDir: join(d, 'hs'), socksPort: 19999, virtualPort: 80, proxyListen: { kind: 'tcp', host: '127.0.0.1', port: 1 }, numIntroPoints: 3, maxStreamsPerCircuit: 1, pow: { enabled: false, queueRate: 1, queueBurst: 1 }, publishDescriptors: true, extra: [['DisableNetwork', '1']] }));
      await writeFile(join(d, 'torrc'), `DataDirectory ${join(d, 'tor')}\n${text}HiddenServiceEnableIntroDoSDefense 1\nHiddenServiceEnableIntroDoSRatePerSec 30\nHiddenServiceEnableIntroDoSBurstPerSec 20\n`);
      return d;
    }));
    expect(bad.ok).toBe(false);
    expect(bad.out).toContain('can not be smaller than the rate');
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

describe('tor.extra_config against the real tor', () => {
  it('tor takes the abbreviations (ControlP, SocksPor, HashedControlPasswor, DataDirector) and the config refuses them', async () => {
    const hash = (await run('tor', ['--hash-password', 'x', '--quiet'], { timeout: 30_000 })).stdout.trim().split('\n').pop()!;
    const attacks: TorrcEntry[] = [
      ['ControlP', '127.0.0.1:19051'],
      ['SocksPor', '127.0.0.1:19052'],
      ['HashedControlPasswor', hash],
      ['DataDirector', '/tmp'],
    ];
    for (const a of attacks) {
      const r = await verify(await setup(true, {}, [a]));
      expect(r.out, a[0]).toContain('Configuration was valid');
      expect(r.out, a[0]).toContain(`The abbreviation '${a[0]}' is deprecated`);
      const d = await mkdtemp(join(tmpdir(), 'tb-vc-'));
      dirs.push(d);
      expect(() => configFromObject({ target: { address: TARGET }, node: { data_dir: d }, tor: { extra_config: [`${a[0]} ${a[1]}`] } }, { baseDir: d }), a[0]).toThrow(
        expect.objectContaining({ code: 'TB_ERR_CONFIG_INVALID' }),
      );
    }
  });

  it('every accepted and every managed option name is a tor option, written out in full', async () => {
    const names = new Set((await run('tor', ['--list-torrc-options'], { timeout: 30_000 })).stdout.split('\n').map((l) => l.trim().toLowerCase()));
    for (const k of [...EXTRA_TOR_OPTIONS, ...Object.keys(MANAGED_TOR_OPTIONS)]) expect(names.has(k.toLowerCase()), k).toBe(true);
  });

  it('the supervisor refuses a tor whose managed options differ from the torrc (GETCONF), and accepts the node torrc as written', async () => {
    const d = await setup(true);
    const entries = nodeTorrcEntries({
      hsDir: join(d, 'hs'),
      socksPort: 19998,
      virtualPort: 80,
      proxyListen: { kind: 'unix', path: join(d, 'proxy.sock') },
      numIntroPoints: 3,
      maxStreamsPerCircuit: 16,
      maxStreamsCloseCircuit: true,
      introDos: { enabled: true, ratePerSec: 30, burstPerSec: 300 },
      pow: { enabled: false, queueRate: 1, queueBurst: 1 },
      publishDescriptors: true,
      extra: [['DisableNetwork', '1']],
    });
    // A second onion service after the master's (as the tor mesh transport's coordination onion).
    entries.push(['HiddenServiceDir', join(d, 'hs2')], ['HiddenServicePort', `7700 unix:${join(d, 'mesh.sock')}`]);
    const good = new TorProcess({ dataDir: join(d, 'tor'), torrc: entries, readiness: 'control', restart: false, checkManagedOptions: true, startTimeoutMs: 60_000 });
    procs.push(good);
    await good.start();
    expect(good.state).toBe('ready');
    await good.stop();
    // An abbreviated ControlPort line (as an unchecked extra_config would add) opens a second control port.
    const bad = new TorProcess({ dataDir: join(d, 'tor'), torrc: [['ControlP', 'unix:' + join(d, 'tor', 'c2.sock')], ...entries], readiness: 'control', restart: false, checkManagedOptions: true, startTimeoutMs: 60_000 });
    procs.push(bad);
    await expect(bad.start()).rejects.toMatchObject({ code: 'TB_ERR_TOR_MANAGED_OPTION', message: expect.stringContaining('ControlPort') });
    expect(bad.pid).toBeUndefined();
    expect(bad.state).toBe('failed');
  });
});
