/**
 * Join tokens (docs/OPERATIONS.md). torbalance's own format; it implements no tor spec.
 *
 * A token admits one node to the cluster. It is self-verifying with the cluster secret: its
 * 32-byte `secret` is `HMAC-SHA256(K_join, canonicalClaims)` with
 * `K_join = HKDF-SHA256(ikm = clusterSecret, salt = "", info = "torbalance join token key v1", 32)`,
 * so any node holding the cluster secret recomputes it from the claims alone (no per-token
 * state is needed to check a proof; the ledger says whether the token is still `issued`).
 * The token never carries the master key or the cluster secret.
 *
 * Text form: `tbjoin1-` ‖ base64url (RFC 4648 §5, no padding, canonical: zero trailing bits)
 * of exactly 91 bytes (122 characters; 130 with the prefix):
 *
 * | offset | size | field                                                          |
 * |--------|------|----------------------------------------------------------------|
 * | 0      | 1    | version = 0x01                                                 |
 * | 1      | 16   | id (random; shown as 32 lowercase hex characters)              |
 * | 17     | 32   | master onion service's ed25519 identity public key (KP_hs_id)  |
 * | 49     | 2    | port, u16 big-endian, 1..65535 (cluster.join.onion_port)        |
 * | 51     | 8    | expiresAt, u64 big-endian unix seconds, ≤ 2^53 − 1             |
 * | 59     | 32   | secret                                                         |
 *
 * `canonicalClaims` is bytes 0..58 (everything but the secret), prefixed with the ASCII label
 * "torbalance join claims v1" inside the HMAC. Decoding is strict and bounded: surrounding
 * whitespace is trimmed, then at most 400 characters are looked at; the prefix, length,
 * alphabet, version, port, time range and the master key (a valid v3 onion key, as tor's
 * `hs_address_is_valid`) are checked. Every failure is DecodeError `TB_ERR_JOIN_TOKEN` whose
 * message names the failed check only (never token bytes).
 */
import { ByteReader, concatBytes, fromBase64, toBase64NoPad, toHex, u16be, u64be, utf8, fromHex } from '../bytes.js';
import { constantTimeEqual, hkdfSha256, hmacSha256 } from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { decodeOnionAddress, encodeOnionAddress } from '../hs/address.js';
import type { RandomBytes } from '../random.js';

/** Prefix of the text form of a join token. */
export const JOIN_TOKEN_PREFIX = 'tbjoin1-';
/** Binary format version (first byte). */
export const JOIN_TOKEN_VERSION = 1;
/** Length of the binary token. */
export const JOIN_TOKEN_BYTES = 91;
/** Length of the canonical claims (the binary token without its secret). */
export const JOIN_CLAIMS_BYTES = 59;
/** Length of the token secret. */
export const JOIN_SECRET_BYTES = 32;
/** Longest text accepted by {@link decodeJoinToken} after trimming. */
export const MAX_JOIN_TOKEN_CHARS = 400;
/** Shortest cluster secret accepted for deriving token secrets. */
export const MIN_CLUSTER_SECRET_BYTES = 16;

/** What a token says (public; safe to log). */
export interface JoinTokenClaims {
  /** 32 lowercase hex characters. */
  readonly id: string;
  /** The master onion address, "<56 base32>.onion". */
  readonly master: string;
  /** The bootstrap port on the master onion (cluster.join.onion_port). */
  readonly port: number;
  /** Expiry, unix seconds. */
  readonly expiresAt: number;
}

/** A join token: its claims and its secret (never log the secret). */
export interface JoinToken {
  readonly claims: JoinTokenClaims;
  /** 32 bytes, HMAC-SHA256(K_join, canonical claims). */
  readonly secret: Uint8Array;
}

const K_JOIN_INFO = utf8('torbalance join token key v1');
const CLAIMS_LABEL = utf8('torbalance join claims v1');
const ID_RE = /^[0-9a-f]{32}$/;

function issueError(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_JOIN_ISSUE', 'config', message);
}

/** True if `n` is a valid expiry (non-negative safe integer). */
function validTime(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function checkClusterSecret(clusterSecret: Uint8Array): void {
  if (!(clusterSecret instanceof Uint8Array) || clusterSecret.length < MIN_CLUSTER_SECRET_BYTES) {
    throw issueError(`cluster secret must be at least ${MIN_CLUSTER_SECRET_BYTES} bytes`);
  }
}

/**
 * The canonical claims bytes (59): version ‖ id ‖ master key ‖ port ‖ expiresAt. Throws
 * TorbalanceError `TB_ERR_JOIN_ISSUE` if a claim is out of range.
 */
export function canonicalClaims(claims: JoinTokenClaims): Uint8Array {
  if (typeof claims.id !== 'string' || !ID_RE.test(claims.id)) throw issueError('token id must be 32 lowercase hex characters');
  if (!Number.isInteger(claims.port) || claims.port < 1 || claims.port > 65535) throw issueError('token port must be 1..65535');
  if (!validTime(claims.expiresAt)) throw issueError('token expiry must be a non-negative safe integer');
  const key = masterKeyOf(claims.master);
  return concatBytes(new Uint8Array([JOIN_TOKEN_VERSION]), fromHex(claims.id), key, u16be(claims.port), u64be(claims.expiresAt));
}

let lastMaster: { readonly address: string; readonly key: Uint8Array } | undefined;

/**
 * The identity key of a master onion address (one-entry memo: a node checks every request
 * against the same master, and validating a key costs a scalar multiplication). Throws
 * TorbalanceError `TB_ERR_JOIN_ISSUE` if the address is not a valid v3 onion address.
 */
export function masterKeyOf(master: string): Uint8Array {
  if (lastMaster?.address === master) return lastMaster.key.slice();
  let key: Uint8Array;
  try {
    key = decodeOnionAddress(master).publicKey;
  } catch (cause) {
    throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'config', 'token master is not a valid v3 onion address', { cause });
  }
  lastMaster = { address: master, key: key.slice() };
  return key;
}

/** K_join = HKDF-SHA256(clusterSecret, salt "", info "torbalance join token key v1", 32). */
function joinKey(clusterSecret: Uint8Array): Uint8Array {
  checkClusterSecret(clusterSecret);
  return hkdfSha256(clusterSecret, new Uint8Array(0), K_JOIN_INFO, 32);
}

/**
 * The secret of a token with these claims: HMAC-SHA256(K_join, "torbalance join claims v1" ‖
 * canonical claims). Throws TorbalanceError `TB_ERR_JOIN_ISSUE` on a short cluster secret or
 * invalid claims.
 */
export function tokenSecretFor(clusterSecret: Uint8Array, claims: JoinTokenClaims): Uint8Array {
  const c = canonicalClaims(claims);
  const k = joinKey(clusterSecret);
  const s = hmacSha256(k, CLAIMS_LABEL, c);
  k.fill(0);
  return s;
}

/** True if `token.secret` is the secret of its claims under `clusterSecret` (constant time). */
export function verifyTokenSecret(clusterSecret: Uint8Array, token: JoinToken): boolean {
  return constantTimeEqual(tokenSecretFor(clusterSecret, token.claims), token.secret);
}

/**
 * Issue a token for `master` ("<56>.onion", with or without ".onion") and bootstrap `port`,
 * valid until `expiresAt` (unix seconds). The id is 16 random bytes. Throws TorbalanceError
 * `TB_ERR_JOIN_ISSUE` on bad arguments.
 */
export function issueJoinToken(clusterSecret: Uint8Array, master: string, port: number, expiresAt: number, randomBytes: RandomBytes): JoinToken {
  checkClusterSecret(clusterSecret);
  let address: string;
  try {
    address = decodeOnionAddress(master).address;
  } catch (cause) {
    throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'config', 'master is not a valid v3 onion address', { cause });
  }
  const idBytes = randomBytes(16);
  if (idBytes.length !== 16) throw new TorbalanceError('TB_ERR_JOIN_ISSUE', 'internal', 'randomBytes returned the wrong length');
  const claims: JoinTokenClaims = { id: toHex(idBytes), master: address, port, expiresAt };
  return { claims, secret: tokenSecretFor(clusterSecret, claims) };
}

/** base64url without padding. */
function toBase64Url(b: Uint8Array): string {
  return toBase64NoPad(b).replace(/\+/g, '-').replace(/\//g, '_');
}

/**
 * The text form: `tbjoin1-` ‖ base64url(91-byte binary token) (130 characters). Throws
 * TorbalanceError `TB_ERR_JOIN_ISSUE` on invalid claims or a secret that is not 32 bytes.
 */
export function encodeJoinToken(t: JoinToken): string {
  if (!(t.secret instanceof Uint8Array) || t.secret.length !== JOIN_SECRET_BYTES) throw issueError('token secret must be 32 bytes');
  const bin = concatBytes(canonicalClaims(t.claims), t.secret);
  const s = JOIN_TOKEN_PREFIX + toBase64Url(bin);
  bin.fill(0);
  return s;
}

let lastKey: { readonly hex: string; readonly address: string } | undefined;

/** The onion address of a master key, or undefined if tor would reject the key (one-entry memo). */
function addressOfKey(key: Uint8Array): string | undefined {
  const hex = toHex(key);
  if (lastKey?.hex === hex) return lastKey.address;
  let address: string;
  try {
    address = decodeOnionAddress(encodeOnionAddress(key)).address;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return undefined;
  }
  lastKey = { hex, address };
  return address;
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;
/** Characters of the base64url part (91 bytes, unpadded). */
const TOKEN_B64_CHARS = Math.ceil((JOIN_TOKEN_BYTES * 4) / 3);

function bad(problem: string): DecodeError {
  return new DecodeError('TB_ERR_JOIN_TOKEN', `join token: ${problem}`);
}

/**
 * Parse the text form (surrounding whitespace/newlines are trimmed). Strict: see the module
 * doc. Throws DecodeError `TB_ERR_JOIN_TOKEN` only; the message never contains token bytes.
 * The secret is NOT checked here (only a node with the cluster secret can).
 */
export function decodeJoinToken(s: string): JoinToken {
  if (typeof s !== 'string') throw bad('not a string');
  // Bound the work before trimming: a token is 130 characters; allow generous whitespace.
  if (s.length > 4 * MAX_JOIN_TOKEN_CHARS) throw bad('too long');
  const t = s.trim();
  if (t.length > MAX_JOIN_TOKEN_CHARS) throw bad('too long');
  if (!t.startsWith(JOIN_TOKEN_PREFIX)) throw bad(`does not start with "${JOIN_TOKEN_PREFIX}"`);
  const body = t.slice(JOIN_TOKEN_PREFIX.length);
  if (body.length !== TOKEN_B64_CHARS) throw bad(`must have ${TOKEN_B64_CHARS} characters after the prefix, got ${body.length}`);
  if (!B64URL_RE.test(body)) throw bad('not base64url');
  let bin: Uint8Array;
  try {
    bin = fromBase64(body.replace(/-/g, '+').replace(/_/g, '/'));
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    throw bad('not canonical base64url');
  }
  if (bin.length !== JOIN_TOKEN_BYTES) throw bad('wrong length');
  const r = new ByteReader(bin, 'TB_ERR_JOIN_TOKEN');
  const version = r.u8();
  if (version !== JOIN_TOKEN_VERSION) throw bad(`unsupported version ${version}`);
  const id = toHex(r.bytes(16));
  const key = r.bytes(32);
  const port = r.u16();
  const hi = r.u32();
  const lo = r.u32();
  const secret = r.bytes(JOIN_SECRET_BYTES);
  bin.fill(0);
  if (port === 0) throw bad('port is 0');
  if (hi > 0x1fffff) throw bad('expiry out of range');
  const expiresAt = hi * 2 ** 32 + lo;
  const master = addressOfKey(key);
  if (master === undefined) throw bad('master key is not a valid onion service key');
  return { claims: { id, master, port, expiresAt }, secret };
}
