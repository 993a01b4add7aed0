/**
 * The crypto wrapper's own properties (its primitives are also pinned by every vector file):
 * the OpenSSL seed signer equals the expanded-key signer byte for byte, and verification is
 * strict RFC 8032 (non-canonical S rejected, wrong lengths rejected, never throws).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bigintToLe, ED25519_L, ed25519ExpandSeed, ed25519PublicFromExpanded, ed25519SignExpanded, ed25519SignSeed, ed25519Verify, leToBigint } from '../../src/core/crypto/index.js';

describe('ed25519', () => {
  it('seed signer (OpenSSL) equals expanded-key signer (noble) and verifies', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (seed, msg) => {
        const e = ed25519ExpandSeed(seed);
        const pub = ed25519PublicFromExpanded(e);
        const a = ed25519SignSeed(seed, msg, pub);
        expect(a).toEqual(ed25519SignExpanded(e, msg, pub));
        expect(ed25519Verify(a, msg, pub)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects a signature whose S is not reduced (S + ℓ), a flipped bit, and bad lengths', () => {
    const seed = new Uint8Array(32).fill(9);
    const e = ed25519ExpandSeed(seed);
    const pub = ed25519PublicFromExpanded(e);
    const msg = new Uint8Array([1, 2, 3]);
    const sig = ed25519SignExpanded(e, msg, pub);
    const s = leToBigint(sig.subarray(32));
    const malleable = new Uint8Array(sig);
    malleable.set(bigintToLe(s + ED25519_L, 32), 32);
    expect(ed25519Verify(malleable, msg, pub)).toBe(false);
    const flipped = new Uint8Array(sig);
    flipped[5] = (flipped[5] as number) ^ 1;
    expect(ed25519Verify(flipped, msg, pub)).toBe(false);
    expect(ed25519Verify(sig.subarray(0, 63), msg, pub)).toBe(false);
    expect(ed25519Verify(sig, msg, pub.subarray(0, 31))).toBe(false);
    expect(ed25519Verify(sig, msg, new Uint8Array(32).fill(0xff))).toBe(false);
  });
});
