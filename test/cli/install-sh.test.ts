/**
 * deploy/install.sh in a temp root (no user creation, no systemctl): from a tarball made by
 * `npm pack` here — a wrong SHA-256, or no checksum at all, is refused and installs nothing;
 * a good one (checked against a sha256sum-format file that also covers the lockfile) installs
 * PREFIX/<version>, the `current` and bin symlinks and the unit, runs `torbalance --version`
 * and prints the next steps. From git: a ref that is not the expected commit is refused.
 * npm runs with --offline (dependencies come from the npm cache of this machine).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt } from '../helpers/built.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'deploy/install.sh');
const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-inst-'));
  dirs.push(d);
  return d;
}

function install(root: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'bash',
    [SCRIPT, '--prefix', join(root, 'opt/torbalance'), '--bin-dir', join(root, 'usr/bin'), '--unit-dir', join(root, 'etc/systemd/system'), '--etc-dir', join(root, 'etc/torbalance'), '--state-dir', join(root, 'var/lib/torbalance'), '--no-systemctl', '--npm-flags', '--offline', ...args],
    { encoding: 'utf8', timeout: 240_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha256 = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');

describe('deploy/install.sh', () => {
  let rel: string;
  let tarball: string;

  beforeAll(async () => {
    requireBuilt('dist/src/cli/main.js'); // the tarball packs dist/src
    rel = await tmp();
    const p = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', rel], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(p.status, p.stderr).toBe(0);
    tarball = join(rel, p.stdout.trim().split('\n').at(-1)!);
    expect(basename(tarball)).toBe(`torbalance-${VERSION}.tgz`);
    await copyFile(join(ROOT, 'package-lock.json'), join(rel, 'package-lock.json'));
  }, 180_000);

  it('refuses a tarball whose SHA-256 does not match, and one without any checksum', async () => {
    const root = await tmp();
    const bad = install(root, ['--tarball', tarball, '--sha256', '0'.repeat(64)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`checksum mismatch for ${tarball}: expected ${'0'.repeat(64)}, got ${await sha256(tarball)} (refusing to install)`);
    const none = install(root, ['--tarball', tarball]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no checksum: pass --sha256 HEX');
    expect(await readdir(root)).toEqual([]);
  });

  it('installs a verified tarball and runs torbalance --version', async () => {
    const root = await tmp();
    await writeFile(`${tarball}.sha256`, `${await sha256(tarball)}  ${basename(tarball)}\n${await sha256(join(rel, 'package-lock.json'))}  package-lock.json\n`);
    try {
      const r = install(root, ['--tarball', tarball]);
      expect(r.stderr).toContain('lockfile verified');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`torbalance ${VERSION} installed.`);
      expect(r.stdout).toContain('torbalance init --dir');
      expect(r.stdout).toContain('systemctl enable --now torbalance');
      const dest = join(root, 'opt/torbalance', VERSION);
      expect(existsSync(join(dest, 'dist/src/cli/main.js'))).toBe(true);
      expect(existsSync(join(dest, 'node_modules/pino/package.json'))).toBe(true);
      expect(existsSync(join(dest, 'node_modules/vitest'))).toBe(false); // --omit=dev
      expect(await readlink(join(root, 'opt/torbalance/current'))).toBe(VERSION);
      const bin = join(root, 'usr/bin/torbalance');
      expect(await readlink(bin)).toBe(join(root, 'opt/torbalance/current/bin/torbalance.js'));
      expect(await readFile(join(root, 'etc/systemd/system/torbalance.service'), 'utf8')).toBe(await readFile(join(ROOT, 'deploy/torbalance.service'), 'utf8'));
      const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
      expect(v.stdout.trim()).toBe(VERSION);
      // a second install of the same version needs --force
      const again = install(root, ['--tarball', tarball]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('exists (pass --force to reinstall)');
      // a tampered lockfile is refused
      await writeFile(`${tarball}.sha256`, `${await sha256(tarball)}  ${basename(tarball)}\n${'1'.repeat(64)}  package-lock.json\n`);
      const lock = install(await tmp(), ['--tarball', tarball]);
      expect(lock.code).toBe(1);
      expect(lock.stderr).toContain('checksum mismatch for');
    } finally {
      await rm(`${tarball}.sha256`, { force: true });
    }
  }, 240_000);

  it('from git: refuses a ref that is not the expected commit', async () => {
    const root = await tmp();
    const r = install(root, ['--git', ROOT, '--ref', 'HEAD', '--commit', 'f'.repeat(40)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: HEAD is commit [0-9a-f]{40}, not the expected f{40}/);
    expect(await readdir(root)).toEqual([]);
  });
});

describe('install.sh runs no dependency install scripts', () => {
  it('every npm ci / npm pack of the script has --ignore-scripts, and the build needs none', async () => {
    const text = await readFile(SCRIPT, 'utf8');
    // invocations: `npm ci`/`npm pack` followed by options, on lines that are not comments
    const code = text
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#') && !l.trimStart().startsWith('say '))
      .flatMap((l) => [...l.matchAll(/npm (ci|pack)(?= -)[^\n&|)]*/g)].map((m) => m[0]));
    expect(code.length).toBeGreaterThanOrEqual(3); // git build: ci + pack; install: ci
    for (const c of code) expect(c, c).toContain('--ignore-scripts');
    // Only development tools have install scripts (esbuild, for tsx/vitest); the build is tsc,
    // and what is installed (--omit=dev) has none.
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean; dev?: boolean }> };
    const scripted = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript === true);
    expect(scripted.filter(([, p]) => p.dev !== true).map(([k]) => k)).toEqual([]);
    expect(scripted.map(([k]) => k)).not.toContain('node_modules/typescript');
  });
});
