/**
 * The admin socket's default (src/adapters/config/load.ts `defaultRuntimeDir`): in systemd's
 * runtime directory /run/torbalance when this process can use it, else in `node.data_dir` as
 * before; an explicit `admin.listen` always wins. The directory is injected here (the test
 * machine's /run/torbalance is not touched).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultRuntimeDir, loadConfig, parseConfigText } from '../../src/adapters/config/load.js';
import { RUNTIME_DIR } from '../../src/adapters/config/schema.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';

const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(5)).address;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-rundir-'));
  dirs.push(d);
  return d;
}

describe('admin socket default', () => {
  it('defaultRuntimeDir: a usable directory, else undefined', async () => {
    expect(RUNTIME_DIR).toBe('/run/torbalance');
    const d = await tmp();
    await mkdir(join(d, 'run'));
    await writeFile(join(d, 'file'), '');
    expect(await defaultRuntimeDir(join(d, 'run'))).toBe(join(d, 'run'));
    expect(await defaultRuntimeDir(join(d, 'missing'))).toBeUndefined();
    expect(await defaultRuntimeDir(join(d, 'file'))).toBeUndefined();
    expect(await defaultRuntimeDir(join(d, 'file', 'x'))).toBeUndefined();
    if (process.getuid?.() !== 0) {
      // Another user's runtime directory (0700): not ours to use (root may use any).
      await mkdir(join(d, 'theirs'));
      await chmod(join(d, 'theirs'), 0o500);
      expect(await defaultRuntimeDir(join(d, 'theirs'))).toBeUndefined();
    }
  });

  it('loadConfig: <runtime dir>/admin.sock when there is one, <data_dir>/admin.sock otherwise; admin.listen wins', async () => {
    const d = await tmp();
    await mkdir(join(d, 'run'));
    const file = join(d, 'tb.toml');
    await writeFile(file, `[target]\naddress = "${TARGET}"\n`, { mode: 0o600 });
    expect((await loadConfig(file, { runtimeDir: join(d, 'run') })).admin.listen).toEqual({ kind: 'unix', path: join(d, 'run', 'admin.sock') });
    expect((await loadConfig(file, { runtimeDir: undefined })).admin.listen).toEqual({ kind: 'unix', path: join(d, 'data', 'admin.sock') });
    // The proxy socket stays in the data directory (tor's HiddenServicePort points there).
    expect((await loadConfig(file, { runtimeDir: join(d, 'run') })).proxy.listen).toEqual({ kind: 'unix', path: join(d, 'data', 'proxy.sock') });
    await writeFile(file, `[target]\naddress = "${TARGET}"\n[admin]\nlisten = "unix:sock/a.sock"\n`, { mode: 0o600 });
    expect((await loadConfig(file, { runtimeDir: join(d, 'run') })).admin.listen).toEqual({ kind: 'unix', path: join(d, 'sock', 'a.sock') });
    await writeFile(file, `[target]\naddress = "${TARGET}"\n[admin]\nlisten = "127.0.0.1:7780"\n`, { mode: 0o600 });
    expect((await loadConfig(file, { runtimeDir: join(d, 'run') })).admin.listen).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 7780 });
    // Without the option loadConfig looks at /run/torbalance itself; parseConfigText never does.
    const detected = await defaultRuntimeDir();
    await writeFile(file, `[target]\naddress = "${TARGET}"\n`, { mode: 0o600 });
    expect((await loadConfig(file)).admin.listen).toEqual({ kind: 'unix', path: join(detected ?? join(d, 'data'), 'admin.sock') });
    expect(parseConfigText(`[target]\naddress = "${TARGET}"\n`, { baseDir: d }).admin.listen).toEqual({ kind: 'unix', path: join(d, 'data', 'admin.sock') });
  });
});
