/**
 * Configuration errors exit 78 (EX_CONFIG, src/cli/main.ts) from every command that loads a
 * config, so systemd's `RestartPreventExitStatus=78` (deploy/torbalance.service) stops
 * restarting a node whose file is broken; other command errors keep exit code 1.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt } from '../helpers/built.js';

const BIN = resolve('bin/torbalance.js');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function cli(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: tmpdir(), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => {
      res({ code, stdout, stderr });
    });
  });
}

describe('configuration errors exit 78', () => {
  let dir: string;
  beforeAll(async () => {
    requireBuilt();
    dir = await mkdtemp(join(tmpdir(), 'tb-exit78-'));
    dirs.push(dir);
    await writeFile(join(dir, 'syntax.toml'), '[node\nname = "x"\n', { mode: 0o600 });
    await writeFile(join(dir, 'schema.toml'), '[node]\nname = "x"\nbogus = 1\n', { mode: 0o600 });
    await writeFile(join(dir, 'open.toml'), '[node]\nname = "x"\n');
    await chmod(join(dir, 'open.toml'), 0o666); // not through the umask
  });

  it('run: invalid TOML, a schema error, a group/world-writable file, a missing file', async () => {
    const syntax = await cli(['run', '--config', join(dir, 'syntax.toml')]);
    expect(syntax.stderr).toContain('TB_ERR_CONFIG_SYNTAX');
    expect(syntax.code).toBe(78);
    const schema = await cli(['run', '--config', join(dir, 'schema.toml')]);
    expect(schema.stderr).toMatch(/TB_ERR_CONFIG_INVALID[\s\S]*node\.bogus \(line 3\)/);
    expect(schema.code).toBe(78);
    const open = await cli(['run', '--config', join(dir, 'open.toml')]);
    expect(open.stderr).toContain('TB_ERR_CONFIG_PERMISSIONS');
    expect(open.code).toBe(78);
    const missing = await cli(['run', '--config', join(dir, 'none.toml')]);
    expect(missing.stderr).toContain('TB_ERR_CONFIG_');
    expect(missing.code).toBe(78);
  });

  it('status, token list, config check: 78 as well; an error that is not the config stays 1', async () => {
    for (const args of [['status', '--config'], ['token', 'list', '--config'], ['config', 'check']]) {
      const r = await cli([...args, join(dir, 'schema.toml')]);
      expect(r.stderr, args.join(' ')).toContain('TB_ERR_CONFIG_INVALID');
      expect(r.code, args.join(' ')).toBe(78);
    }
    const ttl = await cli(['token', 'create', '--config', join(dir, 'schema.toml'), '--out', '-', '--ttl', '10s']);
    expect(ttl.stderr).toContain('TB_ERR_JOIN_TTL');
    expect(ttl.code).toBe(1);
  });
});
