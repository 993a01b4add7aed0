/**
 * The version torbalance reports is package.json's: read from the module's own location both
 * when it runs from src/ (tsx, vitest) and compiled from dist/src/ (the built binary), and a
 * tree without torbalance's package.json is an error naming the fix, not a made-up version.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readPackageVersion, torbalanceVersion } from '../../src/adapters/system/version.js';
import { requireBuilt } from '../helpers/built.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PKG_VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => {
      res({ code, stdout, stderr });
    });
  });
}

describe('torbalance version', () => {
  it('is the version in package.json, found from src/ and from a dist/src/-like depth', async () => {
    expect(PKG_VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(torbalanceVersion()).toBe(PKG_VERSION);
    const d = await mkdtemp(join(tmpdir(), 'tbver-'));
    dirs.push(d);
    const deep = join(d, 'dist', 'src', 'adapters', 'system');
    await mkdir(deep, { recursive: true });
    // another package's package.json on the way up is skipped
    await writeFile(join(d, 'dist', 'package.json'), JSON.stringify({ name: 'something-else', version: '9.9.9' }));
    await writeFile(join(d, 'package.json'), JSON.stringify({ name: 'torbalance', version: '3.4.5-rc.1' }));
    expect(readPackageVersion(deep)).toBe('3.4.5-rc.1');
  });

  it('throws TB_ERR_PACKAGE_VERSION without a torbalance package.json (or without a version)', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tbver-'));
    dirs.push(d);
    await writeFile(join(d, 'package.json'), JSON.stringify({ name: 'torbalance' }));
    expect(() => readPackageVersion(d)).toThrow(expect.objectContaining({ code: 'TB_ERR_PACKAGE_VERSION' }));
    const e = join(d, 'e');
    await mkdir(e);
    await writeFile(join(e, 'package.json'), '{not json');
    expect(() => readPackageVersion(e)).toThrow(expect.objectContaining({ code: 'TB_ERR_PACKAGE_VERSION' }));
  });

  it('--version prints it from the built binary and from src/ under tsx (any working directory)', async () => {
    requireBuilt('dist/src/cli/main.js', 'dist/src/adapters/system/version.js');
    const built = await run([join(ROOT, 'bin', 'torbalance.js'), '--version']);
    expect(built.stderr).toBe('');
    expect(built.code).toBe(0);
    expect(built.stdout).toBe(`${PKG_VERSION}\n`);
    const src = await run(['--import', pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href, join(ROOT, 'src', 'cli', 'main.ts'), '--version']);
    expect(src.stderr).toBe('');
    expect(src.code).toBe(0);
    expect(src.stdout).toBe(`${PKG_VERSION}\n`);
  });

  it('--version of a copied build is its own package.json version (not a constant in the code)', async () => {
    requireBuilt('dist/src/cli/main.js', 'dist/src/adapters/system/version.js');
    const d = await mkdtemp(join(tmpdir(), 'tbver-'));
    dirs.push(d);
    await cp(join(ROOT, 'dist', 'src'), join(d, 'dist', 'src'), { recursive: true });
    await mkdir(join(d, 'bin'));
    await cp(join(ROOT, 'bin', 'torbalance.js'), join(d, 'bin', 'torbalance.js'));
    await symlink(join(ROOT, 'node_modules'), join(d, 'node_modules'));
    await writeFile(join(d, 'package.json'), JSON.stringify({ name: 'torbalance', version: '7.8.9', type: 'module' }));
    const r = await run([join(d, 'bin', 'torbalance.js'), '--version']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('7.8.9\n');
  });
});
