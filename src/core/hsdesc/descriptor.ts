/**
 * v3 onion-service descriptors, high-level API (rend-spec-v3 §2.4–2.5; tor
 * `hs_descriptor.c: hs_desc_decode_descriptor, hs_desc_encode_descriptor`,
 * `hs_client.c: hs_client_decode_descriptor`, `hs_service.c: build_service_desc_keys,
 * build_desc_signing_key_cert, setup_desc_intro_point, build_service_desc_superencrypted`).
 *
 * {@link decodeDescriptor}: outer parse → certificate + signature check → blinded-key check
 * → middle layer (MAC, parse) → client-auth cookie (optional) → inner layer (MAC, parse,
 * intro points verified; malformed ones skipped and counted).
 *
 * {@link buildDescriptor}: blind the identity key for the period, make a fresh descriptor
 * signing key, certify it (type 08, 54 h from now), re-certify each intro point's auth key
 * (type 09) and enc key (type 0B, ed25519 form with sign bit 0) with 54 h from the start of
 * the current hour, 16 fake auth-client lines (or real ones, padded to a multiple of 16 and
 * shuffled), fresh desc-auth-ephemeral key, fresh salts, 10000-byte padding, MACs and the
 * signature — byte for byte the layout of tor's `desc_encode_v3`.
 *
 * Random bytes are drawn in this order (documented so tests can replay them): descriptor
 * signing key seed (32), desc-auth-ephemeral x25519 secret (32), [descriptor cookie (16),
 * one IV (16) per authorized client], fake auth clients (8 + 16 + 16 each), [shuffle: 4 per
 * draw], inner-layer salt (16), middle-layer salt (16).
 */
import { bytesEqual, concatBytes, fromAscii } from '../bytes.js';
import { buildCert, CERT_TYPE, certExpirationHours, type Ed25519Cert, type Ed25519SigningKey } from '../cert/ed25519-cert.js';
import {
  ed25519BaseMul,
  ed25519ExpandSeed,
  ed25519FromCurve25519Many,
  ed25519PublicFromExpanded,
  ed25519PublicFromSeed,
  sha3_256,
  x25519PublicKey,
} from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { blindExpandedSecretKeyWithParam, blindingParam, blindPublicKey, type BlindedKeypair, DEFAULT_PERIOD_LENGTH_MINUTES, subcredential as computeSubcredential } from '../hs/blinding.js';
import { timePeriodNum, type TimePeriodParams } from '../hs/time-period.js';
import type { RandomBytes } from '../random.js';
import {
  AUTH_CLIENT_MULTIPLE,
  buildAuthClient,
  buildFakeAuthClient,
  decryptDescriptorCookie,
  decryptLayer,
  encryptLayer,
  type AuthClient,
} from './encryption.js';
import {
  buildRsaCrossCert,
  encodeInnerLayer,
  HS_DESC_CERT_LIFETIME,
  MAX_INTRO_POINTS,
  parseInnerLayer,
  type FlowControl,
  type InnerLayer,
  type IntroPoint,
  type IntroPointEncoding,
  type PowParamsV1,
} from './inner.js';
import type { LinkSpecifier } from './link-specifiers.js';
import { encodeMiddleLayer, parseMiddleLayer, type MiddleLayer } from './middle.js';
import { rewrap } from './util.js';
import { checkOuterLayer, DEFAULT_LIFETIME_MINUTES, encodeOuterLayer, MAX_DESCRIPTOR_SIZE, parseOuterLayer } from './outer.js';

/** tor's flow-control line when congestion control is on: protover FlowCtrl "1-2", cc_sendme_inc 31. */
export const DEFAULT_FLOW_CONTROL: FlowControl = { versions: '1-2', sendmeInc: 31 };

/**
 * How to find the keys for decryption:
 * - `identityPublicKey` (from the onion address): the blinded key is derived and must match the
 *   certificate's. With `periodNum` the period is pinned; otherwise the periods tp, tp+1 and
 *   tp−1 around `nowSeconds` are tried (tp from `periodParams`, default the live schedule with
 *   `periodLengthMinutes`), so a descriptor for the other active period is accepted too.
 * - `subcredential` + `blindedPublicKey`: used as given (the certificate's blinded key must
 *   equal `blindedPublicKey`).
 */
export type DescriptorKeyInput =
  | {
      readonly identityPublicKey: Uint8Array;
      readonly periodNum?: number;
      readonly periodLengthMinutes?: number;
      readonly periodParams?: TimePeriodParams;
      /** Accept the certificate's blinded key for any period (see {@link decodeOwnServiceDescriptor}). */
      readonly anyPeriod?: boolean;
    }
  | { readonly subcredential: Uint8Array; readonly blindedPublicKey: Uint8Array };

export type DecodeDescriptorOptions = DescriptorKeyInput & {
  /** Unix seconds; certificates expired at this time are rejected (outer) or skipped (intro points). */
  readonly nowSeconds: number;
  /** x25519 secret key of an authorized client (restricted discovery). */
  readonly clientAuthKey?: Uint8Array;
  /** Consensus `cc_sendme_inc` (default 31) for the flow-control check. */
  readonly ccSendmeInc?: number;
  /** Consensus HSV3MaxDescriptorSize (default 50000). */
  readonly maxSize?: number;
};

/** A fully decoded and verified descriptor. */
export interface DecodedDescriptor {
  readonly version: number;
  readonly lifetimeMinutes: number;
  readonly revisionCounter: bigint;
  readonly signingKeyCert: Ed25519Cert;
  readonly descriptorSigningKey: Uint8Array;
  readonly blindedPublicKey: Uint8Array;
  readonly signature: Uint8Array;
  /** Length of the signed text (up to and including the newline before "signature"). */
  readonly signedTextLength: number;
  /** The period whose blinded key matched (identity-key mode only). */
  readonly periodNum: number | undefined;
  readonly subcredential: Uint8Array;
  readonly middle: MiddleLayer;
  readonly middlePlaintext: string;
  /** The descriptor cookie, if client authorization was used; secret. */
  readonly descriptorCookie: Uint8Array | undefined;
  readonly inner: InnerLayer;
  readonly innerPlaintext: string;
  /** Shortcut for `inner.introPoints`. */
  readonly introPoints: readonly IntroPoint[];
}

function keysFor(blinded: Uint8Array, opts: DecodeDescriptorOptions): { subcredential: Uint8Array; periodNum: number | undefined } {
  if ('subcredential' in opts) {
    if (opts.subcredential.length !== 32) throw new TorbalanceError('TB_ERR_HSDESC_BAD_KEY', 'input', 'subcredential must be 32 bytes');
    if (!bytesEqual(opts.blindedPublicKey, blinded)) {
      throw new DecodeError('TB_ERR_HSDESC_WRONG_BLINDED_KEY', 'descriptor is signed by a different blinded key than expected');
    }
    return { subcredential: opts.subcredential, periodNum: undefined };
  }
  const id = opts.identityPublicKey;
  if (opts.anyPeriod === true) return { subcredential: computeSubcredential(id, blinded), periodNum: undefined };
  const len = opts.periodLengthMinutes ?? opts.periodParams?.lengthMinutes ?? DEFAULT_PERIOD_LENGTH_MINUTES;
  let candidates: number[];
  if (opts.periodNum !== undefined) {
    candidates = [opts.periodNum];
  } else {
    const params = opts.periodParams ?? { lengthMinutes: len, votingIntervalSeconds: 3600 };
    let tp: number;
    try {
      tp = timePeriodNum(opts.nowSeconds, params);
    } catch (cause) {
      throw new TorbalanceError('TB_ERR_HSDESC_BAD_KEY', 'input', 'cannot compute the time period for this time', { cause });
    }
    candidates = [tp, tp + 1, tp - 1].filter((x) => x >= 0);
  }
  for (const tp of candidates) {
    let b: Uint8Array;
    try {
      b = blindPublicKey(id, tp, len);
    } catch (cause) {
      throw new TorbalanceError('TB_ERR_HSDESC_BAD_KEY', 'input', 'identity key is not a valid ed25519 public key', { cause });
    }
    if (bytesEqual(b, blinded)) return { subcredential: computeSubcredential(id, blinded), periodNum: tp };
  }
  throw new DecodeError(
    'TB_ERR_HSDESC_WRONG_BLINDED_KEY',
    opts.periodNum !== undefined
      ? `descriptor is not signed by the identity key blinded for period ${opts.periodNum}`
      : `descriptor is not signed by the identity key blinded for period ${candidates.join(', ')}`,
  );
}

function layerError(e: unknown, macCode: string, otherCode: string, what: string): never {
  rewrap(e instanceof DecodeError && e.code === 'TB_ERR_HSDESC_LAYER_MAC' ? macCode : otherCode, what, e);
}

/**
 * Decode and verify a descriptor. Throws DecodeError with one of: TB_ERR_HSDESC_TOO_LARGE,
 * TB_ERR_HSDESC_OUTER_PARSE, TB_ERR_HSDESC_LIFETIME, TB_ERR_HSDESC_CERT,
 * TB_ERR_HSDESC_CERT_EXPIRED, TB_ERR_HSDESC_SIGNATURE, TB_ERR_HSDESC_WRONG_BLINDED_KEY,
 * TB_ERR_HSDESC_SUPERENCRYPTED_MAC, TB_ERR_HSDESC_MIDDLE_PARSE, TB_ERR_HSDESC_NEED_CLIENT_AUTH
 * (inner MAC fails and no client key was given), TB_ERR_HSDESC_BAD_CLIENT_AUTH (a client key
 * was given but the inner layer still does not decrypt), TB_ERR_HSDESC_INNER_PARSE,
 * TB_ERR_HSDESC_FLOW_CONTROL, TB_ERR_HSDESC_POW_PARAMS, TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS;
 * TorbalanceError TB_ERR_HSDESC_BAD_KEY for unusable caller-supplied keys.
 */
export function decodeDescriptor(text: string, opts: DecodeDescriptorOptions): DecodedDescriptor {
  const unchecked = parseOuterLayer(text, opts.maxSize === undefined ? {} : { maxSize: opts.maxSize });
  const outer = checkOuterLayer(unchecked, { nowSeconds: opts.nowSeconds });
  const { subcredential, periodNum } = keysFor(outer.blindedPublicKey, opts);

  let middlePt: Uint8Array;
  try {
    middlePt = decryptLayer({
      blob: outer.superencryptedBlob,
      secretData: outer.blindedPublicKey,
      subcredential,
      revisionCounter: outer.revisionCounter,
      layer: 'superencrypted',
    }).plaintext;
  } catch (e) {
    layerError(e, 'TB_ERR_HSDESC_SUPERENCRYPTED_MAC', 'TB_ERR_HSDESC_MIDDLE_PARSE', 'superencrypted layer');
  }
  const middlePlaintext = fromAscii(middlePt);
  const middle = parseMiddleLayer(middlePlaintext);

  let descriptorCookie: Uint8Array | undefined;
  if (opts.clientAuthKey !== undefined) {
    if (opts.clientAuthKey.length !== 32) throw new TorbalanceError('TB_ERR_HSDESC_BAD_KEY', 'input', 'client authorization key must be 32 bytes');
    descriptorCookie = decryptDescriptorCookie({
      subcredential,
      clientSecretKey: opts.clientAuthKey,
      ephemeralPublicKey: middle.ephemeralKey,
      authClients: middle.authClients,
    });
  }
  let innerPt: Uint8Array;
  try {
    innerPt = decryptLayer({
      blob: middle.encryptedBlob,
      secretData: descriptorCookie === undefined ? outer.blindedPublicKey : concatBytes(outer.blindedPublicKey, descriptorCookie),
      subcredential,
      revisionCounter: outer.revisionCounter,
      layer: 'encrypted',
    }).plaintext;
  } catch (e) {
    const mac = opts.clientAuthKey === undefined ? 'TB_ERR_HSDESC_NEED_CLIENT_AUTH' : 'TB_ERR_HSDESC_BAD_CLIENT_AUTH';
    layerError(e, mac, 'TB_ERR_HSDESC_INNER_PARSE', 'encrypted layer');
  }
  const innerPlaintext = fromAscii(innerPt);
  const inner = parseInnerLayer(innerPlaintext, {
    descriptorSigningKey: outer.descriptorSigningKey,
    nowSeconds: opts.nowSeconds,
    ...(opts.ccSendmeInc === undefined ? {} : { ccSendmeInc: opts.ccSendmeInc }),
  });
  return {
    version: outer.version,
    lifetimeMinutes: outer.lifetimeMinutes,
    revisionCounter: outer.revisionCounter,
    signingKeyCert: outer.signingKeyCert,
    descriptorSigningKey: outer.descriptorSigningKey,
    blindedPublicKey: outer.blindedPublicKey,
    signature: outer.signature,
    signedTextLength: outer.signedText.length,
    periodNum,
    subcredential,
    middle,
    middlePlaintext,
    descriptorCookie,
    inner,
    innerPlaintext,
    introPoints: inner.introPoints,
  };
}

/**
 * Decode a descriptor of the service with `identityPublicKey` for whatever period its
 * certificate names, deriving the subcredential from the certificate's blinded key, with
 * one parse of the outer layer. For descriptors read from the node's own tor (`GETINFO
 * hs/service/desc/id/...`), whose schedule may be a test network's: the signature, cert and
 * MACs are all checked, but the blinded key is not tied to a period. Prefer
 * {@link decodeDescriptor} with `identityPublicKey` for descriptors from the network.
 * A missing final newline (GETINFO data replies drop it) is tolerated.
 */
export function decodeOwnServiceDescriptor(text: string, identityPublicKey: Uint8Array, nowSeconds: number): DecodedDescriptor {
  const body = text.endsWith('\n') ? text : `${text}\n`;
  return decodeDescriptor(body, { identityPublicKey, anyPeriod: true, nowSeconds });
}

// ---------------------------------------------------------------------------------------
// Building

/** Legacy RSA intro-point key: the cross-certificate is made for the new signing key by `signDigest` (RSA PKCS#1 v1.5, raw digest). */
export interface LegacyIntroKeyInput {
  readonly keyDer: Uint8Array;
  readonly signDigest: (digest: Uint8Array) => Uint8Array;
}

/** One intro point to publish. Certificates are made fresh; these are the keys they certify. */
export interface IntroPointInput {
  readonly linkSpecifiers: readonly LinkSpecifier[];
  /** Relay ntor onion key (curve25519). */
  readonly onionKey: Uint8Array;
  /** Intro point auth key (ed25519 public). */
  readonly authKey: Uint8Array;
  /** Intro point encryption key (curve25519 public). */
  readonly encKey: Uint8Array;
  readonly legacy?: LegacyIntroKeyInput | undefined;
}

/** The publishable parts of a decoded intro point (legacy keys cannot be re-certified and are dropped). */
export function introPointInputFrom(ip: IntroPoint): IntroPointInput {
  return { linkSpecifiers: ip.linkSpecifiers, onionKey: ip.onionKey, authKey: ip.authKey, encKey: ip.encKey };
}

export interface BuildDescriptorInput {
  readonly identity: {
    /** 64-byte expanded secret key `a ‖ RH` (tor's hs_ed25519_secret_key body); secret. */
    readonly expandedSecretKey: Uint8Array;
    readonly publicKey: Uint8Array;
  };
  readonly periodNum: number;
  readonly periodLengthMinutes: number;
  readonly revisionCounter: bigint;
  readonly nowSeconds: number;
  readonly introPoints: readonly IntroPointInput[];
  readonly flowControl?: FlowControl | undefined;
  readonly powParams?: PowParamsV1 | undefined;
  readonly singleOnionService?: boolean | undefined;
  /** Default 180 (HS_DESC_DEFAULT_LIFETIME). */
  readonly lifetimeMinutes?: number | undefined;
  /** x25519 public keys of authorized clients (restricted discovery); none = public descriptor. */
  readonly authorizedClientKeys?: readonly Uint8Array[] | undefined;
  /** Consensus HSV3MaxDescriptorSize (default 50000). */
  readonly maxSize?: number | undefined;
  readonly randomBytes: RandomBytes;
}

export interface BuiltDescriptor {
  readonly text: string;
  readonly blindedPublicKey: Uint8Array;
  readonly subcredential: Uint8Array;
  readonly descriptorSigningPublicKey: Uint8Array;
  readonly revisionCounter: bigint;
  readonly periodNum: number;
}

function invalid(message: string, cause?: unknown): TorbalanceError {
  return new TorbalanceError('TB_ERR_HSDESC_BUILD_INVALID', 'input', message, cause === undefined ? {} : { cause });
}

function randomIndex(randomBytes: RandomBytes, n: number): number {
  const limit = Math.floor(0x100000000 / n) * n;
  for (;;) {
    const b = randomBytes(4);
    const v = ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
    if (v < limit) return v % n;
  }
}

/**
 * What buildDescriptor learns about an identity key once: that `publicKey` is `a·B` for the
 * expanded key's scalar, and the blinded public key `a'·B` of each period it built for. A
 * publisher builds many descriptors with one identity and period (every republish, both
 * periods), and each of these costs a base-point multiplication. Only public values and a
 * SHA3-256 digest of the secret key are kept — never a copy of a secret (the blinded secret
 * scalar is recomputed: one multiplication mod ℓ and a SHA-512) — per caller array (a WeakMap
 * entry lives no longer than the array), used only while the array's digest and the given
 * public key are the ones checked; at most {@link BLINDED_PER_IDENTITY} periods are kept.
 */
interface KnownIdentity {
  readonly digest: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly blindedPublic: Map<string, Uint8Array>;
}
const knownIdentities = new WeakMap<Uint8Array, KnownIdentity>();
const BLINDED_PER_IDENTITY = 4;

function knownIdentity(expandedSecretKey: Uint8Array, publicKey: Uint8Array): KnownIdentity {
  const digest = sha3_256(expandedSecretKey);
  const hit = knownIdentities.get(expandedSecretKey);
  if (hit !== undefined && bytesEqual(hit.digest, digest) && bytesEqual(hit.publicKey, publicKey)) return hit;
  if (!bytesEqual(ed25519PublicFromExpanded(expandedSecretKey), publicKey)) {
    throw invalid('identity public key does not belong to the secret key');
  }
  const known: KnownIdentity = { digest, publicKey: publicKey.slice(), blindedPublic: new Map() };
  knownIdentities.set(expandedSecretKey, known);
  return known;
}

/** The blinded keypair of a checked identity (same as blindKeypair), its public key from the cache. */
function blindedFor(known: KnownIdentity, expandedSecretKey: Uint8Array, periodNum: number, periodLengthMinutes: number): BlindedKeypair {
  const h = blindingParam(known.publicKey, periodNum, periodLengthMinutes);
  const expanded = blindExpandedSecretKeyWithParam(expandedSecretKey, h);
  const id = `${periodNum}/${periodLengthMinutes}`;
  let publicKey = known.blindedPublic.get(id);
  if (publicKey === undefined) {
    // h·A = (h·a mod ℓ)·B = a'·B since A = a·B was checked (see blindKnownKeypair)
    publicKey = ed25519BaseMul(expanded.subarray(0, 32));
    if (known.blindedPublic.size >= BLINDED_PER_IDENTITY) known.blindedPublic.delete(known.blindedPublic.keys().next().value as string);
    known.blindedPublic.set(id, publicKey);
  }
  return { publicKey, expandedSecretKey: expanded };
}

/**
 * Build, sign and encrypt a descriptor. Throws TorbalanceError (kind `input`)
 * TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS (> 20), TB_ERR_HSDESC_TOO_LARGE (≥ 50000 bytes), or
 * TB_ERR_HSDESC_BUILD_INVALID (bad key lengths, an intro point without link specifiers, an
 * enc key with no ed25519 form, counter out of range, identity keys that do not match).
 */
export function buildDescriptor(input: BuildDescriptorInput): BuiltDescriptor {
  const { identity, nowSeconds, randomBytes } = input;
  if (input.introPoints.length > MAX_INTRO_POINTS) {
    throw new TorbalanceError(
      'TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS',
      'input',
      `${input.introPoints.length} introduction points; tor clients reject descriptors with more than ${MAX_INTRO_POINTS}`,
    );
  }
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0) throw invalid('nowSeconds must be a non-negative integer');
  if (!Number.isSafeInteger(input.periodNum) || input.periodNum < 0) throw invalid('periodNum must be a non-negative integer');
  if (!Number.isSafeInteger(input.periodLengthMinutes) || input.periodLengthMinutes <= 0) throw invalid('periodLengthMinutes must be positive');
  if (input.revisionCounter < 0n || input.revisionCounter > 0xffffffffffffffffn) throw invalid('revision counter must fit in 64 bits');
  if (identity.expandedSecretKey.length !== 64 || identity.publicKey.length !== 32) throw invalid('identity keys have the wrong length');
  const known = knownIdentity(identity.expandedSecretKey, identity.publicKey);
  for (const [i, ip] of input.introPoints.entries()) {
    if (ip.onionKey.length !== 32 || ip.authKey.length !== 32 || ip.encKey.length !== 32) throw invalid(`intro point ${i}: keys must be 32 bytes`);
    if (ip.linkSpecifiers.length === 0) throw invalid(`intro point ${i} has no link specifiers`);
  }

  const blinded = blindedFor(known, identity.expandedSecretKey, input.periodNum, input.periodLengthMinutes);
  const blindedSigner: Ed25519SigningKey = { expandedSecretKey: blinded.expandedSecretKey, publicKey: blinded.publicKey };
  const subcredential = computeSubcredential(identity.publicKey, blinded.publicKey);

  const signingSeed = randomBytes(32);
  // The seed's OpenSSL key, made here for its public key, signs the 41 certificates and the descriptor.
  const signingKey: Ed25519SigningKey = { expandedSecretKey: ed25519ExpandSeed(signingSeed), publicKey: ed25519PublicFromSeed(signingSeed), seed: signingSeed };
  const ephemeralSecret = randomBytes(32);
  const ephemeralKey = x25519PublicKey(ephemeralSecret);

  const signingKeyCert = buildCert({
    certType: CERT_TYPE.HS_DESC_SIGNING,
    certifiedKey: signingKey.publicKey,
    expirationHours: certExpirationHours(nowSeconds, HS_DESC_CERT_LIFETIME),
    signingKey: blindedSigner,
  });

  const nearestHour = nowSeconds - (nowSeconds % 3600);
  const ipExpiration = certExpirationHours(nearestHour, HS_DESC_CERT_LIFETIME);
  const encEds = ed25519FromCurve25519Many(
    input.introPoints.map((ip) => ip.encKey),
    0,
  );
  const ips: IntroPointEncoding[] = input.introPoints.map((ip, i) => {
    const encEd = encEds[i];
    if (encEd === undefined) throw invalid(`intro point ${i}: enc key has no ed25519 form`);
    return {
      linkSpecifiers: ip.linkSpecifiers,
      onionKey: ip.onionKey,
      authKeyCert: buildCert({ certType: CERT_TYPE.HS_IP_AUTH, certifiedKey: ip.authKey, expirationHours: ipExpiration, signingKey }),
      encKey: ip.encKey,
      encKeyCert: buildCert({ certType: CERT_TYPE.HS_IP_ENC, certifiedKey: encEd, expirationHours: ipExpiration, signingKey }),
      legacy:
        ip.legacy === undefined
          ? undefined
          : { keyDer: ip.legacy.keyDer, crossCert: buildRsaCrossCert(signingKey.publicKey, nearestHour + HS_DESC_CERT_LIFETIME, ip.legacy.signDigest) },
    };
  });
  let innerText: string;
  try {
    innerText = encodeInnerLayer({
      singleOnionService: input.singleOnionService,
      flowControl: input.flowControl,
      powParams: input.powParams,
      introPoints: ips,
    });
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw invalid('intro point cannot be encoded', e);
  }

  const authClients: AuthClient[] = [];
  let descriptorCookie: Uint8Array | undefined;
  const clientKeys = input.authorizedClientKeys ?? [];
  if (clientKeys.length > 0) {
    descriptorCookie = randomBytes(16);
    for (const pk of clientKeys) {
      if (pk.length !== 32) throw invalid('authorized client keys must be 32 bytes');
      authClients.push(buildAuthClient({ subcredential, clientPublicKey: pk, ephemeralSecretKey: ephemeralSecret, descriptorCookie, iv: randomBytes(16) }));
    }
  }
  const fake = authClients.length === 0 ? AUTH_CLIENT_MULTIPLE : (AUTH_CLIENT_MULTIPLE - (authClients.length % AUTH_CLIENT_MULTIPLE)) % AUTH_CLIENT_MULTIPLE;
  for (let i = 0; i < fake; i++) authClients.push(buildFakeAuthClient(randomBytes));
  if (clientKeys.length > 0) {
    for (let i = authClients.length - 1; i > 0; i--) {
      const j = randomIndex(randomBytes, i + 1);
      [authClients[i], authClients[j]] = [authClients[j]!, authClients[i]!];
    }
  }

  const innerBlob = encryptLayer({
    plaintext: new TextEncoder().encode(innerText),
    secretData: descriptorCookie === undefined ? blinded.publicKey : concatBytes(blinded.publicKey, descriptorCookie),
    subcredential,
    revisionCounter: input.revisionCounter,
    salt: randomBytes(16),
    layer: 'encrypted',
  });
  const middleText = encodeMiddleLayer({ ephemeralKey, authClients, encryptedBlob: innerBlob });
  const middleBlob = encryptLayer({
    plaintext: new TextEncoder().encode(middleText),
    secretData: blinded.publicKey,
    subcredential,
    revisionCounter: input.revisionCounter,
    salt: randomBytes(16),
    layer: 'superencrypted',
  });
  const text = encodeOuterLayer({
    lifetimeMinutes: input.lifetimeMinutes ?? DEFAULT_LIFETIME_MINUTES,
    signingKeyCert,
    revisionCounter: input.revisionCounter,
    superencryptedBlob: middleBlob,
    signingKey,
  });
  const max = input.maxSize ?? MAX_DESCRIPTOR_SIZE;
  if (text.length >= max) {
    throw new TorbalanceError('TB_ERR_HSDESC_TOO_LARGE', 'input', `descriptor would be ${text.length} bytes; it must be shorter than ${max}`);
  }
  return {
    text,
    blindedPublicKey: blinded.publicKey,
    subcredential,
    descriptorSigningPublicKey: signingKey.publicKey,
    revisionCounter: input.revisionCounter,
    periodNum: input.periodNum,
  };
}
