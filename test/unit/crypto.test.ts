/**
 * The crypto wrapper's own properties (its primitives are also pinned by every vector file):
 * the OpenSSL seed signer equals the expanded-key signer byte for byte, and verification is
 * strict RFC 8032 (non-canonical S rejected, wrong lengths rejected, never throws). The
 * OpenSSL shortcuts (public keys from seeds, x25519 public keys, the blinded public key as a
 * base-point multiple) equal the plain computations they replace.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { x25519 } from '@noble/curves/ed25519.js';
import {
  bigintToLe,
  ED25519_L,
  ED25519_P,
  ed25519ExpandSeed,
  ed25519FromCurve25519,
  ed25519PointMul,
  ed25519PublicFromExpanded,
  ed25519PublicFromSeed,
  ed25519SignExpanded,
  ed25519SignSeed,
  ed25519Verify,
  leToBigint,
  x25519PublicKey,
} from '../../src/core/crypto/index.js';
import { blindingParam, blindKeypair, clampBlindingParam } from '../../src/core/hs/blinding.js';

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

describe('OpenSSL shortcuts equal the plain computations', () => {
  const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

  it('ed25519PublicFromSeed equals a·B of the expanded seed, and signing with the same array still matches', () => {
    fc.assert(
      fc.property(bytes32, fc.uint8Array({ maxLength: 100 }), (seed, msg) => {
        const e = ed25519ExpandSeed(seed);
        const pub = ed25519PublicFromSeed(seed);
        expect(pub).toEqual(ed25519PublicFromExpanded(e));
        expect(ed25519SignSeed(seed, msg, pub)).toEqual(ed25519SignExpanded(e, msg, pub));
      }),
      { numRuns: 100 },
    );
  });

  it('a seed array changed in place signs with its new value (the cached key is not reused)', () => {
    const seed = new Uint8Array(32).fill(1);
    const msg = new Uint8Array([7]);
    const first = ed25519SignSeed(seed, msg, ed25519PublicFromSeed(seed));
    seed.fill(2);
    const e = ed25519ExpandSeed(seed);
    const pub = ed25519PublicFromExpanded(e);
    const second = ed25519SignSeed(seed, msg, pub);
    expect(second).not.toEqual(first);
    expect(second).toEqual(ed25519SignExpanded(e, msg, pub));
    expect(ed25519PublicFromSeed(seed)).toEqual(pub);
  });

  it('x25519PublicKey (OpenSSL) equals @noble x25519 for any 32 bytes', () => {
    fc.assert(
      fc.property(bytes32, (k) => {
        expect(x25519PublicKey(k)).toEqual(x25519.getPublicKey(k));
      }),
      { numRuns: 200 },
    );
    expect(() => x25519PublicKey(new Uint8Array(31))).toThrow(RangeError);
  });

  it('ed25519FromCurve25519 equals y = (u − 1)·(u + 1)^(p−2) mod p', () => {
    const p = ED25519_P;
    const pow = (b: bigint, e: bigint): bigint => {
      let r = 1n;
      let x = b % p;
      for (let k = e; k > 0n; k >>= 1n) {
        if (k & 1n) r = (r * x) % p;
        x = (x * x) % p;
      }
      return r;
    };
    fc.assert(
      fc.property(bytes32, fc.constantFrom(0 as const, 1 as const), (u, sign) => {
        const uv = (leToBigint(u) & ((1n << 255n) - 1n)) % p;
        fc.pre((uv + 1n) % p !== 0n);
        const y = ((((uv - 1n) % p) + p) % p) * pow(uv + 1n, p - 2n) % p;
        const expected = bigintToLe(y, 32);
        expected[31] = ((expected[31] as number) & 0x7f) | (sign << 7);
        expect(ed25519FromCurve25519(u, sign)).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it("blindKeypair's public key a'·B equals clamp(h)·A", () => {
    fc.assert(
      fc.property(bytes32, fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(1440, 30, 8), (seed, tp, len) => {
        const e = ed25519ExpandSeed(seed);
        const pub = ed25519PublicFromExpanded(e);
        const kp = blindKeypair(e, tp, len);
        expect(kp.publicKey).toEqual(ed25519PointMul(pub, clampBlindingParam(blindingParam(pub, tp, len))));
        expect(kp.publicKey).toEqual(ed25519PublicFromExpanded(kp.expandedSecretKey));
      }),
      { numRuns: 30 },
    );
  });
});
