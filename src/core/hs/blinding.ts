/**
 * Key blinding, credential and subcredential (rend-spec-v3 appendix A [KEYBLIND],
 * §2.1 [SUBCRED]; tor `hs_common.c: build_blinded_key_param, hs_get_subcredential`,
 * `ed25519_donna_blind_secret_key`).
 *
 * h  = H("Derive temporary signing key\0" ‖ A ‖ B_str ‖ "key-blind" ‖ INT_8(tp) ‖ INT_8(len))
 * A' = clamp(h)·A
 * a' = clamp(h)·a mod ℓ,  RH' = SHA-512("Derive temporary signing key hash input" ‖ RH)[:32]
 */
import { concatBytes, toHex, u64be, utf8 } from '../bytes.js';
import {
  ed25519BaseMul,
  ed25519PointMul,
  ed25519PublicFromExpanded,
  ed25519SignExpanded,
  scalarMulModL,
  sha3_256,
  sha512,
} from '../crypto/index.js';

/** tor's `str_ed25519_basepoint`. */
const ED25519_BASEPOINT_STR = utf8(
  '(15112221349535400772501151409588531511454012693041857206046113283949847762202, ' +
    '46316835694926478169428394003475163141307993866256225615783033603165251855960)',
);
/** `sizeof("Derive temporary signing key")`: tor hashes the terminating NUL too. */
const BLIND_STRING = concatBytes(utf8('Derive temporary signing key'), new Uint8Array([0]));
const KEYBLIND_NONCE_PREFIX = utf8('key-blind');
const BLIND_HASH_INPUT = utf8('Derive temporary signing key hash input');

/** The live network's time-period length in minutes (consensus `hsdir_interval` default). */
export const DEFAULT_PERIOD_LENGTH_MINUTES = 1440;

/** The unclamped blinding parameter `h` for identity key `A`, period `tp` of `lengthMinutes`. */
export function blindingParam(identityPublicKey: Uint8Array, periodNum: number | bigint, periodLengthMinutes: number): Uint8Array {
  if (identityPublicKey.length !== 32) throw new RangeError('identity key must be 32 bytes');
  const nonce = concatBytes(KEYBLIND_NONCE_PREFIX, u64be(periodNum), u64be(periodLengthMinutes));
  return sha3_256(BLIND_STRING, identityPublicKey, ED25519_BASEPOINT_STR, nonce);
}

/** Clamp a blinding parameter as tor does (`ed25519_donna_gettweak`). */
export function clampBlindingParam(h: Uint8Array): Uint8Array {
  const out = h.slice(0, 32);
  out[0] = (out[0] as number) & 248;
  out[31] = ((out[31] as number) & 63) | 64;
  return out;
}

/** `A' = clamp(h)·A` for a raw (unclamped) parameter `h`. Throws RangeError for an invalid point. */
export function blindPublicKeyWithParam(identityPublicKey: Uint8Array, h: Uint8Array): Uint8Array {
  return ed25519PointMul(identityPublicKey, clampBlindingParam(h));
}

/** The 64-byte blinded expanded secret key `a' ‖ RH'` for a raw parameter `h`. */
export function blindExpandedSecretKeyWithParam(expandedSecretKey: Uint8Array, h: Uint8Array): Uint8Array {
  if (expandedSecretKey.length !== 64) throw new RangeError('expanded secret key must be 64 bytes');
  const a = scalarMulModL(clampBlindingParam(h), expandedSecretKey.subarray(0, 32));
  const rh = sha512(BLIND_HASH_INPUT, expandedSecretKey.subarray(32, 64)).subarray(0, 32);
  return concatBytes(a, rh);
}

const BLINDED_CACHE_SIZE = 64;
const blindedCache = new Map<string, Uint8Array>();

/**
 * Blinded public key `KP_hs_blind_id` for a time period. A point multiplication (the most
 * expensive step of decoding a descriptor after its signatures), so the last
 * {@link BLINDED_CACHE_SIZE} results are kept (public values only): a frontend decodes the
 * descriptors of the same few services, each for the same two or three periods, again and
 * again. Returns a fresh copy. Throws RangeError for an invalid point.
 */
export function blindPublicKey(identityPublicKey: Uint8Array, periodNum: number | bigint, periodLengthMinutes: number): Uint8Array {
  const id = `${toHex(identityPublicKey)}/${periodNum}/${periodLengthMinutes}`;
  const hit = blindedCache.get(id);
  if (hit !== undefined) {
    blindedCache.delete(id);
    blindedCache.set(id, hit);
    return hit.slice();
  }
  const blinded = blindPublicKeyWithParam(identityPublicKey, blindingParam(identityPublicKey, periodNum, periodLengthMinutes));
  if (blindedCache.size >= BLINDED_CACHE_SIZE) blindedCache.delete(blindedCache.keys().next().value as string);
  blindedCache.set(id, blinded.slice());
  return blinded;
}

/** A blinded keypair: public `KP_hs_blind_id` and expanded secret `KS_hs_blind_id`. */
export interface BlindedKeypair {
  readonly publicKey: Uint8Array;
  /** 64 bytes `a' ‖ RH'`; secret. */
  readonly expandedSecretKey: Uint8Array;
}

/** Blind an identity keypair (given as its 64-byte expanded secret key) for a time period. */
export function blindKeypair(expandedSecretKey: Uint8Array, periodNum: number | bigint, periodLengthMinutes: number): BlindedKeypair {
  return blindKnownKeypair(expandedSecretKey, ed25519PublicFromExpanded(expandedSecretKey), periodNum, periodLengthMinutes);
}

/**
 * {@link blindKeypair} for a caller that already holds the identity public key and has
 * checked that it is `a·B` for the expanded key's scalar `a` (buildDescriptor does). The
 * blinded public key is then computed as `a'·B` rather than `clamp(h)·A`: B has order ℓ, so
 * `clamp(h)·(a·B) = (clamp(h)·a mod ℓ)·B = a'·B`, the same point, and a base-point
 * multiplication (precomputed table) is about 3× cheaper than multiplying an arbitrary point.
 */
export function blindKnownKeypair(
  expandedSecretKey: Uint8Array,
  identityPublicKey: Uint8Array,
  periodNum: number | bigint,
  periodLengthMinutes: number,
): BlindedKeypair {
  const h = blindingParam(identityPublicKey, periodNum, periodLengthMinutes);
  const blindedSecret = blindExpandedSecretKeyWithParam(expandedSecretKey, h);
  return { publicKey: ed25519BaseMul(blindedSecret.subarray(0, 32)), expandedSecretKey: blindedSecret };
}

/** Sign with a blinded keypair (standard EdDSA over the expanded blinded key). */
export function signWithBlindedKey(keypair: BlindedKeypair, message: Uint8Array): Uint8Array {
  return ed25519SignExpanded(keypair.expandedSecretKey, message, keypair.publicKey);
}

/** `credential = H("credential" ‖ A)`. */
export function credential(identityPublicKey: Uint8Array): Uint8Array {
  return sha3_256(utf8('credential'), identityPublicKey);
}

/** `N_hs_subcred = H("subcredential" ‖ credential ‖ A')`. */
export function subcredential(identityPublicKey: Uint8Array, blindedPublicKey: Uint8Array): Uint8Array {
  return sha3_256(utf8('subcredential'), credential(identityPublicKey), blindedPublicKey);
}
