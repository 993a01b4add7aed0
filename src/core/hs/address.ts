/**
 * v3 onion addresses (rend-spec-v3 §6 [ONIONADDRESS]):
 * `base32(PUBKEY ‖ CHECKSUM ‖ VERSION) + ".onion"`, where
 * `CHECKSUM = H(".onion checksum" ‖ PUBKEY ‖ VERSION)[:2]` and `VERSION = 0x03`.
 *
 * tor's own checks (`hs_address_is_valid`): 56 base32 characters, checksum, and
 * `ed25519_validate_pubkey` (a curve point, not the identity, no torsion component); we
 * additionally require version 3, as Arti does, and printable ASCII.
 */
import { bytesEqual, concatBytes, fromBase32, toBase32, utf8 } from '../bytes.js';
import { ed25519IsValidPublicKey, sha3_256 } from '../crypto/index.js';
import { DecodeError } from '../errors.js';

export const ONION_ADDRESS_VERSION = 3;
/** Length of the base32 label of a v3 address, without ".onion". */
export const ONION_LABEL_LENGTH = 56;

const CHECKSUM_PREFIX = utf8('.onion checksum');

/** The 2-byte checksum of a v3 address for `publicKey` and `version`. */
export function onionChecksum(publicKey: Uint8Array, version = ONION_ADDRESS_VERSION): Uint8Array {
  return sha3_256(CHECKSUM_PREFIX, publicKey, new Uint8Array([version])).subarray(0, 2);
}

/** The onion address (`<56 chars>.onion`, lower case) of an ed25519 identity public key. */
export function encodeOnionAddress(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new RangeError('ed25519 public key must be 32 bytes');
  const v = new Uint8Array([ONION_ADDRESS_VERSION]);
  return `${toBase32(concatBytes(publicKey, onionChecksum(publicKey), v))}.onion`;
}

export interface DecodedOnionAddress {
  /** The identity public key `KP_hs_id`. */
  readonly publicKey: Uint8Array;
  /** The canonical form: lower case, with ".onion". */
  readonly address: string;
  /** The 56-character label without ".onion" (the form HSPOST/HSFETCH take). */
  readonly label: string;
}

/**
 * Parse a v3 onion address. Accepts the label with or without ".onion", in any case.
 * Subdomains (`www.<addr>.onion`) are rejected here; use {@link parseOnionHostname} for
 * hostnames. Error codes: TB_ERR_ONION_LENGTH, TB_ERR_ONION_BASE32, TB_ERR_ONION_VERSION,
 * TB_ERR_ONION_CHECKSUM, TB_ERR_ONION_KEY.
 */
export function decodeOnionAddress(input: string): DecodedOnionAddress {
  // ASCII only: String#toLowerCase maps some non-ASCII letters onto base32 ones (U+212A
  // KELVIN SIGN → "k"), which would accept non-canonical spellings.
  if (input.length > ONION_LABEL_LENGTH + 6 || !/^[\x21-\x7e]*$/.test(input)) {
    if (input.length > ONION_LABEL_LENGTH + 6) {
      throw new DecodeError('TB_ERR_ONION_LENGTH', `onion address is too long (${Math.min(input.length, 9999)} characters)`);
    }
    throw new DecodeError('TB_ERR_ONION_BASE32', 'onion address contains a character that is not printable ASCII');
  }
  let label = input;
  if (label.length > 6 && label.slice(-6).toLowerCase() === '.onion') label = label.slice(0, -6);
  if (label.length !== ONION_LABEL_LENGTH) {
    throw new DecodeError('TB_ERR_ONION_LENGTH', `onion address must have ${ONION_LABEL_LENGTH} base32 characters, got ${Math.min(label.length, 9999)}`);
  }
  let raw: Uint8Array;
  try {
    raw = fromBase32(label);
  } catch (cause) {
    throw new DecodeError('TB_ERR_ONION_BASE32', 'onion address is not base32', undefined, { cause });
  }
  const publicKey = raw.slice(0, 32);
  const checksum = raw.subarray(32, 34);
  const version = raw[34];
  if (version !== ONION_ADDRESS_VERSION) {
    throw new DecodeError('TB_ERR_ONION_VERSION', `unsupported onion address version ${version}`);
  }
  if (!bytesEqual(checksum, onionChecksum(publicKey, version))) {
    throw new DecodeError('TB_ERR_ONION_CHECKSUM', 'onion address checksum mismatch');
  }
  if (!ed25519IsValidPublicKey(publicKey)) {
    throw new DecodeError('TB_ERR_ONION_KEY', 'onion address key is not a valid ed25519 point, is the identity or has a torsion component');
  }
  const lower = label.toLowerCase();
  return { publicKey, address: `${lower}.onion`, label: lower };
}

/**
 * Parse a hostname that ends in a v3 onion address, allowing subdomains as tor's
 * `parse_extended_hostname` does (`www.<addr>.onion` → `<addr>`).
 */
export function parseOnionHostname(hostname: string): DecodedOnionAddress {
  if (hostname.length > 253) throw new DecodeError('TB_ERR_ONION_LENGTH', 'hostname is longer than 253 characters');
  if (!/^[\x21-\x7e]*$/.test(hostname)) throw new DecodeError('TB_ERR_ONION_BASE32', 'hostname contains a character that is not printable ASCII');
  const lower = hostname.toLowerCase();
  if (!lower.endsWith('.onion')) throw new DecodeError('TB_ERR_ONION_LENGTH', 'hostname is not a .onion name');
  const labels = lower.slice(0, -6).split('.');
  return decodeOnionAddress(labels[labels.length - 1] ?? '');
}

/** True if `input` is a valid v3 onion address (with or without ".onion"). */
export function isValidOnionAddress(input: string): boolean {
  try {
    decodeOnionAddress(input);
    return true;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return false;
  }
}
