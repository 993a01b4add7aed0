/**
 * `[cluster]` config rules, `init --cluster`, `cluster secret`, and two nodes started in-process
 * with an offline tor (`DisableNetwork 1`) forming a mesh over loopback TCP: each sees the
 * other alive, one is elected publisher, both switch their tor to PublishHidServDescriptors 0,
 * and a graceful stop of one makes the other go back to publishing itself (leave, not timeout).
 */
import { copyFile, mkdtemp, appendFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfigText } from '../../src/adapters/config/load.js';
import { readNodeSecret } from '../../src/adapters/fs/node-secrets.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { writeClusterSecret } from '../../src/cli/commands/cluster.js';
import { initNode } from '../../src/cli/commands/init.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { prepareCluster } from '../../src/node/cluster.js';
import { startNode, type NodeHandle } from '../../src/node/daemon.js';

const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const base = `[target]\naddress = "${TARGET}"\n`;
const dirs: string[] = [];
const handles: NodeHandle[] = [];
afterAll(async () => {
  for (const h of handles) await h.stop(0).catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tbc-'));
  dirs.push(d);
  return d;
}
function issues(text: string): ConfigError['issues'] {
  try {
    parseConfigText(text, { baseDir: '/srv/tb' });
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('[cluster] config', () => {
  it('defaults: disabled, paths under cluster/, resolved against the config dir', () => {
    const c = parseConfigText(base, { baseDir: '/srv/tb' });
    expect(c.cluster.enabled).toBe(false);
    expect(c.cluster.secret_file).toBe('/srv/tb/cluster/secret');
    expect(c.cluster.node_key_file).toBe('/srv/tb/cluster/node_key');
    expect(c.cluster.peers).toEqual([]);
  });

  it('tcp needs listen; addresses must be IP literals or onions; timings ordered', () => {
    expect(issues(`${base}[cluster]\nenabled = true\n`)[0]).toMatchObject({ key: 'cluster.listen' });
    expect(issues(`${base}[cluster]\nenabled = true\nlisten = "localhost:7700"\n`)[0]).toMatchObject({ key: 'cluster.listen', line: 5 });
    expect(issues(`${base}[cluster]\npeers = ["tcp:example.org:7700"]\n`)[0]).toMatchObject({ key: 'cluster.peers[0]' });
    expect(issues(`${base}[cluster]\npeers = ["tor:abc.onion:7700"]\n`)[0]).toMatchObject({ key: 'cluster.peers[0]' });
    expect(issues(`${base}[cluster]\nheartbeat_ms = 5000\n`)[0]).toMatchObject({ key: 'cluster.suspect_after_ms' });
    expect(issues(`${base}[cluster]\nenabled = true\ntransport = "tor"\nlisten = "10.0.0.1:7700"\n`)[0]).toMatchObject({ key: 'cluster.listen' });
    expect(issues(`${base}[cluster]\nenabled = true\nlisten = "10.0.0.1:7700"\nadvertise = "tor:${TARGET}:7700"\n`)[0]).toMatchObject({ key: 'cluster.advertise' });
    expect(issues(`${base}[cluster]\npriority = 1001\n`)[0]).toMatchObject({ key: 'cluster.priority' });
    // peers of the other transport are refused (docs/SECURITY.md, "Mesh addresses")
    expect(issues(`${base}[cluster]\nenabled = true\nlisten = "[::1]:7700"\npeers = ["tcp:10.99.0.2:7700", "tor:${TARGET}:7700"]\n`)[0]).toMatchObject({ key: 'cluster.peers[1]' });
    expect(issues(`${base}[cluster]\nenabled = true\ntransport = "tor"\npeers = ["tor:${TARGET}:7700", "tcp:10.99.0.2:7700"]\n`)[0]).toMatchObject({ key: 'cluster.peers[1]' });
    const ok = parseConfigText(`${base}[cluster]\nenabled = true\nlisten = "[::1]:7700"\npeers = ["tcp:10.99.0.2:7700", "tcp:[fd00::2]:7700"]\n`);
    expect(ok.cluster.peers).toHaveLength(2);
    const okTor = parseConfigText(`${base}[cluster]\nenabled = true\ntransport = "tor"\npeers = ["tor:${TARGET}:7700"]\n`);
    expect(okTor.cluster.peers).toHaveLength(1);
  });
});

describe('init --cluster and cluster secret', () => {
  it('writes 0600 secrets in a 0700 dir, a loadable config, and copies a given secret', async () => {
    const d = await tmp();
    const a = await initNode({ dir: join(d, 'a'), target: TARGET, cluster: { listen: '127.0.0.1:7701', peers: ['tcp:127.0.0.1:7702'] } });
    expect(a.cluster?.enabled).toBe(true);
    for (const f of [a.cluster!.secretFile, a.cluster!.nodeKeyFile]) expect((await stat(f)).mode & 0o777).toBe(0o600);
    expect((await stat(join(d, 'a', 'cluster'))).mode & 0o777).toBe(0o700);
    const ca = await loadConfig(a.configPath);
    expect(ca.cluster).toMatchObject({ enabled: true, listen: '127.0.0.1:7701', peers: ['tcp:127.0.0.1:7702'] });
    const b = await initNode({ dir: join(d, 'b'), target: TARGET, cluster: { secretFrom: a.cluster!.secretFile } });
    expect(b.cluster?.enabled).toBe(false);
    expect(await readNodeSecret('cluster-secret', b.cluster!.secretFile)).toEqual(await readNodeSecret('cluster-secret', a.cluster!.secretFile));
    expect(await readNodeSecret('node-key', b.cluster!.nodeKeyFile)).not.toEqual(await readNodeSecret('node-key', a.cluster!.nodeKeyFile));
    const pa = await prepareCluster(ca);
    expect(pa.key.nodeId).toMatch(/^[0-9a-f]{32}$/);
    expect(pa.torrcEntries).toEqual([]);
    const text = await readFile(a.configPath, 'utf8');
    expect(text).not.toContain((await readFile(a.cluster!.secretFile, 'utf8')).split(' ')[1]!.trim());
  });

  it('cluster secret --out refuses to overwrite without force', async () => {
    const d = await tmp();
    const p = await writeClusterSecret(join(d, 'k', 'secret'));
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    await expect(writeClusterSecret(p)).rejects.toMatchObject({ code: 'TB_ERR_KEYSTORE_EXISTS' });
    await writeClusterSecret(p, true);
  });
});

describe('two offline nodes form a mesh in-process', () => {
  it('elect one publisher, switch tor publishing off, and back on after the other leaves', async () => {
    const d = await tmp();
    const [pa, pb] = await allocatePorts(2);
    const a = await initNode({ dir: join(d, 'a'), target: TARGET, name: 'na', cluster: { listen: `127.0.0.1:${pa!}`, peers: [`tcp:127.0.0.1:${pb!}`] } });
    const b = await initNode({ dir: join(d, 'b'), target: TARGET, name: 'nb', cluster: { listen: `127.0.0.1:${pb!}`, secretFrom: a.cluster!.secretFile } });
    // same master key on both
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) await copyFile(join(a.keyDir, f), join(b.keyDir, f));
    const extra = '\n[tor]\nextra_config = ["DisableNetwork 1"]\n[drain]\ntimeout_ms = 0\n';
    await appendFile(a.configPath, extra);
    await appendFile(b.configPath, extra);
    // A long "alone grace" (suspect_after_ms = 60 s): a node whose last peer LEFT must not wait
    // for it (the wait below is 30 s), only one whose peers went silent.
    for (const c of [a.configPath, b.configPath]) {
      const text = await readFile(c, 'utf8');
      await writeFile(c, text.replace(/^\[cluster\]$/m, '[cluster]\nsuspect_after_ms = 60000\ndead_after_ms = 120000'), { mode: 0o600 });
    }
    const logger = pino({ level: process.env['TORBALANCE_TEST_LOG'] ?? 'silent' });
    const ha = await startNode({ config: await loadConfig(a.configPath), logger });
    handles.push(ha);
    const hb = await startNode({ config: await loadConfig(b.configPath), logger });
    handles.push(hb);
    const until = async <T>(f: () => Promise<T | undefined>, ms = 30_000): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await f();
        if (v !== undefined) return v;
        if (Date.now() > end) throw new Error('timeout');
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const both = await until(async () => {
      const [sa, sb] = [await ha.status(), await hb.status()];
      return sa.cluster?.torPublishes === false && sb.cluster?.torPublishes === false ? ([sa, sb] as const) : undefined;
    });
    const [sa, sb] = both;
    expect(sa.cluster!.peers.map((p) => p.state)).toEqual(['alive']);
    expect(sb.cluster!.peers[0]!.id).toBe(sa.cluster!.nodeId);
    expect(sa.cluster!.clustered && sb.cluster!.clustered).toBe(true);
    // offline tors have no intro points: nobody is healthy, nobody publishes anything
    expect(sa.cluster!.publishing).toEqual([]);
    await hb.stop(0);
    const after = await until(async () => {
      const s = await ha.status();
      return s.cluster?.torPublishes === true ? s : undefined;
    }, 30_000);
    expect(after.cluster!.peers[0]!.state).toBe('left');
    expect(after.cluster!.role).toBe('alone');
  }, 120_000);
});
