/**
 * Which config file a command reads (src/adapters/config/path.ts): `--config` over
 * `TORBALANCE_CONFIG` over /etc/torbalance/torbalance.toml, a missing file named with where its
 * path came from (TB_ERR_CONFIG_NOT_FOUND), and a symlinked config resolving its relative paths
 * next to the file it points to. The built binary: no `--config` and no file is exit 78.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_ENV, DEFAULT_CONFIG_PATH, chooseConfigPath, loadConfigFrom } from '../../src/adapters/config/path.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { requireBuilt } from '../helpers/built.js';

const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9)).address;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-cfgpath-'));
  dirs.push(d);
  return d;
}
async function configFile(dir: string, name: string, node: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, `[node]\nname = "${node}"\n[target]\naddress = "${TARGET}"\n`, { mode: 0o600 });
  return p;
}

describe('chooseConfigPath', () => {
  it('flag > TORBALANCE_CONFIG > default; empty values count as unset', () => {
    expect(DEFAULT_CONFIG_PATH).toBe('/etc/torbalance/torbalance.toml');
    expect(CONFIG_ENV).toBe('TORBALANCE_CONFIG');
    expect(chooseConfigPath('/a.toml', { TORBALANCE_CONFIG: '/b.toml' })).toEqual({ path: '/a.toml', from: 'flag' });
    expect(chooseConfigPath(undefined, { TORBALANCE_CONFIG: '/b.toml' })).toEqual({ path: '/b.toml', from: 'env' });
    expect(chooseConfigPath('', { TORBALANCE_CONFIG: '/b.toml' })).toEqual({ path: '/b.toml', from: 'env' });
    expect(chooseConfigPath(undefined, {})).toEqual({ path: DEFAULT_CONFIG_PATH, from: 'default' });
    expect(chooseConfigPath(undefined, { TORBALANCE_CONFIG: '' })).toEqual({ path: DEFAULT_CONFIG_PATH, from: 'default' });
    expect(chooseConfigPath(undefined, {}, '/x/d.toml')).toEqual({ path: '/x/d.toml', from: 'default' });
  });
});

describe('loadConfigFrom', () => {
  it('loads the file of the winning source', async () => {
    const d = await tmp();
    const flag = await configFile(d, 'flag.toml', 'from-flag');
    const env = await configFile(d, 'env.toml', 'from-env');
    const def = await configFile(d, 'default.toml', 'from-default');
    const name = async (f: string | undefined, e: Record<string, string>): Promise<string> => (await loadConfigFrom(f, e, def)).config.node.name;
    expect(await name(flag, { TORBALANCE_CONFIG: env })).toBe('from-flag');
    expect(await name(undefined, { TORBALANCE_CONFIG: env })).toBe('from-env');
    expect(await name(undefined, {})).toBe('from-default');
    expect((await loadConfigFrom(undefined, { TORBALANCE_CONFIG: env }, def)).path).toBe(env);
  });

  it('a missing file is TB_ERR_CONFIG_NOT_FOUND saying where the path came from', async () => {
    const d = await tmp();
    const none = join(d, 'none.toml');
    await expect(loadConfigFrom(none, {}, none)).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_NOT_FOUND', kind: 'config', message: expect.stringContaining(`--config ${none} does not exist`) });
    await expect(loadConfigFrom(undefined, { TORBALANCE_CONFIG: none }, join(d, 'x'))).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_NOT_FOUND', message: expect.stringContaining(`TORBALANCE_CONFIG=${none} does not exist`) });
    await expect(loadConfigFrom(undefined, {}, none)).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_NOT_FOUND', message: expect.stringContaining(`the default ${none} (no --config, TORBALANCE_CONFIG not set) does not exist`) });
    // Another problem with the file keeps its own code.
    await writeFile(join(d, 'bad.toml'), '[node\n', { mode: 0o600 });
    await expect(loadConfigFrom(join(d, 'bad.toml'), {}, none)).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_SYNTAX' });
  });

  it('a symlinked config (/etc/torbalance/torbalance.toml → the node directory) resolves relative paths next to its target', async () => {
    const d = await tmp();
    await mkdir(join(d, 'node'));
    await mkdir(join(d, 'etc'));
    const real = await configFile(join(d, 'node'), 'torbalance.toml', 'n');
    await symlink(real, join(d, 'etc', 'torbalance.toml'));
    const { config } = await loadConfigFrom(undefined, {}, join(d, 'etc', 'torbalance.toml'));
    expect(config.master.key_dir).toBe(join(d, 'node', 'master'));
    expect(config.node.data_dir).toBe(join(d, 'node', 'data'));
    // A file that is not a link: next to itself, as before.
    expect((await loadConfigFrom(real, {})).config.master.key_dir).toBe(join(d, 'node', 'master'));
  });
});

describe('the built binary without --config', () => {
  function cli(args: readonly string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
    return new Promise((res) => {
      const { TORBALANCE_CONFIG: _inherited, ...rest } = process.env;
      const e: Record<string, string | undefined> = { ...rest, ...(env[CONFIG_ENV] === undefined ? {} : { [CONFIG_ENV]: env[CONFIG_ENV] }) };
      const p = spawn(process.execPath, [resolve('bin/torbalance.js'), ...args], { cwd: tmpdir(), env: e, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('close', (code) => {
        res({ code, stderr });
      });
    });
  }

  it('uses TORBALANCE_CONFIG, else the default; none there is exit 78 naming the default', async () => {
    requireBuilt();
    expect(existsSync(DEFAULT_CONFIG_PATH), `this test needs a machine without ${DEFAULT_CONFIG_PATH}`).toBe(false);
    for (const args of [['run'], ['status'], ['token', 'list'], ['config', 'check']]) {
      const r = await cli(args, { [CONFIG_ENV]: undefined });
      expect(r.stderr, args.join(' ')).toContain(`TB_ERR_CONFIG_NOT_FOUND: no config file: the default ${DEFAULT_CONFIG_PATH} (no --config, TORBALANCE_CONFIG not set) does not exist`);
      expect(r.code, args.join(' ')).toBe(78);
    }
    const d = await tmp();
    await writeFile(join(d, 'bad.toml'), '[node]\nbogus = 1\n', { mode: 0o600 });
    const env = await cli(['status'], { [CONFIG_ENV]: join(d, 'bad.toml') });
    expect(env.stderr).toContain(`invalid configuration ${join(d, 'bad.toml')}`);
    expect(env.code).toBe(78);
    // The flag wins over the environment.
    const flag = await cli(['status', '--config', join(d, 'none.toml')], { [CONFIG_ENV]: join(d, 'bad.toml') });
    expect(flag.stderr).toContain(`--config ${join(d, 'none.toml')} does not exist`);
    expect(flag.code).toBe(78);
  });
});
