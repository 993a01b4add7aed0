/**
 * torrc rendering: typed `Keyword value` entries → torrc text tor parses back to the same
 * values.
 *
 * Tor reads each line with `parse_config_line_from_str_verbose` (lib/encoding/confline.c,
 * formerly util.c): the keyword is the first run of non-space characters; the value is the
 * rest of the line with leading/trailing whitespace removed, where an unquoted `#` starts a
 * comment and a trailing backslash continues the line. A value that starts with `"` is a
 * C-style quoted string decoded by `unescape_string` (`\\`, `\"`, `\'`, `\n`, `\r`, `\t`,
 * `\xHH`, octal `\NNN`), and nothing but whitespace or a comment may follow the closing
 * quote. We therefore quote a value when it is empty, has leading/trailing whitespace, or
 * contains whitespace, `"`, `\`, `#` or a non-printable character; inside quotes we escape
 * `\`, `"` and tab. CR, LF and NUL are never allowed (they would inject lines).
 */
import { TorbalanceError } from './errors.js';

/** One torrc line: keyword and value. Values may not contain CR, LF or NUL. */
export type TorrcEntry = readonly [keyword: string, value: string];

/** Tor option names: letters, digits and `_` (tor's own hidden options start with `__`). */
const KEYWORD_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Upper bound on one rendered value; tor's own limits are larger, this catches mistakes. */
export const TORRC_MAX_VALUE_LENGTH = 64 * 1024;

function invalid(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_TORRC_INVALID', 'config', message);
}

/** True if `value` must be written as a quoted string to survive tor's line parser. */
export function torrcNeedsQuotes(value: string): boolean {
  if (value === '') return true;
  // Anything outside printable ASCII (controls, DEL), whitespace, quote, backslash, '#'.
  return /[^\x21-\x7e]|["\\#]/.test(value);
}

/** Quote `value` as a C-style string tor's `unescape_string` decodes back to `value`. */
export function torrcQuote(value: string): string {
  let out = '"';
  for (const ch of value) {
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r' || ch === '\n' || ch === '\0') throw invalid('torrc value contains CR, LF or NUL');
    else {
      const c = ch.codePointAt(0)!;
      if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
      else out += ch;
    }
  }
  return out + '"';
}

/** Check one entry; throws TB_ERR_TORRC_INVALID. */
export function validateTorrcEntry(entry: TorrcEntry): void {
  const [keyword, value] = entry;
  if (!KEYWORD_RE.test(keyword)) throw invalid(`invalid torrc keyword ${JSON.stringify(keyword.slice(0, 64))}`);
  if (/[\r\n\0]/.test(value)) throw invalid(`torrc value for ${keyword} contains CR, LF or NUL`);
  if (value.length > TORRC_MAX_VALUE_LENGTH) throw invalid(`torrc value for ${keyword} is too long`);
}

/** Render one entry as a line (without the newline). */
export function renderTorrcLine(entry: TorrcEntry): string {
  validateTorrcEntry(entry);
  const [keyword, value] = entry;
  return `${keyword} ${torrcNeedsQuotes(value) ? torrcQuote(value) : value}`;
}

/**
 * Render entries as torrc text (one "Keyword value" per line; values quoted with tor's
 * escaping when they contain spaces, quotes, backslashes or '#'). Throws TorbalanceError
 * TB_ERR_TORRC_INVALID on a bad keyword/value.
 */
export function renderTorrc(entries: readonly TorrcEntry[]): string {
  let out = '';
  for (const e of entries) out += renderTorrcLine(e) + '\n';
  return out;
}

/** Build an entry (convenience for readable call sites): `entry('SocksPort', 0)`. */
export function torrcEntry(keyword: string, value: string | number | boolean): TorrcEntry {
  const v = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  return [keyword, v];
}

/** Entries for an options object, in insertion order; arrays repeat the keyword. `undefined` is skipped. */
export function torrcEntries(
  options: Readonly<Record<string, string | number | boolean | readonly (string | number | boolean)[] | undefined>>,
): TorrcEntry[] {
  const out: TorrcEntry[] = [];
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v as readonly (string | number | boolean)[]) out.push(torrcEntry(k, x));
    else out.push(torrcEntry(k, v as string | number | boolean));
  }
  return out;
}
