/**
 * Control-port command encoding (control-spec §2.2 "Commands from controller to Tor",
 * §2.1 QuotedString; tor's reader is `control.c: connection_control_process_inbuf` and
 * `control_proto.c: read_escaped_data`, arguments are parsed by `control_cmd.c`
 * (`kvline_parse` with `KV_QUOTED`, decoding quoted strings with `unescape_string`)).
 *
 * ```
 * Command          = Keyword OptArguments CRLF / "+" Keyword OptArguments CRLF CmdData
 * CmdData          = *DataLine "." CRLF     ; lines starting with "." get an extra "."
 * QuotedString     = DQUOTE *qcontent DQUOTE ; "\" escapes "\" and DQUOTE
 * ```
 * Every argument is checked: CR, LF and NUL are refused everywhere (a CRLF in an argument
 * would let data smuggle a second command onto the control port), keys and bare words must
 * not contain spaces or quotes. Violations throw TorbalanceError TB_ERR_TOR_CONTROL_ARG.
 * Tor caps a command plus its data at 1 MiB (`MAX_COMMAND_LINE_LENGTH`); so do we.
 */
import { TorbalanceError } from '../errors.js';

/** Tor's limit on one command including a multi-line body (control.c MAX_COMMAND_LINE_LENGTH). */
export const MAX_COMMAND_BYTES = 1024 * 1024;

/** An argument: a bare word, `KEY=value` (value quoted if needed), or `KEY="value"` always quoted. */
export type CommandArg =
  | string
  | { readonly key: string; readonly value: string; readonly quote?: 'auto' | 'always' | 'never' };

function argError(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_TOR_CONTROL_ARG', 'input', message);
}

const KEYWORD_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Keys of `KEY=value` arguments (option names, GETINFO-style keys are bare words). */
const ARG_KEY_RE = /^[A-Za-z0-9_]+$/;
/** A bare word: printable ASCII without space, quote or backslash. */
const BARE_RE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

function shortForm(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s);
}

/** Throw TB_ERR_TOR_CONTROL_ARG if `s` contains CR, LF or NUL. */
export function assertNoControlBreaks(s: string, what: string): void {
  if (/[\r\n\0]/.test(s)) throw argError(`${what} contains CR, LF or NUL`);
}

/**
 * Quote a string as a control-spec QuotedString: `"` … `"` with `\` and `"` escaped.
 * CR, LF and NUL are refused (never escaped into `\r\n`: callers never need them and
 * refusing is the injection-safe choice).
 */
export function quoteString(s: string): string {
  assertNoControlBreaks(s, 'quoted argument');
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** True if `s` can be sent as a bare word. */
export function isBareWord(s: string): boolean {
  return BARE_RE.test(s);
}

/** Encode one argument. */
export function encodeArg(arg: CommandArg): string {
  if (typeof arg === 'string') {
    assertNoControlBreaks(arg, 'argument');
    if (!isBareWord(arg)) throw argError(`argument ${shortForm(arg)} is not a bare word (use a quoted key=value)`);
    return arg;
  }
  assertNoControlBreaks(arg.key, 'argument key');
  if (!ARG_KEY_RE.test(arg.key)) throw argError(`invalid argument key ${shortForm(arg.key)}`);
  assertNoControlBreaks(arg.value, `value of ${arg.key}`);
  const mode = arg.quote ?? 'auto';
  if (mode === 'always' || (mode === 'auto' && !isBareWord(arg.value))) return `${arg.key}=${quoteString(arg.value)}`;
  if (!isBareWord(arg.value)) throw argError(`value of ${arg.key} must be a bare word`);
  return `${arg.key}=${arg.value}`;
}

/**
 * Dot-stuff a multi-line body (control-spec §2.2 CmdData): lines are sent with CRLF, a line
 * starting with "." gets another "." and the block ends with ".\r\n". A final newline of
 * `body` is not doubled (tor's `read_escaped_data` gives the receiver `line\n` per line).
 * Bare CR and NUL are refused.
 */
export function dotStuff(body: string): string {
  if (/\0/.test(body)) throw argError('command body contains NUL');
  let b = body.replace(/\r\n/g, '\n');
  if (b.includes('\r')) throw argError('command body contains a bare CR');
  if (b.endsWith('\n')) b = b.slice(0, -1);
  if (b === '') return '.\r\n';
  let out = '';
  for (const line of b.split('\n')) out += (line.startsWith('.') ? '.' : '') + line + '\r\n';
  return out + '.\r\n';
}

/**
 * Encode a command: `KEYWORD arg…\r\n`, or with `body` the multi-line form
 * `+KEYWORD arg…\r\n<dot-stuffed body>.\r\n`. Throws TB_ERR_TOR_CONTROL_ARG.
 */
export function encodeCommand(keyword: string, args: readonly CommandArg[] = [], body?: string): string {
  if (!KEYWORD_RE.test(keyword)) throw argError(`invalid command keyword ${shortForm(keyword)}`);
  let line = keyword;
  for (const a of args) line += ' ' + encodeArg(a);
  const out = body === undefined ? line + '\r\n' : '+' + line + '\r\n' + dotStuff(body);
  checkSize(out);
  return out;
}

/**
 * Encode a raw command line given as text (`GETINFO version`): only checks it has no CR/LF/NUL
 * and a valid keyword. With `body`, the multi-line form is used (a leading "+" in `line` is
 * optional). Throws TB_ERR_TOR_CONTROL_ARG.
 */
export function encodeRawCommand(line: string, body?: string): string {
  assertNoControlBreaks(line, 'command line');
  const l = line.startsWith('+') ? line.slice(1) : line;
  const kw = /^[^ ]*/.exec(l)![0];
  if (!KEYWORD_RE.test(kw)) throw argError(`invalid command keyword ${shortForm(kw)}`);
  if (line.startsWith('+') && body === undefined) throw argError('multi-line command needs a body');
  const out = body === undefined ? l + '\r\n' : '+' + l + '\r\n' + dotStuff(body);
  checkSize(out);
  return out;
}

function checkSize(out: string): void {
  // UTF-8 length is at most 3 bytes per UTF-16 unit; compute exactly only when it could matter.
  if (out.length * 3 > MAX_COMMAND_BYTES && new TextEncoder().encode(out).length > MAX_COMMAND_BYTES) {
    throw argError(`command longer than tor's ${MAX_COMMAND_BYTES}-byte limit`);
  }
}

// ---------------------------------------------------------------------------------------
// Validators shared by typed commands

/** A relay identity fingerprint: 40 hex digits, optionally with a leading `$`. Returns upper-case hex without `$`. */
export function normalizeFingerprint(fp: string): string {
  const m = /^\$?([0-9A-Fa-f]{40})$/.exec(fp);
  if (m === null) throw argError(`invalid relay fingerprint ${shortForm(fp)}`);
  return m[1]!.toUpperCase();
}

/** A GETINFO / GETCONF key: a bare word (printable ASCII, no space, quote or backslash). */
export function checkInfoKey(key: string): string {
  assertNoControlBreaks(key, 'key');
  if (!isBareWord(key)) throw argError(`invalid key ${shortForm(key)}`);
  return key;
}

/** A configuration option name for SETCONF/RESETCONF (`[A-Za-z_][A-Za-z0-9_]*`). */
export function checkConfKey(key: string): string {
  assertNoControlBreaks(key, 'option name');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw argError(`invalid option name ${shortForm(key)}`);
  return key;
}

/** A signal / event name (`[A-Z0-9_]+`, any case). */
export function checkName(name: string, what: string): string {
  assertNoControlBreaks(name, what);
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw argError(`invalid ${what} ${shortForm(name)}`);
  return name;
}

/** `SETCONF k="v" k2 …` (a null value resets the option to its default, control-spec §3.1). */
export function encodeSetConf(entries: readonly (readonly [string, string | null])[]): string {
  if (entries.length === 0) throw argError('SETCONF needs at least one option');
  const args: CommandArg[] = entries.map(([k, v]) =>
    v === null ? checkConfKey(k) : { key: checkConfKey(k), value: v, quote: 'always' as const },
  );
  return encodeCommand('SETCONF', args);
}

/** `RESETCONF k k2 …`. */
export function encodeResetConf(keys: readonly string[]): string {
  if (keys.length === 0) throw argError('RESETCONF needs at least one option');
  return encodeCommand('RESETCONF', keys.map(checkConfKey));
}

/** `GETINFO k k2 …`. */
export function encodeGetInfo(keys: readonly string[]): string {
  if (keys.length === 0) throw argError('GETINFO needs at least one key');
  return encodeCommand('GETINFO', keys.map(checkInfoKey));
}

/** `SETEVENTS E1 E2 …` (empty list: unsubscribe from everything). */
export function encodeSetEvents(events: readonly string[]): string {
  return encodeCommand('SETEVENTS', events.map((e) => checkName(e, 'event name')));
}

/**
 * `+HSPOST SERVER=<fp>… HSADDRESS=<label>\r\n<descriptor>.\r\n` (control-spec §3.27,
 * `control_cmd.c: hspost_syntax` / `handle_control_hspost`). `hsAddressLabel` must already be
 * the validated 56-character label without ".onion" (tor replies `512 Malformed onion address`
 * to `<addr>.onion`, and never replies at all when HSADDRESS is missing).
 */
export function encodeHsPost(descriptor: string, hsAddressLabel: string, servers: readonly string[]): string {
  if (!/^[a-z2-7]{56}$/.test(hsAddressLabel)) throw argError('HSADDRESS must be a 56-character v3 onion label');
  const args: CommandArg[] = servers.map((s) => ({ key: 'SERVER', value: normalizeFingerprint(s), quote: 'never' as const }));
  args.push({ key: 'HSADDRESS', value: hsAddressLabel, quote: 'never' });
  return encodeCommand('HSPOST', args, descriptor);
}

/** `HSFETCH <label> [SERVER=<fp>]…` (control-spec §3.26); the label is pre-validated. */
export function encodeHsFetch(hsAddressLabel: string, servers: readonly string[] = []): string {
  if (!/^[a-z2-7]{56}$/.test(hsAddressLabel)) throw argError('HSFETCH needs a 56-character v3 onion label');
  const args: CommandArg[] = [hsAddressLabel];
  for (const s of servers) args.push({ key: 'SERVER', value: normalizeFingerprint(s), quote: 'never' });
  return encodeCommand('HSFETCH', args);
}
