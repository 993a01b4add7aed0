/**
 * Tor ed25519 certificates (cert-spec.txt §2, prop 220; tor `torcert.c: tor_cert_parse,
 * tor_cert_sign_impl, tor_cert_checksig`, trunnel `ed25519_cert.trunnel`).
 *
 * Layout: `VERSION(1)=01 | CERT_TYPE(1) | EXPIRATION_DATE(4, hours since the epoch) |
 * CERT_KEY_TYPE(1) | CERTIFIED_KEY(32) | N_EXTENSIONS(1) | EXTENSIONS | SIGNATURE(64)`;
 * extension: `ExtLength(2) | ExtType(1) | ExtFlags(1) | ExtData(ExtLength)`. The signature is
 * a plain ed25519 signature over every byte before it.
 *
 * Parsing follows tor exactly: version must be 1; every byte must be consumed; extension 4
 * (signed-with-ed25519-key) must be exactly 32 bytes and may appear once; an unrecognized
 * extension with the AFFECTS_VALIDATION flag (bit 0) makes the certificate invalid (tor and
 * Arti; stem 1.8.1 accepts it). The cert type is NOT checked by the parser (tor's trunnel
 * parser accepts any type); callers check it with {@link verifyCert}.
 *
 * Expiry: a certificate is expired at `now` iff `now > EXPIRATION_DATE·3600` (tor
 * `tor_cert_checksig`). New certificates get `EXPIRATION_DATE = ceil((now + lifetime)/3600)`.
 */
import { ByteReader, bytesEqual, concatBytes, fromBase64, toBase64, u16be, u32be, wrapBase64 } from '../bytes.js';
import { ed25519SignExpanded, ed25519SignSeed, ed25519Verify } from '../crypto/index.js';
import { DecodeError } from '../errors.js';

/** Certificate types tor uses (cert-spec §A.1). Others parse generically. */
export const CERT_TYPE = {
  /** Identity key signs the signing key (router descriptors). */
  IDENTITY_SIGNING: 0x04,
  /** Signing key signs a TLS link certificate digest. */
  SIGNING_LINK: 0x05,
  /** Signing key signs a link authentication key. */
  SIGNING_AUTH: 0x06,
  /** Blinded onion-service key signs the descriptor signing key. */
  HS_DESC_SIGNING: 0x08,
  /** Descriptor signing key signs an introduction point's auth key. */
  HS_IP_AUTH: 0x09,
  /** Relay ntor onion key cross-certifies the ed25519 identity. */
  NTOR_ONION_CROSS: 0x0a,
  /** Descriptor signing key signs the ed25519 form of an intro point's enc key. */
  HS_IP_ENC: 0x0b,
} as const;

/** CERT_KEY_TYPE values. */
export const CERT_KEY_TYPE = { ED25519: 0x01, SHA256_RSA: 0x02, SHA256_X509: 0x03 } as const;

/** Extension type "signed-with-ed25519-key" (cert-spec §2.2.1). */
export const CERTEXT_SIGNED_WITH_KEY = 0x04;
/** Extension flag: the certificate is invalid if this extension is not understood. */
export const CERTEXT_FLAG_AFFECTS_VALIDATION = 0x01;

const SIG_LEN = 64;
/** Largest certificate we accept (tor's trunnel parser has no bound; 255 extensions of 64 KiB is absurd). */
export const MAX_CERT_LEN = 8192;

export interface CertExtension {
  readonly type: number;
  readonly flags: number;
  readonly data: Uint8Array;
}

/** A parsed (not yet verified) certificate. */
export interface Ed25519Cert {
  readonly version: number;
  readonly certType: number;
  /** EXPIRATION_DATE: hours since the epoch. */
  readonly expirationHours: number;
  readonly certKeyType: number;
  readonly certifiedKey: Uint8Array;
  readonly extensions: readonly CertExtension[];
  /** The key in the signed-with-ed25519-key extension, if present. */
  readonly signingKey: Uint8Array | undefined;
  readonly signature: Uint8Array;
  /** Every byte before the signature (what the signature covers). */
  readonly signedPart: Uint8Array;
  /** The whole certificate as parsed. */
  readonly encoded: Uint8Array;
}

/** Unix time (seconds) at which the certificate expires. */
export function certExpiresAt(cert: Pick<Ed25519Cert, 'expirationHours'>): number {
  return cert.expirationHours * 3600;
}

/** True iff the certificate is expired at `nowSeconds` (`now > expiration·3600`, as tor). */
export function certIsExpired(cert: Pick<Ed25519Cert, 'expirationHours'>, nowSeconds: number): boolean {
  return nowSeconds > certExpiresAt(cert);
}

/** `ceil((now + lifetime)/3600)`, tor's `CEIL_DIV(now + lifetime, 3600)`. */
export function certExpirationHours(nowSeconds: number, lifetimeSeconds: number): number {
  return Math.ceil((nowSeconds + lifetimeSeconds) / 3600);
}

function readExtension(r: ByteReader): CertExtension {
  const len = r.u16();
  const type = r.u8();
  const flags = r.u8();
  const data = r.bytes(len);
  if (type === CERTEXT_SIGNED_WITH_KEY) {
    if (len !== 32) throw new DecodeError('TB_ERR_CERT_EXTENSION', `signed-with-key extension has ${len} bytes, not 32`);
  } else if ((flags & CERTEXT_FLAG_AFFECTS_VALIDATION) !== 0) {
    throw new DecodeError('TB_ERR_CERT_CRITICAL_EXTENSION', `unrecognized extension type ${type} has the affects-validation flag`);
  }
  return { type, flags, data };
}

/** Decode one extension (`len(2) ‖ type ‖ flags ‖ data`) with the same rules as inside a certificate; all bytes must be used. */
export function decodeCertExtension(bytes: Uint8Array): CertExtension {
  const r = new ByteReader(bytes, 'TB_ERR_CERT_TRUNCATED');
  const ext = readExtension(r);
  if (r.remaining !== 0) throw new DecodeError('TB_ERR_CERT_TRAILING_BYTES', `${r.remaining} bytes after the extension`);
  return ext;
}

/** Encode one extension. */
export function encodeCertExtension(ext: CertExtension): Uint8Array {
  if (ext.data.length > 0xffff) throw new RangeError('extension too long');
  return concatBytes(u16be(ext.data.length), new Uint8Array([ext.type & 0xff, ext.flags & 0xff]), ext.data);
}

/**
 * Parse a certificate from untrusted bytes. Throws DecodeError:
 * TB_ERR_CERT_TOO_LARGE, TB_ERR_CERT_TRUNCATED, TB_ERR_CERT_VERSION, TB_ERR_CERT_EXTENSION
 * (signed-with-key extension not 32 bytes, or repeated), TB_ERR_CERT_CRITICAL_EXTENSION
 * (unknown extension with AFFECTS_VALIDATION), TB_ERR_CERT_TRAILING_BYTES.
 */
export function parseCert(bytes: Uint8Array): Ed25519Cert {
  if (bytes.length > MAX_CERT_LEN) throw new DecodeError('TB_ERR_CERT_TOO_LARGE', `certificate is ${bytes.length} bytes`);
  const r = new ByteReader(bytes, 'TB_ERR_CERT_TRUNCATED');
  const version = r.u8();
  if (version !== 1) throw new DecodeError('TB_ERR_CERT_VERSION', `unsupported certificate version ${version}`);
  const certType = r.u8();
  const expirationHours = r.u32();
  const certKeyType = r.u8();
  const certifiedKey = r.bytes(32);
  const nExt = r.u8();
  const extensions: CertExtension[] = [];
  let signingKey: Uint8Array | undefined;
  for (let i = 0; i < nExt; i++) {
    const ext = readExtension(r);
    if (ext.type === CERTEXT_SIGNED_WITH_KEY) {
      if (signingKey !== undefined) throw new DecodeError('TB_ERR_CERT_EXTENSION', 'signed-with-key extension repeated');
      signingKey = ext.data;
    }
    extensions.push(ext);
  }
  const signedLen = r.offset;
  const signature = r.bytes(SIG_LEN);
  if (r.remaining !== 0) throw new DecodeError('TB_ERR_CERT_TRAILING_BYTES', `${r.remaining} bytes after the certificate signature`);
  return {
    version,
    certType,
    expirationHours,
    certKeyType,
    certifiedKey,
    extensions,
    signingKey,
    signature,
    signedPart: bytes.slice(0, signedLen),
    encoded: bytes.slice(),
  };
}

export interface VerifyCertOptions {
  /** Required cert type (TB_ERR_CERT_TYPE otherwise). */
  readonly expectedType?: number;
  /**
   * The key that must have signed the certificate. If the certificate also embeds a
   * signing key, the two must be equal (TB_ERR_CERT_KEY_MISMATCH, as Arti). If absent, the
   * embedded key is used (TB_ERR_CERT_NO_SIGNING_KEY if there is none).
   */
  readonly signingKey?: Uint8Array;
  /** Require the signed-with-ed25519-key extension even when `signingKey` is given (tor's HS rule). */
  readonly requireSigningKeyExtension?: boolean;
  /** If given, reject a certificate expired at this time (TB_ERR_CERT_EXPIRED). */
  readonly nowSeconds?: number;
}

/**
 * Check a parsed certificate: type, signing key, expiry, then the signature (the order of
 * tor's `cert_is_valid` + `tor_cert_checksig`). Returns the key that verified it. Throws
 * DecodeError TB_ERR_CERT_TYPE, TB_ERR_CERT_NO_SIGNING_KEY, TB_ERR_CERT_KEY_MISMATCH,
 * TB_ERR_CERT_EXPIRED or TB_ERR_CERT_SIGNATURE.
 */
export function verifyCert(cert: Ed25519Cert, options: VerifyCertOptions = {}): Uint8Array {
  if (options.expectedType !== undefined && cert.certType !== options.expectedType) {
    throw new DecodeError('TB_ERR_CERT_TYPE', `certificate type ${cert.certType} where ${options.expectedType} is required`);
  }
  if (options.requireSigningKeyExtension === true && cert.signingKey === undefined) {
    throw new DecodeError('TB_ERR_CERT_NO_SIGNING_KEY', 'certificate lacks the signed-with-ed25519-key extension');
  }
  let key: Uint8Array;
  if (options.signingKey !== undefined) {
    if (cert.signingKey !== undefined && !bytesEqual(cert.signingKey, options.signingKey)) {
      throw new DecodeError('TB_ERR_CERT_KEY_MISMATCH', 'certificate was signed by a different key than required');
    }
    key = options.signingKey;
  } else if (cert.signingKey !== undefined) {
    key = cert.signingKey;
  } else {
    throw new DecodeError('TB_ERR_CERT_NO_SIGNING_KEY', 'certificate has no signing key and none was given');
  }
  if (options.nowSeconds !== undefined && certIsExpired(cert, options.nowSeconds)) {
    throw new DecodeError('TB_ERR_CERT_EXPIRED', `certificate expired at unix time ${certExpiresAt(cert)}`);
  }
  if (!ed25519Verify(cert.signature, cert.signedPart, key)) {
    throw new DecodeError('TB_ERR_CERT_SIGNATURE', 'certificate signature is invalid');
  }
  return key;
}

/** An ed25519 signing key as tor keeps it: the 64-byte expanded secret and the public key. */
export interface Ed25519SigningKey {
  /** 64 bytes `a ‖ RH`; secret. */
  readonly expandedSecretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The 32-byte seed, when known (keys we generate); enables the faster OpenSSL signer. Secret. */
  readonly seed?: Uint8Array;
}

/** Sign `message` with `key` (seed-based OpenSSL path when the seed is known; same bytes). */
export function signWith(key: Ed25519SigningKey, message: Uint8Array): Uint8Array {
  return key.seed === undefined
    ? ed25519SignExpanded(key.expandedSecretKey, message, key.publicKey)
    : ed25519SignSeed(key.seed, message, key.publicKey);
}

export interface BuildCertInput {
  readonly certType: number;
  readonly certifiedKey: Uint8Array;
  /** Defaults to 1 (ed25519). */
  readonly certKeyType?: number;
  readonly expirationHours: number;
  readonly signingKey: Ed25519SigningKey;
  /** Add the signed-with-ed25519-key extension (tor's CERT_FLAG_INCLUDE_SIGNING_KEY). Default true. */
  readonly includeSigningKey?: boolean;
  /** Extra extensions, emitted after the signing-key extension. */
  readonly extraExtensions?: readonly CertExtension[];
}

/** The unsigned body of a certificate (everything the signature covers). */
export function encodeCertBody(input: Omit<BuildCertInput, 'signingKey'> & { readonly signingPublicKey?: Uint8Array }): Uint8Array {
  if (input.certifiedKey.length !== 32) throw new RangeError('certified key must be 32 bytes');
  if (!Number.isInteger(input.expirationHours) || input.expirationHours < 0 || input.expirationHours > 0xffffffff) {
    throw new RangeError('expiration hours out of range');
  }
  const exts: CertExtension[] = [];
  if (input.signingPublicKey !== undefined) {
    if (input.signingPublicKey.length !== 32) throw new RangeError('signing key must be 32 bytes');
    exts.push({ type: CERTEXT_SIGNED_WITH_KEY, flags: 0, data: input.signingPublicKey });
  }
  for (const e of input.extraExtensions ?? []) exts.push(e);
  if (exts.length > 255) throw new RangeError('too many extensions');
  const parts: Uint8Array[] = [
    new Uint8Array([1, input.certType & 0xff]),
    u32be(input.expirationHours),
    new Uint8Array([input.certKeyType ?? CERT_KEY_TYPE.ED25519]),
    input.certifiedKey,
    new Uint8Array([exts.length]),
  ];
  for (const e of exts) parts.push(encodeCertExtension(e));
  return concatBytes(...parts);
}

/** Build and sign a certificate (tor `tor_cert_sign_impl`). Returns the encoded bytes. */
export function buildCert(input: BuildCertInput): Uint8Array {
  const body = encodeCertBody({
    ...input,
    ...((input.includeSigningKey ?? true) ? { signingPublicKey: input.signingKey.publicKey } : {}),
  });
  const sig = signWith(input.signingKey, body);
  return concatBytes(body, sig);
}

const PEM_BEGIN = '-----BEGIN ED25519 CERT-----\n';
const PEM_END = '-----END ED25519 CERT-----';

/**
 * PEM form as tor writes it (`tor_cert_encode_ed22519`): BEGIN line, base64 in 64-column
 * lines each ending in `\n`, END line with no trailing newline.
 */
export function encodeCertPem(encoded: Uint8Array): string {
  return PEM_BEGIN + wrapBase64(toBase64(encoded)) + PEM_END;
}

/** Parse the PEM form (trailing newline optional). Throws TB_ERR_CERT_PEM or a parse error. */
export function decodeCertPem(text: string): Ed25519Cert {
  const t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!t.startsWith(PEM_BEGIN) || !t.endsWith('\n' + PEM_END) || t.length > 4 * MAX_CERT_LEN) {
    throw new DecodeError('TB_ERR_CERT_PEM', 'not an ED25519 CERT PEM block');
  }
  const body = t.slice(PEM_BEGIN.length, t.length - PEM_END.length - 1).split('\n').join('');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(body);
  } catch (cause) {
    throw new DecodeError('TB_ERR_CERT_PEM', 'certificate PEM is not base64', undefined, { cause });
  }
  return parseCert(bytes);
}
