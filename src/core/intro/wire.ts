/**
 * Intro points as they travel between nodes (the mesh `intro-points` message, the publisher's
 * input) and the cluster's intro digest. One definition, used by the intro collector, the
 * publisher and the mesh codec (src/core/mesh/protocol.ts validates the message around it).
 *
 * The form carries exactly the keys `buildDescriptor` needs to re-certify an intro point
 * (tor-facts §2.7: link specifiers and onion key copied verbatim, auth key and enc key
 * certified afresh by the publisher's descriptor signing key; rend-spec-v3 §2.5.2.2), as
 * standard padded base64 strings:
 *
 * ```
 * { ls: b64(link_specifier_list), onionKey: b64(32), authKey: b64(32), encKey: b64(32) }
 * ```
 * `ls` is the trunnel `link_specifier_list` (n_spec ‖ (type ‖ len ‖ body)*) as it appears
 * after `introduction-point` in the descriptor, at most {@link MAX_LINK_SPECIFIER_BYTES}
 * bytes. No certificates travel: they are re-made.
 *
 * The intro digest ({@link introDigest}) names a set of intro points in `hello`/`heartbeat`
 * and `intro-points`, and keys the publisher's "did the selection change" check:
 * lower-case hex of SHA3-256("torbalance intro points v1\n" ‖ the distinct canonical lines
 * ({@link introPointLine}) sorted by UTF-16 code unit and joined by "\n"). Order-independent,
 * duplicates count once; the empty set has a digest too. test/unit/intro-wire.test.ts pins it
 * with fixed hex.
 */
import { fromBase64, toBase64, toHex, utf8 } from '../bytes.js';
import { sha3_256 } from '../crypto/index.js';
import { DecodeError } from '../errors.js';
import type { IntroPointInput } from '../hsdesc/descriptor.js';
import type { IntroPoint, PowParamsV1 } from '../hsdesc/inner.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers } from '../hsdesc/link-specifiers.js';

/** One intro point as carried between nodes (all fields standard padded base64). */
export interface IntroPointWire {
  /** The encoded link-specifier list (n_spec ‖ specs), ≤ {@link MAX_LINK_SPECIFIER_BYTES} bytes. */
  readonly ls: string;
  /** The relay's ntor onion key (curve25519, 32 bytes). */
  readonly onionKey: string;
  /** The intro point auth key (ed25519, 32 bytes); identifies the intro point. */
  readonly authKey: string;
  /** The intro point encryption key (curve25519, 32 bytes). */
  readonly encKey: string;
}

/** Longest encoded link-specifier list of one intro point, in bytes (tor's are ≤ 4 specifiers, ~90 bytes). */
export const MAX_LINK_SPECIFIER_BYTES = 512;
const MAX_LS_B64_CHARS = Math.ceil(MAX_LINK_SPECIFIER_BYTES / 3) * 4;
const KEY_B64_CHARS = 44;

/** Intro point → wire. A decoded IntroPoint keeps its raw link-specifier bytes verbatim. */
export function introPointToWire(ip: IntroPoint | IntroPointInput): IntroPointWire {
  const raw = 'linkSpecifiersRaw' in ip ? ip.linkSpecifiersRaw : encodeLinkSpecifiers(ip.linkSpecifiers);
  return { ls: toBase64(raw), onionKey: toBase64(ip.onionKey), authKey: toBase64(ip.authKey), encKey: toBase64(ip.encKey) };
}

function wireError(message: string, cause?: unknown): DecodeError {
  return new DecodeError('TB_ERR_PUBLISHER_WIRE', message, undefined, cause === undefined ? {} : { cause });
}

function key32(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || v.length !== KEY_B64_CHARS) throw wireError(`intro point ${field} must be 44 base64 characters`);
  let b: Uint8Array;
  try {
    b = fromBase64(v);
  } catch (cause) {
    throw wireError(`intro point ${field} is not base64`, cause);
  }
  if (b.length !== 32) throw wireError(`intro point ${field} must be 32 bytes`);
  return b;
}

/**
 * Wire (untrusted, from a peer) → input for `buildDescriptor`. Throws DecodeError
 * `TB_ERR_PUBLISHER_WIRE` for anything malformed (wrong types, sizes, base64, an empty,
 * oversized or malformed link-specifier list).
 */
export function introPointFromWire(w: IntroPointWire): IntroPointInput {
  if (typeof w !== 'object' || (w as unknown) === null) throw wireError('intro point must be an object');
  const ls: unknown = w.ls;
  if (typeof ls !== 'string' || ls.length === 0 || ls.length > MAX_LS_B64_CHARS) {
    throw wireError('intro point link specifiers missing or too long');
  }
  let raw: Uint8Array;
  let linkSpecifiers;
  try {
    raw = fromBase64(ls);
    linkSpecifiers = decodeLinkSpecifiers(raw);
  } catch (cause) {
    throw wireError('intro point link specifiers are malformed', cause);
  }
  if (raw.length > MAX_LINK_SPECIFIER_BYTES) throw wireError('intro point link specifiers missing or too long');
  if (linkSpecifiers.length === 0) throw wireError('intro point has no link specifiers');
  return {
    linkSpecifiers,
    onionKey: key32(w.onionKey, 'onionKey'),
    authKey: key32(w.authKey, 'authKey'),
    encKey: key32(w.encKey, 'encKey'),
  };
}

/** {@link introPointFromWire} that reports instead of throwing (for filtering peer data). */
export function isValidIntroPointWire(w: IntroPointWire): boolean {
  try {
    introPointFromWire(w);
    return true;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return false;
  }
}

/** Canonical one-line form of an intro point (used for sorting and digests). */
export function introPointLine(w: IntroPointWire): string {
  return `${w.authKey} ${w.encKey} ${w.onionKey} ${w.ls}`;
}

const DIGEST_PREFIX = 'torbalance intro points v1\n';

/** The intro digest of a set of intro points (the module comment gives the construction). */
export function introDigest(points: readonly IntroPointWire[]): string {
  const lines = [...new Set(points.map(introPointLine))].sort();
  return toHex(sha3_256(utf8(DIGEST_PREFIX + lines.join('\n'))));
}

/**
 * A node tor's `pow-params v1` as carried between nodes (mesh `intro-points.pow`,
 * docs/mesh-protocol.md): `seed` standard padded base64 of 32 bytes, `effort` the suggested
 * effort (0..2^32−1), `expires` unix seconds. Read from the node's own desc_current; tor writes
 * the same seed into both of its descriptors (tor-facts §3.1).
 */
export interface PowParamsWire {
  readonly seed: string;
  readonly effort: number;
  readonly expires: number;
}

/** Decoded pow-params → wire. */
export function powParamsToWire(p: PowParamsV1): PowParamsWire {
  return { seed: toBase64(p.seed), effort: p.suggestedEffort, expires: p.expirationSeconds };
}

/** Wire (validated by the mesh codec, or untrusted) → pow-params for `buildDescriptor`. Throws DecodeError `TB_ERR_PUBLISHER_WIRE`. */
export function powParamsFromWire(w: PowParamsWire): PowParamsV1 {
  if (!Number.isSafeInteger(w.effort) || w.effort < 0 || w.effort > 0xffffffff) throw wireError('pow effort must be an integer 0..2^32-1');
  if (!Number.isSafeInteger(w.expires) || w.expires < 0) throw wireError('pow expiry must be unix seconds');
  return { seed: key32(w.seed, 'pow seed'), suggestedEffort: w.effort, expirationSeconds: w.expires };
}
