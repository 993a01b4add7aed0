/**
 * The inner ("encrypted", second) layer of a v3 descriptor (rend-spec-v3 §2.5.2; tor
 * `hs_descriptor.c: get_inner_encrypted_layer_plaintext, encode_intro_point,
 * encode_legacy_key, desc_decode_encrypted_v3, decode_intro_points,
 * decode_introduction_point, decode_pow_params, decode_create2_list, decode_auth_type`).
 *
 * Encoding (tor's exact layout; every line ends in `\n`):
 * ```
 * create2-formats 2
 * [intro-auth-required <types>]        (tor never writes it)
 * [single-onion-service]
 * [flow-control <protover FlowCtrl> <sendme_inc>]   (tor: "1-2 31")
 * [pow-params v1 <seed b64, 44 chars> <effort> <YYYY-MM-DDTHH:MM:SS>]
 * introduction-point <b64 padded link_specifier_list>
 * onion-key ntor <b64 padded>
 * auth-key
 * <ED25519 CERT PEM, type 09>
 * enc-key ntor <b64 padded>
 * enc-key-cert
 * <ED25519 CERT PEM, type 0B>
 * [legacy-key \n<RSA PUBLIC KEY PEM>legacy-key-cert\n<CROSSCERT PEM>]
 * ```
 *
 * Decoding mirrors tor's split of responsibilities:
 * - the WHOLE plaintext is tokenized and checked against the layer table first, so a
 *   syntax error anywhere (bad object, bad base64 object body, a bad "RSA PUBLIC KEY"
 *   object, a second flow-control line…) fails the layer (TB_ERR_HSDESC_INNER_PARSE);
 * - create2-formats must include 2; intro-auth-required must name ed25519 (prefix match on
 *   its first argument, as tor); flow-control's sendme must be within ±1 of the consensus
 *   `cc_sendme_inc` and non-zero (TB_ERR_HSDESC_FLOW_CONTROL); pow-params: unknown schemes
 *   are kept and ignored, a second v1 line or a malformed v1 line fails the layer
 *   (TB_ERR_HSDESC_POW_PARAMS), as tor ≥ 0.4.8.17 / 0.4.9.3;
 * - the text is then cut at every `"\nintroduction-point "`; each block is tokenized and
 *   checked on its own, and a block that fails (bad link specifiers, missing ntor onion key,
 *   bad/expired/mis-signed auth-key or enc-key-cert, unknown enc-key type, bad legacy
 *   key or cross-certificate) is SKIPPED and reported in `skippedIntroPoints`;
 * - more than 20 usable intro points (after skipping) fails the layer
 *   (TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS; tor clients then report BAD_DESC).
 *
 * Certificates in a block are checked as tor does: the right type, the signed-with-key
 * extension present, not expired at `now`, signed by the descriptor signing key. What a
 * certificate certifies is not compared with anything (tor does not either).
 */
import { bytesEqual, concatBytes, fromBase64, toBase64, u32be, utf8, wrapBase64 } from '../bytes.js';
import { CERT_TYPE, encodeCertPem, parseCert, verifyCert, type Ed25519Cert } from '../cert/ed25519-cert.js';
import { rsaPublicRecover, sha256 } from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { checkRules, findAll, findToken, requireToken, rule, tokenize, type NetdocToken, type TokenRule } from '../netdoc/tokenize.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers, type LinkSpecifier } from './link-specifiers.js';
import {
  base64Exact,
  curve25519FromBase64,
  curve25519ToBase64,
  formatIsoTimeNoSpace,
  parseDecimal,
  parseIsoTimeNoSpace,
  rewrap,
  UINT32_MAX,
} from './util.js';

/** HS_CONFIG_V3_MAX_INTRO_POINTS. */
export const MAX_INTRO_POINTS = 20;
/** HS_DESC_CERT_LIFETIME: 54 hours. */
export const HS_DESC_CERT_LIFETIME = 54 * 3600;
/** Default consensus `cc_sendme_inc`. */
export const DEFAULT_CC_SENDME_INC = 31;
/** ONION_HANDSHAKE_TYPE_NTOR. */
export const CREATE2_NTOR = 2;

/** Layer table (tor `hs_desc_encrypted_v3_token_table`). */
export const INNER_RULES: readonly TokenRule[] = [
  rule('create2-formats', 'T1_START', 'CONCAT_ARGS', 'none'),
  rule('intro-auth-required', 'T01', { ge: 1 }, 'none'),
  rule('single-onion-service', 'T01', 'ARGS', 'none'),
  rule('flow-control', 'T01', { ge: 2 }, 'none'),
  rule('pow-params', 'T0N', { ge: 1 }, 'none'),
];

/** Intro-point table (tor `hs_desc_intro_point_v3_token_table`; NEED_KEY_1024 is checked in code). */
export const INTRO_POINT_RULES: readonly TokenRule[] = [
  rule('introduction-point', 'T1_START', { eq: 1 }, 'none'),
  rule('onion-key', 'T1N', { ge: 2 }, 'optional'),
  rule('auth-key', 'T1', 'NO_ARGS', 'required'),
  rule('enc-key', 'T1', { ge: 2 }, 'optional'),
  rule('enc-key-cert', 'T1', 'ARGS', 'optional'),
  rule('legacy-key', 'T01', 'ARGS', 'optional'),
  rule('legacy-key-cert', 'T01', 'ARGS', 'optional'),
];

/** `pow-params v1` (prop 327). */
export interface PowParamsV1 {
  readonly seed: Uint8Array;
  readonly suggestedEffort: number;
  /** Unix seconds. */
  readonly expirationSeconds: number;
}

/** A pow-params line of a scheme tor does not know (kept, ignored). */
export interface UnknownPowParams {
  readonly scheme: string;
  readonly args: readonly string[];
}

export interface FlowControl {
  /** The FlowCtrl protover range, e.g. "1-2". */
  readonly versions: string;
  readonly sendmeInc: number;
}

/** Legacy (RSA) intro-point key material, kept verbatim. */
export interface LegacyIntroKey {
  /** PKCS#1 RSAPublicKey DER (1024-bit). */
  readonly keyDer: Uint8Array;
  /** The RSA→ed25519 cross-certificate bytes. */
  readonly crossCert: Uint8Array;
}

/** A decoded, verified introduction point. */
export interface IntroPoint {
  readonly linkSpecifiers: readonly LinkSpecifier[];
  /** The link-specifier list bytes exactly as in the descriptor. */
  readonly linkSpecifiersRaw: Uint8Array;
  /** The relay's ntor onion key (curve25519). */
  readonly onionKey: Uint8Array;
  /** The intro point auth key (ed25519; the auth-key certificate's certified key). */
  readonly authKey: Uint8Array;
  readonly authKeyCert: Ed25519Cert;
  /** The intro point encryption key (curve25519). */
  readonly encKey: Uint8Array;
  readonly encKeyCert: Ed25519Cert;
  readonly legacy: LegacyIntroKey | undefined;
}

/** A skipped intro-point block. */
export interface SkippedIntroPoint {
  /** 0-based position of the block in the layer. */
  readonly index: number;
  /** The code of the underlying failure (e.g. TB_ERR_CERT_EXPIRED, TB_ERR_LINKSPEC_LENGTH). */
  readonly code: string;
  readonly message: string;
}

export interface InnerLayer {
  readonly create2Formats: readonly number[];
  readonly introAuthRequired: readonly string[] | undefined;
  readonly singleOnionService: boolean;
  readonly flowControl: FlowControl | undefined;
  readonly powParams: PowParamsV1 | undefined;
  readonly unknownPowParams: readonly UnknownPowParams[];
  readonly introPoints: readonly IntroPoint[];
  readonly skippedIntroPoints: readonly SkippedIntroPoint[];
}

export interface ParseInnerOptions {
  /** The descriptor signing key (certified key of the outer type-08 cert); signs the intro-point certs. */
  readonly descriptorSigningKey: Uint8Array;
  /** Intro-point certificates expired at this time are skipped. */
  readonly nowSeconds: number;
  /** Consensus `cc_sendme_inc` (default 31). */
  readonly ccSendmeInc?: number;
  /** Default 20 (HS_CONFIG_V3_MAX_INTRO_POINTS). */
  readonly maxIntroPoints?: number;
}

const INNER = 'TB_ERR_HSDESC_INNER_PARSE';
const IP = 'TB_ERR_HSDESC_INTRO_POINT';

function wrap(code: string, e: unknown, what: string): never {
  rewrap(code, what, e);
}

/** Minimal DER reader for PKCS#1 RSAPublicKey `SEQUENCE { INTEGER n, INTEGER e }`. */
export function parseRsaPublicKeyDer(der: Uint8Array): { readonly modulusBits: number; readonly exponent: bigint } | undefined {
  let p = 0;
  const len = (): number | undefined => {
    const b = der[p++];
    if (b === undefined) return undefined;
    if (b < 0x80) return b;
    const n = b & 0x7f;
    if (n === 0 || n > 2) return undefined;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const x = der[p++];
      if (x === undefined) return undefined;
      v = (v << 8) | x;
    }
    return v < 0x80 ? undefined : v;
  };
  const int = (): Uint8Array | undefined => {
    if (der[p++] !== 0x02) return undefined;
    const l = len();
    if (l === undefined || l === 0 || p + l > der.length) return undefined;
    const v = der.subarray(p, p + l);
    p += l;
    if (v[0]! & 0x80) return undefined; // negative
    if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) return undefined; // non-minimal
    return v;
  };
  if (der[p++] !== 0x30) return undefined;
  const seqLen = len();
  if (seqLen === undefined || p + seqLen !== der.length) return undefined;
  const n = int();
  const e = int();
  if (n === undefined || e === undefined || p !== der.length) return undefined;
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  const bits = i === n.length ? 0 : (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
  let exponent = 0n;
  for (const b of e) exponent = (exponent << 8n) | BigInt(b);
  return { modulusBits: bits, exponent };
}

function checkRsaObjects(tokens: readonly NetdocToken[], code: string): void {
  for (const t of tokens) {
    if (t.object?.tag === 'RSA PUBLIC KEY' && parseRsaPublicKeyDer(t.object.data) === undefined) {
      throw new DecodeError(code, `couldn't parse the public key of ${t.keyword}`, t.line);
    }
  }
}

const CROSSCERT_PREFIX = utf8('Tor TLS RSA/Ed25519 cross-certificate');

/**
 * tor `rsa_ed25519_crosscert_check`: `ed_key(32) ‖ expiration(4, hours) ‖ sig_len(1) ‖ sig`;
 * the ed key must be `masterKey`, `expiration·3600 ≥ rejectIfExpiredBefore`, and the RSA
 * signature must recover `SHA-256(prefix ‖ ed_key ‖ expiration)`.
 */
export function checkRsaCrossCert(crossCert: Uint8Array, rsaKeyDer: Uint8Array, masterKey: Uint8Array, rejectIfExpiredBefore: number): void {
  if (crossCert.length < 37 || crossCert.length !== 37 + crossCert[36]!) {
    throw new DecodeError('TB_ERR_HSDESC_CROSSCERT', 'unparseable or overlong RSA cross-certificate');
  }
  if (!bytesEqual(crossCert.subarray(0, 32), masterKey)) throw new DecodeError('TB_ERR_HSDESC_CROSSCERT', 'cross-certificate does not match the descriptor signing key');
  const exp = ((crossCert[32]! << 24) >>> 0) + (crossCert[33]! << 16) + (crossCert[34]! << 8) + crossCert[35]!;
  if (exp * 3600 < rejectIfExpiredBefore) throw new DecodeError('TB_ERR_HSDESC_CROSSCERT', 'cross-certificate is expired');
  const digest = sha256(CROSSCERT_PREFIX, crossCert.subarray(0, 36));
  const rec = rsaPublicRecover(rsaKeyDer, crossCert.subarray(37));
  if (rec === undefined || rec.length < 32 || !bytesEqual(rec.subarray(0, 32), digest)) {
    throw new DecodeError('TB_ERR_HSDESC_CROSSCERT', 'bad RSA cross-certificate signature');
  }
}

function checkIpCert(tok: NetdocToken, certType: number, signingKey: Uint8Array, nowSeconds: number): Ed25519Cert {
  if (tok.object === undefined) throw new DecodeError(IP, `${tok.keyword} has no certificate`, tok.line);
  if (tok.object.tag !== 'ED25519 CERT') throw new DecodeError(IP, `unexpected object type for ${tok.keyword}`, tok.line);
  const cert = parseCert(tok.object.data);
  verifyCert(cert, { expectedType: certType, requireSigningKeyExtension: true, signingKey, nowSeconds });
  return cert;
}

/**
 * Decode and verify one intro-point block (text starting with "introduction-point ").
 * Throws DecodeError on anything tor would skip the block for.
 */
export function parseIntroPoint(text: string, options: Pick<ParseInnerOptions, 'descriptorSigningKey' | 'nowSeconds'>): IntroPoint {
  const tokens = tokenize(text, { maxLength: 64 * 1024 });
  checkRsaObjects(tokens, IP);
  checkRules(tokens, INTRO_POINT_RULES);
  const ipTok = requireToken(tokens, 'introduction-point');
  let linkSpecifiersRaw: Uint8Array;
  try {
    linkSpecifiersRaw = fromBase64(ipTok.args[0]!);
  } catch (e) {
    wrap(IP, e, 'link specifiers are not base64');
  }
  const linkSpecifiers = decodeLinkSpecifiers(linkSpecifiersRaw);

  let onionKey: Uint8Array | undefined;
  for (const t of findAll(tokens, 'onion-key')) {
    if (t.args[0] === 'ntor') onionKey = curve25519FromBase64(t.args[1]!, IP, 'ntor onion-key');
  }
  if (onionKey === undefined) throw new DecodeError(IP, 'no ntor onion-key');

  const authKeyCert = checkIpCert(requireToken(tokens, 'auth-key'), CERT_TYPE.HS_IP_AUTH, options.descriptorSigningKey, options.nowSeconds);

  const encTok = requireToken(tokens, 'enc-key');
  if (encTok.args[0] !== 'ntor') throw new DecodeError(IP, 'unrecognized enc-key type', encTok.line);
  const encKey = curve25519FromBase64(encTok.args[1]!, IP, 'ntor enc-key');
  const encKeyCert = checkIpCert(requireToken(tokens, 'enc-key-cert'), CERT_TYPE.HS_IP_ENC, options.descriptorSigningKey, options.nowSeconds);

  let legacy: LegacyIntroKey | undefined;
  const lk = findToken(tokens, 'legacy-key');
  if (lk !== undefined) {
    if (lk.object?.tag !== 'RSA PUBLIC KEY') throw new DecodeError(IP, 'missing public key for legacy-key', lk.line);
    const info = parseRsaPublicKeyDer(lk.object.data);
    if (info === undefined || info.modulusBits !== 1024) throw new DecodeError(IP, 'legacy-key is not a 1024-bit RSA key', lk.line);
    if (info.exponent !== 65537n) throw new DecodeError(IP, 'introduction point legacy key is invalid', lk.line);
    const lc = findToken(tokens, 'legacy-key-cert');
    if (lc === undefined) throw new DecodeError(IP, 'legacy key cert is missing');
    if (lc.object === undefined || lc.object.tag !== 'CROSSCERT') throw new DecodeError(IP, 'legacy key cross-certification has an unknown format', lc.line);
    checkRsaCrossCert(lc.object.data, lk.object.data, options.descriptorSigningKey, options.nowSeconds - HS_DESC_CERT_LIFETIME);
    legacy = { keyDer: lk.object.data, crossCert: lc.object.data };
  }
  return { linkSpecifiers, linkSpecifiersRaw, onionKey, authKey: authKeyCert.certifiedKey, authKeyCert, encKey, encKeyCert, legacy };
}

/** Decode the inner layer plaintext. See the module comment for what fails vs. what is skipped. */
export function parseInnerLayer(text: string, options: ParseInnerOptions): InnerLayer {
  let tokens: NetdocToken[];
  try {
    tokens = tokenize(text, { maxLength: 1024 * 1024 });
    checkRsaObjects(tokens, INNER);
    checkRules(tokens, INNER_RULES);
  } catch (e) {
    wrap(INNER, e, 'inner layer');
  }
  const c2 = requireToken(tokens, 'create2-formats');
  const create2Formats: number[] = [];
  for (const s of c2.rest.split(' ')) {
    if (/^[0-9]{1,5}$/.test(s)) {
      const v = Number(s);
      if (v >= 1 && v <= 65535) create2Formats.push(v);
    }
  }
  if (!create2Formats.includes(CREATE2_NTOR)) throw new DecodeError(INNER, 'create2-formats does not include ntor', c2.line);

  let introAuthRequired: string[] | undefined;
  const iar = findToken(tokens, 'intro-auth-required');
  if (iar !== undefined) {
    if (!iar.args[0]!.startsWith('ed25519')) throw new DecodeError(INNER, 'intro-auth-required has no known type', iar.line);
    introAuthRequired = [...iar.args];
  }
  const singleOnionService = findToken(tokens, 'single-onion-service') !== undefined;

  let flowControl: FlowControl | undefined;
  const fc = findToken(tokens, 'flow-control');
  if (fc !== undefined) {
    const inc = options.ccSendmeInc ?? DEFAULT_CC_SENDME_INC;
    let v: bigint;
    try {
      v = parseDecimal(fc.args[1]!, 255n, 'TB_ERR_HSDESC_FLOW_CONTROL', 'flow-control sendme increment');
    } catch (e) {
      wrap('TB_ERR_HSDESC_FLOW_CONTROL', e, 'flow-control');
    }
    const n = Number(v);
    if (n === 0 || n > inc + 1 || n < inc - 1) throw new DecodeError('TB_ERR_HSDESC_FLOW_CONTROL', `flow-control sendme increment ${n} is invalid`, fc.line);
    flowControl = { versions: fc.args[0]!, sendmeInc: n };
  }

  let powParams: PowParamsV1 | undefined;
  const unknownPowParams: UnknownPowParams[] = [];
  for (const t of findAll(tokens, 'pow-params')) {
    if (t.args[0] !== 'v1') {
      unknownPowParams.push({ scheme: t.args[0]!, args: t.args.slice(1) });
      continue;
    }
    const P = 'TB_ERR_HSDESC_POW_PARAMS';
    if (powParams !== undefined) throw new DecodeError(P, 'duplicate v1 PoW entries', t.line);
    if (t.args.length < 4) throw new DecodeError(P, 'insufficient arguments for v1 PoW entry', t.line);
    powParams = {
      seed: base64Exact(t.args[1]!, 32, P, 'PoW seed'),
      suggestedEffort: Number(parseDecimal(t.args[2]!, UINT32_MAX, P, 'PoW suggested effort')),
      expirationSeconds: parseIsoTimeNoSpace(t.args[3]!, P, 'PoW expiration time'),
    };
  }

  const introPoints: IntroPoint[] = [];
  const skippedIntroPoints: SkippedIntroPoint[] = [];
  const chunks = text.split('\nintroduction-point ');
  for (let k = 1; k < chunks.length; k++) {
    try {
      introPoints.push(parseIntroPoint(`introduction-point ${chunks[k]!}`, options));
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      skippedIntroPoints.push({ index: k - 1, code: e.code, message: e.message });
    }
  }
  const max = options.maxIntroPoints ?? MAX_INTRO_POINTS;
  if (introPoints.length > max) {
    throw new DecodeError('TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS', `descriptor has ${introPoints.length} introduction points; tor clients accept at most ${max}`);
  }
  return { create2Formats, introAuthRequired, singleOnionService, flowControl, powParams, unknownPowParams, introPoints, skippedIntroPoints };
}

// ---------------------------------------------------------------------------------------
// Encoding

/** Everything needed to write one intro-point block (certificates already made). */
export interface IntroPointEncoding {
  readonly linkSpecifiers: readonly LinkSpecifier[];
  readonly onionKey: Uint8Array;
  readonly authKeyCert: Uint8Array;
  readonly encKey: Uint8Array;
  readonly encKeyCert: Uint8Array;
  readonly legacy?: LegacyIntroKey | undefined;
}

function pem(tag: string, data: Uint8Array): string {
  return `-----BEGIN ${tag}-----\n${wrapBase64(toBase64(data))}-----END ${tag}-----`;
}

/** One intro-point block exactly as tor's `encode_intro_point` writes it (ends with `\n`). */
export function encodeIntroPoint(ip: IntroPointEncoding): string {
  const lines = [
    `introduction-point ${toBase64(encodeLinkSpecifiers(ip.linkSpecifiers))}`,
    `onion-key ntor ${curve25519ToBase64(ip.onionKey)}`,
    `auth-key\n${encodeCertPem(ip.authKeyCert)}`,
    `enc-key ntor ${curve25519ToBase64(ip.encKey)}\nenc-key-cert\n${encodeCertPem(ip.encKeyCert)}`,
  ];
  if (ip.legacy !== undefined) {
    lines.push(`legacy-key \n${pem('RSA PUBLIC KEY', ip.legacy.keyDer)}\nlegacy-key-cert\n${pem('CROSSCERT', ip.legacy.crossCert)}`);
  }
  return lines.join('\n') + '\n';
}

export interface InnerLayerEncoding {
  readonly introAuthRequired?: readonly string[] | undefined;
  readonly singleOnionService?: boolean | undefined;
  readonly flowControl?: FlowControl | undefined;
  readonly powParams?: PowParamsV1 | undefined;
  readonly introPoints: readonly IntroPointEncoding[];
}

/** The inner-layer plaintext exactly as tor's `get_inner_encrypted_layer_plaintext` writes it. */
export function encodeInnerLayer(input: InnerLayerEncoding): string {
  let s = `create2-formats ${CREATE2_NTOR}\n`;
  if (input.introAuthRequired !== undefined && input.introAuthRequired.length > 0) s += `intro-auth-required ${input.introAuthRequired.join(' ')}\n`;
  if (input.singleOnionService === true) s += 'single-onion-service\n';
  if (input.flowControl !== undefined) {
    if (!/^[0-9,-]+$/.test(input.flowControl.versions) || !Number.isInteger(input.flowControl.sendmeInc) || input.flowControl.sendmeInc < 0 || input.flowControl.sendmeInc > 255) {
      throw new TorbalanceError('TB_ERR_HSDESC_BUILD_INVALID', 'input', 'invalid flow-control parameters');
    }
    s += `flow-control ${input.flowControl.versions} ${input.flowControl.sendmeInc}\n`;
  }
  if (input.powParams !== undefined) {
    const p = input.powParams;
    if (p.seed.length !== 32 || !Number.isInteger(p.suggestedEffort) || p.suggestedEffort < 0 || p.suggestedEffort > 0xffffffff) {
      throw new TorbalanceError('TB_ERR_HSDESC_BUILD_INVALID', 'input', 'invalid pow-params');
    }
    s += `pow-params v1 ${toBase64(p.seed)} ${p.suggestedEffort} ${formatIsoTimeNoSpace(p.expirationSeconds)}\n`;
  }
  for (const ip of input.introPoints) s += encodeIntroPoint(ip);
  return s;
}

/** Build a legacy cross-certificate body (tor `tor_make_rsa_ed25519_crosscert`) given an RSA signer of the 32-byte digest. */
export function buildRsaCrossCert(masterKey: Uint8Array, expiresSeconds: number, signDigest: (digest: Uint8Array) => Uint8Array): Uint8Array {
  const head = concatBytes(masterKey, u32be(Math.ceil(expiresSeconds / 3600)));
  const sig = signDigest(sha256(CROSSCERT_PREFIX, head));
  if (sig.length > 255) throw new RangeError('RSA signature too long');
  return concatBytes(head, new Uint8Array([sig.length]), sig);
}
