/**
 * Descriptor layer encryption (rend-spec-v3 §2.5.3 [HS-DESC-ENCRYPTION-KEYS], §2.5.1.2 client
 * authorization; tor `hs_descriptor.c: build_secret_input, build_kdf_key,
 * build_secret_key_iv_mac, build_mac, build_plaintext_padding, build_encrypted,
 * encrypt_descriptor_data, decrypt_desc_layer, build_descriptor_cookie_keys,
 * decrypt_descriptor_cookie, hs_desc_build_authorized_client,
 * hs_desc_build_fake_authorized_client`).
 *
 * ```
 * secret_input = SECRET_DATA ‖ subcredential ‖ INT_8(revision_counter)
 * keys = SHAKE-256(secret_input ‖ salt ‖ STRING_CONSTANT, 80)
 *   SECRET_KEY = keys[0:32], SECRET_IV = keys[32:48], MAC_KEY = keys[48:80]
 * ciphertext = AES-256-CTR(SECRET_KEY, SECRET_IV, plaintext)   (middle layer NUL-padded to 10000·k)
 * MAC = SHA3-256(INT_8(32) ‖ MAC_KEY ‖ INT_8(16) ‖ salt ‖ ciphertext)
 * blob = salt(16) ‖ ciphertext ‖ MAC(32)
 * ```
 * Middle ("superencrypted") layer: SECRET_DATA = blinded key, constant "hsdir-superencrypted-data".
 * Inner ("encrypted") layer: SECRET_DATA = blinded key [‖ descriptor cookie (16)], constant
 * "hsdir-encrypted-data", not padded.
 *
 * Decryption, like tor, checks the blob is longer than 48 bytes, compares the MAC in constant
 * time before decrypting, cuts the plaintext at its first NUL and rejects an empty result.
 *
 * Client authorization: `SECRET_SEED = x25519(sk, pk)`, `KEYS = SHAKE-256(subcredential ‖
 * SECRET_SEED, 40)`, `CLIENT-ID = KEYS[0:8]`, `COOKIE-KEY = KEYS[8:40]`,
 * `encrypted_cookie = AES-256-CTR(COOKIE-KEY, iv, descriptor_cookie)`.
 */
import { concatBytes, u64be, utf8 } from '../bytes.js';
import { aes256ctr, constantTimeEqual, sha3_256, shake256, x25519SharedSecret } from '../crypto/index.js';
import { DecodeError } from '../errors.js';
import type { RandomBytes } from '../random.js';

export type LayerKind = 'superencrypted' | 'encrypted';

export const SALT_LEN = 16;
export const MAC_LEN = 32;
/** HS_DESC_SUPERENC_PLAINTEXT_PAD_MULTIPLE. */
export const SUPERENCRYPTED_PAD_MULTIPLE = 10000;
/** HS_DESC_CLIENT_ID_LEN, CIPHER_IV_LEN, HS_DESC_DESCRIPTOR_COOKIE_LEN (= encrypted cookie length). */
export const CLIENT_ID_LEN = 8;
export const AUTH_IV_LEN = 16;
export const DESCRIPTOR_COOKIE_LEN = 16;
/** HS_DESC_AUTH_CLIENT_MULTIPLE: tor writes auth-client lines in multiples of 16. */
export const AUTH_CLIENT_MULTIPLE = 16;

const CONSTANTS: Readonly<Record<LayerKind, Uint8Array>> = {
  superencrypted: utf8('hsdir-superencrypted-data'),
  encrypted: utf8('hsdir-encrypted-data'),
};

/** The per-layer keys from the KDF. All secret. */
export interface LayerKeys {
  readonly secretKey: Uint8Array;
  readonly secretIv: Uint8Array;
  readonly macKey: Uint8Array;
}

export interface LayerKeyInput {
  /** Blinded public key, or blinded key ‖ descriptor cookie for a client-auth inner layer. */
  readonly secretData: Uint8Array;
  readonly subcredential: Uint8Array;
  readonly revisionCounter: bigint;
  readonly layer: LayerKind;
}

function checkRevisionCounter(c: bigint): void {
  if (c < 0n || c > 0xffffffffffffffffn) throw new RangeError('revision counter must fit in 64 bits');
}

/** `SECRET_DATA ‖ subcredential ‖ INT_8(revision_counter)`. */
export function secretInput(secretData: Uint8Array, subcredential: Uint8Array, revisionCounter: bigint): Uint8Array {
  if (subcredential.length !== 32) throw new RangeError('subcredential must be 32 bytes');
  checkRevisionCounter(revisionCounter);
  return concatBytes(secretData, subcredential, u64be(revisionCounter));
}

/** SHAKE-256 KDF for one layer and salt. */
export function deriveLayerKeys(input: LayerKeyInput & { readonly salt: Uint8Array }): LayerKeys {
  if (input.salt.length !== SALT_LEN) throw new RangeError('salt must be 16 bytes');
  const keys = shake256(80, secretInput(input.secretData, input.subcredential, input.revisionCounter), input.salt, CONSTANTS[input.layer]);
  return { secretKey: keys.slice(0, 32), secretIv: keys.slice(32, 48), macKey: keys.slice(48, 80) };
}

/** `SHA3-256(INT_8(len(mac_key)) ‖ mac_key ‖ INT_8(len(salt)) ‖ salt ‖ ciphertext)`. */
export function layerMac(macKey: Uint8Array, salt: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return sha3_256(u64be(macKey.length), macKey, u64be(salt.length), salt, ciphertext);
}

/** NUL-pad to the next multiple of `multiple` (tor `build_plaintext_padding`; 0 stays 0). */
export function padPlaintext(plaintext: Uint8Array, multiple = SUPERENCRYPTED_PAD_MULTIPLE): Uint8Array {
  const len = Math.ceil(plaintext.length / multiple) * multiple;
  const out = new Uint8Array(len);
  out.set(plaintext, 0);
  return out;
}

/**
 * Encrypt one layer with the given salt (tor draws it with `crypto_strongest_rand`); the
 * middle layer is padded first. Returns `salt ‖ ciphertext ‖ MAC`.
 */
export function encryptLayer(input: LayerKeyInput & { readonly plaintext: Uint8Array; readonly salt: Uint8Array }): Uint8Array {
  const keys = deriveLayerKeys(input);
  const pt = input.layer === 'superencrypted' ? padPlaintext(input.plaintext) : input.plaintext;
  const ct = aes256ctr(keys.secretKey, keys.secretIv, pt);
  return concatBytes(input.salt, ct, layerMac(keys.macKey, input.salt, ct));
}

/** A decrypted layer: the plaintext (cut at the first NUL) plus what was derived, for tests and diagnostics. */
export interface DecryptedLayer {
  readonly plaintext: Uint8Array;
  /** Length of the decrypted data before cutting at the first NUL. */
  readonly paddedLength: number;
  readonly salt: Uint8Array;
  readonly mac: Uint8Array;
}

/**
 * Check the MAC and decrypt a layer blob. Throws DecodeError TB_ERR_HSDESC_LAYER_TOO_SHORT
 * (≤ 48 bytes), TB_ERR_HSDESC_LAYER_MAC (constant-time MAC mismatch) or
 * TB_ERR_HSDESC_LAYER_EMPTY (the plaintext is empty or starts with NUL).
 */
export function decryptLayer(input: LayerKeyInput & { readonly blob: Uint8Array }): DecryptedLayer {
  const { blob } = input;
  if (blob.length <= SALT_LEN + MAC_LEN) {
    throw new DecodeError('TB_ERR_HSDESC_LAYER_TOO_SHORT', `encrypted ${input.layer} layer is only ${blob.length} bytes`);
  }
  const salt = blob.slice(0, SALT_LEN);
  const ct = blob.subarray(SALT_LEN, blob.length - MAC_LEN);
  const mac = blob.slice(blob.length - MAC_LEN);
  const keys = deriveLayerKeys({ ...input, salt });
  if (!constantTimeEqual(layerMac(keys.macKey, salt, ct), mac)) {
    throw new DecodeError('TB_ERR_HSDESC_LAYER_MAC', `MAC check of the ${input.layer} layer failed`);
  }
  const pt = aes256ctr(keys.secretKey, keys.secretIv, ct);
  const nul = pt.indexOf(0);
  const plaintext = nul < 0 ? pt : pt.slice(0, nul);
  if (plaintext.length === 0) throw new DecodeError('TB_ERR_HSDESC_LAYER_EMPTY', `decrypted ${input.layer} layer is empty`);
  return { plaintext, paddedLength: pt.length, salt, mac };
}

// ---------------------------------------------------------------------------------------
// Client authorization

/** One `auth-client` line's binary fields. */
export interface AuthClient {
  readonly clientId: Uint8Array;
  readonly iv: Uint8Array;
  readonly encryptedCookie: Uint8Array;
}

/** `KEYS = SHAKE-256(subcredential ‖ x25519(sk, pk), 40)` split into CLIENT-ID and COOKIE-KEY. */
export function descriptorCookieKeys(
  subcredential: Uint8Array,
  secretKey: Uint8Array,
  publicKey: Uint8Array,
): { readonly secretSeed: Uint8Array; readonly clientId: Uint8Array; readonly cookieKey: Uint8Array } | undefined {
  let secretSeed: Uint8Array;
  try {
    secretSeed = x25519SharedSecret(secretKey, publicKey);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return undefined;
  }
  const keys = shake256(CLIENT_ID_LEN + 32, subcredential, secretSeed);
  return { secretSeed, clientId: keys.slice(0, CLIENT_ID_LEN), cookieKey: keys.slice(CLIENT_ID_LEN) };
}

/**
 * Find the auth-client entry for `clientSecretKey` and decrypt the descriptor cookie (tor
 * `decrypt_descriptor_cookie`: first entry whose client id matches). Undefined if none matches.
 */
export function decryptDescriptorCookie(input: {
  readonly subcredential: Uint8Array;
  readonly clientSecretKey: Uint8Array;
  readonly ephemeralPublicKey: Uint8Array;
  readonly authClients: readonly AuthClient[];
}): Uint8Array | undefined {
  const k = descriptorCookieKeys(input.subcredential, input.clientSecretKey, input.ephemeralPublicKey);
  if (k === undefined) return undefined;
  for (const c of input.authClients) {
    if (constantTimeEqual(c.clientId, k.clientId)) return aes256ctr(k.cookieKey, c.iv, c.encryptedCookie);
  }
  return undefined;
}

/** An auth-client entry for an authorized client (tor `hs_desc_build_authorized_client`). */
export function buildAuthClient(input: {
  readonly subcredential: Uint8Array;
  readonly clientPublicKey: Uint8Array;
  readonly ephemeralSecretKey: Uint8Array;
  readonly descriptorCookie: Uint8Array;
  readonly iv: Uint8Array;
}): AuthClient {
  const k = descriptorCookieKeys(input.subcredential, input.ephemeralSecretKey, input.clientPublicKey);
  if (k === undefined) throw new DecodeError('TB_ERR_HSDESC_CLIENT_KEY', 'client authorization key gives a degenerate x25519 result');
  if (input.iv.length !== AUTH_IV_LEN || input.descriptorCookie.length !== DESCRIPTOR_COOKIE_LEN) {
    throw new RangeError('iv and descriptor cookie must be 16 bytes');
  }
  return { clientId: k.clientId, iv: input.iv.slice(), encryptedCookie: aes256ctr(k.cookieKey, input.iv, input.descriptorCookie) };
}

/** A fake auth-client entry of random bytes (tor `hs_desc_build_fake_authorized_client`: id, iv, cookie). */
export function buildFakeAuthClient(randomBytes: RandomBytes): AuthClient {
  return { clientId: randomBytes(CLIENT_ID_LEN), iv: randomBytes(AUTH_IV_LEN), encryptedCookie: randomBytes(DESCRIPTOR_COOKIE_LEN) };
}
