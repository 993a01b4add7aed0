/**
 * Test-side bridge to test/interop/stem_descriptor.py (stem 1.8.1 + python3-cryptography from
 * Debian, run with /usr/bin/python3, never the pyenv python on PATH), plus a seeded random
 * source for reproducible descriptors.
 *
 * `stemAvailable()` says whether the interpreter can import stem; the cross-check test skips
 * without it only outside CI (in CI, where scripts/ensure-deps.sh installs python3-stem, it
 * must fail instead).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { concatBytes } from '../../src/core/bytes.js';
import type { RandomBytes } from '../../src/core/random.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const STEM_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'stem_descriptor.py');

/** True if /usr/bin/python3 can import stem's descriptor module and cryptography. */
export function stemAvailable(): boolean {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import stem.descriptor.hidden_service, cryptography.hazmat.primitives.asymmetric.ed25519'], {
    timeout: 30_000,
  });
  return r.status === 0;
}

/** Run a batch of requests through the stem script; returns its responses in order. */
export function runStem(requests: readonly Record<string, unknown>[]): Record<string, any>[] {
  const r = spawnSync(SYSTEM_PYTHON, [STEM_SCRIPT], {
    input: JSON.stringify(requests),
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`stem script failed (status ${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Record<string, any>[];
  if (out.length !== requests.length) throw new Error('stem script returned the wrong number of responses');
  return out;
}

/** Deterministic random bytes: SHA-256(seed/counter) blocks. */
export function seededRandom(seed: string): RandomBytes {
  let counter = 0;
  let pool: Uint8Array = new Uint8Array(0);
  return (n: number) => {
    while (pool.length < n) {
      pool = concatBytes(pool, new Uint8Array(createHash('sha256').update(`${seed}/${counter++}`).digest()));
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}
