/**
 * Known answers for the primitives the join handshake uses (src/core/crypto appends):
 * X25519 (RFC 7748 §5.2 and §6.1), HKDF-SHA256 (RFC 5869 Appendix A.1, test case 1) and
 * AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8.2).
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../../src/core/bytes.js';
import {
  chacha20Poly1305Open,
  chacha20Poly1305Seal,
  hkdfSha256,
  x25519PublicKey,
  x25519SharedSecret,
} from '../../../src/core/crypto/index.js';
import { DecodeError } from '../../../src/core/errors.js';

describe('X25519 (RFC 7748)', () => {
  it('§5.2 test vector 1', () => {
    const k = fromHex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4');
    const u = fromHex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c');
    expect(toHex(x25519SharedSecret(k, u))).toBe('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
  });

  it('§5.2 test vector 2', () => {
    const k = fromHex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d');
    const u = fromHex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493');
    expect(toHex(x25519SharedSecret(k, u))).toBe('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
  });

  it('§6.1 Diffie-Hellman: both public keys and the shared secret', () => {
    const a = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const A = x25519PublicKey(a);
    const B = x25519PublicKey(b);
    expect(toHex(A)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(toHex(B)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const K = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(toHex(x25519SharedSecret(a, B))).toBe(K);
    expect(toHex(x25519SharedSecret(b, A))).toBe(K);
  });

  it('rejects all-zero shared secrets (small-order public keys, RFC 7748 §6.1 check)', () => {
    const k = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    // u = 0 and u = 1 have small order; so has the order-8 point below (from the curve's
    // small-order list: 0xe0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800).
    for (const u of ['00'.repeat(32), '01' + '00'.repeat(31), 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800']) {
      expect(() => x25519SharedSecret(k, fromHex(u))).toThrow(RangeError);
    }
  });
});

describe('HKDF-SHA256 (RFC 5869)', () => {
  it('Appendix A.1 (test case 1)', () => {
    const ikm = fromHex('0b'.repeat(22));
    const salt = fromHex('000102030405060708090a0b0c');
    const info = fromHex('f0f1f2f3f4f5f6f7f8f9');
    expect(toHex(hkdfSha256(ikm, salt, info, 42))).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  it('rejects lengths outside 1..8160', () => {
    expect(() => hkdfSha256(new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 0)).toThrow(RangeError);
    expect(() => hkdfSha256(new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 8161)).toThrow(RangeError);
  });
});

describe('AEAD_CHACHA20_POLY1305 (RFC 8439)', () => {
  const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = fromHex('070000004041424344454647');
  const aad = fromHex('50515253c0c1c2c3c4c5c6c7');
  const plaintext = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const ct =
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116';
  const tag = '1ae10b594f09e26a7e902ecbd0600691';

  it('§2.8.2 seal gives the ciphertext and tag', () => {
    expect(toHex(chacha20Poly1305Seal(key, nonce, plaintext, aad))).toBe(ct + tag);
  });

  it('§2.8.2 open gives the plaintext', () => {
    expect(chacha20Poly1305Open(key, nonce, fromHex(ct + tag), aad)).toEqual(plaintext);
  });

  it('a flipped bit anywhere (ciphertext, tag, aad) → DecodeError TB_ERR_AEAD', () => {
    const sealed = fromHex(ct + tag);
    for (let i = 0; i < sealed.length; i += 7) {
      const bad = sealed.slice();
      bad[i]! ^= 1 << (i % 8);
      expect(() => chacha20Poly1305Open(key, nonce, bad, aad)).toThrow(expect.objectContaining({ code: 'TB_ERR_AEAD' }));
    }
    const badAad = aad.slice();
    badAad[0]! ^= 0x80;
    expect(() => chacha20Poly1305Open(key, nonce, sealed, badAad)).toThrow(DecodeError);
    expect(() => chacha20Poly1305Open(key, nonce, sealed.subarray(0, 15), aad)).toThrow(expect.objectContaining({ code: 'TB_ERR_AEAD' }));
  });

  it('rejects bad key and nonce lengths', () => {
    expect(() => chacha20Poly1305Seal(key.subarray(1), nonce, plaintext)).toThrow(RangeError);
    expect(() => chacha20Poly1305Seal(key, nonce.subarray(1), plaintext)).toThrow(RangeError);
  });
});
