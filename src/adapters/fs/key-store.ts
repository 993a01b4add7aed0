/**
 * A key directory laid out like tor's HiddenServiceDir: `hs_ed25519_secret_key`,
 * `hs_ed25519_public_key` and `hostname` (formats in src/core/hs/keys.ts).
 *
 * Permissions follow tor (`check_private_dir` with CPD_CREATE: directory 0700;
 * `write_chunks_to_file` / `write_str_to_file`: files 0600):
 * - writing creates the directory 0700 (tightening an existing one, as tor does) and each file
 *   through a temp file opened `O_CREAT|O_EXCL|O_NOFOLLOW` with mode 0600 from the start, then
 *   fsync + rename, so the secret is never readable by others, not even briefly;
 * - reading refuses a directory or secret file that is group/world accessible (telling the
 *   operator what to chmod), a directory owned by another user (unless running as root), and
 *   key files that are symlinks (`O_NOFOLLOW`). Reads are size-bounded.
 *
 * Errors are TorbalanceError (kind `config`) with TB_ERR_KEYSTORE_* codes, or the DecodeError
 * of the file parsers. Messages name paths, never key bytes.
 */
import { constants, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fromUtf8 } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { errnoCode } from '../system/errno.js';
import {
  HOSTNAME_FILE_NAME,
  PUBLIC_KEY_FILE_NAME,
  SECRET_KEY_FILE_NAME,
  encodeTorKeyFiles,
  identityFromTorKeyFiles,
  type HsIdentityKeypair,
} from '../../core/hs/keys.js';

/** Mode of a key directory (tor's `check_private_dir` with CPD_CREATE). */
export const KEY_DIR_MODE = 0o700;
/** Mode of every key file (tor's `write_chunks_to_file`). */
export const KEY_FILE_MODE = 0o600;
/** Largest key-directory file read (the real ones are at most 96 bytes). */
const MAX_READ = 4096;

/** Paths of the three files in a key directory. */
export interface KeyDirectoryPaths {
  readonly dir: string;
  readonly secretKey: string;
  readonly publicKey: string;
  readonly hostname: string;
}

/** The file paths of key directory `dir`. */
export function keyDirectoryPaths(dir: string): KeyDirectoryPaths {
  return {
    dir,
    secretKey: join(dir, SECRET_KEY_FILE_NAME),
    publicKey: join(dir, PUBLIC_KEY_FILE_NAME),
    hostname: join(dir, HOSTNAME_FILE_NAME),
  };
}

function ioError(what: string, path: string, cause: unknown): TorbalanceError {
  return new TorbalanceError('TB_ERR_KEYSTORE_IO', 'config', `cannot ${what} ${path}: ${errnoCode(cause) ?? String(cause)}`, { cause });
}

function mode(st: Stats): string {
  return (st.mode & 0o777).toString(8).padStart(3, '0');
}

function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/** Check the directory of a key store before reading. */
export async function checkDirectoryForRead(dir: string): Promise<void> {
  let st: Stats;
  try {
    st = await stat(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new TorbalanceError('TB_ERR_KEYSTORE_NOT_FOUND', 'config', `key directory ${dir} does not exist`);
    throw ioError('stat', dir, e);
  }
  if (!st.isDirectory()) throw new TorbalanceError('TB_ERR_KEYSTORE_NOT_DIRECTORY', 'config', `${dir} is not a directory`);
  const uid = currentUid();
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    throw new TorbalanceError('TB_ERR_KEYSTORE_OWNER', 'config', `key directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid})`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new TorbalanceError(
      'TB_ERR_KEYSTORE_DIR_PERMISSIONS',
      'config',
      `key directory ${dir} has mode ${mode(st)}, which lets other users in; run: chmod 700 '${dir}'`,
    );
  }
}

/**
 * Read one key-directory file without following symlinks, bounded to MAX_READ bytes. Returns
 * undefined if it does not exist and `optional`. With `secret`, refuses group/world access.
 */
/**
 * Read at most `max` bytes from an open file (a larger file shows as exactly `max` bytes, so
 * callers can reject it without reading it all). The scratch buffer is wiped: key files and
 * cookies are secrets.
 */
export async function readAtMost(fh: FileHandle, max: number): Promise<Uint8Array> {
  const buf = new Uint8Array(max);
  let n = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
    if (bytesRead === 0) break;
    n += bytesRead;
    if (n === buf.length) break;
  }
  const out = buf.slice(0, n);
  buf.fill(0);
  return out;
}

/** How {@link readJsonStateFile} names its errors. */
export interface JsonStateFileOptions {
  /** Largest file accepted, in bytes. */
  readonly maxBytes: number;
  /** TorbalanceError code of an open/read failure. */
  readonly ioCode: string;
  /** The error for a file that is there but is not what it should be (not regular, too large, not JSON). */
  readonly invalid: (why: string) => Error;
}

/**
 * Read a node's JSON state file (the join ledger, the node allowlist): `undefined` when it does
 * not exist, else its parsed JSON (unvalidated). Symbolic links are not followed; at most
 * `maxBytes` are read.
 */
export async function readJsonStateFile(path: string, o: JsonStateFileOptions): Promise<unknown> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new TorbalanceError(o.ioCode, 'config', `cannot open ${path}: ${errnoCode(e) ?? String(e)}`, { cause: e });
  }
  let data: Uint8Array;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw o.invalid('not a regular file');
    data = await readAtMost(fh, o.maxBytes + 1);
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw new TorbalanceError(o.ioCode, 'config', `cannot read ${path}: ${errnoCode(e) ?? String(e)}`, { cause: e });
  } finally {
    await fh.close();
  }
  if (data.length > o.maxBytes) throw o.invalid(`larger than ${o.maxBytes} bytes`);
  try {
    return JSON.parse(fromUtf8(data)) as unknown;
  } catch (e) {
    if (!(e instanceof DecodeError || e instanceof SyntaxError)) throw e;
    throw o.invalid('not JSON');
  }
}

export async function readKeyFile(path: string, opts: { secret: boolean; optional: boolean }): Promise<Uint8Array | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') {
      if (opts.optional) return undefined;
      throw new TorbalanceError('TB_ERR_KEYSTORE_NOT_FOUND', 'config', `key file ${path} does not exist`);
    }
    if (code === 'ELOOP' || code === 'EMLINK') {
      throw new TorbalanceError('TB_ERR_KEYSTORE_SYMLINK', 'config', `key file ${path} is a symbolic link; refusing to follow it (replace it with the real file)`);
    }
    throw ioError('open', path, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new TorbalanceError('TB_ERR_KEYSTORE_NOT_FILE', 'config', `key file ${path} is not a regular file`);
    if (opts.secret && (st.mode & 0o077) !== 0) {
      throw new TorbalanceError(
        'TB_ERR_KEYSTORE_FILE_PERMISSIONS',
        'config',
        `secret key file ${path} has mode ${mode(st)}, readable by other users; run: chmod 600 '${path}' (and consider the key compromised if others could read it)`,
      );
    }
    return await readAtMost(fh, MAX_READ + 1);
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw ioError('read', path, e);
  } finally {
    await fh.close();
  }
}

/** What {@link readKeyDirectory} found. */
export interface LoadedKeyDirectory {
  readonly keypair: HsIdentityKeypair;
  readonly paths: KeyDirectoryPaths;
  /** Whether the optional public-key and hostname files were present (and checked). */
  readonly hasPublicKeyFile: boolean;
  readonly hasHostnameFile: boolean;
}

/**
 * Load the identity key from a tor-format key directory, checking permissions and that the
 * public-key and hostname files (if present) agree with the secret key
 * (TB_ERR_KEYFILE_MISMATCH otherwise).
 */
export async function readKeyDirectory(dir: string): Promise<LoadedKeyDirectory> {
  const paths = keyDirectoryPaths(dir);
  await checkDirectoryForRead(dir);
  const secretKeyFile = (await readKeyFile(paths.secretKey, { secret: true, optional: false }))!;
  const publicKeyFile = await readKeyFile(paths.publicKey, { secret: false, optional: true });
  const hostnameFile = await readKeyFile(paths.hostname, { secret: false, optional: true });
  try {
    const keypair = identityFromTorKeyFiles({ secretKeyFile, publicKeyFile, hostnameFile });
    return { keypair, paths, hasPublicKeyFile: publicKeyFile !== undefined, hasHostnameFile: hostnameFile !== undefined };
  } finally {
    secretKeyFile.fill(0);
  }
}

/** Options of {@link writeKeyDirectory}. */
export interface WriteKeyDirectoryOptions {
  /** Replace existing key files (default: refuse with TB_ERR_KEYSTORE_EXISTS). */
  readonly force?: boolean;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw ioError('stat', path, e);
  }
}

/** Options of {@link ensurePrivateDirectory}. */
export interface EnsurePrivateDirectoryOptions {
  /**
   * `dir` is a key directory (tor's HiddenServiceDir format): an existing one must also be
   * closed to group and others (0700), as {@link readKeyDirectory} and tor require.
   */
  readonly keyDirectory?: boolean;
}

function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Make sure `dir` exists to hold a secret file. Directories this creates (and only those) are
 * made 0700; an existing directory keeps its mode — it may be a shared one such as /tmp or a
 * root-owned 0755 /etc/… — but a secret is never written into one its group or others can
 * write (they could create or replace names in it, sticky bit or not):
 * TB_ERR_KEYSTORE_DIR_PERMISSIONS. An existing directory must belong to this user or to root
 * (TB_ERR_KEYSTORE_OWNER).
 */
export async function ensurePrivateDirectory(dir: string, options: EnsurePrivateDirectoryOptions = {}): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true, mode: KEY_DIR_MODE });
  } catch (e) {
    if (errnoCode(e) === 'EEXIST' || errnoCode(e) === 'ENOTDIR') throw new TorbalanceError('TB_ERR_KEYSTORE_NOT_DIRECTORY', 'config', `${dir} exists and is not a directory`);
    throw ioError('create directory', dir, e);
  }
  let st: Stats;
  try {
    st = await stat(dir);
  } catch (e) {
    throw ioError('stat', dir, e);
  }
  if (!st.isDirectory()) throw new TorbalanceError('TB_ERR_KEYSTORE_NOT_DIRECTORY', 'config', `${dir} is not a directory`);
  if (created !== undefined) {
    // Ours: 0700 whatever the umask left.
    if ((st.mode & 0o777) !== KEY_DIR_MODE) {
      try {
        await chmod(dir, KEY_DIR_MODE);
      } catch (e) {
        throw ioError('chmod 700', dir, e);
      }
    }
    return;
  }
  const uid = currentUid();
  if (uid !== undefined && uid !== 0 && st.uid !== uid && st.uid !== 0) {
    throw new TorbalanceError('TB_ERR_KEYSTORE_OWNER', 'config', `directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}) or root`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new TorbalanceError(
      'TB_ERR_KEYSTORE_DIR_PERMISSIONS',
      'config',
      `refusing to write a secret into ${dir}: ${(st.mode & 0o002) !== 0 ? 'everyone' : 'its group'} can write there (mode ${octalMode(st.mode)}); choose a directory only its owner can write (e.g. a new one: the tool creates it 0700)`,
    );
  }
  if (options.keyDirectory === true && (st.mode & 0o077) !== 0) {
    throw new TorbalanceError(
      'TB_ERR_KEYSTORE_DIR_PERMISSIONS',
      'config',
      `key directory ${dir} is accessible by group or others (mode ${octalMode(st.mode)}); tor needs it private: run chmod 700 '${dir}'`,
    );
  }
}

let tmpCounter = 0;

/** Write `data` to `path` atomically: temp file (0600 from creation), fsync, rename, fsync dir. */
export async function writeFileAtomic(dir: string, path: string, data: Uint8Array): Promise<void> {
  const tmp = join(dir, `.torbalance-tmp-${process.pid}-${Date.now()}-${tmpCounter++}`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, KEY_FILE_MODE);
    await fh.chmod(KEY_FILE_MODE);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    if (fh !== undefined) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw ioError('write', path, e);
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch (_ignored) {
    // fsync of a directory is not supported everywhere (and fails differently on each); the files themselves were synced.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Write `keypair` as tor's three key files into `dir` (created 0700; files 0600). Refuses with
 * TB_ERR_KEYSTORE_EXISTS if any of the files exists, unless `force`, and an existing `dir`
 * that is not private (TB_ERR_KEYSTORE_DIR_PERMISSIONS: its mode is not changed).
 */
export async function writeKeyDirectory(dir: string, keypair: HsIdentityKeypair, options: WriteKeyDirectoryOptions = {}): Promise<KeyDirectoryPaths> {
  const paths = keyDirectoryPaths(dir);
  await ensurePrivateDirectory(dir, { keyDirectory: true });
  if (options.force !== true) {
    for (const p of [paths.secretKey, paths.publicKey, paths.hostname]) {
      if (await exists(p)) {
        throw new TorbalanceError('TB_ERR_KEYSTORE_EXISTS', 'config', `${p} already exists; refusing to overwrite a key (use --force to replace it)`);
      }
    }
  }
  const files = encodeTorKeyFiles(keypair);
  try {
    await writeFileAtomic(dir, paths.secretKey, files.secretKeyFile);
  } finally {
    files.secretKeyFile.fill(0);
  }
  await writeFileAtomic(dir, paths.publicKey, files.publicKeyFile);
  await writeFileAtomic(dir, paths.hostname, files.hostnameFile);
  await syncDirectory(dir);
  return paths;
}

/**
 * Import the key of an existing tor HiddenServiceDir `torDir` into key directory `dest`
 * (same format). The source is checked like any key directory (permissions, symlinks,
 * consistency of its three files).
 */
export async function importTorHiddenServiceDir(torDir: string, dest: string, options: WriteKeyDirectoryOptions = {}): Promise<HsIdentityKeypair> {
  const { keypair } = await readKeyDirectory(torDir);
  await writeKeyDirectory(dest, keypair, options);
  return keypair;
}
