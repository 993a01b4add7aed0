/**
 * src/adapters/fs/key-store.ts against real files in a temp directory: modes 0700/0600, refusal
 * of loose permissions and symlinks, overwrite protection, round trip, consistency checks and
 * import of a tor-format directory.
 */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/core/bytes.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import {
  importTorHiddenServiceDir,
  keyDirectoryPaths,
  readJsonStateFile,
  readKeyDirectory,
  writeKeyDirectory,
} from '../../src/adapters/fs/key-store.js';
import { readNodeSecret } from '../../src/adapters/fs/node-secrets.js';
import { writeClusterSecret } from '../../src/cli/commands/cluster.js';
import { loadVectors } from '../helpers/vectors.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tb-keystore-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function seeded(start: number): (n: number) => Uint8Array {
  let x = start;
  return (n) => Uint8Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 24));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TorbalanceError);
    return (e as TorbalanceError).code;
  }
  throw new Error('expected an error');
}

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('writeKeyDirectory', () => {
  it('creates the directory 0700 and every file 0600, and reads back the same key', async () => {
    const kp = HsIdentityKeypair.generate(seeded(1));
    const dir = join(root, 'a', 'keys');
    const paths = await writeKeyDirectory(dir, kp);
    expect(await modeOf(dir)).toBe(0o700);
    for (const p of [paths.secretKey, paths.publicKey, paths.hostname]) expect(await modeOf(p)).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['hostname', 'hs_ed25519_public_key', 'hs_ed25519_secret_key']);
    expect(await readFile(paths.hostname, 'utf8')).toBe(`${kp.address}\n`);
    expect((await readFile(paths.secretKey)).length).toBe(96);
    expect((await readFile(paths.publicKey)).length).toBe(64);
    const loaded = await readKeyDirectory(dir);
    expect(loaded.keypair.address).toBe(kp.address);
    expect(loaded.keypair.expandedSecretKey).toEqual(kp.expandedSecretKey);
    expect(loaded.hasPublicKeyFile && loaded.hasHostnameFile).toBe(true);
  });

  it('keeps files 0600 and the directory 0700 under a permissive umask', async () => {
    const old = process.umask(0);
    try {
      const dir = join(root, 'umask0');
      const paths = await writeKeyDirectory(dir, HsIdentityKeypair.generate(seeded(2)));
      expect(await modeOf(dir)).toBe(0o700);
      expect(await modeOf(paths.secretKey)).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('refuses an existing loose key directory and leaves its mode alone', async () => {
    const dir = join(root, 'loose');
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    const e = await writeKeyDirectory(dir, HsIdentityKeypair.generate(seeded(3))).then(() => undefined, (x: unknown) => x);
    expect(e).toMatchObject({ code: 'TB_ERR_KEYSTORE_DIR_PERMISSIONS', message: expect.stringContaining(`chmod 700 '${dir}'`) });
    expect(await modeOf(dir)).toBe(0o755);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses to overwrite existing keys unless forced, and leaves no temp files', async () => {
    const dir = join(root, 'k');
    const first = HsIdentityKeypair.generate(seeded(4));
    const second = HsIdentityKeypair.generate(seeded(5));
    await writeKeyDirectory(dir, first);
    expect(await codeOf(writeKeyDirectory(dir, second))).toBe('TB_ERR_KEYSTORE_EXISTS');
    expect((await readKeyDirectory(dir)).keypair.address).toBe(first.address);
    await writeKeyDirectory(dir, second, { force: true });
    expect((await readKeyDirectory(dir)).keypair.address).toBe(second.address);
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);
    // a lone hostname file also blocks
    const dir2 = join(root, 'k2');
    await mkdir(dir2, { mode: 0o700 });
    await writeFile(join(dir2, 'hostname'), 'x');
    expect(await codeOf(writeKeyDirectory(dir2, first))).toBe('TB_ERR_KEYSTORE_EXISTS');
  });

  it('refuses a path that is a file', async () => {
    const f = join(root, 'file');
    await writeFile(f, 'x');
    expect(await codeOf(writeKeyDirectory(f, HsIdentityKeypair.generate(seeded(6))))).toBe('TB_ERR_KEYSTORE_NOT_DIRECTORY');
  });
});

describe('readKeyDirectory refusals', () => {
  async function fresh(name: string): Promise<string> {
    const dir = join(root, name);
    await writeKeyDirectory(dir, HsIdentityKeypair.generate(seeded(7)));
    return dir;
  }

  it('refuses a 0644 secret key file and says what to chmod', async () => {
    const dir = await fresh('p644');
    const { secretKey } = keyDirectoryPaths(dir);
    await chmod(secretKey, 0o644);
    try {
      await readKeyDirectory(dir);
      throw new Error('accepted');
    } catch (e) {
      expect((e as TorbalanceError).code).toBe('TB_ERR_KEYSTORE_FILE_PERMISSIONS');
      expect((e as Error).message).toContain(`chmod 600 '${secretKey}'`);
    }
    await chmod(secretKey, 0o640);
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYSTORE_FILE_PERMISSIONS');
    await chmod(secretKey, 0o400);
    await expect(readKeyDirectory(dir)).resolves.toBeDefined();
  });

  it('refuses a group/world accessible directory and says what to chmod', async () => {
    const dir = await fresh('d755');
    await chmod(dir, 0o755);
    try {
      await readKeyDirectory(dir);
      throw new Error('accepted');
    } catch (e) {
      expect((e as TorbalanceError).code).toBe('TB_ERR_KEYSTORE_DIR_PERMISSIONS');
      expect((e as Error).message).toContain(`chmod 700 '${dir}'`);
    }
    await chmod(dir, 0o710);
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYSTORE_DIR_PERMISSIONS');
  });

  it('refuses a symlinked secret key file even when the target is 0600', async () => {
    const dir = await fresh('sym');
    const { secretKey } = keyDirectoryPaths(dir);
    const target = join(root, 'elsewhere');
    await writeFile(target, await readFile(secretKey), { mode: 0o600 });
    await rm(secretKey);
    await symlink(target, secretKey);
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYSTORE_SYMLINK');
  });

  it('reports a missing directory or secret file', async () => {
    expect(await codeOf(readKeyDirectory(join(root, 'nope')))).toBe('TB_ERR_KEYSTORE_NOT_FOUND');
    const dir = await fresh('nosecret');
    await rm(keyDirectoryPaths(dir).secretKey);
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYSTORE_NOT_FOUND');
  });

  it('refuses a secret file that is a directory', async () => {
    const dir = await fresh('secretdir');
    const { secretKey } = keyDirectoryPaths(dir);
    await rm(secretKey);
    await mkdir(secretKey, { mode: 0o700 });
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYSTORE_NOT_FILE');
  });

  it('rejects oversized or truncated secret files with a DecodeError', async () => {
    const dir = await fresh('size');
    const { secretKey } = keyDirectoryPaths(dir);
    await writeFile(secretKey, new Uint8Array(1 << 20));
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYFILE_LENGTH');
    await writeFile(secretKey, new Uint8Array(95));
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYFILE_LENGTH');
  });

  it('rejects mismatching public key or hostname files', async () => {
    const dir = await fresh('mismatch');
    const other = join(root, 'other');
    await writeKeyDirectory(other, HsIdentityKeypair.generate(seeded(8)));
    const p = keyDirectoryPaths(dir);
    const o = keyDirectoryPaths(other);
    const savedHostname = await readFile(p.hostname);
    await writeFile(p.hostname, await readFile(o.hostname));
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYFILE_MISMATCH');
    await writeFile(p.hostname, savedHostname);
    await writeFile(p.publicKey, await readFile(o.publicKey));
    expect(await codeOf(readKeyDirectory(dir))).toBe('TB_ERR_KEYFILE_MISMATCH');
  });

  it('accepts a directory with only the secret key file', async () => {
    const dir = await fresh('only');
    const p = keyDirectoryPaths(dir);
    await rm(p.publicKey);
    await rm(p.hostname);
    const loaded = await readKeyDirectory(dir);
    expect(loaded.hasPublicKeyFile || loaded.hasHostnameFile).toBe(false);
  });
});

describe('importTorHiddenServiceDir', () => {
  it('imports a tor-format directory (Arti test data files) byte for byte', async () => {
    const v = loadVectors('secret-key-file').vectors.find((x) => x.name === 'arti-tor-keymgr-tor-service')!;
    const src = join(root, 'tor-hs');
    await mkdir(src, { mode: 0o700 });
    await writeFile(join(src, 'hs_ed25519_secret_key'), fromHex(v.inputs['secret_key_file_hex']), { mode: 0o600 });
    await writeFile(join(src, 'hs_ed25519_public_key'), fromHex(v.inputs['public_key_file_hex']), { mode: 0o600 });
    await writeFile(join(src, 'hostname'), v.inputs['hostname_file_text'], { mode: 0o600 });
    const dest = join(root, 'imported');
    const kp = await importTorHiddenServiceDir(src, dest);
    expect(kp.address).toBe(v.expected['onion_address']);
    for (const name of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) {
      expect(toHex(await readFile(join(dest, name)))).toBe(toHex(await readFile(join(src, name))));
      expect(await modeOf(join(dest, name))).toBe(0o600);
    }
    expect(await modeOf(dest)).toBe(0o700);
    expect(await codeOf(importTorHiddenServiceDir(src, dest))).toBe('TB_ERR_KEYSTORE_EXISTS');
  });
});

describe('writing a secret file into a directory (torbalance cluster secret --out)', () => {
  const fullMode = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;

  it('refuses a directory others can write (1777 like /tmp, 0775, 0757) without touching its mode', async () => {
    for (const mode of [0o1777, 0o775, 0o757]) {
      const dir = join(root, `shared-${mode.toString(8)}`);
      await mkdir(dir);
      await chmod(dir, mode);
      const e = await writeClusterSecret(join(dir, 'cs')).then(() => undefined, (x: unknown) => x);
      expect(e, mode.toString(8)).toMatchObject({ code: 'TB_ERR_KEYSTORE_DIR_PERMISSIONS', message: expect.stringContaining(`refusing to write a secret into ${dir}`) });
      expect(await fullMode(dir), mode.toString(8)).toBe(mode);
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('writes a 0600 file into an existing 0755 directory and leaves the directory 0755', async () => {
    // Owned by this user (root when the tests run as root: the "root-owned /etc/…" case).
    const dir = join(root, 'etc');
    await mkdir(dir);
    await chmod(dir, 0o755);
    const p = await writeClusterSecret(join(dir, 'cs'));
    expect(await modeOf(p)).toBe(0o600);
    expect(await fullMode(dir)).toBe(0o755);
  });

  it('creates missing directories 0700 (only those)', async () => {
    await chmod(root, 0o755);
    const p = await writeClusterSecret(join(root, 'a', 'b', 'cs'));
    expect(await modeOf(join(root, 'a'))).toBe(0o700);
    expect(await modeOf(join(root, 'a', 'b'))).toBe(0o700);
    expect(await fullMode(root)).toBe(0o755);
    expect((await readNodeSecret('cluster-secret', p)).length).toBe(32);
  });
});

describe('readJsonStateFile', () => {
  const opts = { maxBytes: 64, ioCode: 'TB_ERR_TEST_IO', invalid: (why: string) => new Error(`invalid: ${why}`) };

  it('is undefined for a missing file and the parsed JSON for a present one', async () => {
    expect(await readJsonStateFile(join(root, 'missing.json'), opts)).toBeUndefined();
    await writeFile(join(root, 'a.json'), '{"entries":[1,2]}');
    expect(await readJsonStateFile(join(root, 'a.json'), opts)).toEqual({ entries: [1, 2] });
  });

  it('refuses a file over the bound, not JSON, invalid UTF-8, a directory, and does not follow a symlink', async () => {
    await writeFile(join(root, 'big.json'), JSON.stringify({ x: 'y'.repeat(64) }));
    await expect(readJsonStateFile(join(root, 'big.json'), opts)).rejects.toThrow('invalid: larger than 64 bytes');
    await writeFile(join(root, 'bad.json'), '{"a":');
    await expect(readJsonStateFile(join(root, 'bad.json'), opts)).rejects.toThrow('invalid: not JSON');
    await writeFile(join(root, 'utf8.json'), Buffer.from([0x22, 0xff, 0x22]));
    await expect(readJsonStateFile(join(root, 'utf8.json'), opts)).rejects.toThrow('invalid: not JSON');
    await mkdir(join(root, 'dir.json'));
    await expect(readJsonStateFile(join(root, 'dir.json'), opts)).rejects.toThrow('invalid: not a regular file');
    await writeFile(join(root, 'real.json'), '{}');
    await symlink(join(root, 'real.json'), join(root, 'link.json'));
    const err = await readJsonStateFile(join(root, 'link.json'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorbalanceError);
    expect((err as TorbalanceError).code).toBe('TB_ERR_TEST_IO');
  });
});
