/**
 * The admin API's bearer secret (`admin.secret_file`; docs/SECURITY.md, "Admin API"): one line
 * in a 0600 file, read with the key store's checks (no symlink, not readable by others, in a
 * 0700 directory of the node's user). Over a TCP listen address the node requires it for
 * privileged routes and the CLI sends it as `Authorization: Bearer <secret>`.
 *
 * Format: 32–512 characters of RFC 6750's `b64token` alphabet (letters, digits, `-._~+/`,
 * trailing `=`), optionally followed by one newline — e.g. `openssl rand -hex 32`. Error
 * messages name the file, never its content.
 */
import { dirname } from 'node:path';
import { TorbalanceError } from '../../core/errors.js';
import { checkDirectoryForRead, readKeyFile } from '../fs/key-store.js';

/** Shortest accepted secret (32 hex characters: 128 bits). */
export const MIN_ADMIN_SECRET_CHARS = 32;
/** Longest accepted secret. */
export const MAX_ADMIN_SECRET_CHARS = 512;

const B64TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Read and check the bearer secret at `path`. Throws TB_ERR_KEYSTORE_* (file checks) or TB_ERR_ADMIN_SECRET (content). */
export async function readAdminSecret(path: string): Promise<Uint8Array> {
  await checkDirectoryForRead(dirname(path));
  const data = (await readKeyFile(path, { secret: true, optional: false }))!;
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--;
  if (end > 0 && data[end - 1] === 0x0d) end--;
  const secret = data.slice(0, end);
  data.fill(0);
  let ok = secret.length >= MIN_ADMIN_SECRET_CHARS && secret.length <= MAX_ADMIN_SECRET_CHARS;
  if (ok) {
    const text = String.fromCharCode(...secret);
    ok = B64TOKEN_RE.test(text);
  }
  if (!ok) {
    secret.fill(0);
    throw new TorbalanceError(
      'TB_ERR_ADMIN_SECRET',
      'config',
      `admin secret file ${path}: expected one line of ${MIN_ADMIN_SECRET_CHARS}–${MAX_ADMIN_SECRET_CHARS} characters (letters, digits, "-._~+/", trailing "="), e.g. written by: umask 077; openssl rand -hex 32 > '${path}'`,
    );
  }
  return secret;
}
