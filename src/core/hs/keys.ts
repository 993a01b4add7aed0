/**
 * Onion-service identity keys and tor's key files in a HiddenServiceDir.
 *
 * File formats (tor `crypto_format.c: crypto_write_tagged_contents_to_file`,
 * `crypto_read_tagged_contents_from_file`; `crypto_ed25519.c: ed25519_seckey_write_to_file`,
 * `ed25519_pubkey_write_to_file`; `hs_service.c: write_address_to_file`):
 *
 * - `hs_ed25519_secret_key`: a 32-byte header, the string `== ed25519v1-secret: type0 ==`
 *   (29 bytes) NUL-padded to 32, then the 64-byte expanded secret key `a ‖ RH` (clamped
 *   scalar, nonce prefix). There is no seed: signing must use the expanded key.
 * - `hs_ed25519_public_key`: `== ed25519v1-public: type0 ==` NUL-padded to 32, then the
 *   32-byte public key `A`.
 * - `hostname`: the onion address followed by one `\n`.
 *
 * tor accepts exactly these sizes (`len == sizeof(key)`) and the HS key loader requires the
 * tag `type0`, so the parsers below accept exactly the 32-byte header and the key length.
 *
 * Key files are parsed as untrusted input: every failure is a {@link DecodeError}.
 * {@link HsIdentityKeypair} never reveals its secret bytes through `toJSON`, `toString` or
 * Node's inspector (via the `Symbol.for('nodejs.util.inspect.custom')` key; core does not
 * import `node:util`).
 */
import { bytesEqual, concatBytes, fromAscii, toHex, utf8 } from '../bytes.js';
import {
  ED25519_L,
  ed25519ExpandSeed,
  ed25519PublicFromExpanded,
  ed25519SignExpanded,
  ed25519IsValidPublicKey,
  leToBigint,
} from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import type { RandomBytes } from '../random.js';
import { blindKeypair, type BlindedKeypair } from './blinding.js';
import { decodeOnionAddress, encodeOnionAddress } from './address.js';

/** File name of the secret key in a HiddenServiceDir. */
export const SECRET_KEY_FILE_NAME = 'hs_ed25519_secret_key';
/** File name of the public key in a HiddenServiceDir. */
export const PUBLIC_KEY_FILE_NAME = 'hs_ed25519_public_key';
/** File name of the onion address in a HiddenServiceDir. */
export const HOSTNAME_FILE_NAME = 'hostname';

/** Length of the tagged-file header (tor's `char header[32]`). */
export const KEY_FILE_HEADER_LENGTH = 32;
/** Length of an expanded ed25519 secret key `a ‖ RH`. */
export const EXPANDED_SECRET_KEY_LENGTH = 64;
/** Length of an ed25519 public key. */
export const PUBLIC_KEY_LENGTH = 32;
/** Total size of `hs_ed25519_secret_key` (96 bytes). */
export const SECRET_KEY_FILE_LENGTH = KEY_FILE_HEADER_LENGTH + EXPANDED_SECRET_KEY_LENGTH;
/** Total size of `hs_ed25519_public_key` (64 bytes). */
export const PUBLIC_KEY_FILE_LENGTH = KEY_FILE_HEADER_LENGTH + PUBLIC_KEY_LENGTH;
/** Upper bound on a `hostname` file we are willing to parse. */
export const HOSTNAME_FILE_MAX_LENGTH = 128;

/** `"== <typestring>: <tag> =="` NUL-padded to 32 bytes, as tor builds it with snprintf. */
function taggedHeader(typestring: string, tag: string): Uint8Array {
  const text = utf8(`== ${typestring}: ${tag} ==`);
  const out = new Uint8Array(KEY_FILE_HEADER_LENGTH);
  out.set(text, 0);
  return out;
}

/** The 32-byte header of `hs_ed25519_secret_key`. */
export const SECRET_KEY_FILE_HEADER: Uint8Array = taggedHeader('ed25519v1-secret', 'type0');
/** The 32-byte header of `hs_ed25519_public_key`. */
export const PUBLIC_KEY_FILE_HEADER: Uint8Array = taggedHeader('ed25519v1-public', 'type0');

/** Describe a header for an error message without echoing arbitrary bytes. */
function describeHeader(header: Uint8Array): string {
  const end = header.indexOf(0);
  const text = fromAscii(end < 0 ? header : header.subarray(0, end));
  return /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : 'non-ASCII bytes';
}

function checkTaggedFile(file: Uint8Array, header: Uint8Array, bodyLength: number, what: string): Uint8Array {
  if (file.length !== KEY_FILE_HEADER_LENGTH + bodyLength) {
    throw new DecodeError(
      'TB_ERR_KEYFILE_LENGTH',
      `${what} must be exactly ${KEY_FILE_HEADER_LENGTH + bodyLength} bytes, got ${file.length}`,
    );
  }
  const got = file.subarray(0, KEY_FILE_HEADER_LENGTH);
  if (!bytesEqual(got, header)) {
    throw new DecodeError(
      'TB_ERR_KEYFILE_HEADER',
      `${what} has header ${describeHeader(got)}, expected ${describeHeader(header)} (NUL-padded to 32 bytes)`,
    );
  }
  return file.slice(KEY_FILE_HEADER_LENGTH);
}

/** True if the expanded key's scalar is usable: non-zero modulo ℓ (so `a·B` is not the identity). */
function scalarIsUsable(expanded: Uint8Array): boolean {
  return leToBigint(expanded.subarray(0, 32)) % ED25519_L !== 0n;
}

/**
 * Parse `hs_ed25519_secret_key` (exactly 96 bytes). Returns the 64-byte expanded secret key.
 * Errors: TB_ERR_KEYFILE_LENGTH, TB_ERR_KEYFILE_HEADER, TB_ERR_KEYFILE_KEY (scalar ≡ 0 mod ℓ).
 */
export function decodeSecretKeyFile(file: Uint8Array): Uint8Array {
  const key = checkTaggedFile(file, SECRET_KEY_FILE_HEADER, EXPANDED_SECRET_KEY_LENGTH, SECRET_KEY_FILE_NAME);
  if (!scalarIsUsable(key)) {
    throw new DecodeError('TB_ERR_KEYFILE_KEY', `${SECRET_KEY_FILE_NAME} holds an unusable (zero) secret scalar`);
  }
  return key;
}

/** Encode a 64-byte expanded secret key as `hs_ed25519_secret_key` (96 bytes). */
export function encodeSecretKeyFile(expandedSecretKey: Uint8Array): Uint8Array {
  if (expandedSecretKey.length !== EXPANDED_SECRET_KEY_LENGTH) throw new RangeError('expanded secret key must be 64 bytes');
  return concatBytes(SECRET_KEY_FILE_HEADER, expandedSecretKey);
}

/**
 * Parse `hs_ed25519_public_key` (exactly 64 bytes). Returns the 32-byte public key.
 * Errors: TB_ERR_KEYFILE_LENGTH, TB_ERR_KEYFILE_HEADER, TB_ERR_KEYFILE_KEY (not a curve point).
 */
export function decodePublicKeyFile(file: Uint8Array): Uint8Array {
  const key = checkTaggedFile(file, PUBLIC_KEY_FILE_HEADER, PUBLIC_KEY_LENGTH, PUBLIC_KEY_FILE_NAME);
  if (!ed25519IsValidPublicKey(key)) {
    throw new DecodeError('TB_ERR_KEYFILE_KEY', `${PUBLIC_KEY_FILE_NAME} does not hold a valid ed25519 public key (bad point, identity or torsion)`);
  }
  return key;
}

/** Encode a 32-byte public key as `hs_ed25519_public_key` (64 bytes). */
export function encodePublicKeyFile(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) throw new RangeError('public key must be 32 bytes');
  return concatBytes(PUBLIC_KEY_FILE_HEADER, publicKey);
}

/** The `hostname` file contents for an address (`"<addr>.onion\n"`, as tor writes it). */
export function encodeHostnameFile(publicKey: Uint8Array): string {
  return `${encodeOnionAddress(publicKey)}\n`;
}

/**
 * Parse a `hostname` file: one v3 onion address (with `.onion`), optionally followed by a
 * single `\n` (tor writes the newline). Returns the 32-byte public key it names.
 * Errors: TB_ERR_HOSTNAME_FILE (size or shape), or the TB_ERR_ONION_* code of the address.
 */
export function decodeHostnameFile(file: Uint8Array | string): Uint8Array {
  if (file.length > HOSTNAME_FILE_MAX_LENGTH) {
    throw new DecodeError('TB_ERR_HOSTNAME_FILE', `${HOSTNAME_FILE_NAME} file is too long (${file.length} > ${HOSTNAME_FILE_MAX_LENGTH})`);
  }
  let text = typeof file === 'string' ? file : fromAscii(file);
  if (text.endsWith('\n')) text = text.slice(0, -1);
  if (!/^[a-zA-Z2-7]{56}\.onion$/.test(text)) {
    throw new DecodeError('TB_ERR_HOSTNAME_FILE', `${HOSTNAME_FILE_NAME} file must hold one v3 address "<56 base32 chars>.onion" and a newline`);
  }
  return decodeOnionAddress(text).publicKey;
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * An onion-service identity keypair (`KP_hs_id`, `KS_hs_id`) as tor stores it: the public key
 * and the 64-byte expanded secret key. No seed is kept (tor's files have none).
 *
 * Secret bytes never appear in `JSON.stringify`, `String()` or `console.log`/`util.inspect`
 * output; read them only through {@link HsIdentityKeypair.expandedSecretKey}.
 */
export class HsIdentityKeypair {
  /** `KP_hs_id`, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** The onion address, `<56 chars>.onion`, lower case. */
  readonly address: string;
  readonly #expanded: Uint8Array;

  private constructor(expanded: Uint8Array, publicKey: Uint8Array) {
    this.#expanded = expanded;
    this.publicKey = publicKey;
    this.address = encodeOnionAddress(publicKey);
  }

  /**
   * A keypair from a 64-byte expanded secret key (e.g. from `hs_ed25519_secret_key` or
   * ADD_ONION's `ED25519-V3:` blob). Throws DecodeError TB_ERR_KEYFILE_KEY for a wrong length or
   * a scalar ≡ 0 mod ℓ.
   */
  static fromExpandedSecretKey(expandedSecretKey: Uint8Array): HsIdentityKeypair {
    if (expandedSecretKey.length !== EXPANDED_SECRET_KEY_LENGTH) {
      throw new DecodeError('TB_ERR_KEYFILE_KEY', `expanded secret key must be ${EXPANDED_SECRET_KEY_LENGTH} bytes, got ${expandedSecretKey.length}`);
    }
    if (!scalarIsUsable(expandedSecretKey)) {
      throw new DecodeError('TB_ERR_KEYFILE_KEY', 'secret scalar is zero modulo the group order');
    }
    const expanded = expandedSecretKey.slice();
    return new HsIdentityKeypair(expanded, ed25519PublicFromExpanded(expanded));
  }

  /** A keypair from a 32-byte RFC 8032 seed (expanded with SHA-512 and clamped, as tor does). */
  static fromSeed(seed: Uint8Array): HsIdentityKeypair {
    if (seed.length !== 32) throw new RangeError('ed25519 seed must be 32 bytes');
    return HsIdentityKeypair.fromExpandedSecretKey(ed25519ExpandSeed(seed));
  }

  /** A new keypair from 32 random bytes drawn with `randomBytes` (tor's `ed25519_keypair_generate`). */
  static generate(randomBytes: RandomBytes): HsIdentityKeypair {
    const seed = randomBytes(32);
    if (seed.length !== 32) throw new RangeError('randomBytes(32) must return 32 bytes');
    const kp = HsIdentityKeypair.fromSeed(seed);
    seed.fill(0);
    return kp;
  }

  /** The 64-byte expanded secret key `a ‖ RH` (a copy). Secret: never log it. */
  get expandedSecretKey(): Uint8Array {
    return this.#expanded.slice();
  }

  /** The 56-character label without ".onion". */
  get label(): string {
    return this.address.slice(0, -6);
  }

  /** Public key as lower-case hex. */
  get publicKeyHex(): string {
    return toHex(this.publicKey);
  }

  /** EdDSA signature with the expanded key (tor's `ed25519_sign`). */
  sign(message: Uint8Array): Uint8Array {
    return ed25519SignExpanded(this.#expanded, message, this.publicKey);
  }

  /** The blinded keypair for time period `periodNum` of `periodLengthMinutes`. */
  blind(periodNum: number | bigint, periodLengthMinutes: number): BlindedKeypair {
    return blindKeypair(this.#expanded, periodNum, periodLengthMinutes);
  }

  /** True if `other` has the same public key. */
  samePublicKey(other: HsIdentityKeypair): boolean {
    return bytesEqual(this.publicKey, other.publicKey);
  }

  /** Public data only. */
  toJSON(): { address: string; publicKeyHex: string } {
    return { address: this.address, publicKeyHex: this.publicKeyHex };
  }

  toString(): string {
    return `HsIdentityKeypair(${this.address})`;
  }

  [INSPECT](): string {
    return `HsIdentityKeypair { address: '${this.address}', secret: [redacted] }`;
  }
}

/** The three files of a HiddenServiceDir, as bytes. */
export interface TorKeyFiles {
  /** `hs_ed25519_secret_key` (96 bytes). Secret. */
  readonly secretKeyFile: Uint8Array;
  /** `hs_ed25519_public_key` (64 bytes). */
  readonly publicKeyFile: Uint8Array;
  /** `hostname` (`"<addr>.onion\n"`). */
  readonly hostnameFile: Uint8Array;
}

/** Encode a keypair as tor's three HiddenServiceDir files. */
export function encodeTorKeyFiles(keypair: HsIdentityKeypair): TorKeyFiles {
  const expanded = keypair.expandedSecretKey;
  const secretKeyFile = encodeSecretKeyFile(expanded);
  expanded.fill(0);
  return {
    secretKeyFile,
    publicKeyFile: encodePublicKeyFile(keypair.publicKey),
    hostnameFile: utf8(encodeHostnameFile(keypair.publicKey)),
  };
}

/** Input of {@link identityFromTorKeyFiles}: the secret file plus whichever others exist. */
export interface TorKeyFilesInput {
  readonly secretKeyFile: Uint8Array;
  readonly publicKeyFile?: Uint8Array | undefined;
  readonly hostnameFile?: Uint8Array | string | undefined;
}

/**
 * Load an identity from tor's key files and check they agree: the public key derived from the
 * secret file must equal the public file's key and the hostname's key. A disagreement raises
 * TorbalanceError TB_ERR_KEYFILE_MISMATCH naming the file that disagrees (kind `config`); parse
 * failures raise the DecodeError of the file's parser.
 */
export function identityFromTorKeyFiles(files: TorKeyFilesInput): HsIdentityKeypair {
  const keypair = HsIdentityKeypair.fromExpandedSecretKey(decodeSecretKeyFile(files.secretKeyFile));
  if (files.publicKeyFile !== undefined) {
    const pub = decodePublicKeyFile(files.publicKeyFile);
    if (!bytesEqual(pub, keypair.publicKey)) {
      throw new TorbalanceError(
        'TB_ERR_KEYFILE_MISMATCH',
        'config',
        `${PUBLIC_KEY_FILE_NAME} (${encodeOnionAddress(pub)}) does not match the key derived from ${SECRET_KEY_FILE_NAME} (${keypair.address})`,
      );
    }
  }
  if (files.hostnameFile !== undefined) {
    const pub = decodeHostnameFile(files.hostnameFile);
    if (!bytesEqual(pub, keypair.publicKey)) {
      throw new TorbalanceError(
        'TB_ERR_KEYFILE_MISMATCH',
        'config',
        `${HOSTNAME_FILE_NAME} (${encodeOnionAddress(pub)}) does not match the key derived from ${SECRET_KEY_FILE_NAME} (${keypair.address})`,
      );
    }
  }
  return keypair;
}
