/**
 * Intro points on the mesh wire: exactly the keys
 * `buildDescriptor` needs to re-certify an intro point (tor-facts §2.7: link specifiers and
 * onion key copied verbatim, auth key and enc key certified afresh by the publisher's
 * descriptor signing key; rend-spec-v3 §2.5.2.2), as base64 strings:
 *
 * ```
 * { ls: b64(link_specifier_list), onionKey: b64(32), authKey: b64(32), encKey: b64(32) }
 * ```
 * `ls` is the trunnel `link_specifier_list` (n_spec ‖ (type ‖ len ‖ body)*) as it appears
 * after `introduction-point` in the descriptor. No certificates travel: they are re-made.
 *
 * Conversions: decoded {@link IntroPoint} / {@link IntroPointInput} → wire
 * ({@link introPointToWire}), wire → {@link IntroPointInput} with full validation of the
 * untrusted peer data ({@link wireToIntroPointInput}), and the cluster's intro digest
 * ({@link introDigest}: hex SHA3-256 over the sorted canonical lines).
 */
import { fromBase64, toBase64, toHex, utf8 } from '../../core/bytes.js';
import { sha3_256 } from '../../core/crypto/index.js';
import { DecodeError } from '../../core/errors.js';
import type { IntroPointInput } from '../../core/hsdesc/descriptor.js';
import type { IntroPoint } from '../../core/hsdesc/inner.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers } from '../../core/hsdesc/link-specifiers.js';

/** One intro point as carried between nodes (all fields standard padded base64). */
export interface IntroPointWire {
  /** The encoded link-specifier list. */
  readonly ls: string;
  /** The relay's ntor onion key (curve25519, 32 bytes). */
  readonly onionKey: string;
  /** The intro point auth key (ed25519, 32 bytes); identifies the intro point. */
  readonly authKey: string;
  /** The intro point encryption key (curve25519, 32 bytes). */
  readonly encKey: string;
}

/** Largest accepted `ls` field in base64 characters (tor's lists are ≤ 4 specifiers, ~100 bytes). */
export const MAX_WIRE_LS_CHARS = 1024;
const KEY_B64_CHARS = 44;

/** Intro point → wire. A decoded IntroPoint keeps its raw link-specifier bytes verbatim. */
export function introPointToWire(ip: IntroPoint | IntroPointInput): IntroPointWire {
  const raw = 'linkSpecifiersRaw' in ip ? ip.linkSpecifiersRaw : encodeLinkSpecifiers(ip.linkSpecifiers);
  return { ls: toBase64(raw), onionKey: toBase64(ip.onionKey), authKey: toBase64(ip.authKey), encKey: toBase64(ip.encKey) };
}

function key32(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || v.length !== KEY_B64_CHARS) {
    throw new DecodeError('TB_ERR_PUBLISHER_WIRE', `intro point ${field} must be 44 base64 characters`);
  }
  let b: Uint8Array;
  try {
    b = fromBase64(v);
  } catch (cause) {
    throw new DecodeError('TB_ERR_PUBLISHER_WIRE', `intro point ${field} is not base64`, undefined, { cause });
  }
  if (b.length !== 32) throw new DecodeError('TB_ERR_PUBLISHER_WIRE', `intro point ${field} must be 32 bytes`);
  return b;
}

/**
 * Wire (untrusted, from a peer) → input for `buildDescriptor`. Throws DecodeError
 * `TB_ERR_PUBLISHER_WIRE` for anything malformed (wrong types, sizes, base64, an empty or
 * malformed link-specifier list).
 */
export function wireToIntroPointInput(w: IntroPointWire): IntroPointInput {
  if (typeof w !== 'object' || (w as unknown) === null) throw new DecodeError('TB_ERR_PUBLISHER_WIRE', 'intro point must be an object');
  const ls: unknown = w.ls;
  if (typeof ls !== 'string' || ls.length === 0 || ls.length > MAX_WIRE_LS_CHARS) {
    throw new DecodeError('TB_ERR_PUBLISHER_WIRE', 'intro point link specifiers missing or too long');
  }
  let lsBytes: Uint8Array;
  let linkSpecifiers;
  try {
    lsBytes = fromBase64(ls);
    linkSpecifiers = decodeLinkSpecifiers(lsBytes);
  } catch (cause) {
    throw new DecodeError('TB_ERR_PUBLISHER_WIRE', 'intro point link specifiers are malformed', undefined, { cause });
  }
  if (linkSpecifiers.length === 0) throw new DecodeError('TB_ERR_PUBLISHER_WIRE', 'intro point has no link specifiers');
  return {
    linkSpecifiers,
    onionKey: key32(w.onionKey, 'onionKey'),
    authKey: key32(w.authKey, 'authKey'),
    encKey: key32(w.encKey, 'encKey'),
  };
}

/** `wireToIntroPointInput` that reports instead of throwing (for filtering peer data). */
export function isValidIntroPointWire(w: IntroPointWire): boolean {
  try {
    wireToIntroPointInput(w);
    return true;
  } catch {
    return false;
  }
}

/** Canonical one-line form of an intro point (used for sorting and digests). */
export function introPointLine(w: IntroPointWire): string {
  return `${w.authKey} ${w.encKey} ${w.onionKey} ${w.ls}`;
}

const DIGEST_PREFIX = 'torbalance intro points v1\n';

/**
 * The intro digest of a set of intro points: lower-case hex of
 * SHA3-256("torbalance intro points v1\n" ‖ sorted canonical lines joined by "\n").
 * Order-independent; duplicates count once.
 */
export function introDigest(points: readonly IntroPointWire[]): string {
  const lines = [...new Set(points.map(introPointLine))].sort();
  return toHex(sha3_256(utf8(DIGEST_PREFIX + lines.join('\n'))));
}
