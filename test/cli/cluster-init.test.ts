/**
 * `[cluster]` config rules, `init --cluster` and `cluster secret`. Two such nodes running (their
 * real tors): test/integration/cluster-offline.test.ts.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfigText } from '../../src/adapters/config/load.js';
import { readNodeSecret } from '../../src/adapters/fs/node-secrets.js';
import { writeClusterSecret } from '../../src/cli/commands/cluster.js';
import { initNode } from '../../src/cli/commands/init.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { prepareCluster } from '../../src/node/cluster.js';

const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const base = `[target]\naddress = "${TARGET}"\n`;
const dirs: string[] = [];
afterAll(async () => {
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
