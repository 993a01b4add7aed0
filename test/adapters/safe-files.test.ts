/**
 * Files a node writes where others may plant things: the debug status file
 * (`TORBALANCE_STATUS_FILE`, src/node/status-file.ts `writeStatusFile`) must not write through a
 * symlink at its path or at a temp name, and is 0600; tor's output log
 * (src/adapters/log/rotating-file.ts) stays bounded and refuses a symlink.
 */
import { lstat, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RotatingLogFile } from '../../src/adapters/log/rotating-file.js';
import { writeStatusFile } from '../../src/node/status-file.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tbsf-'));
  dirs.push(d);
  return d;
}

describe('the debug status file', () => {
  it('attack: symlinks planted at the path and at the old temp name do not redirect the write', async () => {
    const d = await tmp();
    const victim = join(d, 'victim');
    await writeFile(victim, 'precious\n', { mode: 0o644 });
    const path = join(d, 'status.json');
    await symlink(victim, path);
    await symlink(victim, `${path}.tmp`);
    await writeStatusFile(path, '{"ok":true}');
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
    expect((await lstat(path)).isSymbolicLink()).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('{"ok":true}');
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
    // no temp file is left behind
    expect((await readdir(d)).sort()).toEqual(['status.json', 'status.json.tmp', 'victim']);
  });
});

describe('RotatingLogFile (tor-output.log)', () => {
  it('attack: unbounded output keeps at most the cap in the file plus one rotation', async () => {
    const d = await tmp();
    const path = join(d, 'tor-output.log');
    const log = new RotatingLogFile(path, 1000);
    const line = new Uint8Array(100).fill(0x61);
    for (let i = 0; i < 1000; i++) log.write(line); // 100 kB written
    log.close();
    const a = await stat(path);
    const b = await stat(`${path}.1`);
    expect(a.size).toBeLessThanOrEqual(1000);
    expect(b.size).toBeLessThanOrEqual(1000);
    expect(b.size).toBeGreaterThan(0);
    expect((a.mode & 0o777).toString(8)).toBe('600');
    expect((await readdir(d)).sort()).toEqual(['tor-output.log', 'tor-output.log.1']);
    // reopening continues the current file and still rotates at the cap
    const again = new RotatingLogFile(path, 1000);
    for (let i = 0; i < 20; i++) again.write(line);
    again.close();
    expect((await stat(path)).size).toBeLessThanOrEqual(1000);
  });

  it('does not write through a symlink planted at the log path', async () => {
    const d = await tmp();
    const victim = join(d, 'victim');
    await writeFile(victim, 'precious\n');
    const path = join(d, 'tor-output.log');
    await symlink(victim, path);
    const log = new RotatingLogFile(path, 1000);
    log.write(new Uint8Array([0x62, 0x0a]));
    log.close();
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
  });
});
