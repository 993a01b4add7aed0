/**
 * Join tokens: the text format (a pinned vector, cross-checked with Python's hmac/hashlib/
 * base64 when written), strict decoding, and secrets that only the cluster secret reproduces.
 */
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toHex } from '../../../src/core/bytes.js';
import { DecodeError, TorbalanceError } from '../../../src/core/errors.js';
import {
  JOIN_TOKEN_PREFIX,
  decodeJoinToken,
  encodeJoinToken,
  issueJoinToken,
  tokenSecretFor,
  verifyTokenSecret,
} from '../../../src/core/join/index.js';
import { CLUSTER_SECRET, MASTER, NOW, seededRandom } from './helpers.js';

// Fixed inputs: cluster secret 32×0x07, master = onion of ed25519 seed 32×0x2a, port 7101,
// expiresAt 1 700 003 600, id 16×0xab. Checked independently with Python 3 (hmac, hashlib,
// base64): K_join = HKDF-SHA256(secret, "", "torbalance join token key v1", 32),
// secret = HMAC(K_join, "torbalance join claims v1" ‖ bytes 0..58).
const PINNED =
  'tbjoin1-Aaurq6urq6urq6urq6urq6sZf2sj4WyFMsaryDj6zV6nib4MdrKSAzQDm_qLPTaNYRu9AAAAAGVT_xDLPfmk4uLozNoDIxiDBF9xfemdMU7QoILkydz8dDhhiw';
const PINNED_SECRET = 'cb3df9a4e2e2e8ccda03231883045f717de99d314ed0a082e4c9dcfc7438618b';

function toB64Url(b: Uint8Array): string {
  return toBase64(b).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}
function binOf(token: string): Uint8Array {
  return fromBase64(token.slice(JOIN_TOKEN_PREFIX.length).replace(/-/g, '+').replace(/_/g, '/'));
}
function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (e instanceof TorbalanceError) return e.code;
    throw e;
  }
}

describe('join tokens', () => {
  it('pinned vector: issue → encode', () => {
    const t = issueJoinToken(CLUSTER_SECRET, MASTER, 7101, 1_700_003_600, () => new Uint8Array(16).fill(0xab));
    expect(MASTER).toBe('df7wwi7bnsctfrvlza4pvtk6u6e34ddwwkjagnadtp5iwpjwrvq5bpad.onion');
    expect(encodeJoinToken(t)).toBe(PINNED);
    expect(PINNED).toHaveLength(130);
    expect(toHex(t.secret)).toBe(PINNED_SECRET);
  });

  it('pinned vector: decode', () => {
    const t = decodeJoinToken(`  ${PINNED}\n`);
    expect(t.claims).toEqual({ id: 'ab'.repeat(16), master: MASTER, port: 7101, expiresAt: 1_700_003_600 });
    expect(toHex(t.secret)).toBe(PINNED_SECRET);
    expect(verifyTokenSecret(CLUSTER_SECRET, t)).toBe(true);
    expect(verifyTokenSecret(new Uint8Array(32).fill(8), t)).toBe(false);
    expect(tokenSecretFor(CLUSTER_SECRET, t.claims)).toEqual(t.secret);
  });

  it('ids are random; secrets depend on every claim', () => {
    const rnd = seededRandom('tok');
    const a = issueJoinToken(CLUSTER_SECRET, MASTER, 7101, NOW, rnd);
    const b = issueJoinToken(CLUSTER_SECRET, MASTER, 7101, NOW, rnd);
    expect(a.claims.id).not.toBe(b.claims.id);
    const base = a.claims;
    const variants = [{ ...base, port: 7102 }, { ...base, expiresAt: NOW + 1 }, { ...base, id: b.claims.id }];
    for (const c of variants) expect(toHex(tokenSecretFor(CLUSTER_SECRET, c))).not.toBe(toHex(a.secret));
  });

  it('accepts the master with or without .onion and in upper case, and stores the canonical form', () => {
    const rnd = seededRandom('m');
    expect(issueJoinToken(CLUSTER_SECRET, MASTER.slice(0, 56).toUpperCase(), 1, NOW, rnd).claims.master).toBe(MASTER);
  });

  it('issue errors are TB_ERR_JOIN_ISSUE', () => {
    const rnd = seededRandom('e');
    expect(codeOf(() => issueJoinToken(CLUSTER_SECRET, 'nope.onion', 7101, NOW, rnd))).toBe('TB_ERR_JOIN_ISSUE');
    expect(codeOf(() => issueJoinToken(new Uint8Array(8), MASTER, 7101, NOW, rnd))).toBe('TB_ERR_JOIN_ISSUE');
    expect(codeOf(() => issueJoinToken(CLUSTER_SECRET, MASTER, 0, NOW, rnd))).toBe('TB_ERR_JOIN_ISSUE');
    expect(codeOf(() => issueJoinToken(CLUSTER_SECRET, MASTER, 65536, NOW, rnd))).toBe('TB_ERR_JOIN_ISSUE');
    expect(codeOf(() => issueJoinToken(CLUSTER_SECRET, MASTER, 7101, 1.5, rnd))).toBe('TB_ERR_JOIN_ISSUE');
    expect(codeOf(() => issueJoinToken(CLUSTER_SECRET, MASTER, 7101, -1, rnd))).toBe('TB_ERR_JOIN_ISSUE');
    expect(codeOf(() => encodeJoinToken({ claims: decodeJoinToken(PINNED).claims, secret: new Uint8Array(31) }))).toBe('TB_ERR_JOIN_ISSUE');
  });

  it('decode is strict: each malformation is TB_ERR_JOIN_TOKEN and the message has no token bytes', () => {
    const bin = binOf(PINNED);
    const withByte = (i: number, v: number): string => {
      const b = bin.slice();
      b[i] = v;
      return JOIN_TOKEN_PREFIX + toB64Url(b);
    };
    const bad: Record<string, string> = {
      empty: '',
      'no prefix': PINNED.slice(JOIN_TOKEN_PREFIX.length),
      'other prefix': 'tbjoin2-' + PINNED.slice(8),
      'upper-case prefix': 'TBJOIN1-' + PINNED.slice(8),
      'one char short': PINNED.slice(0, -1),
      'one char long': PINNED + 'A',
      padded: PINNED + '==',
      'standard base64 alphabet': PINNED.replace('_', '/'),
      'inner space': PINNED.slice(0, 50) + ' ' + PINNED.slice(51),
      'non-zero trailing bits': PINNED.slice(0, -1) + 'x',
      'version 2': withByte(0, 2),
      'version 0': withByte(0, 0),
      'port 0': (() => {
        const b = bin.slice();
        b[49] = 0;
        b[50] = 0;
        return JOIN_TOKEN_PREFIX + toB64Url(b);
      })(),
      'expiry above 2^53': withByte(51, 0x00 | 0x40),
      'master key not on the curve / torsion': (() => {
        const b = bin.slice();
        b.fill(0, 17, 49); // the identity-ish all-zero encoding is not a valid onion key
        return JOIN_TOKEN_PREFIX + toB64Url(b);
      })(),
      'too long': PINNED + ' '.repeat(2000),
      'non-ASCII': PINNED.slice(0, 40) + 'é' + PINNED.slice(41),
    };
    for (const [name, s] of Object.entries(bad)) {
      let err: unknown;
      try {
        decodeJoinToken(s);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(DecodeError);
      expect((err as DecodeError).code, name).toBe('TB_ERR_JOIN_TOKEN');
      expect((err as DecodeError).message).not.toContain(PINNED.slice(8, 30));
      expect((err as DecodeError).message).not.toContain(PINNED_SECRET.slice(0, 16));
    }
  });

  it('a token whose secret bytes were altered still decodes but does not verify', () => {
    const bin = binOf(PINNED);
    bin[90]! ^= 1;
    const t = decodeJoinToken(JOIN_TOKEN_PREFIX + toB64Url(bin));
    expect(verifyTokenSecret(CLUSTER_SECRET, t)).toBe(false);
  });
});
