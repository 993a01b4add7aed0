/**
 * torbalance's own version, read from its package.json: the nearest `package.json` named
 * `torbalance` above this module. That is the checkout's root both when this file runs from
 * `src/` (tsx, vitest) and when it runs compiled from `dist/src/` (an installed package keeps
 * package.json beside `dist/`), so there is one place to bump the version.
 */
import { isErrno } from './errno.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TorbalanceError } from '../../core/errors.js';

/** How many directories above this module to look (src/adapters/system or dist/src/adapters/system). */
const MAX_LEVELS = 6;

let cached: string | undefined;

/** Find and read the version (exported for tests: `from` is the directory to start in). */
export function readPackageVersion(from: string): string {
  let dir = from;
  for (let i = 0; i <= MAX_LEVELS; i++) {
    let text: string | undefined;
    try {
      text = readFileSync(join(dir, 'package.json'), 'utf8');
    } catch (e) {
      if (!isErrno(e, 'ENOENT', 'ENOTDIR', 'EACCES')) throw e;
      text = undefined; // none here: look further up
    }
    if (text !== undefined) {
      let pkg: unknown;
      try {
        pkg = JSON.parse(text);
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        pkg = undefined; // not ours
      }
      if (typeof pkg === 'object' && pkg !== null && (pkg as { name?: unknown }).name === 'torbalance') {
        const version = (pkg as { version?: unknown }).version;
        if (typeof version !== 'string' || version === '') break;
        return version;
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new TorbalanceError('TB_ERR_PACKAGE_VERSION', 'internal', `no package.json of torbalance with a version above ${from}`);
}

/** torbalance's version (e.g. `0.1.0`), read once. */
export function torbalanceVersion(): string {
  cached ??= readPackageVersion(dirname(fileURLToPath(import.meta.url)));
  return cached;
}
