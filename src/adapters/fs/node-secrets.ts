/**
 * The two secret files of a cluster node:
 * - `node_key`: the node's ed25519 key as its 32-byte seed (nodeId and public key derive
 *   from it), and
 * - `cluster_secret`: 32 random bytes shared by every node of the cluster (admits nodes to
 *   the mesh: the MAC key derives from it).
 *
 * File format (ours; text so an operator can copy it with a terminal):
 *
 *     torbalance-node-key-v1 <base64 of 32 bytes, padded>\n
 *     torbalance-cluster-secret-v1 <base64 of 32 bytes, padded>\n
 *
 * Permissions and atomic writes are those of the key store (src/adapters/fs/key-store.ts,
 * reused, not duplicated): the directory is created 0700 (an existing one tightened), files
 * are written 0600 from creation through a temp file + fsync + rename, reads refuse a
 * directory or file that others can access, a symlinked file, or a directory owned by
 * someone else, and reads are size-bounded.
 *
 * Errors: the key store's TB_ERR_KEYSTORE_* codes (not found, permissions, symlink, exists,
 * I/O), and DecodeError TB_ERR_NODE_SECRET_FORMAT for a file that is not in the format
 * above. Messages name paths, never secret bytes.
 */
import { basename, dirname } from 'node:path';
import { fromBase64, fromUtf8, toBase64, utf8 } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import type { RandomBytes } from '../../core/random.js';
import {
  checkDirectoryForRead,
  ensurePrivateDirectory,
  exists as pathExists,
  readKeyFile,
  syncDirectory,
  writeFileAtomic,
} from './key-store.js';

/** Default file name of the node key inside the node's data dir. */
export const NODE_KEY_FILE_NAME = 'node_key';
/** Default file name of the cluster secret inside the node's data dir. */
export const CLUSTER_SECRET_FILE_NAME = 'cluster_secret';
/** Length of the node key seed and of the cluster secret. */
export const NODE_SECRET_BYTES = 32;

/** Which secret a file holds. */
export type NodeSecretKind = 'node-key' | 'cluster-secret';

const HEADERS: Readonly<Record<NodeSecretKind, string>> = {
  'node-key': 'torbalance-node-key-v1',
  'cluster-secret': 'torbalance-cluster-secret-v1',
};

/** Encode a 32-byte secret as the file content of `kind`. */
export function encodeNodeSecretFile(kind: NodeSecretKind, secret: Uint8Array): Uint8Array {
  if (secret.length !== NODE_SECRET_BYTES) {
    throw new TorbalanceError('TB_ERR_BUG', 'internal', `a ${kind} must be ${NODE_SECRET_BYTES} bytes`);
  }
  return utf8(`${HEADERS[kind]} ${toBase64(secret)}\n`);
}

/** Decode the file content of `kind` (exact header, canonical base64 of 32 bytes, optional final newline). */
export function decodeNodeSecretFile(kind: NodeSecretKind, data: Uint8Array, path: string = kind): Uint8Array {
  const bad = (why: string): DecodeError => new DecodeError('TB_ERR_NODE_SECRET_FORMAT', `${path} is not a torbalance ${kind} file: ${why}`);
  if (data.length > 256) throw bad('too large');
  let text: string;
  try {
    text = fromUtf8(data);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    throw bad('not UTF-8 text');
  }
  const m = /^([a-z0-9-]+) ([A-Za-z0-9+/]{43}=)\n?$/.exec(text);
  if (m === null) throw bad(`expected one line "${HEADERS[kind]} <base64>"`);
  if (m[1] !== HEADERS[kind]) throw bad(`wrong header (expected ${HEADERS[kind]})`);
  let secret: Uint8Array;
  try {
    secret = fromBase64(m[2]!);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    throw bad('invalid base64');
  }
  if (secret.length !== NODE_SECRET_BYTES || toBase64(secret) !== m[2]) throw bad('not a canonical 32-byte value');
  return secret;
}

/**
 * Read the secret of `kind` from `path`, checking the directory and file permissions.
 * Throws TB_ERR_KEYSTORE_NOT_FOUND if missing.
 */
export async function readNodeSecret(kind: NodeSecretKind, path: string): Promise<Uint8Array> {
  await checkDirectoryForRead(dirname(path));
  const data = (await readKeyFile(path, { secret: true, optional: false }))!;
  try {
    return decodeNodeSecretFile(kind, data, path);
  } finally {
    data.fill(0);
  }
}

/** Write `secret` to `path` (dir 0700, file 0600, atomic). Refuses to overwrite unless `force` (TB_ERR_KEYSTORE_EXISTS). */
export async function writeNodeSecret(kind: NodeSecretKind, path: string, secret: Uint8Array, options: { force?: boolean } = {}): Promise<void> {
  const dir = dirname(path);
  if (basename(path) === '' || basename(path) === '.' || basename(path) === '..') {
    throw new TorbalanceError('TB_ERR_KEYSTORE_IO', 'config', `${path} is not a file path`);
  }
  await ensurePrivateDirectory(dir);
  if (options.force !== true && (await pathExists(path))) {
    throw new TorbalanceError('TB_ERR_KEYSTORE_EXISTS', 'config', `${path} already exists; refusing to overwrite a secret (use --force to replace it)`);
  }
  const data = encodeNodeSecretFile(kind, secret);
  try {
    await writeFileAtomic(dir, path, data);
  } finally {
    data.fill(0);
  }
  await syncDirectory(dir);
}

/**
 * Read the secret of `kind` at `path`, or create it with fresh random bytes when the file
 * does not exist. Returns the secret and whether it was created.
 */
export async function loadOrCreateNodeSecret(
  kind: NodeSecretKind,
  path: string,
  randomBytes: RandomBytes,
): Promise<{ secret: Uint8Array; created: boolean }> {
  const dir = dirname(path);
  await ensurePrivateDirectory(dir);
  if (await pathExists(path)) return { secret: await readNodeSecret(kind, path), created: false };
  const secret = randomBytes(NODE_SECRET_BYTES);
  await writeNodeSecret(kind, path, secret);
  return { secret, created: true };
}
