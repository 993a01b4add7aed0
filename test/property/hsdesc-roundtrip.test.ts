/**
 * Property tests for v3 descriptors:
 * - random intro points (1–20; IPv4, legacy id, optional ed25519 id, optional IPv6, optional
 *   unknown specifier; random keys; optional legacy RSA key) → buildDescriptor →
 *   decodeDescriptor gives back the same intro points;
 * - flipping any byte of the outer text is caught (typed error) or leaves the decoded content
 *   unchanged; flipping any byte of the middle-layer blob (re-signed) is caught by the
 *   superencrypted MAC; flipping any byte of the inner-layer blob (re-encrypted, re-signed)
 *   is caught by the encrypted-layer MAC. Never an untyped exception.
 * Runs are few because every build and decode does real curve arithmetic.
 */
import { constants, generateKeyPairSync, privateEncrypt } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/core/bytes.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded } from '../../src/core/crypto/index.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { buildDescriptor, decodeDescriptor, type IntroPointInput } from '../../src/core/hsdesc/descriptor.js';
import { decryptLayer, encryptLayer } from '../../src/core/hsdesc/encryption.js';
import { LS_ED25519_ID, LS_IPV4, LS_IPV6, LS_LEGACY_ID, type LinkSpecifier } from '../../src/core/hsdesc/link-specifiers.js';
import { encodeMiddleLayer, parseMiddleLayer } from '../../src/core/hsdesc/middle.js';
import { encodeOuterLayer, parseOuterLayer } from '../../src/core/hsdesc/outer.js';
import { identityFrom, NOW, PERIOD, seededRandom } from '../helpers/hsdesc-fixtures.js';

const identity = identityFrom('property');
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 65537 });
const rsaDer = new Uint8Array(rsa.publicKey.export({ format: 'der', type: 'pkcs1' }));
const signDigest = (d: Uint8Array): Uint8Array => new Uint8Array(privateEncrypt({ key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING }, d));

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const port = fc.integer({ min: 0, max: 65535 });
const u16 = (p: number) => [p >> 8, p & 0xff];

const linkSpecifiers: fc.Arbitrary<LinkSpecifier[]> = fc
  .record({
    v4: bytes(4),
    v4port: port,
    legacy: bytes(20),
    ed: fc.option(bytes(32), { nil: undefined }),
    v6: fc.option(fc.tuple(bytes(16), port), { nil: undefined }),
    unknown: fc.option(fc.tuple(fc.integer({ min: 4, max: 255 }), fc.uint8Array({ maxLength: 20 })), { nil: undefined }),
  })
  .map((r) => {
    const out: LinkSpecifier[] = [
      { type: LS_IPV4, data: new Uint8Array([...r.v4, ...u16(r.v4port)]) },
      { type: LS_LEGACY_ID, data: r.legacy },
    ];
    if (r.ed !== undefined) out.push({ type: LS_ED25519_ID, data: r.ed });
    if (r.v6 !== undefined) out.push({ type: LS_IPV6, data: new Uint8Array([...r.v6[0], ...u16(r.v6[1])]) });
    if (r.unknown !== undefined) out.push({ type: r.unknown[0], data: r.unknown[1] });
    return out;
  });

const introPoint: fc.Arbitrary<IntroPointInput> = fc
  .record({ linkSpecifiers, onionKey: bytes(32), authKey: bytes(32), encKey: bytes(32), legacy: fc.boolean() })
  .map((r) => ({
    linkSpecifiers: r.linkSpecifiers,
    onionKey: r.onionKey,
    authKey: r.authKey,
    // Clear the top bit and keep u small enough to have an ed25519 form (u ≠ p − 1).
    encKey: Uint8Array.from(r.encKey, (b, i) => (i === 31 ? b & 0x3f : b)),
    ...(r.legacy ? { legacy: { keyDer: rsaDer, signDigest } } : {}),
  }));

function recordingRandom(seed: string): { rb: (n: number) => Uint8Array; draws: Uint8Array[] } {
  const base = seededRandom(seed);
  const draws: Uint8Array[] = [];
  return {
    draws,
    rb: (n) => {
      const b = base(n);
      draws.push(b);
      return b;
    },
  };
}

function buildWith(ips: readonly IntroPointInput[], seed: string) {
  const { rb, draws } = recordingRandom(seed);
  const built = buildDescriptor({ identity, periodNum: PERIOD, periodLengthMinutes: 1440, revisionCounter: 5n, nowSeconds: NOW, introPoints: ips, randomBytes: rb });
  const sx = ed25519ExpandSeed(draws[0]!); // the descriptor signing key seed is the first draw
  return { built, signingKey: { expandedSecretKey: sx, publicKey: ed25519PublicFromExpanded(sx) } };
}

const opts = { identityPublicKey: identity.publicKey, nowSeconds: NOW };

function expectTyped(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TorbalanceError);
    return (e as TorbalanceError).code;
  }
  return 'accepted';
}

describe('descriptor round trip', () => {
  it('build → decode returns the same intro points', () => {
    fc.assert(
      fc.property(fc.array(introPoint, { minLength: 1, maxLength: 20 }), fc.string({ maxLength: 8 }), (ips, seed) => {
        const { built } = buildWith(ips, seed);
        expect(built.text.length).toBeLessThan(50000);
        const d = decodeDescriptor(built.text, opts);
        expect(d.inner.skippedIntroPoints).toEqual([]);
        expect(d.introPoints.length).toBe(ips.length);
        d.introPoints.forEach((got, k) => {
          const want = ips[k]!;
          expect(got.linkSpecifiers.map((l) => [l.type, toHex(l.data)])).toEqual(want.linkSpecifiers.map((l) => [l.type, toHex(l.data)]));
          expect(toHex(got.onionKey)).toBe(toHex(want.onionKey));
          expect(toHex(got.authKey)).toBe(toHex(want.authKey));
          expect(toHex(got.encKey)).toBe(toHex(want.encKey));
          expect(got.legacy === undefined).toBe(want.legacy === undefined);
          if (got.legacy !== undefined) expect(toHex(got.legacy.keyDer)).toBe(toHex(rsaDer));
        });
      }),
      { numRuns: 40 },
    );
  });
});

describe('tampering is always caught', () => {
  // One descriptor (3 random intro points); the flips are what varies.
  const ips = fc.sample(introPoint, { numRuns: 3, seed: 42 });
  const { built, signingKey } = buildWith(ips, 'tamper');
  const reference = decodeDescriptor(built.text, opts);
  const o = parseOuterLayer(built.text);
  const common = { secretData: built.blindedPublicKey, subcredential: built.subcredential, revisionCounter: o.revisionCounter };

  it('any flipped byte of the outer text', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const i = pos % built.text.length;
        const t = built.text.slice(0, i) + String.fromCharCode(built.text.charCodeAt(i) ^ x) + built.text.slice(i + 1);
        let d: ReturnType<typeof decodeDescriptor> | undefined;
        const code = expectTyped(() => {
          d = decodeDescriptor(t, opts);
        });
        if (code === 'accepted') expect(d!.innerPlaintext).toBe(reference.innerPlaintext);
      }),
      { numRuns: 300 },
    );
  });

  it('any flipped byte of the middle-layer blob (descriptor re-signed)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const blob = o.superencryptedBlob.slice();
        const i = pos % blob.length;
        blob[i] = blob[i]! ^ x;
        const t = encodeOuterLayer({ signingKeyCert: o.signingKeyCert.encoded, revisionCounter: o.revisionCounter, superencryptedBlob: blob, signingKey });
        expect(expectTyped(() => decodeDescriptor(t, opts))).toBe('TB_ERR_HSDESC_SUPERENCRYPTED_MAC');
      }),
      { numRuns: 100 },
    );
  });

  it('any flipped byte of the inner-layer blob (middle re-encrypted, descriptor re-signed)', () => {
    const mid = decryptLayer({ ...common, blob: o.superencryptedBlob, layer: 'superencrypted' });
    const m = parseMiddleLayer(new TextDecoder().decode(mid.plaintext));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const inner = m.encryptedBlob.slice();
        const i = pos % inner.length;
        inner[i] = inner[i]! ^ x;
        const middleBlob = encryptLayer({ ...common, plaintext: utf8(encodeMiddleLayer({ ...m, encryptedBlob: inner })), salt: mid.salt, layer: 'superencrypted' });
        const t = encodeOuterLayer({ signingKeyCert: o.signingKeyCert.encoded, revisionCounter: o.revisionCounter, superencryptedBlob: middleBlob, signingKey });
        expect(expectTyped(() => decodeDescriptor(t, opts))).toBe('TB_ERR_HSDESC_NEED_CLIENT_AUTH');
      }),
      { numRuns: 100 },
    );
  });

  it('re-signing the unmodified layers reproduces an accepted descriptor (the harness itself is sound)', () => {
    const t = encodeOuterLayer({ signingKeyCert: o.signingKeyCert.encoded, revisionCounter: o.revisionCounter, superencryptedBlob: o.superencryptedBlob, signingKey });
    expect(t).toBe(built.text);
    expect(decodeDescriptor(t, opts).innerPlaintext).toBe(reference.innerPlaintext);
  });
});
