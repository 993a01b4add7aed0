/**
 * The only module in torbalance that imports cryptographic libraries (Arti's tor-llcrypto
 * rule): `node:crypto` for hashes and AES (OpenSSL, fast), `@noble/curves` for ed25519 point
 * and scalar arithmetic that generic signing APIs do not expose (expanded keys, blinding) and
 * for x25519.
 *
 * Nothing here draws randomness or reads a clock: callers pass random bytes in.
 */
import {
  constants as cryptoConstants,
  createCipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  publicDecrypt,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
} from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';

/** SHA3-256 (tor's `H()` in rend-spec-v3). */
export function sha3_256(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha3-256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** SHAKE-256 squeezed to `outLen` bytes (rend-spec-v3 KDF). */
export function shake256(outLen: number, ...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('shake256', { outputLength: outLen });
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** SHA-512. */
export function sha512(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** SHA-256. */
export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** SHA-1 (relay RSA identity fingerprints only). */
export function sha1(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** AES-256-CTR with a 128-bit big-endian counter starting at `iv` (encrypt = decrypt). */
export function aes256ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.length !== 32) throw new RangeError('AES-256 key must be 32 bytes');
  if (iv.length !== 16) throw new RangeError('AES-CTR IV must be 16 bytes');
  const c = createCipheriv('aes-256-ctr', key, iv);
  const a = c.update(data);
  const b = c.final();
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Constant-time equality for MACs and secrets; false on length mismatch. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/**
 * Equality of a presented secret with the expected one (e.g. the admin API's bearer secret)
 * whose timing depends neither on where they differ nor on the presented length: both are
 * hashed (SHA3-256) and the digests compared in constant time.
 */
export function secretsEqual(presented: Uint8Array, expected: Uint8Array): boolean {
  return timingSafeEqual(sha3_256(presented), sha3_256(expected));
}

// ---------------------------------------------------------------------------------------
// ed25519 scalar and point arithmetic

const Point = ed25519.Point;
/** The order of the ed25519 base point, ℓ = 2^252 + 27742317777372353535851937790883648493. */
export const ED25519_L: bigint = Point.Fn.ORDER;
/** The field prime p = 2^255 − 19. */
export const ED25519_P: bigint = Point.Fp.ORDER;

/** Little-endian bytes → bigint. */
export function leToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
  return v;
}

/** bigint → `len` little-endian bytes. */
export function bigintToLe(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = v;
  for (let i = 0; i < len; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (x !== 0n) throw new RangeError('value does not fit');
  return out;
}

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r >= 0n ? r : r + m;
}

/** Multiply the base point by a little-endian scalar (any 32-byte value; reduced mod ℓ). */
export function ed25519BaseMul(scalarLe: Uint8Array): Uint8Array {
  const s = mod(leToBigint(scalarLe), ED25519_L);
  if (s === 0n) throw new RangeError('zero scalar');
  return Point.BASE.multiply(s).toBytes();
}

/**
 * Multiply an encoded point by a little-endian scalar. Throws RangeError if `point` is not a
 * valid curve point encoding.
 */
export function ed25519PointMul(point: Uint8Array, scalarLe: Uint8Array): Uint8Array {
  const s = mod(leToBigint(scalarLe), ED25519_L);
  if (s === 0n) throw new RangeError('zero scalar');
  let P;
  try {
    P = Point.fromBytes(point);
  } catch (cause) {
    throw new RangeError('invalid ed25519 point', { cause });
  }
  return P.multiply(s).toBytes();
}

/** True if `point` decodes to a point on the curve. */
export function ed25519IsValidPoint(point: Uint8Array): boolean {
  if (point.length !== 32) return false;
  try {
    Point.fromBytes(point);
    return true;
  } catch (_ignored) {
    // @noble reports a bad encoding only by throwing a plain Error: any throw means "not a point"
    return false;
  }
}

/** (a · b) mod ℓ for little-endian scalars, as 32 little-endian bytes. */
export function scalarMulModL(aLe: Uint8Array, bLe: Uint8Array): Uint8Array {
  return bigintToLe(mod(leToBigint(aLe) * leToBigint(bLe), ED25519_L), 32);
}

/**
 * RFC 8032 key expansion: SHA-512(seed), scalar clamped. Returns the 64-byte expanded key
 * `a ‖ RH` as tor stores it in `hs_ed25519_secret_key`.
 */
export function ed25519ExpandSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new RangeError('ed25519 seed must be 32 bytes');
  const h = sha512(seed);
  h[0] = (h[0] as number) & 248;
  h[31] = ((h[31] as number) & 63) | 64;
  return h;
}

/** Public key `A = a·B` of a 64-byte expanded secret key. */
export function ed25519PublicFromExpanded(expanded: Uint8Array): Uint8Array {
  if (expanded.length !== 64) throw new RangeError('expanded ed25519 key must be 64 bytes');
  return ed25519BaseMul(expanded.subarray(0, 32));
}

/**
 * EdDSA signature with an expanded key (no seed): `r = H(RH‖M)`, `R = r·B`,
 * `S = r + H(R‖A‖M)·a mod ℓ` (tor's `ed25519_sign` with an expanded key, and blinded signing).
 * `publicKey` must be `a·B`; pass it to avoid recomputing.
 */
export function ed25519SignExpanded(
  expanded: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array = ed25519PublicFromExpanded(expanded),
): Uint8Array {
  if (expanded.length !== 64) throw new RangeError('expanded ed25519 key must be 64 bytes');
  const a = mod(leToBigint(expanded.subarray(0, 32)), ED25519_L);
  const r = mod(leToBigint(sha512(expanded.subarray(32, 64), message)), ED25519_L);
  const R = Point.BASE.multiply(r === 0n ? ED25519_L : r).toBytes();
  const k = mod(leToBigint(sha512(R, publicKey, message)), ED25519_L);
  const S = mod(r + k * a, ED25519_L);
  const sig = new Uint8Array(64);
  sig.set(R, 0);
  sig.set(bigintToLe(S, 32), 32);
  return sig;
}

// OpenSSL keys. A KeyObject costs more to make than to use (a JWK import is ~1/3 of a
// signature, ~1/8 of a verification), so each is made once per key: private keys live as long
// as the caller's seed array (a WeakMap never keeps its key alive), public keys in a small
// bounded cache (they are not secret). Private OKP keys are imported as JWK, which node builds
// from `d` alone — `x` must be a string and is not read (node's getKeyObjectHandleFromJwk) —
// and is much cheaper than a PKCS#8 DER import through OpenSSL 3's decoders.

const seedKeys = new WeakMap<Uint8Array, { readonly seed: Uint8Array; readonly key: KeyObject }>();

function okpPrivateKey(crv: 'Ed25519' | 'X25519', seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv, d: toBase64Url(seed), x: '' }, format: 'jwk' });
}

function okpPublicBytes(key: KeyObject): Uint8Array {
  const { x } = createPublicKey(key).export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(x as string, 'base64url'));
}

/** The OpenSSL key of an ed25519 seed, made on first use and reused while the array is unchanged. */
function ed25519SeedKey(seed: Uint8Array): KeyObject {
  const hit = seedKeys.get(seed);
  if (hit !== undefined && timingSafeEqual(hit.seed, seed)) return hit.key;
  const key = okpPrivateKey('Ed25519', seed);
  seedKeys.set(seed, { seed: seed.slice(), key });
  return key;
}

/**
 * Sign with an ed25519 key given by its 32-byte seed (RFC 8032), through OpenSSL. Byte-identical
 * to {@link ed25519SignExpanded} over `ed25519ExpandSeed(seed)` (EdDSA is deterministic) and
 * about 10× faster once the seed's key exists (made on the first signature with that seed
 * array and kept as long as the array); used for per-descriptor signing keys, whose seed we
 * generate, and the mesh node key.
 */
export function ed25519SignSeed(seed: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Uint8Array {
  if (seed.length !== 32 || publicKey.length !== 32) throw new RangeError('ed25519 seed and public key must be 32 bytes');
  return new Uint8Array(nodeSign(null, message, ed25519SeedKey(seed)));
}

/**
 * The public key of an ed25519 seed, `ed25519PublicFromExpanded(ed25519ExpandSeed(seed))`,
 * computed by OpenSSL (the key is then ready for {@link ed25519SignSeed} with the same array).
 */
export function ed25519PublicFromSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new RangeError('ed25519 seed must be 32 bytes');
  return okpPublicBytes(ed25519SeedKey(seed));
}

const VERIFY_KEY_CACHE_SIZE = 64;
const verifyKeys = new Map<string, KeyObject>();

/** The OpenSSL key for a 32-byte ed25519 public key, from a small LRU cache. Throws if OpenSSL rejects the key. */
function ed25519VerifyKey(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
  const hit = verifyKeys.get(id);
  if (hit !== undefined) {
    verifyKeys.delete(id);
    verifyKeys.set(id, hit);
    return hit;
  }
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(publicKey) }, format: 'jwk' });
  if (verifyKeys.size >= VERIFY_KEY_CACHE_SIZE) verifyKeys.delete(verifyKeys.keys().next().value as string);
  verifyKeys.set(id, key);
  return key;
}

/**
 * Verify an ed25519 signature (RFC 8032: S must be canonical, A and R must decode). Never
 * throws. Uses OpenSSL through node:crypto (about 40× faster than pure-JS verification; a
 * descriptor with 20 intro points needs 42 verifications, 41 of them by one key).
 */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return nodeVerify(null, message, ed25519VerifyKey(publicKey), signature);
  } catch (_ignored) {
    // OpenSSL rejects a key it cannot load by throwing; for a verifier that is a failed check
    return false;
  }
}

function toBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * The ed25519 public key for a curve25519 (Montgomery) public key `u`, with the given sign
 * bit: `y = (u − 1)/(u + 1)` (tor's `ed25519_public_key_from_curve25519_public_key`,
 * prop 228 appendix A). Tor uses sign bit 0 for intro-point enc-key certs.
 */
export function ed25519FromCurve25519(u: Uint8Array, signBit: 0 | 1): Uint8Array {
  const [out] = ed25519FromCurve25519Many([u], signBit);
  if (out === undefined) throw new RangeError('curve25519 key has no ed25519 form');
  return out;
}

/**
 * {@link ed25519FromCurve25519} of several keys with one field inversion (Montgomery's trick:
 * invert the product of the denominators, then peel each inverse off with two
 * multiplications); an inversion costs about 100 multiplications. Same bytes as one call per
 * key. An entry is undefined where that key has no ed25519 form (u = −1 mod p). Throws
 * RangeError if a key is not 32 bytes.
 */
export function ed25519FromCurve25519Many(us: readonly Uint8Array[], signBit: 0 | 1): (Uint8Array | undefined)[] {
  const p = ED25519_P;
  // Tor (like RFC 7748) masks the top bit of u.
  const uvs = us.map((u) => {
    if (u.length !== 32) throw new RangeError('curve25519 key must be 32 bytes');
    return mod(leToBigint(u) & ((1n << 255n) - 1n), p);
  });
  // prefix[i] = product of the non-zero denominators before i
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const uv of uvs) {
    prefix.push(acc);
    const den = mod(uv + 1n, p);
    if (den !== 0n) acc = (acc * den) % p;
  }
  let inv = acc === 1n ? 1n : Point.Fp.inv(acc);
  const out: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(uvs.length);
  for (let i = uvs.length - 1; i >= 0; i--) {
    const uv = uvs[i] as bigint;
    const den = mod(uv + 1n, p);
    if (den === 0n) {
      out[i] = undefined;
      continue;
    }
    const denInv = (inv * (prefix[i] as bigint)) % p;
    inv = (inv * den) % p;
    const y = mod((uv - 1n) * denInv, p);
    const b = bigintToLe(y, 32);
    b[31] = ((b[31] as number) & 0x7f) | (signBit << 7);
    out[i] = b;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// x25519

/**
 * x25519 public key for a 32-byte private key (RFC 7748: clamped scalar times u = 9), computed
 * by OpenSSL (about 4× faster than @noble's ladder; same bytes).
 */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== 32) throw new RangeError('x25519 private key must be 32 bytes');
  return okpPublicBytes(okpPrivateKey('X25519', privateKey));
}

/** x25519 shared secret; throws RangeError on an all-zero result (small-order input). */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return x25519.getSharedSecret(privateKey, publicKey);
  } catch (cause) {
    throw new RangeError('x25519 shared secret is degenerate', { cause });
  }
}

// ---------------------------------------------------------------------------------------
// HMAC (appended by the control-port helper; the import sits here to keep the append local)


/** HMAC-SHA256(key, parts…) (RFC 2104); used by the control port's SAFECOOKIE authentication. */
export function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

// ---------------------------------------------------------------------------------------
// Public-key validation (appended by the key-files helper)

/**
 * tor's `ed25519_validate_pubkey`: true if `point` is a valid encoding of a curve point that
 * is not the identity and has no torsion component (`ℓ·P` is the identity). tor's
 * `hs_address_is_valid` rejects onion addresses whose key fails this. Never throws.
 */
export function ed25519IsValidPublicKey(point: Uint8Array): boolean {
  if (point.length !== 32) return false;
  try {
    const P = ed25519.Point.fromBytes(point);
    return !P.is0() && P.isTorsionFree();
  } catch (_ignored) {
    // @noble reports a bad encoding only by throwing a plain Error: any throw means "not a point"
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// RSA (appended by the hsdesc helper: legacy intro-point cross-certificates)


/**
 * tor's `crypto_pk_public_checksig`: apply the RSA public key (PKCS#1 `RSAPublicKey` DER) to
 * `signature` and strip PKCS#1 v1.5 type-1 padding, returning the signed bytes (no
 * DigestInfo is involved; tor signs a raw digest). Returns undefined if the key does not
 * load or the padding is wrong. Never throws.
 */
export function rsaPublicRecover(publicKeyDer: Uint8Array, signature: Uint8Array): Uint8Array | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'pkcs1' });
    return new Uint8Array(publicDecrypt({ key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature));
  } catch (_ignored) {
    // OpenSSL reports a key that does not load and bad padding alike by throwing: both mean "no"
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// HKDF and AEAD (appended by the join-token helper: the join handshake seals the bundle)

import { createDecipheriv as joinCreateDecipheriv, hkdfSync } from 'node:crypto';
import { DecodeError as CryptoDecodeError } from '../errors.js';

/**
 * HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes
 * (1 ≤ length ≤ 8160). Throws RangeError on a bad length.
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new RangeError('HKDF-SHA256 length must be 1..8160');
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

/** AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8) key length. */
export const AEAD_KEY_BYTES = 32;
/** AEAD_CHACHA20_POLY1305 nonce length (96 bits). */
export const AEAD_NONCE_BYTES = 12;
/** AEAD_CHACHA20_POLY1305 tag length. */
export const AEAD_TAG_BYTES = 16;

function checkAeadParams(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== AEAD_KEY_BYTES) throw new RangeError('ChaCha20-Poly1305 key must be 32 bytes');
  if (nonce.length !== AEAD_NONCE_BYTES) throw new RangeError('ChaCha20-Poly1305 nonce must be 12 bytes');
}

/**
 * AEAD_CHACHA20_POLY1305 encryption (RFC 8439 §2.8, OpenSSL through node:crypto): returns
 * `ciphertext ‖ tag(16)`. The caller must never reuse a (key, nonce) pair.
 */
export function chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Uint8Array {
  checkAeadParams(key, nonce);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const a = c.update(plaintext);
  const b = c.final();
  const tag = c.getAuthTag();
  const out = new Uint8Array(a.length + b.length + tag.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(tag, a.length + b.length);
  return out;
}

/**
 * AEAD_CHACHA20_POLY1305 decryption of `ciphertext ‖ tag(16)` (RFC 8439 §2.8). Throws
 * DecodeError `TB_ERR_AEAD` if the input is shorter than a tag or the tag does not verify
 * (no plaintext is returned then); RangeError on a bad key or nonce length.
 */
export function chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Uint8Array {
  checkAeadParams(key, nonce);
  if (sealed.length < AEAD_TAG_BYTES) throw new CryptoDecodeError('TB_ERR_AEAD', 'sealed data shorter than its tag');
  const ct = sealed.subarray(0, sealed.length - AEAD_TAG_BYTES);
  const tag = sealed.subarray(sealed.length - AEAD_TAG_BYTES);
  try {
    const d = joinCreateDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    d.setAAD(aad, { plaintextLength: ct.length });
    d.setAuthTag(tag);
    const a = d.update(ct);
    const b = d.final();
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    a.fill(0);
    return out;
  } catch (cause) {
    throw new CryptoDecodeError('TB_ERR_AEAD', 'authentication tag does not verify', undefined, { cause });
  }
}
