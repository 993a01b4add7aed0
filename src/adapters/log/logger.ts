/**
 * Structured logging (pino) with secret redaction.
 *
 * Every torbalance service logs through {@link createLogger}. Two layers keep secrets out of
 * the log:
 * 1. a log formatter walks each record's fields (bounded depth) and replaces the value of any
 *    key whose name looks secret (key material, seeds, cookies, passwords, tokens, secrets,
 *    authorization headers) with `[redacted]`, and any byte array (`Uint8Array`/`Buffer`)
 *    with `[N bytes]`, so raw key bytes can never be serialised by accident;
 * 2. pino's own path redaction for the same names at the top level and one/two levels down
 *    (defence in depth for fields added by child bindings).
 *
 * Output is JSON lines (pino's format) or, with `pretty`, a small built-in human format
 * (`HH:MM:SS.mmm LEVEL msg key=value …`) — no pino-pretty dependency.
 *
 * Under systemd, with stderr connected to the journal ({@link isJournalStream}: `JOURNAL_STREAM`
 * names stderr's device and inode, systemd.exec(5)), each line starts with its syslog priority
 * `<N>` (sd-daemon(3): the journal strips the prefix and files the line at priority N), so
 * `journalctl -p warning` shows warnings and worse; the rest of the line is unchanged.
 */
import { fstatSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';

/** The logger type every service receives. */
export type Logger = pino.Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level: fatal, error, warn, info, debug, trace or silent. Default `info`. */
  readonly level?: string;
  /** Human-readable lines instead of JSON. Default: false. */
  readonly pretty?: boolean;
  /** Where to write: a stream or a file descriptor. Default: fd 2 (stderr). */
  readonly destination?: NodeJS.WritableStream | number;
  /** Static fields on every record (e.g. `{ node: 'n1' }`). */
  readonly base?: Record<string, unknown>;
  /** Prefix each line with its syslog priority `<N>` (for the journal). Default: false. */
  readonly journal?: boolean;
}

/** Field-name fragments that mark a value as secret (case-insensitive, substring match). */
const SECRET_KEY_RE =
  /(secret|password|passwd|passphrase|token|cookie|seed|private|privkey|authorization|credential|api_?key|^key$|key_?bytes|keyblob|key_?material|expanded_?key|master_?key$)/i;

/** Names used for pino's path redaction (exact keys). */
const SECRET_NAMES = [
  'key', 'secret', 'secretKey', 'secret_key', 'privateKey', 'private_key', 'password', 'passphrase',
  'token', 'cookie', 'authCookie', 'seed', 'masterKey', 'expandedKey', 'clusterSecret', 'authorization',
];

const REDACT_PATHS = [
  ...SECRET_NAMES,
  ...SECRET_NAMES.map((n) => `*.${n}`),
  ...SECRET_NAMES.map((n) => `*.*.${n}`),
  'headers.cookie', 'headers.authorization', 'req.headers.cookie', 'req.headers.authorization',
];

const REDACTED = '[redacted]';
const MAX_DEPTH = 6;

/** True if a field name denotes secret material. Exported for tests. */
export function isSecretKeyName(name: string): boolean {
  return SECRET_KEY_RE.test(name);
}

/**
 * Returns a copy of `value` with secret-named fields replaced by `[redacted]` and byte arrays
 * by `[N bytes]`. Depth-bounded; cycles become `[circular]`. Errors keep name/message/code.
 */
export function sanitizeForLog(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return `[${value.length} bytes]`;
  if (value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[depth]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out['code'] = code;
    if (value.stack !== undefined) out['stack'] = value.stack;
    return out;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => sanitizeForLog(v, depth + 1, seen));
  if (value instanceof Map || value instanceof Set || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKeyName(k) ? REDACTED : sanitizeForLog(v, depth + 1, seen);
  }
  return out;
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL',
};

/** Formats one pino JSON line as a human-readable line (the built-in "pretty" format). */
export function formatPrettyLine(jsonLine: string): string {
  let rec: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(jsonLine);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return jsonLine;
    rec = parsed as Record<string, unknown>;
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    return jsonLine;
  }
  const { time, level, msg, pid: _pid, hostname: _hostname, ...rest } = rec;
  const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const lv = typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : String(level);
  const fields = Object.entries(rest)
    .map(([k, v]) => {
      if (k === 'err' && v !== null && typeof v === 'object') {
        const e = v as Record<string, unknown>;
        const code = typeof e['code'] === 'string' ? ` [${e['code']}]` : '';
        return `err=${JSON.stringify(`${String(e['message'])}${code}`)}`;
      }
      return `${k}=${typeof v === 'string' && /^[\w.:/@[\]-]*$/.test(v) ? v : JSON.stringify(v)}`;
    })
    .join(' ');
  return `${t} ${lv} ${typeof msg === 'string' ? msg : ''}${fields === '' ? '' : ` ${fields}`}\n`;
}

/**
 * The syslog priority of a pino level (sd-daemon(3) `SD_*`): fatal 2 (crit), error 3 (err),
 * warn 4 (warning), info 6 (info), debug and trace 7 (debug). Levels between take the next
 * lower pino level's priority.
 */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * `<N>` for a pino JSON line, N the priority of its `level` (pino writes `{"level":NN` first);
 * a line without a level (not a record) is filed as info.
 */
export function journalPrefix(jsonLine: string): string {
  const m = /^\{"level":(\d+)[,}]/.exec(jsonLine);
  return `<${m === null ? 6 : syslogPriority(Number(m[1]))}>`;
}

/**
 * True when `env.JOURNAL_STREAM` ("<device>:<inode>", set by systemd when stdout/stderr go to
 * the journal) is the file descriptor `fd` itself — not an inherited variable with `fd`
 * redirected elsewhere (systemd.exec(5) says to check both).
 */
export function isJournalStream(env: Readonly<Record<string, string | undefined>>, fd = 2): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (m === null) return false;
  let st;
  try {
    st = fstatSync(fd, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EBADF') return false;
    throw e;
  }
  return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
}

/** A stream that writes `fn(line)` to `out` for each complete line written to it. */
function lineStream(out: NodeJS.WritableStream, fn: (line: string) => string): Writable {
  let buffered = '';
  return new Writable({
    write(chunk: Buffer | string, _enc, cb): void {
      buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line !== '') out.write(fn(line));
        nl = buffered.indexOf('\n');
      }
      cb();
    },
  });
}

/** Creates a logger that redacts secrets. See the module comment. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const dest = opts.destination ?? 2;
  const raw: NodeJS.WritableStream =
    typeof dest === 'number' ? (pino.destination({ dest, sync: true }) as unknown as NodeJS.WritableStream) : dest;
  // With both, the priority is read from the JSON line and put before the human one.
  const stream =
    opts.journal === true
      ? lineStream(raw, (l) => `${journalPrefix(l)}${opts.pretty === true ? formatPrettyLine(l) : `${l}\n`}`)
      : opts.pretty === true
        ? lineStream(raw, formatPrettyLine)
        : raw;
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.base ?? null,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { err: (e: unknown) => sanitizeForLog(e) },
      formatters: {
        log: (obj: Record<string, unknown>) => sanitizeForLog(obj) as Record<string, unknown>,
        bindings: (b: pino.Bindings) => sanitizeForLog(b) as pino.Bindings,
      },
    },
    stream as pino.DestinationStream,
  );
}
