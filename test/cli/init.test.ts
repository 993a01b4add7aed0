/**
 * `torbalance init` → files and modes → `config check` (spawned binary), and `startNode`
 * refusing a group-readable master key before it starts anything. Running a node (its real
 * tor) is tested in test/integration/run.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/adapters/config/load.js';
import { writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { createLogger } from '../../src/adapters/log/logger.js';
import { initNode } from '../../src/cli/commands/init.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { startNode } from '../../src/node/daemon.js';
import { REPO_ROOT, requireBuilt } from '../helpers/built.js';

const BIN = join(REPO_ROOT, 'bin/torbalance.js');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-init-'));
  dirs.push(d);
  return d;
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('torbalance init / config check (spawned binary)', () => {
  let dir: string;
  let master: string;

  beforeAll(async () => {
    requireBuilt('dist/src/cli/main.js', 'dist/src/cli/commands/init.js');
    dir = join(await tmp(), 'node');
    const r = cli(['init', '--dir', dir, '--target', TARGET, '--name', 'n1']);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    master = r.stdout.trim();
  });

  it('init writes the config and the key with safe modes and prints the master address', async () => {
    expect(master).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, 'torbalance.toml'))).toBe(0o600);
    expect(await mode(join(dir, 'master'))).toBe(0o700);
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) expect(await mode(join(dir, 'master', f)), f).toBe(0o600);
    expect((await readFile(join(dir, 'master', 'hostname'), 'utf8')).trim()).toBe(master);
    const c = await loadConfig(join(dir, 'torbalance.toml'));
    expect(c.node.name).toBe('n1');
    expect(c.target.address).toBe(TARGET);
    expect(c.master.key_dir).toBe(join(dir, 'master'));
  });

  it('config check prints OK, and the errors for a bad file', async () => {
    const ok = cli(['config', 'check', join(dir, 'torbalance.toml')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`OK ${join(dir, 'torbalance.toml')} (master ${master}) target ${TARGET}\nPoW: off (tor.pow.enabled = false).\n`);
    const badFile = join(await tmp(), 'bad.toml');
    await appendFile(badFile, `[target]\naddress = "${TARGET}"\nprot = 80\n`);
    const bad = cli(['config', 'check', '--no-keys', badFile]);
    expect(bad.code).toBe(78); // EX_CONFIG (src/cli/main.ts)
    expect(bad.stderr).toContain('TB_ERR_CONFIG_INVALID');
    expect(bad.stderr).toContain('target.prot (line 3): unknown key (did you mean "port"?)');
  });

  it('init refuses to overwrite, refuses a bad target, imports an existing HiddenServiceDir', async () => {
    const again = cli(['init', '--dir', dir, '--target', TARGET]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TB_ERR_INIT_EXISTS');
    const badTarget = cli(['init', '--dir', join(await tmp(), 'x'), '--target', 'nope.onion']);
    expect(badTarget.code).toBe(1);
    expect(badTarget.stderr).toContain('TB_ERR_INIT_TARGET');
    const hs = join(await tmp(), 'hs');
    const kp = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3));
    await writeKeyDirectory(hs, kp);
    const imported = cli(['init', '--dir', join(await tmp(), 'imp'), '--target', TARGET, '--import-hs-dir', hs]);
    expect(imported.code).toBe(0);
    expect(imported.stdout.trim()).toBe(kp.address);
    const self = cli(['init', '--dir', join(await tmp(), 'self'), '--target', kp.address, '--import-hs-dir', hs]);
    expect(self.code).toBe(78); // a TB_ERR_CONFIG_* error: EX_CONFIG
    expect(self.stderr).toContain('TB_ERR_CONFIG_TARGET_IS_MASTER');
  });
});

describe('startNode (before tor starts)', () => {
  it('refuses to start with a group-readable master key', async () => {
    const d = await tmp();
    const r = await initNode({ dir: join(d, 'n'), target: TARGET });
    await chmod(join(d, 'n', 'master', 'hs_ed25519_secret_key'), 0o640);
    const config = await loadConfig(r.configPath);
    await expect(startNode({ config, logger: createLogger({ level: 'silent' }) })).rejects.toMatchObject({ code: 'TB_ERR_KEYSTORE_FILE_PERMISSIONS' });
    expect(existsSync(join(d, 'n', 'data'))).toBe(false);
  });
});
