/**
 * Real tor 0.4.9 and our key files, in both directions (self-contained: one short-lived
 * `tor --DisableNetwork 1` per test, no network needed, independent of the shared testnet):
 * - a HiddenServiceDir created by tor is read and imported by src/adapters/fs/key-store.ts,
 *   and tor's modes are what we write (directory 0700, files 0600);
 * - a key directory written by torbalance is accepted by tor, which serves the same address
 *   and leaves our secret key untouched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importTorHiddenServiceDir, readKeyDirectory, writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';

const TOR = spawnSync('tor', ['--version'], { encoding: 'utf8' }).status === 0 ? 'tor' : undefined;

let tmp: string;
let child: ChildProcess | undefined;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tb-torkeys-'));
});
afterEach(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
  await rm(tmp, { recursive: true, force: true });
});

/** Start tor offline with one HiddenServiceDir; resolves once `hostname` exists. */
async function runTorUntilHostname(hsDir: string): Promise<string> {
  const dataDir = join(tmp, 'data');
  const torrc = join(tmp, 'torrc');
  await writeFile(torrc, '');
  let log = '';
  child = spawn(
    TOR!,
    [
      '--defaults-torrc', '/dev/null', '-f', torrc,
      '--DataDirectory', dataDir,
      '--DisableNetwork', '1',
      '--SocksPort', '0',
      '--HiddenServiceDir', hsDir,
      '--HiddenServicePort', '80 127.0.0.1:1',
      '--Log', 'notice stdout',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const hostname = join(hsDir, 'hostname');
  const deadline = Date.now() + 30_000;
  while (!existsSync(hostname)) {
    if (child.exitCode !== null) throw new Error(`tor exited early (${child.exitCode}):\n${log}`);
    if (Date.now() > deadline) throw new Error(`tor did not write ${hostname} within 30 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // tor writes the key files before the hostname; give it a moment to finish the write
  await new Promise((r) => setTimeout(r, 300));
  return log;
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe.skipIf(TOR === undefined && process.env['CI'] === undefined)('tor key files (real tor)', () => {
  it('reads and imports a HiddenServiceDir created by tor; tor uses 0700/0600', async () => {
    const hsDir = join(tmp, 'hs');
    await runTorUntilHostname(hsDir);
    expect(await mode(hsDir)).toBe(0o700);
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) expect(await mode(join(hsDir, f))).toBe(0o600);
    const hostname = await readFile(join(hsDir, 'hostname'), 'utf8');
    expect(hostname).toMatch(/^[a-z2-7]{56}\.onion\n$/);

    const loaded = await readKeyDirectory(hsDir);
    expect(loaded.hasPublicKeyFile && loaded.hasHostnameFile).toBe(true);
    expect(`${loaded.keypair.address}\n`).toBe(hostname);

    const dest = join(tmp, 'imported');
    const kp = await importTorHiddenServiceDir(hsDir, dest);
    expect(kp.address).toBe(loaded.keypair.address);
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) {
      expect(await readFile(join(dest, f))).toEqual(await readFile(join(hsDir, f)));
    }
  });

  it('tor accepts a key directory written by torbalance and keeps its address and secret', async () => {
    const hsDir = join(tmp, 'ours');
    const kp = HsIdentityKeypair.generate((n) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
    const paths = await writeKeyDirectory(hsDir, kp);
    const secretBefore = await readFile(paths.secretKey);
    // remove our hostname so that its appearance proves tor loaded the key and wrote it
    await rm(paths.hostname);
    const log = await runTorUntilHostname(hsDir);
    expect(await readFile(paths.hostname, 'utf8')).toBe(`${kp.address}\n`);
    expect(await readFile(paths.secretKey)).toEqual(secretBefore);
    expect(log).not.toMatch(/\[(warn|err)\].*(key|hs_ed25519)/i);
    expect((await readKeyDirectory(hsDir)).keypair.address).toBe(kp.address);
  });
});
