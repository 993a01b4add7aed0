/**
 * Address replacement rules and the streaming replacer behind torbalance's HTTP rewriting.
 *
 * A node proxies visitors of the master onion address to a target onion service. The target
 * names itself (`<target>.onion`) in links, redirects and cookies; visitors must only ever
 * see `<master>.onion`. A {@link ReplaceRule} says "replace this ASCII needle (matched
 * case-insensitively, hostnames being case-insensitive, RFC 4343) by that text".
 * {@link StreamReplacer} applies a rule set to a byte stream cut into arbitrary chunks and
 * produces exactly the output of a one-shot replacement ({@link replaceAllBytes}): between
 * chunks it holds back only a suffix that could still start a match — shorter than the
 * longest needle plus the one-byte look-ahead of rules that must not be followed by a digit
 * (`host:80` must not match `host:8080`) — so text that cannot be part of an address is
 * passed on at once (server-sent events are not delayed). At each position the longest matching needle wins; matching resumes after
 * the replaced text (replacements are never rescanned). Replacement need not keep the length.
 *
 * Subdomains (`www.<target>.onion`) are covered because the host needle matches inside them.
 * Pure: no I/O, no Buffer.
 */

/** One replacement: `from` (ASCII, compared case-insensitively) → `to` (bytes as given). */
export interface ReplaceRule {
  readonly from: string;
  readonly to: string;
  /** Only match when the next character is not an ASCII digit (for `host:port` needles). */
  readonly notFollowedByDigit?: boolean;
}

interface CompiledRule {
  readonly from: Uint8Array; // lower-cased ASCII
  readonly to: Uint8Array;
  readonly fromStr: string;
  readonly toStr: string;
  readonly notFollowedByDigit: boolean;
  /** Length of the prefix `from` shares with the previous rule's `from` (0 for the first). */
  readonly shared: number;
}

/** A compiled, immutable rule set (longest needle first). */
export interface RuleSet {
  readonly rules: readonly CompiledRule[];
  /** Bytes that must be seen from a position before deciding there: longest needle + 1. */
  readonly window: number;
  /** firstByte[b] = 1 if some needle starts with lower(b). */
  readonly firstByte: Uint8Array;
  /** Every byte value b with firstByte[lower(b)] = 1 (both cases of a letter). */
  readonly candidates: Uint8Array;
}

/** Up to this many candidate bytes, the scan jumps between them with native indexOf. */
const MAX_INDEXED_CANDIDATES = 8;

function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7e || c < 0x20) throw new RangeError('rewrite rules must be printable ASCII');
    out[i] = c;
  }
  return out;
}

function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

/** LOWER[b] = lower(b), for the byte loops. */
const LOWER = Uint8Array.from({ length: 256 }, (_, b) => lower(b));

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/**
 * Compile rules. Needles must be non-empty printable ASCII. Throws RangeError (a programmer
 * error: rules come from validated configuration) otherwise.
 */
export function compileRules(rules: readonly ReplaceRule[]): RuleSet {
  const unsorted = rules.map((r) => {
    if (r.from.length === 0) throw new RangeError('empty rewrite needle');
    const fromStr = r.from.toLowerCase();
    return { from: asciiBytes(fromStr), to: asciiBytes(r.to), fromStr, toStr: r.to, notFollowedByDigit: r.notFollowedByDigit === true };
  });
  unsorted.sort((a, b) => b.from.length - a.from.length);
  const compiled: CompiledRule[] = unsorted.map((r, k) => {
    const prev = k === 0 ? undefined : unsorted[k - 1]!.from;
    let shared = 0;
    if (prev !== undefined) while (shared < r.from.length && shared < prev.length && prev[shared] === r.from[shared]) shared++;
    return { ...r, shared };
  });
  const firstByte = new Uint8Array(256);
  let longest = 0;
  for (const r of compiled) {
    firstByte[r.from[0]!] = 1;
    longest = Math.max(longest, r.from.length);
  }
  const candidates: number[] = [];
  for (let b = 0; b < 256; b++) if (firstByte[lower(b)] === 1) candidates.push(b);
  return { rules: compiled, window: longest + 1, firstByte, candidates: Uint8Array.from(candidates) };
}

/**
 * Index of the rule matching at `i` in `buf` (`final`: nothing follows `buf`), −1 for no
 * match, −2 when the answer depends on bytes not seen yet: the rest of `buf` is a proper
 * prefix of a needle at least as preferred as any full match, or a full match waits for its
 * one-byte look-ahead.
 */
function matchAt(set: RuleSet, buf: Uint8Array, i: number, final: boolean): number {
  if (set.firstByte[LOWER[buf[i]!]!] !== 1) return -1;
  // Needles that share a prefix with the previous rule (`host:port` after `host`… sorted
  // longest first) are not compared again over it: after rule k−1, `m` bytes at i are known
  // to match it, and `stop` says it mismatched at byte m. Rule k agrees with rule k−1 on its
  // first `shared` bytes, so it mismatches at m too when m < shared, and otherwise its first
  // min(m, shared) bytes are known to match. Same answers as comparing every rule in full.
  let m = 0;
  let stop = false;
  const rules = set.rules;
  for (let k = 0; k < rules.length; k++) {
    const r = rules[k]!;
    const from = r.from;
    const n = from.length;
    if (stop && m < r.shared) continue;
    let j = m < r.shared ? m : r.shared;
    stop = false;
    if (i + n > buf.length) {
      m = j;
      if (final) continue;
      while (i + j < buf.length && LOWER[buf[i + j]!] === from[j]) j++;
      if (i + j === buf.length) return -2;
      m = j;
      stop = true;
      continue;
    }
    while (j < n && LOWER[buf[i + j]!] === from[j]) j++;
    m = j;
    if (j !== n) {
      stop = true;
      continue;
    }
    if (r.notFollowedByDigit) {
      if (i + n === buf.length) {
        if (!final) return -2;
      } else if (isDigit(buf[i + n]!)) continue;
    }
    return k;
  }
  return -1;
}

/**
 * Streaming replacer: `push` each chunk, then `end`. Output concatenated equals
 * `replaceAllBytes(input, set)` for every chunking of the input. Memory held between chunks
 * is below `set.window` bytes (only a possible needle prefix is held).
 */
export class StreamReplacer {
  readonly #set: RuleSet;
  #tail: Uint8Array = new Uint8Array(0);
  #ended = false;
  /** Number of replacements made so far. */
  replacements = 0;

  constructor(set: RuleSet) {
    this.#set = set;
  }

  /** Feed a chunk; returns the bytes that are final so far (possibly empty). */
  push(chunk: Uint8Array): Uint8Array {
    if (this.#ended) throw new RangeError('StreamReplacer: push after end');
    return this.#run(chunk, false);
  }

  /** Flush the held tail. */
  end(): Uint8Array {
    if (this.#ended) return new Uint8Array(0);
    const out = this.#run(new Uint8Array(0), true);
    this.#ended = true;
    return out;
  }

  #run(chunk: Uint8Array, final: boolean): Uint8Array {
    let buf: Uint8Array;
    if (this.#tail.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.#tail.length + chunk.length);
      buf.set(this.#tail, 0);
      buf.set(chunk, this.#tail.length);
    }
    const set = this.#set;
    const parts: Uint8Array[] = [];
    let outLen = 0;
    let seg = 0;
    let i = 0;
    // Where each candidate byte occurs next at or after i (−2: not searched yet, −1: none).
    // Positions between candidates cannot start a match, so they are skipped natively
    // instead of byte by byte; the result is the same as visiting every position.
    const cands = set.candidates;
    const next = cands.length <= MAX_INDEXED_CANDIDATES ? new Int32Array(cands.length).fill(-2) : undefined;
    while (i < buf.length) {
      if (next !== undefined) {
        let p = -1;
        for (let q = 0; q < cands.length; q++) {
          let at = next[q]!;
          if (at !== -1 && at < i) {
            at = buf.indexOf(cands[q]!, i);
            next[q] = at;
          }
          if (at !== -1 && (p === -1 || at < p)) p = at;
        }
        if (p === -1) {
          i = buf.length;
          break;
        }
        i = p;
      }
      const k = matchAt(set, buf, i, final);
      if (k === -2) break;
      if (k < 0) {
        i++;
        continue;
      }
      const r = set.rules[k]!;
      if (i > seg) {
        parts.push(buf.subarray(seg, i));
        outLen += i - seg;
      }
      parts.push(r.to);
      outLen += r.to.length;
      i += r.from.length;
      seg = i;
      this.replacements++;
    }
    if (i > seg) {
      parts.push(buf.subarray(seg, i));
      outLen += i - seg;
    }
    this.#tail = buf.slice(i);
    if (parts.length === 1) return parts[0]!.slice();
    const out = new Uint8Array(outLen);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** One-shot replacement over bytes. */
export function replaceAllBytes(data: Uint8Array, set: RuleSet): Uint8Array {
  const r = new StreamReplacer(set);
  const a = r.push(data);
  const b = r.end();
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * One-shot replacement over a string (header values). Same semantics as the byte version;
 * characters outside ASCII never match a needle (no Unicode case folding: U+017F "ſ" does
 * not match "s").
 */
export function replaceAllString(s: string, set: RuleSet): string {
  // Quick reject (most header values): toLowerCase keeps every ASCII run contiguous and maps
  // it like ASCII folding, so a needle absent from it is absent for the exact scan below.
  const lowered = s.toLowerCase();
  let any = false;
  for (const r of set.rules) {
    if (lowered.includes(r.fromStr)) {
      any = true;
      break;
    }
  }
  if (!any) return s;
  let out = '';
  let seg = 0;
  let i = 0;
  outer: while (i < s.length) {
    const c0 = s.charCodeAt(i);
    if (c0 < 256 && set.firstByte[lower(c0)] === 1) {
      for (const r of set.rules) {
        const n = r.from.length;
        if (i + n > s.length) continue;
        let j = 0;
        while (j < n) {
          const c = s.charCodeAt(i + j);
          if (c > 0x7f || lower(c) !== r.from[j]) break;
          j++;
        }
        if (j !== n) continue;
        if (r.notFollowedByDigit && i + n < s.length && isDigit(s.charCodeAt(i + n))) continue;
        out += s.slice(seg, i) + r.toStr;
        i += n;
        seg = i;
        continue outer;
      }
    }
    i++;
  }
  return out + s.slice(seg);
}

/** True if `haystack` contains `needle` (ASCII, case-insensitive). */
export function containsIgnoreCase(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase()) || asciiFold(haystack).includes(needle.toLowerCase());
}

function asciiFold(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c | 0x20) : s[i]!;
  }
  return out;
}

/** Byte version of {@link containsIgnoreCase} (ASCII needle). */
export function bytesContainIgnoreCase(haystack: Uint8Array, needle: string): boolean {
  const n = asciiBytes(needle.toLowerCase());
  if (n.length === 0) return true;
  const first = n[0]!;
  outer: for (let i = 0; i + n.length <= haystack.length; i++) {
    if (lower(haystack[i]!) !== first) continue;
    for (let j = 1; j < n.length; j++) if (lower(haystack[i + j]!) !== n[j]) continue outer;
    return true;
  }
  return false;
}
