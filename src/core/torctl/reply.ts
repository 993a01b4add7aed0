/**
 * Sans-IO parser for tor control-port replies (control-spec §2.3 "Replies from Tor to the
 * controller", §4.1 asynchronous events; tor's writer is `control_proto.c`:
 * `control_write_reply`, `control_write_midreply`, `control_write_data`, `write_escaped_data`).
 *
 * Grammar:
 * ```
 * Reply         = *(MidReplyLine / DataReplyLine) EndReplyLine
 * MidReplyLine  = StatusCode "-" ReplyLine
 * DataReplyLine = StatusCode "+" ReplyLine CmdData
 * EndReplyLine  = StatusCode SP ReplyLine
 * CmdData       = *DataLine "." CRLF        ; a leading "." of a data line is doubled
 * ```
 * Replies whose status code starts with `6` are asynchronous events (e.g. `650 HS_DESC …`,
 * `650+HS_DESC_CONTENT …`); tor never interleaves them inside another reply, so a reply is
 * classified by its first line. All lines of one reply share a status code (control-spec
 * §2.3); a mismatch is a protocol error.
 *
 * Tor always ends lines with CRLF. We accept a bare LF too (one trailing CR is stripped).
 * Bytes are decoded as UTF-8 with replacement (tor escapes anything odd itself), so no input
 * can make decoding throw. Size limits are enforced on every line and on every reply before
 * buffering more, so a hostile peer cannot make us buffer without bound. Any violation
 * raises a {@link DecodeError} and poisons the parser: the connection must be closed, since
 * later bytes can no longer be attributed to a command.
 */
import { DecodeError } from '../errors.js';

/** One line of a reply. */
export interface ReplyLine {
  /** Status code, e.g. 250, 552, 650. */
  readonly status: number;
  /** `-` mid line, `+` data line (followed by {@link data}), ` ` end line. */
  readonly separator: '-' | '+' | ' ';
  /** Text after the separator (CRLF removed). */
  readonly text: string;
  /** For `+` lines: the data block, dot-unstuffed, lines joined with `\n`, no trailing newline. */
  readonly data?: string;
}

/** A complete reply (synchronous reply to a command, or an asynchronous event). */
export interface ControlReply {
  /** The status code shared by all lines. */
  readonly status: number;
  readonly lines: readonly ReplyLine[];
}

/** A complete asynchronous event (status 6xx). */
export interface ControlEvent {
  /** Event keyword: the first word of the first line (`HS_DESC`, `STATUS_CLIENT`, …). */
  readonly type: string;
  /** The text of each reply line in order (first is `TYPE args…`); data blocks are in `reply`. */
  readonly lines: readonly string[];
  /** The event as received (lines joined with `\r\n`, data blocks included, dot-stuffed). */
  readonly raw: string;
  /** Structured form, including data blocks (HS_DESC_CONTENT's descriptor). */
  readonly reply: ControlReply;
}

/** One parsed item. */
export type ParsedItem =
  | { readonly kind: 'reply'; readonly reply: ControlReply }
  | { readonly kind: 'event'; readonly event: ControlEvent };

export interface ReplyParserOptions {
  /** Longest accepted line in bytes, terminator included (default 256 KiB). */
  readonly maxLineBytes?: number;
  /**
   * Largest accepted synchronous reply in bytes (default 2 MiB). A function receives the
   * 0-based index of the synchronous reply (the n-th command's reply), so a controller can
   * allow a larger reply for e.g. a consensus download.
   */
  readonly maxReplyBytes?: number | ((syncIndex: number) => number);
  /** Largest accepted event in bytes (default 2 MiB). */
  readonly maxEventBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 256 * 1024;
export const DEFAULT_MAX_REPLY_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_EVENT_BYTES = 2 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder('utf-8', { fatal: false });

function protocolError(message: string, position?: number): DecodeError {
  return new DecodeError('TB_ERR_TOR_CONTROL_PROTOCOL', message, position);
}

function limitError(message: string): DecodeError {
  return new DecodeError('TB_ERR_TOR_CONTROL_LIMIT', message);
}

interface Building {
  status: number;
  isEvent: boolean;
  limit: number;
  bytes: number;
  lines: ReplyLine[];
  raw: string[];
  /** Set while inside a data block: the `+` line awaiting its data. */
  dataFor: { status: number; text: string; lines: string[] } | undefined;
}

/**
 * Incremental reply parser. Feed it bytes as they arrive; it returns every reply or event
 * completed by those bytes, in order. Throws DecodeError (TB_ERR_TOR_CONTROL_PROTOCOL or
 * TB_ERR_TOR_CONTROL_LIMIT); after that, every call throws the same error.
 */
export class ReplyParser {
  private readonly maxLine: number;
  private readonly maxReply: number | ((syncIndex: number) => number);
  private readonly maxEvent: number;
  /** Unconsumed bytes (an incomplete line), kept as chunks to avoid quadratic copying. */
  private pending: Uint8Array[] = [];
  private pendingLength = 0;
  private current: Building | undefined;
  private syncCount = 0;
  private failed: DecodeError | undefined;
  /** Total bytes consumed so far (for error positions). */
  private offset = 0;

  constructor(options: ReplyParserOptions = {}) {
    this.maxLine = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxReply = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.maxEvent = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  }

  /** Number of synchronous replies completed so far. */
  get completedReplies(): number {
    return this.syncCount;
  }

  /** True if some bytes of an unfinished reply are buffered. */
  get inReply(): boolean {
    return this.current !== undefined || this.pendingLength > 0;
  }

  /** Feed bytes; returns the items they complete. */
  feed(chunk: Uint8Array): ParsedItem[] {
    if (this.failed !== undefined) throw this.failed;
    try {
      return this.feedInner(chunk);
    } catch (e) {
      this.failed = e instanceof DecodeError ? e : protocolError('internal parser failure');
      this.pending = [];
      this.pendingLength = 0;
      this.current = undefined;
      throw this.failed;
    }
  }

  private feedInner(chunk: Uint8Array): ParsedItem[] {
    const out: ParsedItem[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl < 0) {
        const rest = chunk.length - start;
        if (rest > 0) {
          if (this.pendingLength + rest > this.maxLine) {
            throw limitError(`control reply line longer than ${this.maxLine} bytes`);
          }
          this.checkReplyGrowth(this.pendingLength + rest);
          this.pending.push(chunk.slice(start));
          this.pendingLength += rest;
        }
        return out;
      }
      const lineLength = this.pendingLength + (nl + 1 - start);
      if (lineLength > this.maxLine) throw limitError(`control reply line longer than ${this.maxLine} bytes`);
      let bytes: Uint8Array;
      if (this.pendingLength === 0) {
        bytes = chunk.subarray(start, nl + 1);
      } else {
        bytes = new Uint8Array(lineLength);
        let o = 0;
        for (const p of this.pending) {
          bytes.set(p, o);
          o += p.length;
        }
        bytes.set(chunk.subarray(start, nl + 1), o);
        this.pending = [];
        this.pendingLength = 0;
      }
      start = nl + 1;
      const item = this.line(bytes);
      this.offset += bytes.length;
      if (item !== undefined) out.push(item);
    }
  }

  /** Reject a reply that would grow past its limit (checked before buffering). */
  private checkReplyGrowth(extra: number): void {
    const cur = this.current;
    if (cur !== undefined && cur.bytes + extra > cur.limit) {
      throw limitError(`control ${cur.isEvent ? 'event' : 'reply'} larger than ${cur.limit} bytes`);
    }
  }

  private replyLimit(): number {
    return typeof this.maxReply === 'number' ? this.maxReply : this.maxReply(this.syncCount);
  }

  /** Process one complete line (terminator included). */
  private line(bytes: Uint8Array): ParsedItem | undefined {
    let end = bytes.length - 1; // the LF
    if (end > 0 && bytes[end - 1] === CR) end--;
    const text = decoder.decode(bytes.subarray(0, end));
    const cur = this.current;

    if (cur?.dataFor !== undefined) {
      this.checkReplyGrowth(bytes.length);
      cur.bytes += bytes.length;
      cur.raw.push(text);
      if (text === '.') {
        const d = cur.dataFor;
        cur.lines.push({ status: d.status, separator: '+', text: d.text, data: d.lines.join('\n') });
        cur.dataFor = undefined;
      } else {
        cur.dataFor.lines.push(text.startsWith('.') ? text.slice(1) : text);
      }
      return undefined;
    }

    const m = /^([0-9]{3})([- +])/.exec(text);
    if (m === null) throw protocolError('malformed control reply line', this.offset);
    const status = Number(m[1]);
    const separator = m[2] as '-' | '+' | ' ';
    const body = text.slice(4);

    let b = cur;
    if (b === undefined) {
      const isEvent = status >= 600 && status <= 699;
      b = {
        status,
        isEvent,
        limit: isEvent ? this.maxEvent : this.replyLimit(),
        bytes: 0,
        lines: [],
        raw: [],
        dataFor: undefined,
      };
      this.current = b;
    } else if (b.status !== status) {
      throw protocolError(`status code changed within a reply (${b.status} then ${status})`, this.offset);
    }
    this.checkReplyGrowth(bytes.length);
    b.bytes += bytes.length;
    b.raw.push(text);

    if (separator === '+') {
      b.dataFor = { status, text: body, lines: [] };
      return undefined;
    }
    b.lines.push({ status, separator, text: body });
    if (separator === '-') return undefined;

    // End line: the reply is complete.
    this.current = undefined;
    const reply: ControlReply = { status: b.status, lines: b.lines };
    if (b.isEvent) {
      const first = b.lines[0]!.text;
      const sp = first.indexOf(' ');
      const type = sp < 0 ? first : first.slice(0, sp);
      return {
        kind: 'event',
        event: { type, lines: b.lines.map((l) => l.text), raw: b.raw.join('\r\n'), reply },
      };
    }
    this.syncCount++;
    return { kind: 'reply', reply };
  }
}

/** True for a 2xx reply. */
export function isSuccess(reply: ControlReply): boolean {
  return reply.status >= 200 && reply.status <= 299;
}

/** A one-line human summary of a reply: `552 Unrecognized key "x"` (text capped at 200 chars). */
export function replySummary(reply: ControlReply): string {
  const last = reply.lines[reply.lines.length - 1];
  const text = last === undefined ? '' : last.text;
  const first = reply.lines[0]?.text ?? '';
  const msg = reply.lines.length > 1 && first !== text ? `${first} / ${text}` : text;
  return `${reply.status} ${msg.length > 200 ? msg.slice(0, 200) + '…' : msg}`;
}

// ---------------------------------------------------------------------------------------
// Argument parsing for reply lines (control-spec §2.3 keyword arguments, §3.21 PROTOCOLINFO)

/** One argument of a reply line: positional (`key` undefined) or `KEY=value`. */
export interface ReplyArg {
  readonly key: string | undefined;
  readonly value: string;
  /** True if the value was a QuotedString. */
  readonly quoted: boolean;
}

const KEY_RE = /^[A-Za-z0-9_]+=/;

function argError(message: string, position?: number): DecodeError {
  return new DecodeError('TB_ERR_TOR_CONTROL_PROTOCOL', message, position);
}

/**
 * Decode a QuotedString starting at `s[start] === '"'` with tor's C-style escapes
 * (`unescape_string` in lib/encoding/cstring.c: `\\ \" \' \n \r \t \xHH \ooo`). Escaped bytes
 * are collected and decoded as UTF-8 (with replacement). Returns the value and the index
 * just after the closing quote.
 */
export function decodeQuoted(s: string, start: number): { value: string; end: number } {
  if (s[start] !== '"') throw argError('expected a quoted string', start);
  const bytes: number[] = [];
  const enc = new TextEncoder();
  let i = start + 1;
  for (;;) {
    if (i >= s.length) throw argError('unterminated quoted string', start);
    const c = s[i]!;
    if (c === '"') return { value: decoder.decode(new Uint8Array(bytes)), end: i + 1 };
    if (c !== '\\') {
      // Copy a run of ordinary characters as UTF-8.
      let j = i;
      while (j < s.length && s[j] !== '"' && s[j] !== '\\') j++;
      for (const x of enc.encode(s.slice(i, j))) bytes.push(x);
      i = j;
      continue;
    }
    const e = s[i + 1];
    switch (e) {
      case '\\':
      case '"':
      case "'":
        bytes.push(e.charCodeAt(0));
        i += 2;
        break;
      case 'n':
        bytes.push(0x0a);
        i += 2;
        break;
      case 'r':
        bytes.push(0x0d);
        i += 2;
        break;
      case 't':
        bytes.push(0x09);
        i += 2;
        break;
      case 'x': {
        const h = s.slice(i + 2, i + 4);
        if (!/^[0-9A-Fa-f]{2}$/.test(h)) throw argError('bad \\x escape in quoted string', i);
        bytes.push(parseInt(h, 16));
        i += 4;
        break;
      }
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': {
        const o = s.slice(i + 1, i + 4);
        if (!/^[0-3][0-7]{2}$/.test(o)) throw argError('bad octal escape in quoted string', i);
        bytes.push(parseInt(o, 8));
        i += 4;
        break;
      }
      case undefined:
      default:
        throw argError('bad escape in quoted string', i);
    }
  }
}

/**
 * Split a reply line into arguments: space-separated tokens, each either `KEY=value`,
 * `KEY="quoted"`, `"quoted"` or a bare word. Throws DecodeError on a malformed quoted string.
 * A bare token is only a key/value if it starts with `[A-Za-z0-9_]+=` (so `$FP~nick` and
 * `$FP=nick` stay positional).
 */
export function parseReplyArgs(line: string): ReplyArg[] {
  const out: ReplyArg[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let key: string | undefined;
    const km = KEY_RE.exec(line.slice(i, i + 256));
    if (km !== null) {
      key = km[0].slice(0, -1);
      i += km[0].length;
    }
    if (line[i] === '"') {
      const q = decodeQuoted(line, i);
      i = q.end;
      if (i < n && line[i] !== ' ') throw argError('garbage after quoted string', i);
      out.push({ key, value: q.value, quoted: true });
    } else {
      let j = line.indexOf(' ', i);
      if (j < 0) j = n;
      out.push({ key, value: line.slice(i, j), quoted: false });
      i = j;
    }
  }
  return out;
}

/** Positional arguments and the key/value map (first occurrence of a key wins) of a line. */
export function splitReplyArgs(line: string): { positional: string[]; keyed: Map<string, string>; all: ReplyArg[] } {
  const all = parseReplyArgs(line);
  const positional: string[] = [];
  const keyed = new Map<string, string>();
  for (const a of all) {
    if (a.key === undefined) positional.push(a.value);
    else if (!keyed.has(a.key)) keyed.set(a.key, a.value);
  }
  return { positional, keyed, all };
}

/**
 * The key/value pairs of a GETINFO reply (control-spec §3.9): `250-key=value` lines and
 * `250+key=` data lines; the final `250 OK` is skipped. Keys are as sent by tor.
 */
export function getInfoValues(reply: ControlReply): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of reply.lines) {
    if (l.separator === ' ' && l.data === undefined && l.text === 'OK') continue;
    const eq = l.text.indexOf('=');
    if (eq <= 0) throw argError(`malformed GETINFO reply line`);
    const key = l.text.slice(0, eq);
    if (l.separator === '+') out.set(key, l.data ?? '');
    else out.set(key, l.text.slice(eq + 1));
  }
  return out;
}
