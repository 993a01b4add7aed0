/**
 * The join handshake (docs/OPERATIONS.md): one request and one response
 * over a byte stream (the master onion's bootstrap port). torbalance's own protocol; it
 * implements no tor spec. Pure: randomness and time are parameters.
 *
 * Framing: `u32be length ‖ body`, body = UTF-8 JSON, 2 ≤ length ≤ 65 536
 * ({@link encodeJoinFrame}, {@link JoinFrameDecoder}; violations: DecodeError `TB_ERR_JOIN_FRAME`).
 * Binary fields are canonical padded base64 (RFC 4648 §4) of exact lengths.
 *
 * Request (joiner → node), exactly these keys:
 *
 *     {"v":1,"type":"join-request","id":<32 hex>,"master":"<56>.onion","port":<1..65535>,
 *      "expiresAt":<unix s>,"joiner":<32 hex node id>,"epk":<b64 32>,"nonce":<b64 32>,"proof":<b64 32>}
 *
 *   S      = token secret = tokenSecretFor(clusterSecret, claims)  (token.ts)
 *   T_req  = "torbalance join v1 request" ‖ canonicalClaims(59) ‖ joiner(16) ‖ epk_c(32) ‖ nonce_c(32)
 *   proof  = HMAC-SHA256(S, T_req)
 *
 * Accept (node → joiner):
 *
 *     {"v":1,"type":"join-accept","epk":<b64 32>,"nonce":<b64 32>,"sealed":<b64>,"proof":<b64 32>}
 *
 *   T_resp      = "torbalance join v1 response" ‖ T_req ‖ proof_c ‖ epk_s(32) ‖ nonce_s(32)
 *   h           = SHA-256(T_resp)
 *   key ‖ iv    = HKDF-SHA256(ikm = X25519(esk, epk_peer) ‖ S, salt = h, info = "torbalance join v1 bundle key", 44)
 *   sealed      = ChaCha20-Poly1305(key, iv(12), bundle JSON, aad = h)      (RFC 8439 §2.8)
 *   proof_s     = HMAC-SHA256(S, "torbalance join v1 accept" ‖ h ‖ SHA-256(sealed))
 *
 * Refusal: `{"v":1,"type":"join-refused","reason":<JoinRefusal>}`.
 *
 * Both proofs are bound to the whole transcript, so neither side's message can be replayed
 * into another exchange; the bundle key needs both the ephemeral X25519 secret and the token
 * secret, so neither an eavesdropper nor someone holding only the token (without the joiner's
 * ephemeral key) can open it. The server checks the request proof before any X25519 work;
 * the joiner checks the server's proof before decrypting. Errors name the failed check, never
 * a key, secret, token or bundle byte.
 *
 * Bundle JSON: `{"v":1,"masterSecretKey":<b64 64>,"clusterSecret":<b64 16..64>,"peers":[mesh
 * addresses ≤ 64],"settings":{…JoinSettings…}}`, ≤ 40 KiB, validated strictly on both sides.
 * The joiner also checks that the master secret key's public key is the token's master.
 */
import { concatBytes, fromBase64, fromHex, fromUtf8, toBase64, u32be, utf8 } from '../bytes.js';
import {
  AEAD_NONCE_BYTES,
  chacha20Poly1305Open,
  chacha20Poly1305Seal,
  constantTimeEqual,
  ed25519PublicFromExpanded,
  hkdfSha256,
  hmacSha256,
  sha256,
  x25519PublicKey,
  x25519SharedSecret,
} from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { FrameDecoder } from '../mesh/codec.js';
import { MembersViolation, validateMembers, type MembersLedger } from '../mesh/members.js';
import { isNodeId, jsonDepthExceeds, parseMeshAddress } from '../mesh/protocol.js';
import type { RandomBytes } from '../random.js';
import { canonicalClaims, masterKeyOf, tokenSecretFor, type JoinToken, type JoinTokenClaims } from './token.js';

/** Largest frame body (the length-prefix value). */
export const MAX_JOIN_FRAME_BYTES = 64 * 1024;
/** Smallest frame body (`{}`). */
export const MIN_JOIN_FRAME_BYTES = 2;
/** Largest bundle plaintext (JSON bytes). */
export const MAX_JOIN_BUNDLE_BYTES = 40 * 1024;
/** Most peers in a bundle. */
export const MAX_JOIN_PEERS = 64;
/** Most extra torrc lines in a bundle. */
export const MAX_TOR_EXTRA_LINES = 64;
/** Longest extra torrc line. */
export const MAX_TOR_EXTRA_CHARS = 512;
/** Handshake version (`v` of every body). */
export const JOIN_PROTOCOL_VERSION = 1;

/**
 * Why a node refuses a join. `not-here`: the token is valid but another node created it, and
 * only that node redeems it (docs/SECURITY.md "Join tokens"); the joiner tries again on a
 * fresh circuit, which tor's client sends through a random intro point (of any node).
 */
export type JoinRefusal = 'malformed' | 'bad-proof' | 'expired' | 'wrong-master' | 'unknown-token' | 'used' | 'revoked' | 'rate-limited' | 'not-ready' | 'not-here';
/** Every JoinRefusal. */
export const JOIN_REFUSALS: readonly JoinRefusal[] = ['malformed', 'bad-proof', 'expired', 'wrong-master', 'unknown-token', 'used', 'revoked', 'rate-limited', 'not-ready', 'not-here'];

/** Node settings a joiner adopts (from the admitting node's config). */
export interface JoinSettings {
  readonly transport: 'tcp' | 'tor';
  readonly target: { readonly address: string; readonly port: number; readonly mode: 'http' | 'tcp' };
  readonly torExtraConfig: readonly string[];
  readonly cluster: { readonly heartbeat_ms: number; readonly suspect_after_ms: number; readonly dead_after_ms: number; readonly lease_ms: number; readonly max_skew_ms: number };
  readonly health: { readonly kind: 'http' | 'tcp'; readonly path: string; readonly interval_ms: number; readonly timeout_ms: number };
}

/** What an admitted node receives. Secret: never log it. */
export interface JoinBundle {
  /** 64-byte expanded ed25519 secret key, as in tor's hs_ed25519_secret_key. */
  readonly masterSecretKey: Uint8Array;
  readonly clusterSecret: Uint8Array;
  /** Mesh addresses ("tcp:host:port" / "tor:<56>.onion:port"). */
  readonly peers: readonly string[];
  readonly settings: JoinSettings;
  /**
   * The cluster's node allowlist (src/core/mesh/members.ts), at most
   * {@link MAX_JOIN_MEMBER_ENTRIES} entries, so that the joiner refuses non-members from its
   * first connection. Absent: a cluster without one (the joiner learns it by gossip).
   */
  readonly members?: MembersLedger | undefined;
}

/** Most allowlist entries in a bundle (the joiner gets the rest by gossip). */
export const MAX_JOIN_MEMBER_ENTRIES = 96;

/** The server refused the join (`TB_ERR_JOIN_REFUSED`, kind 'peer'); `reason` says why. */
export class JoinRefusedError extends TorbalanceError {
  readonly reason: JoinRefusal;
  constructor(reason: JoinRefusal) {
    super('TB_ERR_JOIN_REFUSED', 'peer', `join refused by the cluster: ${reason}`);
    this.name = 'JoinRefusedError';
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------
// Frames

/**
 * Frame a body: u32be(|body|) ‖ body. Throws TorbalanceError `TB_ERR_JOIN_FRAME` (internal)
 * if the body is outside 2..65 536 bytes.
 */
export function encodeJoinFrame(body: Uint8Array): Uint8Array {
  if (body.length < MIN_JOIN_FRAME_BYTES || body.length > MAX_JOIN_FRAME_BYTES) {
    throw new TorbalanceError('TB_ERR_JOIN_FRAME', 'internal', `join frame body of ${body.length} bytes is outside ${MIN_JOIN_FRAME_BYTES}..${MAX_JOIN_FRAME_BYTES}`);
  }
  return concatBytes(u32be(body.length), body);
}

/**
 * Sans-IO splitter for join frames: push bytes, get whole bodies (fresh copies). A length
 * prefix above 65 536 or below 2 throws DecodeError `TB_ERR_JOIN_FRAME` as soon as its 4
 * bytes are in (nothing more is buffered); the decoder then stays failed.
 */
export class JoinFrameDecoder extends FrameDecoder {
  constructor() {
    super({
      maxFrameBytes: MAX_JOIN_FRAME_BYTES,
      minFrameBytes: MIN_JOIN_FRAME_BYTES,
      sizeError: (len) => new DecodeError('TB_ERR_JOIN_FRAME', `join frame length ${len} is outside ${MIN_JOIN_FRAME_BYTES}..${MAX_JOIN_FRAME_BYTES}`),
    });
  }
}

// ---------------------------------------------------------------------------------------
// Strict JSON field checks (local; failures carry a path and a problem, never a value)

class FieldError extends Error {
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.path = path;
  }
}

type Obj = Readonly<Record<string, unknown>>;

function ferr(path: string, problem: string): never {
  throw new FieldError(path, problem);
}

function obj(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) ferr(path, 'not an object');
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) ferr(path, 'not a plain object');
  for (const k of Object.keys(v)) if (!keys.includes(k)) ferr(path, 'unknown key');
  for (const k of keys) if (!Object.hasOwn(v, k)) ferr(`${path}.${k}`, 'missing');
  return v as Obj;
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) ferr(path, 'not a safe integer');
  if (v < min || v > max) ferr(path, 'out of range');
  return v;
}

function str(v: unknown, path: string, min: number, max: number, re: RegExp): string {
  if (typeof v !== 'string') ferr(path, 'not a string');
  if (v.length < min || v.length > max) ferr(path, 'bad length');
  if (!re.test(v)) ferr(path, 'bad characters');
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) ferr(path, 'not an allowed value');
  return v as T;
}

/** Canonical padded base64 of minBytes..maxBytes bytes → bytes. */
function b64(v: unknown, path: string, minBytes: number, maxBytes: number): Uint8Array {
  if (typeof v !== 'string') ferr(path, 'not a string');
  if (v.length % 4 !== 0 || v.length < 4 * Math.ceil(minBytes / 3) || v.length > 4 * Math.ceil(maxBytes / 3)) ferr(path, 'bad length');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(v);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    ferr(path, 'bad base64');
  }
  if (bytes.length < minBytes || bytes.length > maxBytes) ferr(path, 'bad length');
  return bytes;
}

/** Parse a JSON body: bounded, strict UTF-8, nesting ≤ maxDepth. Throws FieldError. */
function parseJson(body: Uint8Array, maxBytes: number, maxDepth: number): unknown {
  if (body.length > maxBytes) ferr('body', 'too large');
  let text: string;
  try {
    text = fromUtf8(body);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    ferr('body', 'not UTF-8');
  }
  if (jsonDepthExceeds(text, maxDepth)) ferr('body', 'nested too deeply');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    ferr('body', 'not JSON');
  }
}

const HEX32_RE = /^[0-9a-f]{32}$/;
const ONION_RE = /^[a-z2-7]{56}\.onion$/;
const HOST_RE = /^[A-Za-z0-9.:[\]_-]+$/;
const PRINTABLE_RE = /^[\x20-\x7e]*$/;
const TORRC_LINE_RE = /^[\x20-\x7e\t]*$/;
const PATH_RE = /^[\x21-\x7e]*$/;
const MAX_MS = 86_400_000;

// ---------------------------------------------------------------------------------------
// Transcripts

const REQ_LABEL = utf8('torbalance join v1 request');
const RESP_LABEL = utf8('torbalance join v1 response');
const ACCEPT_LABEL = utf8('torbalance join v1 accept');
const KEY_INFO = utf8('torbalance join v1 bundle key');

function requestTranscript(claims: Uint8Array, joiner: string, epk: Uint8Array, nonce: Uint8Array): Uint8Array {
  return concatBytes(REQ_LABEL, claims, fromHex(joiner), epk, nonce);
}

function responseTranscript(tReq: Uint8Array, proofC: Uint8Array, epkS: Uint8Array, nonceS: Uint8Array): Uint8Array {
  return concatBytes(RESP_LABEL, tReq, proofC, epkS, nonceS);
}

function bundleKey(shared: Uint8Array, secret: Uint8Array, h: Uint8Array): { key: Uint8Array; iv: Uint8Array } {
  const ikm = concatBytes(shared, secret);
  const okm = hkdfSha256(ikm, h, KEY_INFO, 32 + AEAD_NONCE_BYTES);
  ikm.fill(0);
  return { key: okm.slice(0, 32), iv: okm.slice(32) };
}

function acceptProof(secret: Uint8Array, h: Uint8Array, sealed: Uint8Array): Uint8Array {
  return hmacSha256(secret, ACCEPT_LABEL, h, sha256(sealed));
}

/** A fixed clamped X25519 scalar: X25519(k, P) is all-zero exactly when P has small order. */
const PROBE_SCALAR = new Uint8Array(32).fill(0x55);

function isUsableX25519(pub: Uint8Array): boolean {
  try {
    x25519SharedSecret(PROBE_SCALAR, pub);
    return true;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Client side

interface ClientSecrets {
  readonly secret: Uint8Array;
  readonly esk: Uint8Array;
  readonly tReq: Uint8Array;
  readonly proof: Uint8Array;
  readonly masterKey: Uint8Array;
}

const clientSecrets = new WeakMap<JoinClientState, ClientSecrets>();

/**
 * The joiner's handshake state between {@link createJoinRequest} and {@link openJoinResponse}.
 * Opaque: its secrets are not properties (they cannot be logged or serialised by accident).
 */
export class JoinClientState {
  readonly tokenId: string;
  readonly joiner: string;
  readonly master: string;
  private constructor(tokenId: string, joiner: string, master: string) {
    this.tokenId = tokenId;
    this.joiner = joiner;
    this.master = master;
  }
  /** @internal */
  static create(claims: JoinTokenClaims, joiner: string, s: ClientSecrets): JoinClientState {
    const st = new JoinClientState(claims.id, joiner, claims.master);
    clientSecrets.set(st, s);
    return st;
  }
  toJSON(): { tokenId: string; joiner: string; master: string } {
    return { tokenId: this.tokenId, joiner: this.joiner, master: this.master };
  }
}

/**
 * Build the join request for `token` (a framed message, length prefix included: write it as
 * is). `joinerNodeId` is the new node's mesh node id (nodeIdOf its node key). Throws
 * TorbalanceError `TB_ERR_JOIN_ISSUE` on a bad node id, token or randomBytes.
 */
export function createJoinRequest(token: JoinToken, joinerNodeId: string, randomBytes: RandomBytes): { readonly frame: Uint8Array; readonly state: JoinClientState } {
  if (!isNodeId(joinerNodeId)) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'joiner node id must be 32 lowercase hex characters');
  if (!(token.secret instanceof Uint8Array) || token.secret.length !== 32) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'token secret must be 32 bytes');
  const claims = canonicalClaims(token.claims);
  const esk = randomBytes(32);
  const nonce = randomBytes(32);
  if (esk.length !== 32 || nonce.length !== 32) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'randomBytes returned the wrong length');
  const epk = x25519PublicKey(esk);
  const tReq = requestTranscript(claims, joinerNodeId, epk, nonce);
  const secret = token.secret.slice();
  const proof = hmacSha256(secret, tReq);
  const body = {
    v: JOIN_PROTOCOL_VERSION,
    type: 'join-request',
    id: token.claims.id,
    master: token.claims.master,
    port: token.claims.port,
    expiresAt: token.claims.expiresAt,
    joiner: joinerNodeId,
    epk: toBase64(epk),
    nonce: toBase64(nonce),
    proof: toBase64(proof),
  };
  const masterKey = claims.slice(17, 49);
  const state = JoinClientState.create(token.claims, joinerNodeId, { secret, esk: esk.slice(), tReq, proof, masterKey });
  return { frame: encodeJoinFrame(utf8(JSON.stringify(body))), state };
}

// ---------------------------------------------------------------------------------------
// Server side

interface ServerSecrets {
  readonly secret: Uint8Array;
  readonly tReq: Uint8Array;
  readonly proof: Uint8Array;
  readonly epk: Uint8Array;
}

const serverSecrets = new WeakMap<object, ServerSecrets>();

/** Opaque context of a verified request (holds the token secret off-property). */
class JoinServerContext {
  readonly tokenId: string;
  constructor(tokenId: string) {
    this.tokenId = tokenId;
  }
  toJSON(): { tokenId: string } {
    return { tokenId: this.tokenId };
  }
}

/** Result of {@link verifyJoinRequest}. */
export type VerifiedJoin =
  | { readonly ok: true; readonly tokenId: string; readonly joiner: string; readonly expiresAt: number; /** opaque */ readonly context: unknown }
  | { readonly ok: false; readonly reason: 'malformed' | 'bad-proof' | 'expired' | 'wrong-master' };

const REQUEST_KEYS = ['v', 'type', 'id', 'master', 'port', 'expiresAt', 'joiner', 'epk', 'nonce', 'proof'] as const;

/**
 * Check a request frame body (no length prefix) against our cluster secret and master
 * address ("<56>.onion"), at `nowSeconds`. Order: schema (`malformed`), master
 * (`wrong-master`), proof with tokenSecretFor(claims) (`bad-proof`), the joiner's X25519 key
 * (`malformed`), expiry (`expired`). The caller then checks the ledger. Never throws for any
 * frame body; throws TorbalanceError `TB_ERR_JOIN_ISSUE` only if `master` or `clusterSecret`
 * (our own configuration) is invalid.
 */
export function verifyJoinRequest(frameBody: Uint8Array, clusterSecret: Uint8Array, master: string, nowSeconds: number): VerifiedJoin {
  // Canonical form of our master (validated once and memoised by masterKeyOf).
  const ownMaster = `${master.toLowerCase().replace(/\.onion$/, '')}.onion`;
  masterKeyOf(ownMaster);
  let claims: JoinTokenClaims;
  let joiner: string;
  let epk: Uint8Array;
  let nonce: Uint8Array;
  let proof: Uint8Array;
  try {
    const o = obj(parseJson(frameBody, MAX_JOIN_FRAME_BYTES, 2), 'request', REQUEST_KEYS);
    if (o['v'] !== JOIN_PROTOCOL_VERSION) ferr('v', 'unsupported version');
    if (o['type'] !== 'join-request') ferr('type', 'not join-request');
    claims = {
      id: str(o['id'], 'id', 32, 32, HEX32_RE),
      master: str(o['master'], 'master', 62, 62, ONION_RE),
      port: int(o['port'], 'port', 1, 65535),
      expiresAt: int(o['expiresAt'], 'expiresAt', 0, Number.MAX_SAFE_INTEGER),
    };
    joiner = str(o['joiner'], 'joiner', 32, 32, HEX32_RE);
    epk = b64(o['epk'], 'epk', 32, 32);
    nonce = b64(o['nonce'], 'nonce', 32, 32);
    proof = b64(o['proof'], 'proof', 32, 32);
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, reason: 'malformed' };
    throw e;
  }
  if (claims.master !== ownMaster) return { ok: false, reason: 'wrong-master' };
  // Same string as our (valid) master, so this cannot fail on the master; the other claims
  // were range-checked above.
  const claimBytes = canonicalClaims(claims);
  const secret = tokenSecretFor(clusterSecret, claims);
  const tReq = requestTranscript(claimBytes, joiner, epk, nonce);
  if (!constantTimeEqual(hmacSha256(secret, tReq), proof)) {
    secret.fill(0);
    return { ok: false, reason: 'bad-proof' };
  }
  if (!isUsableX25519(epk)) {
    secret.fill(0);
    return { ok: false, reason: 'malformed' };
  }
  if (!Number.isFinite(nowSeconds) || nowSeconds >= claims.expiresAt) {
    secret.fill(0);
    return { ok: false, reason: 'expired' };
  }
  const context = new JoinServerContext(claims.id);
  serverSecrets.set(context, { secret, tReq, proof, epk });
  return { ok: true, tokenId: claims.id, joiner, expiresAt: claims.expiresAt, context };
}

/** Bundle → JSON-ready object (validated: throws FieldError). */
function bundleToJson(b: JoinBundle): Record<string, unknown> {
  const o = {
    v: JOIN_PROTOCOL_VERSION,
    masterSecretKey: toBase64(b.masterSecretKey),
    clusterSecret: toBase64(b.clusterSecret),
    peers: [...b.peers],
    settings: {
      transport: b.settings.transport,
      target: { address: b.settings.target.address, port: b.settings.target.port, mode: b.settings.target.mode },
      torExtraConfig: [...b.settings.torExtraConfig],
      cluster: {
        heartbeat_ms: b.settings.cluster.heartbeat_ms,
        suspect_after_ms: b.settings.cluster.suspect_after_ms,
        dead_after_ms: b.settings.cluster.dead_after_ms,
        lease_ms: b.settings.cluster.lease_ms,
        max_skew_ms: b.settings.cluster.max_skew_ms,
      },
      health: { kind: b.settings.health.kind, path: b.settings.health.path, interval_ms: b.settings.health.interval_ms, timeout_ms: b.settings.health.timeout_ms },
    },
    ...(b.members === undefined ? {} : { members: { enforced: b.members.enforced, entries: b.members.entries.map((e) => ({ id: e.id, state: e.state, at: e.at, by: e.by })) } }),
  };
  bundleFromJson(o);
  return o;
}

/** Strictly validate a parsed bundle. Throws FieldError. */
function bundleFromJson(v: unknown): JoinBundle {
  const withMembers = typeof v === 'object' && v !== null && Object.hasOwn(v, 'members');
  const o = obj(v, 'bundle', ['v', 'masterSecretKey', 'clusterSecret', 'peers', 'settings', ...(withMembers ? ['members'] : [])]);
  let members: MembersLedger | undefined;
  if (withMembers) {
    try {
      members = validateMembers(o['members'], 'bundle.members');
    } catch (e) {
      if (e instanceof MembersViolation) ferr(e.path, e.problem);
      throw e;
    }
    if (members.entries.length > MAX_JOIN_MEMBER_ENTRIES) ferr('bundle.members.entries', 'too many elements');
  }
  if (o['v'] !== JOIN_PROTOCOL_VERSION) ferr('bundle.v', 'unsupported version');
  const peersRaw = o['peers'];
  if (!Array.isArray(peersRaw)) ferr('bundle.peers', 'not an array');
  if (peersRaw.length > MAX_JOIN_PEERS) ferr('bundle.peers', 'too many elements');
  const s = obj(o['settings'], 'bundle.settings', ['transport', 'target', 'torExtraConfig', 'cluster', 'health']);
  const transport = oneOf(s['transport'], 'bundle.settings.transport', ['tcp', 'tor'] as const);
  // Peers of the cluster's transport only (docs/SECURITY.md, "Mesh addresses").
  const peers = (peersRaw as readonly unknown[]).map((p, i) => {
    const a = str(p, `bundle.peers[${i}]`, 1, 128, PRINTABLE_RE);
    const kind = parseMeshAddress(a)?.kind;
    if (kind === undefined) ferr(`bundle.peers[${i}]`, 'not a mesh address');
    if (kind !== transport) ferr(`bundle.peers[${i}]`, 'not an address of the cluster transport');
    return a;
  });
  const t = obj(s['target'], 'bundle.settings.target', ['address', 'port', 'mode']);
  const c = obj(s['cluster'], 'bundle.settings.cluster', ['heartbeat_ms', 'suspect_after_ms', 'dead_after_ms', 'lease_ms', 'max_skew_ms']);
  const h = obj(s['health'], 'bundle.settings.health', ['kind', 'path', 'interval_ms', 'timeout_ms']);
  const extraRaw = s['torExtraConfig'];
  if (!Array.isArray(extraRaw)) ferr('bundle.settings.torExtraConfig', 'not an array');
  if (extraRaw.length > MAX_TOR_EXTRA_LINES) ferr('bundle.settings.torExtraConfig', 'too many elements');
  const torExtraConfig = (extraRaw as readonly unknown[]).map((l, i) => str(l, `bundle.settings.torExtraConfig[${i}]`, 0, MAX_TOR_EXTRA_CHARS, TORRC_LINE_RE));
  const ms = (x: unknown, p: string): number => int(x, `bundle.settings.cluster.${p}`, 1, MAX_MS);
  const settings: JoinSettings = {
    transport,
    target: {
      address: str(t['address'], 'bundle.settings.target.address', 1, 255, HOST_RE),
      port: int(t['port'], 'bundle.settings.target.port', 1, 65535),
      mode: oneOf(t['mode'], 'bundle.settings.target.mode', ['http', 'tcp'] as const),
    },
    torExtraConfig,
    cluster: {
      heartbeat_ms: ms(c['heartbeat_ms'], 'heartbeat_ms'),
      suspect_after_ms: ms(c['suspect_after_ms'], 'suspect_after_ms'),
      dead_after_ms: ms(c['dead_after_ms'], 'dead_after_ms'),
      lease_ms: ms(c['lease_ms'], 'lease_ms'),
      max_skew_ms: ms(c['max_skew_ms'], 'max_skew_ms'),
    },
    health: {
      kind: oneOf(h['kind'], 'bundle.settings.health.kind', ['http', 'tcp'] as const),
      path: str(h['path'], 'bundle.settings.health.path', 0, 512, PATH_RE),
      interval_ms: int(h['interval_ms'], 'bundle.settings.health.interval_ms', 1, MAX_MS),
      timeout_ms: int(h['timeout_ms'], 'bundle.settings.health.timeout_ms', 1, MAX_MS),
    },
  };
  return {
    masterSecretKey: b64(o['masterSecretKey'], 'bundle.masterSecretKey', 64, 64),
    clusterSecret: b64(o['clusterSecret'], 'bundle.clusterSecret', 16, 64),
    peers,
    settings,
    ...(members === undefined ? {} : { members }),
  };
}

/**
 * Admit the joiner: the accept frame (length prefix included) carrying `bundle` sealed to the
 * joiner's ephemeral key and the token secret. Call only after the ledger check (and after
 * recording the token as `used`). Throws TorbalanceError `TB_ERR_JOIN_BUNDLE` (internal) if
 * the bundle is invalid or too large, `TB_ERR_JOIN_ISSUE` if `v` did not come from
 * {@link verifyJoinRequest} or randomBytes misbehaves.
 */
export function acceptJoin(v: VerifiedJoin & { ok: true }, bundle: JoinBundle, randomBytes: RandomBytes): Uint8Array {
  const ctx = typeof v.context === 'object' && v.context !== null ? serverSecrets.get(v.context) : undefined;
  if (ctx === undefined) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'acceptJoin needs a result of verifyJoinRequest');
  let plain: Uint8Array;
  try {
    plain = utf8(JSON.stringify(bundleToJson(bundle)));
  } catch (e) {
    const what = e instanceof FieldError ? e.message : 'unserialisable bundle';
    throw new TorbalanceError('TB_ERR_JOIN_BUNDLE', 'internal', `invalid join bundle: ${what}`);
  }
  if (plain.length > MAX_JOIN_BUNDLE_BYTES) {
    plain.fill(0);
    throw new TorbalanceError('TB_ERR_JOIN_BUNDLE', 'internal', `join bundle of ${plain.length} bytes exceeds ${MAX_JOIN_BUNDLE_BYTES}`);
  }
  const esk = randomBytes(32);
  const nonce = randomBytes(32);
  if (esk.length !== 32 || nonce.length !== 32) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'randomBytes returned the wrong length');
  const epk = x25519PublicKey(esk);
  const shared = x25519SharedSecret(esk, ctx.epk); // non-degenerate: verifyJoinRequest checked ctx.epk
  esk.fill(0);
  const h = sha256(responseTranscript(ctx.tReq, ctx.proof, epk, nonce));
  const { key, iv } = bundleKey(shared, ctx.secret, h);
  shared.fill(0);
  const sealed = chacha20Poly1305Seal(key, iv, plain, h);
  key.fill(0);
  plain.fill(0);
  const body = { v: JOIN_PROTOCOL_VERSION, type: 'join-accept', epk: toBase64(epk), nonce: toBase64(nonce), sealed: toBase64(sealed), proof: toBase64(acceptProof(ctx.secret, h, sealed)) };
  return encodeJoinFrame(utf8(JSON.stringify(body)));
}

/** A refusal frame (length prefix included). */
export function refuseJoin(reason: JoinRefusal): Uint8Array {
  const r: JoinRefusal = JOIN_REFUSALS.includes(reason) ? reason : 'malformed';
  return encodeJoinFrame(utf8(JSON.stringify({ v: JOIN_PROTOCOL_VERSION, type: 'join-refused', reason: r })));
}

function badResponse(problem: string): DecodeError {
  return new DecodeError('TB_ERR_JOIN_RESPONSE', `join response: ${problem}`);
}

/**
 * Open the node's response (frame body, no length prefix). Returns the bundle, or throws
 * {@link JoinRefusedError} (`TB_ERR_JOIN_REFUSED`, with `reason`) for a refusal, or DecodeError
 * `TB_ERR_JOIN_RESPONSE` for anything malformed, a server proof that does not verify (checked
 * before decrypting), a bundle that does not decrypt or validate, or a master key that is not
 * the token's. Never throws anything else for any body.
 */
export function openJoinResponse(state: JoinClientState, frameBody: Uint8Array): JoinBundle {
  const st = clientSecrets.get(state);
  if (st === undefined) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'openJoinResponse needs a state from createJoinRequest');
  let o: Obj;
  try {
    const parsed = parseJson(frameBody, MAX_JOIN_FRAME_BYTES, 2);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.hasOwn(parsed, 'type') && (parsed as Obj)['type'] === 'join-refused') {
      const r = obj(parsed, 'refusal', ['v', 'type', 'reason']);
      if (r['v'] !== JOIN_PROTOCOL_VERSION) ferr('v', 'unsupported version');
      throw new JoinRefusedError(oneOf(r['reason'], 'reason', JOIN_REFUSALS));
    }
    o = obj(parsed, 'response', ['v', 'type', 'epk', 'nonce', 'sealed', 'proof']);
    if (o['v'] !== JOIN_PROTOCOL_VERSION) ferr('v', 'unsupported version');
    if (o['type'] !== 'join-accept') ferr('type', 'not join-accept');
  } catch (e) {
    if (e instanceof FieldError) throw badResponse(e.message);
    throw e;
  }
  let epk: Uint8Array;
  let nonce: Uint8Array;
  let sealed: Uint8Array;
  let proof: Uint8Array;
  try {
    epk = b64(o['epk'], 'epk', 32, 32);
    nonce = b64(o['nonce'], 'nonce', 32, 32);
    sealed = b64(o['sealed'], 'sealed', 16, MAX_JOIN_BUNDLE_BYTES + 16);
    proof = b64(o['proof'], 'proof', 32, 32);
  } catch (e) {
    if (e instanceof FieldError) throw badResponse(e.message);
    throw e;
  }
  const h = sha256(responseTranscript(st.tReq, st.proof, epk, nonce));
  if (!constantTimeEqual(acceptProof(st.secret, h, sealed), proof)) {
    throw badResponse('the node could not prove it knows this token (wrong cluster or tampered response)');
  }
  let shared: Uint8Array;
  try {
    shared = x25519SharedSecret(st.esk, epk);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw badResponse('unusable ephemeral key');
  }
  const { key, iv } = bundleKey(shared, st.secret, h);
  shared.fill(0);
  let plain: Uint8Array;
  try {
    plain = chacha20Poly1305Open(key, iv, sealed, h);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    throw badResponse('bundle does not decrypt');
  } finally {
    key.fill(0);
  }
  let bundle: JoinBundle;
  try {
    bundle = bundleFromJson(parseJson(plain, MAX_JOIN_BUNDLE_BYTES, 4));
  } catch (e) {
    if (e instanceof FieldError) throw badResponse(`invalid bundle (${e.path})`);
    throw badResponse('invalid bundle');
  } finally {
    plain.fill(0);
  }
  let pub: Uint8Array | undefined;
  try {
    pub = ed25519PublicFromExpanded(bundle.masterSecretKey);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    pub = undefined;
  }
  if (pub === undefined || !constantTimeEqual(pub, st.masterKey)) {
    bundle.masterSecretKey.fill(0);
    bundle.clusterSecret.fill(0);
    throw badResponse("the master key in the bundle is not the token's master");
  }
  return bundle;
}
