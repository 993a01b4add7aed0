/**
 * Tokenizer for Tor's directory-document ("netdoc") meta-format (dir-spec §1.2, rend-spec-v3
 * §2.4) and rule checking modelled on tor's `parsecommon.c: tokenize_string, get_next_token,
 * token_check_object` and its `token_rule_t` tables (T1, T01, T0N, T1N, T1_START, T1_END;
 * EQ/GE/ARGS/NO_ARGS/CONCAT_ARGS; NO_OBJ/NEED_OBJ/OBJ_OK).
 *
 * A document is a sequence of items: a keyword line `Keyword [SP args]* NL`, optionally
 * followed by one object `-----BEGIN TAG-----` NL base64 lines `-----END TAG-----`.
 *
 * Same as tor: arguments are split on runs of spaces/tabs (at most 512); unknown keywords
 * are kept (any object allowed) and are not counted by the rules; the last line may lack its
 * newline (the middle descriptor layer ends that way); objects are at most 128 KiB; the END
 * tag must repeat the BEGIN tag; object bodies are base64.
 *
 * Stricter than tor (never hit by what tor emits; documented so nobody is surprised):
 * only `\n`, `\t` and printable ASCII are allowed; keyword lines may not start with
 * whitespace and blank lines are rejected (tor silently skips leading whitespace, which is why
 * it only notices a leading space on the `signature` line when it looks for `"\nsignature "`);
 * keywords are `[A-Za-z0-9][A-Za-z0-9-]*` (tor: any non-space run; "opt" is not special);
 * object bodies are canonical base64 lines (tor's decoder skips whitespace and ignores
 * non-zero trailing bits); the object must follow its keyword line directly.
 */
import { fromBase64 } from '../bytes.js';
import { DecodeError } from '../errors.js';

/** An object attached to an item. */
export interface NetdocObject {
  /** The tag between `-----BEGIN ` and `-----`, e.g. `ED25519 CERT`, `MESSAGE`. */
  readonly tag: string;
  /** Decoded base64 body. */
  readonly data: Uint8Array;
  /** 1-based line number of the BEGIN line. */
  readonly line: number;
}

/** One item: keyword line plus optional object. */
export interface NetdocToken {
  readonly keyword: string;
  /** Whitespace-separated arguments. */
  readonly args: readonly string[];
  /** Everything after the keyword and the whitespace after it, to the end of the line (tor's CONCAT_ARGS). */
  readonly rest: string;
  readonly object: NetdocObject | undefined;
  /** 1-based line number of the keyword line. */
  readonly line: number;
  /** Character (= byte, the text is ASCII) offset of the keyword line's first character. */
  readonly offset: number;
  /** Offset just past the item (past the newline ending its last line, or the end of the text). */
  readonly endOffset: number;
}

export interface TokenizeOptions {
  /** Reject longer input (TB_ERR_NETDOC_TOO_LARGE). Default 1 MiB. */
  readonly maxLength?: number;
  /** Reject documents with more items (TB_ERR_NETDOC_TOO_LARGE). Default 10000. */
  readonly maxTokens?: number;
}

/** tor's MAX_ARGS. */
export const MAX_ARGS = 512;
/** tor's MAX_UNPARSED_OBJECT_SIZE and MAX_LINE_LENGTH. */
export const MAX_OBJECT_TEXT = 128 * 1024;

const KEYWORD_RE = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const TAG_RE = /^[A-Za-z0-9]+(?: [A-Za-z0-9]+)*$/;
const B64_LINE_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const BAD_CHAR_RE = /[^\n\t\x20-\x7e]/;

function syntax(message: string, line: number): DecodeError {
  return new DecodeError('TB_ERR_NETDOC_SYNTAX', message, line);
}

/**
 * Split `text` into items. Throws DecodeError TB_ERR_NETDOC_TOO_LARGE, TB_ERR_NETDOC_SYNTAX
 * or TB_ERR_NETDOC_OBJECT (position = 1-based line number).
 */
export function tokenize(text: string, options: TokenizeOptions = {}): NetdocToken[] {
  const maxLength = options.maxLength ?? 1024 * 1024;
  const maxTokens = options.maxTokens ?? 10000;
  if (text.length > maxLength) throw new DecodeError('TB_ERR_NETDOC_TOO_LARGE', `document is longer than ${maxLength} characters`);
  const bad = BAD_CHAR_RE.exec(text);
  if (bad !== null) {
    const line = countLines(text, bad.index);
    throw syntax(`invalid character 0x${text.charCodeAt(bad.index).toString(16).padStart(2, '0')}`, line);
  }
  const lines = text.split('\n');
  // A final "\n" leaves an empty last element that is not a line.
  const nLines = text.endsWith('\n') ? lines.length - 1 : lines.length;
  const starts: number[] = new Array<number>(nLines + 1);
  let off = 0;
  for (let i = 0; i < nLines; i++) {
    starts[i] = off;
    off += lines[i]!.length + 1;
  }
  starts[nLines] = Math.min(off, text.length);

  const tokens: NetdocToken[] = [];
  let i = 0;
  while (i < nLines) {
    const lineNo = i + 1;
    const line = lines[i]!;
    if (line.length === 0) throw syntax('blank line', lineNo);
    if (line.length > MAX_OBJECT_TEXT) throw syntax('line far too long', lineNo);
    if (line[0] === ' ' || line[0] === '\t') throw syntax('keyword line starts with whitespace', lineNo);
    const m = /[ \t]/.exec(line);
    const keyword = m === null ? line : line.slice(0, m.index);
    if (!KEYWORD_RE.test(keyword)) {
      throw syntax(keyword.startsWith('-----') ? 'object without a keyword line' : 'invalid keyword', lineNo);
    }
    const rest = m === null ? '' : line.slice(m.index).replace(/^[ \t]+/, '');
    const args = rest.split(/[ \t]+/).filter((a) => a.length > 0);
    if (args.length > MAX_ARGS) throw syntax(`far too many arguments to ${keyword}`, lineNo);
    i++;
    let object: NetdocObject | undefined;
    if (i < nLines && lines[i]!.startsWith('-----BEGIN ')) {
      const r = readObject(lines, i, nLines);
      object = r.object;
      i = r.next;
    }
    tokens.push({ keyword, args, rest, object, line: lineNo, offset: starts[lineNo - 1]!, endOffset: starts[i]! });
    if (tokens.length > maxTokens) throw new DecodeError('TB_ERR_NETDOC_TOO_LARGE', `more than ${maxTokens} items`);
  }
  return tokens;
}

function readObject(lines: readonly string[], begin: number, nLines: number): { object: NetdocObject; next: number } {
  const lineNo = begin + 1;
  const b = lines[begin]!;
  if (b.length <= 16 || !b.endsWith('-----')) throw new DecodeError('TB_ERR_NETDOC_OBJECT', 'malformed object begin line', lineNo);
  const tag = b.slice(11, -5);
  if (!TAG_RE.test(tag)) throw new DecodeError('TB_ERR_NETDOC_OBJECT', 'malformed object tag', lineNo);
  const endLine = `-----END ${tag}-----`;
  const body: string[] = [];
  let size = 0;
  for (let j = begin + 1; j < nLines; j++) {
    const l = lines[j]!;
    if (l.startsWith('-----END ')) {
      if (l !== endLine) throw new DecodeError('TB_ERR_NETDOC_OBJECT', `mismatched object end tag for ${tag}`, j + 1);
      let data: Uint8Array;
      try {
        data = fromBase64(body.join(''));
      } catch (cause) {
        throw new DecodeError('TB_ERR_NETDOC_OBJECT', `object ${tag} is not valid base64`, lineNo, { cause });
      }
      return { object: { tag, data, line: lineNo }, next: j + 1 };
    }
    if (!B64_LINE_RE.test(l)) throw new DecodeError('TB_ERR_NETDOC_OBJECT', `bad line in object ${tag}`, j + 1);
    size += l.length;
    if (size > MAX_OBJECT_TEXT) throw new DecodeError('TB_ERR_NETDOC_OBJECT', 'object much too big', lineNo);
    body.push(l);
  }
  throw new DecodeError('TB_ERR_NETDOC_OBJECT', `missing end line for object ${tag}`, lineNo);
}

function countLines(text: string, index: number): number {
  let n = 1;
  for (let k = 0; k < index; k++) if (text.charCodeAt(k) === 10) n++;
  return n;
}

// ---------------------------------------------------------------------------------------
// Rules

/** Whether an item may or must carry an object (tor NO_OBJ / NEED_OBJ / OBJ_OK). */
export type ObjectRule = 'none' | 'required' | 'optional';

/** One row of a token table (tor `token_rule_t`). */
export interface TokenRule {
  readonly keyword: string;
  readonly minCount: number;
  readonly maxCount: number;
  readonly minArgs: number;
  readonly maxArgs: number;
  /** The whole rest of the line is one argument (tor CONCAT_ARGS); arg counts are not checked. */
  readonly concatArgs: boolean;
  readonly object: ObjectRule;
  /** Must be the first item (T1_START) or the last item (T1_END). */
  readonly position: 'start' | 'end' | undefined;
}

/** tor's count macros. */
export type CountRule = 'T1' | 'T01' | 'T0N' | 'T1N' | 'T1_START' | 'T1_END';
/** tor's argument macros: EQ(n), GE(n), ARGS (any), NO_ARGS, CONCAT_ARGS. */
export type ArgsRule = { readonly eq: number } | { readonly ge: number } | 'ARGS' | 'NO_ARGS' | 'CONCAT_ARGS';

/** Build a table row the way tor's token tables read. */
export function rule(keyword: string, count: CountRule, args: ArgsRule, object: ObjectRule): TokenRule {
  const [minCount, maxCount, position] = ((): [number, number, 'start' | 'end' | undefined] => {
    switch (count) {
      case 'T1':
        return [1, 1, undefined];
      case 'T01':
        return [0, 1, undefined];
      case 'T0N':
        return [0, Number.MAX_SAFE_INTEGER, undefined];
      case 'T1N':
        return [1, Number.MAX_SAFE_INTEGER, undefined];
      case 'T1_START':
        return [1, 1, 'start'];
      case 'T1_END':
        return [1, 1, 'end'];
    }
  })();
  let minArgs = 0;
  let maxArgs = MAX_ARGS;
  let concatArgs = false;
  if (args === 'NO_ARGS') maxArgs = 0;
  else if (args === 'CONCAT_ARGS') concatArgs = true;
  else if (args !== 'ARGS') {
    if ('eq' in args) {
      minArgs = args.eq;
      maxArgs = args.eq;
    } else {
      minArgs = args.ge;
    }
  }
  return { keyword, minCount, maxCount, minArgs, maxArgs, concatArgs, object, position };
}

/**
 * Check `tokens` against a table, in tor's order: per item (argument count, object presence),
 * then per rule (count, first/last position). Unknown keywords are ignored. Throws
 * DecodeError TB_ERR_NETDOC_RULE with the offending line.
 */
export function checkRules(tokens: readonly NetdocToken[], rules: readonly TokenRule[]): void {
  const byKeyword = new Map<string, TokenRule>();
  for (const r of rules) byKeyword.set(r.keyword, r);
  const counts = new Map<string, number>();
  for (const t of tokens) {
    const r = byKeyword.get(t.keyword);
    if (r === undefined) continue;
    counts.set(r.keyword, (counts.get(r.keyword) ?? 0) + 1);
    if (!r.concatArgs) {
      if (t.args.length < r.minArgs) throw new DecodeError('TB_ERR_NETDOC_RULE', `too few arguments to ${t.keyword}`, t.line);
      if (t.args.length > r.maxArgs) throw new DecodeError('TB_ERR_NETDOC_RULE', `too many arguments to ${t.keyword}`, t.line);
    }
    if (r.object === 'none' && t.object !== undefined) throw new DecodeError('TB_ERR_NETDOC_RULE', `unexpected object for ${t.keyword}`, t.line);
    if (r.object === 'required' && t.object === undefined) throw new DecodeError('TB_ERR_NETDOC_RULE', `missing object for ${t.keyword}`, t.line);
  }
  for (const r of rules) {
    const n = counts.get(r.keyword) ?? 0;
    if (n < r.minCount) throw new DecodeError('TB_ERR_NETDOC_RULE', `missing ${r.keyword} element`);
    if (n > r.maxCount) throw new DecodeError('TB_ERR_NETDOC_RULE', `too many ${r.keyword} elements`);
    if (r.position === 'start' && tokens[0]?.keyword !== r.keyword) {
      throw new DecodeError('TB_ERR_NETDOC_RULE', `first item is not ${r.keyword}`, tokens[0]?.line);
    }
    if (r.position === 'end' && tokens[tokens.length - 1]?.keyword !== r.keyword) {
      throw new DecodeError('TB_ERR_NETDOC_RULE', `last item is not ${r.keyword}`, tokens[tokens.length - 1]?.line);
    }
  }
}

/** First item with `keyword`, or undefined. */
export function findToken(tokens: readonly NetdocToken[], keyword: string): NetdocToken | undefined {
  return tokens.find((t) => t.keyword === keyword);
}

/** First item with `keyword`; throws BugError-like DecodeError if absent (callers check rules first). */
export function requireToken(tokens: readonly NetdocToken[], keyword: string): NetdocToken {
  const t = findToken(tokens, keyword);
  if (t === undefined) throw new DecodeError('TB_ERR_NETDOC_RULE', `missing ${keyword} element`);
  return t;
}

/** All items with `keyword`, in order. */
export function findAll(tokens: readonly NetdocToken[], keyword: string): NetdocToken[] {
  return tokens.filter((t) => t.keyword === keyword);
}
