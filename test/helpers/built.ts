/**
 * Tests that run the built binary (`bin/torbalance.js` imports `dist/src/cli/main.js`) need
 * `dist/`, which `npm test` builds first (scripts/ensure-deps.sh). Without it they must fail,
 * naming the fix — a skipped test would report the suite green without having run them.
 * They do not build it themselves: other test processes may be running the binary from
 * `dist/` at the same time, and tsc rewrites every file it emits.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

/** Throws unless each of `files` (paths under the repository root) exists. */
export function requireBuilt(...files: readonly string[]): void {
  const missing = (files.length === 0 ? ['dist/src/cli/main.js'] : files).filter((f) => !existsSync(join(REPO_ROOT, f)));
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} missing: build with \`npx tsc -p tsconfig.build.json\` (npm test builds before it tests)`);
  }
}
