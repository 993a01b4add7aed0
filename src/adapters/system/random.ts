/**
 * The system's randomness, for injecting into core (`RandomBytes`). Uses the Web Crypto
 * global (`crypto.getRandomValues`, the OS CSPRNG) so that no module outside src/core/crypto
 * imports a crypto library.
 */
import type { RandomBytes } from '../../core/random.js';

const MAX_CHUNK = 65536; // getRandomValues' per-call limit

export const systemRandomBytes: RandomBytes = (n: number): Uint8Array => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('invalid random length');
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += MAX_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(off, Math.min(n, off + MAX_CHUNK)));
  }
  return out;
};
