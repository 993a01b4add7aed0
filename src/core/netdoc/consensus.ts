/**
 * What the HSDir hash ring needs from a network-status consensus and from microdescriptors
 * (dir-spec §3.4.1 "consensus", §3.9.2 microdesc flavor, §3.3 "computing microdescriptors";
 * tor `ns_parse.c: networkstatus_parse_vote_from_string`, `routerstatus_parse_entry_from_string`,
 * `microdesc_parse.c: microdescs_parse_from_string`, `nodelist.c: nodelist_set_consensus`,
 * `hs_common.c: hs_get_responsible_hsdirs`).
 *
 * Parsed: `network-status-version 3 [microdesc]`, `vote-status`, `consensus-method`,
 * `valid-after`/`fresh-until`/`valid-until`, `voting-delay`, `known-flags`, `params`,
 * `shared-rand-previous-value`/`shared-rand-current-value` (`NumReveals Value`), and per
 * relay `r` (nickname, identity → RSA fingerprint), `s` (flags), `pr` (protocols) and `m`
 * (microdescriptor digest). Microdescriptors: `onion-key`, `ntor-onion-key`, `id ed25519`.
 *
 * Unknown keywords and objects are skipped; the fields above are checked strictly and every
 * failure is a {@link DecodeError} with the 1-based line number. Inputs are size-bounded.
 * Signatures are **not** checked: the documents are meant to come from the local tor over
 * its control port, which has already validated them.
 *
 * The microdescriptor digest is tor's: SHA-256 over the text from the start of the
 * `onion-key` line to the start of the next microdescriptor (its first annotation or
 * `onion-key` line) or the end of the input, written in the consensus `m` line as base64
 * without `=` padding (`microdesc_extract_body`, `crypto_digest256`).
 *
 * Ring membership (`hsdirRelays`) follows tor: the consensus entry has the `HSDir` flag, its
 * `pr` line lists `HSDir` version 2 (`node_supports_v3_hsdir`, `protocol_list_supports_protocol`),
 * and an ed25519 identity is known from its microdescriptor (`node_has_preferred_descriptor`).
 */
import { compareBytes, fromBase64, toBase64NoPad, toHex, utf8 } from '../bytes.js';
import { sha256 } from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import type { HsdirRelay } from '../hs/hashring.js';

/** Largest consensus text accepted (characters). A live microdesc consensus is about 3 MB. */
export const MAX_CONSENSUS_CHARS = 16 * 1024 * 1024;
/** Largest microdescriptor collection accepted (characters). The live set is about 10 MB. */
export const MAX_MICRODESCS_CHARS = 64 * 1024 * 1024;
/** Most relays accepted in one consensus (the live network has about 9000). */
export const MAX_RELAYS = 50_000;
/** Longest line accepted in a consensus. */
export const MAX_CONSENSUS_LINE = 64 * 1024;
/** Longest line accepted in microdescriptors (`family` lines can be long). */
export const MAX_MICRODESC_LINE = 1024 * 1024;
/** Highest protocol version tor accepts in a `pr` line (`MAX_PROTOCOL_VERSION`). */
const MAX_PROTOCOL_VERSION = 63;

/** `network-status-version 3 microdesc` or plain `network-status-version 3` (`ns`). */
export type ConsensusFlavor = 'microdesc' | 'ns';

/** A shared random value line: `shared-rand-*-value NumReveals Value`. */
export interface SharedRandomValue {
  readonly numReveals: number;
  /** The 32-byte SRV. */
  readonly value: Uint8Array;
}

/** One routerstatus entry (`r` … block). */
export interface RouterStatus {
  readonly nickname: string;
  /** RSA identity digest (SHA-1, 20 bytes). */
  readonly identity: Uint8Array;
  /** Upper-case hex of {@link identity}, as tor prints fingerprints (e.g. in HS_DESC events). */
  readonly rsaFingerprint: string;
  /** `r` publication time, unix seconds. */
  readonly published: number;
  readonly address: string;
  readonly orPort: number;
  readonly dirPort: number;
  /** Flags from the `s` line. */
  readonly flags: ReadonlySet<string>;
  /**
   * Protocol versions from the `pr` line as name → sorted inclusive ranges; `undefined` if
   * the line is missing or malformed (tor then treats every protocol as unsupported).
   */
  readonly protocols: ReadonlyMap<string, readonly (readonly [number, number])[]> | undefined;
  /** `HSDir` flag present. */
  readonly isHsdir: boolean;
  /** `pr` lists `HSDir=2` (tor `supports_v3_hsdir`). */
  readonly supportsHsdirV3: boolean;
  /** Microdesc flavor: the `m` digest, base64 without padding. */
  readonly microdescDigest: string | undefined;
  /** `ns` flavor: the server-descriptor digest from the `r` line, hex. */
  readonly descriptorDigest: string | undefined;
  /** 1-based line of the `r` line. */
  readonly line: number;
}

/** The parts of a consensus that torbalance uses. */
export interface Consensus {
  readonly flavor: ConsensusFlavor;
  readonly consensusMethod: number | undefined;
  /** Unix seconds. */
  readonly validAfter: number;
  readonly freshUntil: number;
  readonly validUntil: number;
  /** `fresh-until − valid-after`: tor's `get_voting_interval()` when it has a consensus. */
  readonly votingIntervalSeconds: number;
  readonly voteSeconds: number | undefined;
  readonly distSeconds: number | undefined;
  readonly knownFlags: readonly string[];
  /** `params` in document order (the first occurrence of a name wins, as in tor). */
  readonly params: ReadonlyMap<string, number>;
  readonly sharedRandCurrent: SharedRandomValue | undefined;
  readonly sharedRandPrevious: SharedRandomValue | undefined;
  /** Routerstatus entries in document order (ascending identity). */
  readonly relays: readonly RouterStatus[];
}

/** One microdescriptor, reduced to what the ring and intro-point code need. */
export interface Microdescriptor {
  /** SHA-256 digest as in the consensus `m` line (base64, no padding). */
  readonly digest: string;
  /** The ed25519 identity from `id ed25519`, if any. */
  readonly ed25519Id: Uint8Array | undefined;
  /** The curve25519 `ntor-onion-key`, if any. */
  readonly ntorOnionKey: Uint8Array | undefined;
  /** Whether an (obsolete) TAP key object follows `onion-key`. */
  readonly hasTapKey: boolean;
  /** 1-based line of the `onion-key` line. */
  readonly line: number;
}

/** Options for {@link parseMicrodescriptors}. */
export interface ParseMicrodescriptorsOptions {
  /**
   * `'throw'` (default): a malformed microdescriptor raises DecodeError. `'skip'`: drop it
   * and continue, as tor does (a relay without a usable microdescriptor is not in the ring).
   */
  readonly onInvalid?: 'throw' | 'skip';
}

// ---------------------------------------------------------------------------------------
// tor's networkstatus_get_param

/**
 * A consensus parameter with tor's default and bounds (`networkstatus_get_param`,
 * `get_net_param_from_list`): absent → `def`; below `min` → `min`; above `max` → `max`.
 */
export function consensusParam(params: ReadonlyMap<string, number>, name: string, def: number, min: number, max: number): number {
  const v = params.get(name);
  if (v === undefined) return def;
  if (v < min) return min;
  if (v > max) return max;
  return v;
}

// ---------------------------------------------------------------------------------------
// shared line machinery

interface Line {
  readonly keyword: string;
  readonly args: readonly string[];
  /** 1-based. */
  readonly no: number;
  /** Character offset of the line start. */
  readonly offset: number;
}

const KEYWORD_RE = /^[A-Za-z0-9-]+$/;
const OBJECT_BEGIN_RE = /^-----BEGIN ([A-Za-z0-9 ]{1,64})-----$/;

/**
 * Split `text` into keyword lines, skipping PEM-style objects (checked for a matching END)
 * and blank lines. `onObject` is told which line an object followed.
 */
function* tokenize(
  text: string,
  maxLine: number,
  code: DocCodes,
  onObject?: (after: Line | undefined, tag: string) => void,
): Generator<Line> {
  let offset = 0;
  let no = 0;
  let last: Line | undefined;
  while (offset < text.length) {
    let end = text.indexOf('\n', offset);
    if (end < 0) end = text.length;
    no++;
    if (end - offset > maxLine) throw new DecodeError(code.tooLarge, 'line too long', no);
    const raw = text.slice(offset, end);
    const lineOffset = offset;
    offset = end + 1;
    if (raw.trim() === '') continue;
    const begin = OBJECT_BEGIN_RE.exec(raw);
    if (begin !== null) {
      const tag = begin[1]!;
      const endMarker = `-----END ${tag}-----`;
      const startNo = no;
      for (;;) {
        if (offset >= text.length) throw new DecodeError(code.syntax, `unterminated ${tag} object`, startNo);
        let e = text.indexOf('\n', offset);
        if (e < 0) e = text.length;
        no++;
        if (e - offset > maxLine) throw new DecodeError(code.tooLarge, 'line too long', no);
        const objLine = text.slice(offset, e);
        offset = e + 1;
        if (objLine === endMarker) break;
        if (objLine.startsWith('-----')) throw new DecodeError(code.syntax, `bad object delimiter`, no);
      }
      onObject?.(last, tag);
      continue;
    }
    const parts = raw.split(/[ \t]+/).filter((p) => p !== '');
    let keyword = parts[0]!;
    let args = parts.slice(1);
    // tor's tokenizer accepts and drops an obsolete "opt " prefix.
    if (keyword === 'opt' && args.length > 0) {
      keyword = args[0]!;
      args = args.slice(1);
    }
    if (!KEYWORD_RE.test(keyword) && !keyword.startsWith('@')) {
      throw new DecodeError(code.syntax, 'line does not start with a keyword', no);
    }
    last = { keyword, args, no, offset: lineOffset };
    yield last;
  }
}

function badField(code: string, what: string, no: number, cause?: unknown): DecodeError {
  return new DecodeError(code, `bad ${what}`, no, cause === undefined ? {} : { cause });
}

/** `YYYY-MM-DD HH:MM:SS` (two arguments) → unix seconds. */
function parseTime(date: string | undefined, time: string | undefined, no: number, what: string): number {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date ?? '');
  const t = /^(\d{2}):(\d{2}):(\d{2})$/.exec(time ?? '');
  if (d === null || t === null) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', what, no);
  const [y, mo, da] = [Number(d[1]), Number(d[2]), Number(d[3])];
  const [h, mi, s] = [Number(t[1]), Number(t[2]), Number(t[3])];
  if (y < 1970 || mo < 1 || mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59 || s > 59) {
    throw badField('TB_ERR_CONSENSUS_BAD_FIELD', what, no);
  }
  const ms = Date.UTC(y, mo - 1, da, h, mi, s);
  if (new Date(ms).getUTCDate() !== da) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', what, no);
  return ms / 1000;
}

function parseUint(s: string | undefined, max: number, no: number, what: string): number {
  if (s === undefined || !/^\d{1,10}$/.test(s)) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', what, no);
  const v = Number(s);
  if (v > max) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', what, no);
  return v;
}

function decodeB64(s: string | undefined, len: number, code: string, what: string, no: number): Uint8Array {
  let out: Uint8Array;
  try {
    out = fromBase64(s ?? '');
  } catch (cause) {
    throw badField(code, what, no, cause);
  }
  if (out.length !== len) throw badField(code, what, no);
  return out;
}

/**
 * Parse a `pr` line's arguments (`Name=1-2,4 …`). Returns undefined if malformed, as tor's
 * protover summary then reports nothing supported.
 */
function parseProtocols(args: readonly string[]): Map<string, [number, number][]> | undefined {
  const out = new Map<string, [number, number][]>();
  for (const a of args) {
    const m = /^([A-Za-z0-9-]{1,64})=(.*)$/.exec(a);
    if (m === null) return undefined;
    const name = m[1]!;
    if (out.has(name)) return undefined;
    const ranges: [number, number][] = [];
    if (m[2] !== '') {
      for (const part of m[2]!.split(',')) {
        const r = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(part);
        if (r === null) return undefined;
        const lo = Number(r[1]);
        const hi = r[2] === undefined ? lo : Number(r[2]);
        if (lo > hi || hi > MAX_PROTOCOL_VERSION) return undefined;
        ranges.push([lo, hi]);
      }
    }
    ranges.sort((x, y) => x[0] - y[0]);
    out.set(name, ranges);
  }
  return out;
}

function supports(protocols: ReadonlyMap<string, readonly (readonly [number, number])[]> | undefined, name: string, version: number): boolean {
  const ranges = protocols?.get(name);
  if (ranges === undefined) return false;
  return ranges.some(([lo, hi]) => lo <= version && version <= hi);
}

const NICKNAME_RE = /^[A-Za-z0-9]{1,19}$/;
const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function checkInput(text: unknown, max: number, code: DocCodes): asserts text is string {
  if (typeof text !== 'string') throw new DecodeError(code.syntax, 'document must be a string');
  if (text.length > max) throw new DecodeError(code.tooLarge, `document larger than ${max} characters`);
}

// ---------------------------------------------------------------------------------------
// consensus

interface RelayDraft {
  nickname: string;
  identity: Uint8Array;
  published: number;
  address: string;
  orPort: number;
  dirPort: number;
  descriptorDigest: string | undefined;
  line: number;
  flags: Set<string> | undefined;
  protocols: Map<string, [number, number][]> | undefined | null; // null: no pr line yet
  microdescDigest: string | undefined;
}

/** Error codes of one document kind (consensus or microdescriptors). */
interface DocCodes {
  readonly syntax: string;
  readonly tooLarge: string;
}

const C: DocCodes = { syntax: 'TB_ERR_CONSENSUS_SYNTAX', tooLarge: 'TB_ERR_CONSENSUS_TOO_LARGE' };
const HEADER_ONCE = new Set([
  'vote-status',
  'consensus-method',
  'valid-after',
  'fresh-until',
  'valid-until',
  'voting-delay',
  'known-flags',
  'params',
  'shared-rand-previous-value',
  'shared-rand-current-value',
]);

function parseSrv(l: Line): SharedRandomValue {
  if (l.args.length < 2) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', l.keyword, l.no);
  const numReveals = parseUint(l.args[0], 0xffffffff, l.no, l.keyword);
  // tor's sr_parse_srv wants the 44-character padded base64 of 32 bytes.
  if (l.args[1]!.length !== 44) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', l.keyword, l.no);
  return { numReveals, value: decodeB64(l.args[1], 32, 'TB_ERR_CONSENSUS_BAD_FIELD', l.keyword, l.no) };
}

/**
 * Parse a microdesc-flavoured (or `ns`-flavoured) consensus.
 *
 * @throws DecodeError `TB_ERR_CONSENSUS_*` on anything malformed or over the limits.
 */
export function parseMicrodescConsensus(text: string): Consensus {
  checkInput(text, MAX_CONSENSUS_CHARS, C);
  const seen = new Map<string, Line>();
  let flavor: ConsensusFlavor | undefined;
  let inFooter = false;
  const relays: RouterStatus[] = [];
  let cur: RelayDraft | undefined;
  let prevIdentity: Uint8Array | undefined;

  const finish = (): void => {
    if (cur === undefined) return;
    const d = cur;
    cur = undefined;
    if (d.flags === undefined) throw new DecodeError('TB_ERR_CONSENSUS_MISSING_FIELD', 'relay entry has no "s" line', d.line);
    if (flavor === 'microdesc' && d.microdescDigest === undefined) {
      throw new DecodeError('TB_ERR_CONSENSUS_MISSING_FIELD', 'relay entry has no "m" line', d.line);
    }
    const protocols = d.protocols ?? undefined;
    relays.push({
      nickname: d.nickname,
      identity: d.identity,
      rsaFingerprint: toHex(d.identity).toUpperCase(),
      published: d.published,
      address: d.address,
      orPort: d.orPort,
      dirPort: d.dirPort,
      flags: d.flags,
      protocols,
      isHsdir: d.flags.has('HSDir'),
      supportsHsdirV3: supports(protocols, 'HSDir', 2),
      microdescDigest: d.microdescDigest,
      descriptorDigest: d.descriptorDigest,
      line: d.line,
    });
  };

  for (const l of tokenize(text, MAX_CONSENSUS_LINE, C)) {
    if (flavor === undefined) {
      if (l.keyword !== 'network-status-version' || l.args[0] !== '3' || l.args.length > 2) {
        throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'not a network-status-version 3 document', l.no);
      }
      if (l.args.length === 1) flavor = 'ns';
      else if (l.args[1] === 'microdesc') flavor = 'microdesc';
      else throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'unsupported consensus flavor', l.no);
      continue;
    }
    if (inFooter) continue;
    if (l.keyword === 'directory-footer' || l.keyword === 'directory-signature') {
      finish();
      inFooter = true;
      continue;
    }
    if (l.keyword === 'r') {
      finish();
      if (relays.length >= MAX_RELAYS) throw new DecodeError('TB_ERR_CONSENSUS_TOO_LARGE', `more than ${MAX_RELAYS} relays`, l.no);
      const n = flavor === 'microdesc' ? 7 : 8;
      if (l.args.length < n) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', '"r" line', l.no);
      const a = l.args;
      const nickname = a[0]!;
      if (!NICKNAME_RE.test(nickname)) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', 'nickname', l.no);
      const identity = decodeB64(a[1], 20, 'TB_ERR_CONSENSUS_BAD_FIELD', 'relay identity', l.no);
      let i = 2;
      let descriptorDigest: string | undefined;
      if (flavor === 'ns') descriptorDigest = toHex(decodeB64(a[i++], 20, 'TB_ERR_CONSENSUS_BAD_FIELD', 'descriptor digest', l.no));
      const published = parseTime(a[i], a[i + 1], l.no, 'publication time');
      const address = a[i + 2]!;
      const ip = IPV4_RE.exec(address);
      if (ip === null || ip.slice(1).some((o) => Number(o) > 255)) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', 'address', l.no);
      const orPort = parseUint(a[i + 3], 65535, l.no, 'ORPort');
      const dirPort = parseUint(a[i + 4], 65535, l.no, 'DirPort');
      if (prevIdentity !== undefined && compareBytes(prevIdentity, identity) >= 0) {
        throw new DecodeError('TB_ERR_CONSENSUS_ORDER', 'relay entries not in strictly ascending identity order', l.no);
      }
      prevIdentity = identity;
      cur = {
        nickname,
        identity,
        published,
        address,
        orPort,
        dirPort,
        descriptorDigest,
        line: l.no,
        flags: undefined,
        protocols: null,
        microdescDigest: undefined,
      };
      continue;
    }
    if (cur !== undefined) {
      switch (l.keyword) {
        case 's':
          if (cur.flags !== undefined) throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'duplicate "s" line', l.no);
          cur.flags = new Set(l.args);
          break;
        case 'pr':
          if (cur.protocols !== null) throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'duplicate "pr" line', l.no);
          cur.protocols = parseProtocols(l.args);
          break;
        case 'm':
          if (flavor !== 'microdesc') break; // votes only in the ns flavor; not used
          if (cur.microdescDigest !== undefined) throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'duplicate "m" line', l.no);
          if (l.args.length !== 1 || l.args[0]!.length !== 43) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', 'microdescriptor digest', l.no);
          decodeB64(l.args[0], 32, 'TB_ERR_CONSENSUS_BAD_FIELD', 'microdescriptor digest', l.no);
          cur.microdescDigest = l.args[0];
          break;
        default:
          break; // a, v, w, p, id, unknown: not needed
      }
      continue;
    }
    // Header.
    if (HEADER_ONCE.has(l.keyword)) {
      if (seen.has(l.keyword)) throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', `duplicate "${l.keyword}" line`, l.no);
      seen.set(l.keyword, l);
    }
  }
  finish();
  if (flavor === undefined) throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'empty document');

  const need = (k: string): Line => {
    const l = seen.get(k);
    if (l === undefined) throw new DecodeError('TB_ERR_CONSENSUS_MISSING_FIELD', `missing "${k}" line`);
    return l;
  };
  const vs = need('vote-status');
  if (vs.args[0] !== 'consensus') throw new DecodeError('TB_ERR_CONSENSUS_SYNTAX', 'vote-status is not "consensus"', vs.no);
  const timeOf = (k: string): number => {
    const l = need(k);
    return parseTime(l.args[0], l.args[1], l.no, k);
  };
  const validAfter = timeOf('valid-after');
  const freshUntil = timeOf('fresh-until');
  const validUntil = timeOf('valid-until');
  if (!(validAfter < freshUntil && freshUntil <= validUntil)) {
    throw new DecodeError('TB_ERR_CONSENSUS_BAD_FIELD', 'valid-after < fresh-until <= valid-until does not hold', need('fresh-until').no);
  }
  const cm = seen.get('consensus-method');
  const consensusMethod = cm === undefined ? undefined : parseUint(cm.args[0], 0xffffffff, cm.no, 'consensus-method');
  const vd = seen.get('voting-delay');
  const voteSeconds = vd === undefined ? undefined : parseUint(vd.args[0], 0xffffffff, vd.no, 'voting-delay');
  const distSeconds = vd === undefined ? undefined : parseUint(vd.args[1], 0xffffffff, vd.no, 'voting-delay');

  const params = new Map<string, number>();
  const pl = seen.get('params');
  if (pl !== undefined) {
    for (const p of pl.args) {
      const m = /^([^=]{1,128})=(-?\d{1,10})$/.exec(p);
      if (m === null) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', 'params element', pl.no);
      const v = Number(m[2]);
      if (v < -2147483648 || v > 2147483647) throw badField('TB_ERR_CONSENSUS_BAD_FIELD', 'params value', pl.no);
      if (!params.has(m[1]!)) params.set(m[1]!, v);
    }
  }
  const cur2 = seen.get('shared-rand-current-value');
  const prev2 = seen.get('shared-rand-previous-value');

  return {
    flavor,
    consensusMethod,
    validAfter,
    freshUntil,
    validUntil,
    votingIntervalSeconds: freshUntil - validAfter,
    voteSeconds,
    distSeconds,
    knownFlags: seen.get('known-flags')?.args ?? [],
    params,
    sharedRandCurrent: cur2 === undefined ? undefined : parseSrv(cur2),
    sharedRandPrevious: prev2 === undefined ? undefined : parseSrv(prev2),
    relays,
  };
}

// ---------------------------------------------------------------------------------------
// microdescriptors

const M: DocCodes = { syntax: 'TB_ERR_MICRODESC_SYNTAX', tooLarge: 'TB_ERR_MICRODESC_TOO_LARGE' };

/**
 * Parse a concatenation of microdescriptors (the body of a `/tor/micro/d/…` response,
 * `GETINFO md/all`, or a `cached-microdescs` file with `@` annotations).
 *
 * @throws DecodeError `TB_ERR_MICRODESC_*` (with `onInvalid: 'skip'` only for size limits).
 */
export function parseMicrodescriptors(text: string, options: ParseMicrodescriptorsOptions = {}): Microdescriptor[] {
  checkInput(text, MAX_MICRODESCS_CHARS, M);
  const skip = options.onInvalid === 'skip';
  // Cut into segments as tor's find_start_of_next_microdesc does: a segment is any
  // annotations, an onion-key line, then everything up to the next line that starts with
  // "@" or "onion-key".
  const starts: { offset: number; no: number }[] = [];
  let offset = 0;
  let no = 0;
  let header = false; // inside a segment's leading annotations
  while (offset < text.length) {
    let end = text.indexOf('\n', offset);
    if (end < 0) end = text.length;
    no++;
    if (end - offset > MAX_MICRODESC_LINE) throw new DecodeError('TB_ERR_MICRODESC_TOO_LARGE', 'line too long', no);
    const raw = text.slice(offset, end);
    const isAnnotation = raw.startsWith('@');
    const isOnionKey = raw.startsWith('onion-key');
    if (starts.length === 0) {
      if (raw.trim() !== '') {
        starts.push({ offset, no });
        header = isAnnotation;
      }
    } else if (header) {
      header = isAnnotation;
    } else if (isAnnotation || isOnionKey) {
      starts.push({ offset, no });
      header = isAnnotation;
    }
    offset = end + 1;
  }

  const out: Microdescriptor[] = [];
  for (let i = 0; i < starts.length; i++) {
    const segStart = starts[i]!.offset;
    const segEnd = i + 1 < starts.length ? starts[i + 1]!.offset : text.length;
    const segment = text.slice(segStart, segEnd);
    try {
      out.push(parseOneMicrodesc(segment, starts[i]!.no));
    } catch (e) {
      if (!skip || !(e instanceof DecodeError)) throw e;
    }
  }
  return out;
}

function parseOneMicrodesc(segment: string, firstNo: number): Microdescriptor {
  let onionKeyLine: Line | undefined;
  let hasTapKey = false;
  let ed25519Id: Uint8Array | undefined;
  let ntorOnionKey: Uint8Array | undefined;
  let bodyOffset = -1;
  const lines = tokenize(segment, MAX_MICRODESC_LINE, M, (after, tag) => {
    if (after !== undefined && after === onionKeyLine && tag === 'RSA PUBLIC KEY') hasTapKey = true;
  });
  for (const l0 of lines) {
    const l = { ...l0, no: l0.no + firstNo - 1 };
    if (onionKeyLine === undefined) {
      if (l.keyword.startsWith('@')) continue;
      if (l.keyword !== 'onion-key') throw new DecodeError('TB_ERR_MICRODESC_SYNTAX', 'microdescriptor does not start with "onion-key"', l.no);
      if (l.args.length !== 0) throw badField('TB_ERR_MICRODESC_BAD_FIELD', '"onion-key" line', l.no);
      onionKeyLine = l0;
      bodyOffset = l0.offset;
      continue;
    }
    if (l.keyword.startsWith('@')) throw new DecodeError('TB_ERR_MICRODESC_SYNTAX', 'annotation inside a microdescriptor', l.no);
    switch (l.keyword) {
      case 'onion-key':
        throw new DecodeError('TB_ERR_MICRODESC_SYNTAX', 'duplicate "onion-key" line', l.no);
      case 'ntor-onion-key':
        if (ntorOnionKey !== undefined) throw new DecodeError('TB_ERR_MICRODESC_SYNTAX', 'duplicate "ntor-onion-key" line', l.no);
        ntorOnionKey = decodeB64(l.args[0], 32, 'TB_ERR_MICRODESC_BAD_FIELD', 'ntor-onion-key', l.no);
        break;
      case 'id':
        if (l.args.length < 2) throw badField('TB_ERR_MICRODESC_BAD_FIELD', '"id" line', l.no);
        if (l.args[0] === 'ed25519') {
          if (ed25519Id !== undefined) throw new DecodeError('TB_ERR_MICRODESC_SYNTAX', 'extra ed25519 key in microdescriptor', l.no);
          ed25519Id = decodeB64(l.args[1], 32, 'TB_ERR_MICRODESC_BAD_FIELD', 'ed25519 identity', l.no);
        }
        break;
      default:
        break; // a, family, family-ids, p, p6, unknown
    }
  }
  if (onionKeyLine === undefined || bodyOffset < 0) {
    throw new DecodeError('TB_ERR_MICRODESC_MISSING_FIELD', 'microdescriptor has no "onion-key" line', firstNo);
  }
  const digest = toBase64NoPad(sha256(utf8(segment.slice(bodyOffset))));
  return { digest, ed25519Id, ntorOnionKey, hasTapKey, line: onionKeyLine.no + firstNo - 1 };
}

// ---------------------------------------------------------------------------------------
// ring membership

/**
 * The relays of `consensus` that belong on the HSDir hash ring, in consensus order: `HSDir`
 * flag, `HSDir=2` in `pr`, and an ed25519 identity. For a microdesc consensus pass the
 * microdescriptors (joined by digest); for either flavor a map from upper-case RSA
 * fingerprint to ed25519 identity also works (e.g. from server descriptors).
 */
export function hsdirRelays(
  consensus: Consensus,
  identities: readonly Microdescriptor[] | ReadonlyMap<string, Uint8Array>,
): HsdirRelay[] {
  let lookup: (rs: RouterStatus) => Uint8Array | undefined;
  if (Array.isArray(identities)) {
    const byDigest = new Map<string, Microdescriptor>();
    for (const md of identities as readonly Microdescriptor[]) byDigest.set(md.digest, md);
    lookup = (rs) => (rs.microdescDigest === undefined ? undefined : byDigest.get(rs.microdescDigest)?.ed25519Id);
  } else if (identities instanceof Map) {
    const byFp = identities as ReadonlyMap<string, Uint8Array>;
    lookup = (rs) => byFp.get(rs.rsaFingerprint);
  } else {
    throw new TorbalanceError('TB_ERR_BUG', 'internal', 'hsdirRelays: identities must be an array or a Map');
  }
  const out: HsdirRelay[] = [];
  for (const rs of consensus.relays) {
    if (!rs.isHsdir || !rs.supportsHsdirV3) continue;
    const ed = lookup(rs);
    if (ed === undefined || ed.length !== 32) continue;
    out.push({ rsaFingerprint: rs.rsaFingerprint, ed25519Id: ed, nickname: rs.nickname });
  }
  return out;
}
