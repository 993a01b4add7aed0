/**
 * The outer (plaintext) document of a v3 onion-service descriptor (rend-spec-v3 §2.4; tor
 * `hs_descriptor.c: desc_encode_v3, hs_desc_decode_plaintext, desc_decode_plaintext_v3,
 * desc_sig_is_valid, cert_is_valid`).
 *
 * ```
 * hs-descriptor 3
 * descriptor-lifetime <minutes>                       (tor writes 180; parser: ≤ 720)
 * descriptor-signing-key-cert
 * -----BEGIN ED25519 CERT-----  (type 08, certifies the descriptor signing key, ext 04 = blinded key)
 * revision-counter <uint64>
 * superencrypted
 * -----BEGIN MESSAGE-----  (salt ‖ ciphertext ‖ MAC of the middle layer, 64 columns)
 * signature <ed25519 over "Tor onion service descriptor sig v3" ‖ text up to and including the "\n" before "signature", 86-char unpadded base64>
 * ```
 *
 * Two steps, as Arti's `HsDesc::parse → check_signature → check_valid_at`:
 * {@link parseOuterLayer} checks only syntax (size < 50000, token table, version 3, lifetime,
 * cert parses, MESSAGE length) and returns an {@link UncheckedOuterLayer}; nothing in it is
 * trustworthy. {@link checkOuterLayer} then checks the signing-key certificate (type 08,
 * ext 04 present, signed by that blinded key, not expired at `now`), the descriptor
 * signature and, if given, that the blinded key is the expected one, and returns a
 * {@link CheckedOuterLayer} — the only thing the decryption step accepts.
 */
import { concatBytes, toBase64, toBase64NoPad, utf8, wrapBase64 } from '../bytes.js';
import { CERT_TYPE, encodeCertPem, parseCert, signWith, verifyCert, type Ed25519Cert, type Ed25519SigningKey } from '../cert/ed25519-cert.js';
import { ed25519Verify } from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { checkRules, requireToken, rule, tokenize, type NetdocToken, type TokenRule } from '../netdoc/tokenize.js';
import { MAC_LEN, SALT_LEN } from './encryption.js';
import { base64Exact, parseDecimal, rewrap, UINT32_MAX, UINT64_MAX } from './util.js';

/** HS_DESC_MAX_LEN / consensus HSV3MaxDescriptorSize default: descriptors must be shorter. */
export const MAX_DESCRIPTOR_SIZE = 50000;
/** HS_DESC_MAX_LIFETIME in minutes. */
export const MAX_LIFETIME_MINUTES = 720;
/** HS_DESC_DEFAULT_LIFETIME in minutes. */
export const DEFAULT_LIFETIME_MINUTES = 180;
/** The signature prefix (no NUL). */
export const DESCRIPTOR_SIG_PREFIX = utf8('Tor onion service descriptor sig v3');

/** Layer table (tor `hs_desc_v3_token_table`). */
export const OUTER_RULES: readonly TokenRule[] = [
  rule('hs-descriptor', 'T1_START', { eq: 1 }, 'none'),
  rule('descriptor-lifetime', 'T1', { eq: 1 }, 'none'),
  rule('descriptor-signing-key-cert', 'T1', 'NO_ARGS', 'required'),
  rule('revision-counter', 'T1', { eq: 1 }, 'none'),
  rule('superencrypted', 'T1', 'NO_ARGS', 'required'),
  rule('signature', 'T1_END', { eq: 1 }, 'none'),
];

declare const checkedBrand: unique symbol;

/** The outer document, parsed but NOT verified. */
export interface UncheckedOuterLayer {
  readonly version: number;
  readonly lifetimeMinutes: number;
  readonly signingKeyCert: Ed25519Cert;
  readonly revisionCounter: bigint;
  /** The middle layer's `salt ‖ ciphertext ‖ MAC`. */
  readonly superencryptedBlob: Uint8Array;
  readonly signature: Uint8Array;
  /** The signed text: from the start up to and including the newline before "signature". */
  readonly signedText: string;
}

/** An outer document whose certificate, signature (and blinded key, if asked) were verified. */
export interface CheckedOuterLayer extends UncheckedOuterLayer {
  /** The descriptor signing key (the type-08 certificate's certified key). */
  readonly descriptorSigningKey: Uint8Array;
  /** The blinded key (the type-08 certificate's signed-with-key extension). */
  readonly blindedPublicKey: Uint8Array;
  readonly [checkedBrand]: true;
}

const PARSE = 'TB_ERR_HSDESC_OUTER_PARSE';

export interface ParseOuterOptions {
  /** Default 50000 (tor rejects `length >= max`). */
  readonly maxSize?: number;
}

/**
 * Syntax-only parse of a descriptor. Throws DecodeError TB_ERR_HSDESC_TOO_LARGE,
 * TB_ERR_HSDESC_OUTER_PARSE, TB_ERR_HSDESC_LIFETIME or TB_ERR_HSDESC_CERT (unparseable
 * signing-key certificate).
 */
export function parseOuterLayer(text: string, options: ParseOuterOptions = {}): UncheckedOuterLayer {
  const max = options.maxSize ?? MAX_DESCRIPTOR_SIZE;
  if (text.length >= max) throw new DecodeError('TB_ERR_HSDESC_TOO_LARGE', `descriptor is ${text.length} bytes; the limit is below ${max}`);
  let tokens: NetdocToken[];
  try {
    tokens = tokenize(text, { maxLength: max });
    checkRules(tokens, OUTER_RULES);
  } catch (e) {
    rewrap(PARSE, 'descriptor', e);
  }
  const version = Number(parseDecimal(requireToken(tokens, 'hs-descriptor').args[0]!, UINT32_MAX, PARSE, 'descriptor version'));
  if (version !== 3) throw new DecodeError(PARSE, `unsupported descriptor version ${version}`);
  const lifetimeMinutes = Number(parseDecimal(requireToken(tokens, 'descriptor-lifetime').args[0]!, UINT32_MAX, PARSE, 'descriptor-lifetime'));
  if (lifetimeMinutes > MAX_LIFETIME_MINUTES) {
    throw new DecodeError('TB_ERR_HSDESC_LIFETIME', `descriptor-lifetime ${lifetimeMinutes} exceeds ${MAX_LIFETIME_MINUTES} minutes`);
  }
  const certTok = requireToken(tokens, 'descriptor-signing-key-cert');
  if (certTok.object?.tag !== 'ED25519 CERT') throw new DecodeError(PARSE, 'descriptor signing cert has the wrong object type', certTok.line);
  let signingKeyCert: Ed25519Cert;
  try {
    signingKeyCert = parseCert(certTok.object.data);
  } catch (e) {
    rewrap('TB_ERR_HSDESC_CERT', 'descriptor signing key certificate', e);
  }
  const revisionCounter = parseDecimal(requireToken(tokens, 'revision-counter').args[0]!, UINT64_MAX, PARSE, 'revision-counter');
  const sup = requireToken(tokens, 'superencrypted');
  if (sup.object?.tag !== 'MESSAGE') throw new DecodeError(PARSE, 'superencrypted section is not a MESSAGE', sup.line);
  if (sup.object.data.length <= SALT_LEN + MAC_LEN) throw new DecodeError(PARSE, 'superencrypted section is too short', sup.line);
  const sigTok = requireToken(tokens, 'signature');
  const sigB64 = sigTok.args[0]!;
  if (sigB64.length !== 86) throw new DecodeError(PARSE, 'descriptor signature has the wrong length', sigTok.line);
  const signature = base64Exact(sigB64, 64, PARSE, 'descriptor signature');
  return {
    version,
    lifetimeMinutes,
    signingKeyCert,
    revisionCounter,
    superencryptedBlob: sup.object.data,
    signature,
    signedText: text.slice(0, sigTok.offset),
  };
}

export interface CheckOuterOptions {
  /** The signing-key certificate must not be expired at this time (tor checks `approx_time()`). */
  readonly nowSeconds: number;
  /** If given, the certificate's blinded key must equal it (TB_ERR_HSDESC_WRONG_BLINDED_KEY). */
  readonly expectedBlindedKey?: Uint8Array;
}

/**
 * Verify an unchecked outer layer in tor's order: certificate (TB_ERR_HSDESC_CERT,
 * TB_ERR_HSDESC_CERT_EXPIRED), descriptor signature (TB_ERR_HSDESC_SIGNATURE), blinded key
 * (TB_ERR_HSDESC_WRONG_BLINDED_KEY).
 */
export function checkOuterLayer(outer: UncheckedOuterLayer, options: CheckOuterOptions): CheckedOuterLayer {
  const cert = outer.signingKeyCert;
  let blindedPublicKey: Uint8Array;
  try {
    blindedPublicKey = verifyCert(cert, { expectedType: CERT_TYPE.HS_DESC_SIGNING, requireSigningKeyExtension: true, nowSeconds: options.nowSeconds });
  } catch (e) {
    if (e instanceof DecodeError) {
      const code = e.code === 'TB_ERR_CERT_EXPIRED' ? 'TB_ERR_HSDESC_CERT_EXPIRED' : 'TB_ERR_HSDESC_CERT';
      throw new DecodeError(code, `descriptor signing key certificate: ${e.message}`, undefined, { cause: e });
    }
    throw e;
  }
  const descriptorSigningKey = cert.certifiedKey;
  if (!ed25519Verify(outer.signature, concatBytes(DESCRIPTOR_SIG_PREFIX, utf8(outer.signedText)), descriptorSigningKey)) {
    throw new DecodeError('TB_ERR_HSDESC_SIGNATURE', 'invalid signature on the descriptor');
  }
  if (options.expectedBlindedKey !== undefined && !bytesEq(options.expectedBlindedKey, blindedPublicKey)) {
    throw new DecodeError('TB_ERR_HSDESC_WRONG_BLINDED_KEY', 'descriptor is signed by a different blinded key than expected');
  }
  return { ...outer, descriptorSigningKey, blindedPublicKey } as CheckedOuterLayer;
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export interface OuterLayerEncoding {
  readonly lifetimeMinutes?: number;
  /** Encoded type-08 certificate. */
  readonly signingKeyCert: Uint8Array;
  readonly revisionCounter: bigint;
  readonly superencryptedBlob: Uint8Array;
  /** The descriptor signing key (certified by `signingKeyCert`). */
  readonly signingKey: Ed25519SigningKey;
}

/** The signed part of the outer document (everything before the signature line), as tor writes it. */
export function encodeOuterBody(input: Omit<OuterLayerEncoding, 'signingKey'>): string {
  const lifetime = input.lifetimeMinutes ?? DEFAULT_LIFETIME_MINUTES;
  if (!Number.isInteger(lifetime) || lifetime < 0 || lifetime > MAX_LIFETIME_MINUTES) {
    throw new TorbalanceError('TB_ERR_HSDESC_BUILD_INVALID', 'input', `descriptor lifetime must be 0..${MAX_LIFETIME_MINUTES} minutes`);
  }
  if (input.revisionCounter < 0n || input.revisionCounter > UINT64_MAX) {
    throw new TorbalanceError('TB_ERR_HSDESC_BUILD_INVALID', 'input', 'revision counter must fit in 64 bits');
  }
  return (
    [
      'hs-descriptor 3',
      `descriptor-lifetime ${lifetime}`,
      `descriptor-signing-key-cert\n${encodeCertPem(input.signingKeyCert)}`,
      `revision-counter ${input.revisionCounter}`,
      `superencrypted\n-----BEGIN MESSAGE-----\n${wrapBase64(toBase64(input.superencryptedBlob))}-----END MESSAGE-----`,
    ].join('\n') + '\n'
  );
}

/** Write and sign the outer document exactly as tor's `desc_encode_v3` does. */
export function encodeOuterLayer(input: OuterLayerEncoding): string {
  const body = encodeOuterBody(input);
  const sig = signWith(input.signingKey, concatBytes(DESCRIPTOR_SIG_PREFIX, utf8(body)));
  return `${body}signature ${toBase64NoPad(sig)}\n`;
}
