/**
 * The coordination onion service's key and `ob_config` prepared before tor starts
 * (src/node/cluster.ts `ensureMeshIdentity`, `prepareCluster` with `transport = "tor"`): a key
 * we generate when there is none, an existing one (e.g. tor's own from an earlier run) kept,
 * `ob_config` naming the service itself, and the OnionBalance line in its torrc group.
 */
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/adapters/config/load.js';
import { readKeyDirectory, writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { initNode } from '../../src/cli/commands/init.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { meshOnionPaths } from '../../src/core/mesh-torrc.js';
import { ensureMeshIdentity, prepareCluster } from '../../src/node/cluster.js';

const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tbm-'));
  dirs.push(d);
  return d;
}
function seeded(byte: number): (n: number) => Uint8Array {
  return (n) => new Uint8Array(n).fill(byte);
}

describe('ensureMeshIdentity', () => {
  it('generates a key in tor format when mesh-hs has none, and writes ob_config naming it', async () => {
    const paths = meshOnionPaths({ dataDir: await tmp() });
    const id = await ensureMeshIdentity(paths, seeded(3));
    expect(id.address).toBe(HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3)).address);
    const loaded = await readKeyDirectory(paths.hsDir);
    expect(loaded.keypair.address).toBe(id.address);
    expect(loaded.hasHostnameFile && loaded.hasPublicKeyFile).toBe(true);
    expect((await readFile(paths.hostnameFile, 'utf8')).trim()).toBe(id.address);
    expect(await readFile(paths.obConfigFile, 'utf8')).toBe(`MasterOnionAddress ${id.address}\n`);
    expect((await stat(paths.hsDir)).mode & 0o777).toBe(0o700);
    for (const f of ['hs_ed25519_secret_key', 'ob_config']) expect((await stat(join(paths.hsDir, f))).mode & 0o777).toBe(0o600);
  });

  it('keeps an existing key (tor-generated or ours) and refreshes ob_config', async () => {
    const paths = meshOnionPaths({ dataDir: await tmp() });
    const existing = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));
    await writeKeyDirectory(paths.hsDir, existing);
    await writeFile(paths.obConfigFile, 'MasterOnionAddress stale\n', { mode: 0o600 });
    const id = await ensureMeshIdentity(paths, seeded(4));
    expect(id.address).toBe(existing.address);
    expect(await readFile(paths.obConfigFile, 'utf8')).toBe(`MasterOnionAddress ${existing.address}\n`);
    // a second run changes nothing
    expect((await ensureMeshIdentity(paths, seeded(5))).address).toBe(existing.address);
  });

  it('replaces stale public/hostname files when the secret key is missing', async () => {
    const paths = meshOnionPaths({ dataDir: await tmp() });
    await mkdir(paths.hsDir, { mode: 0o700 });
    await writeFile(paths.hostnameFile, `${TARGET}\n`);
    const id = await ensureMeshIdentity(paths, seeded(6));
    expect(id.address).not.toBe(TARGET);
    expect((await readFile(paths.hostnameFile, 'utf8')).trim()).toBe(id.address);
  });

  it('refuses key files that disagree (TB_ERR_KEYFILE_MISMATCH), without touching them', async () => {
    const paths = meshOnionPaths({ dataDir: await tmp() });
    await writeKeyDirectory(paths.hsDir, HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(1)));
    await writeFile(paths.hostnameFile, `${TARGET}\n`);
    await expect(ensureMeshIdentity(paths, seeded(2))).rejects.toMatchObject({ code: 'TB_ERR_KEYFILE_MISMATCH' });
    expect((await readFile(paths.hostnameFile, 'utf8')).trim()).toBe(TARGET);
  });
});

describe('prepareCluster with transport "tor"', () => {
  it('returns the mesh identity and torrc entries with HiddenServiceOnionBalanceInstance 1', async () => {
    const d = await tmp();
    const init = await initNode({ dir: join(d, 'a'), target: TARGET, cluster: { transport: 'tor' } });
    const config = await loadConfig(init.configPath);
    const p = await prepareCluster(config);
    const id = p.meshIdentity;
    if (id === undefined) throw new Error('no mesh identity');
    const hsDir = join(config.node.data_dir, 'mesh-hs');
    expect(p.onion?.hsDir).toBe(hsDir);
    expect(p.torrcEntries).toEqual([
      ['HiddenServiceDir', hsDir],
      ['HiddenServicePort', `7700 unix:${join(config.node.data_dir, 'mesh.sock')}`],
      ['HiddenServiceOnionBalanceInstance', '1'],
    ]);
    expect(await readFile(join(hsDir, 'ob_config'), 'utf8')).toBe(`MasterOnionAddress ${id.address}\n`);
    // the next start keeps the key (peers know the address)
    expect((await prepareCluster(config)).meshIdentity?.address).toBe(id.address);
  });
});
