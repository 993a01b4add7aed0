/**
 * Loading the node configuration: read a TOML file (size-bounded), parse it with smol-toml,
 * validate it with the zod schema (src/adapters/config/schema.ts) and resolve its paths.
 *
 * Every problem is reported as `key.path (line N): expected …`: syntax errors carry smol-toml's
 * line and column; schema issues are mapped to the dotted key path and the line where that key
 * (or its nearest enclosing table) is written, found by a small scan of the TOML source.
 * All issues of a file are reported at once in one {@link ConfigError}
 * (TB_ERR_CONFIG_INVALID / TB_ERR_CONFIG_SYNTAX).
 *
 * {@link loadMasterKey} does the file checks that need the secret: it reads the master key
 * directory with the key store's permission checks (directory 0700, secret file 0600, no
 * symlinks; src/adapters/fs/key-store.ts) and refuses a target equal to the master address.
 */
import { constants } from 'node:fs';
import { access, lstat, open, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type * as z from 'zod';
import { TorbalanceError } from '../../core/errors.js';
import { readKeyDirectory, type LoadedKeyDirectory } from '../fs/key-store.js';
import { RUNTIME_DIR, configSchema, resolveConfigPaths, schemaKeys, type Config } from './schema.js';

/** Largest config file read. */
export const MAX_CONFIG_SIZE = 1024 * 1024;

/** Name of a node directory's config file (`torbalance init` and `torbalance join` write it). */
export const CONFIG_FILE_NAME = 'torbalance.toml';

/** One problem in a config file. */
export interface ConfigIssue {
  /** Dotted key path (`proxy.limits.max_connections`, `tor.extra_config[2]`), '' for the document. */
  readonly key: string;
  /** 1-based line in the file, when known. */
  readonly line: number | undefined;
  readonly column?: number;
  /** What was expected (starts with "expected" or "unknown key"). */
  readonly message: string;
}

/** An invalid config file; `issues` lists every problem. Codes: TB_ERR_CONFIG_INVALID, TB_ERR_CONFIG_SYNTAX. */
export class ConfigError extends TorbalanceError {
  readonly issues: readonly ConfigIssue[];
  readonly file: string | undefined;

  constructor(code: string, file: string | undefined, issues: readonly ConfigIssue[]) {
    const where = file ?? '<config>';
    super(code, 'config', `invalid configuration ${where}:\n${issues.map((i) => `  - ${formatIssue(i)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
    this.file = file;
  }
}

/** `key (line N): message` */
export function formatIssue(i: ConfigIssue): string {
  const key = i.key === '' ? '(document)' : i.key;
  const pos = i.line === undefined ? '' : i.column === undefined ? ` (line ${i.line})` : ` (line ${i.line}, column ${i.column})`;
  return `${key}${pos}: ${i.message}`;
}

// ---------------------------------------------------------------------------------------------
// Finding the line of a key in TOML source.

function splitDotted(key: string): string[] {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)/y;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < key.length && (m = re.exec(key)) !== null) {
    parts.push(m[1] ?? m[2] ?? m[3] ?? '');
    if (m[0] === '') break;
  }
  return parts;
}

/** Net bracket depth change of a line's value part, ignoring brackets inside strings and comments. */
function bracketDelta(s: string): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') break;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
  }
  return depth;
}

/**
 * Map every key and table path written in `source` to its 1-based line. Inline-table members
 * get the line of the inline table; multi-line arrays and strings are skipped over.
 */
export function tomlKeyLines(source: string): Map<string, number> {
  const lines = source.split(/\r?\n/);
  const out = new Map<string, number>();
  let table: string[] = [];
  let arrayDepth = 0;
  let inMultiString: string | undefined;
  const record = (parts: readonly string[], line: number): void => {
    const k = parts.join('.');
    if (!out.has(k)) out.set(k, line);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = i + 1;
    if (inMultiString !== undefined) {
      if (line.includes(inMultiString)) inMultiString = undefined;
      continue;
    }
    if (arrayDepth > 0) {
      arrayDepth += bracketDelta(line);
      continue;
    }
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$/.exec(line);
    if (header !== null) {
      table = splitDotted(header[1]!);
      record(table, n);
      continue;
    }
    const kv = /^\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=\s*(.*)$/.exec(line);
    if (kv === null) continue;
    const path = [...table, ...splitDotted(kv[1]!)];
    record(path, n);
    const value = kv[2]!;
    if (value.startsWith('{')) {
      for (const m of value.matchAll(/([A-Za-z0-9_-]+)\s*=/g)) record([...path, m[1]!], n);
    }
    const ms = /^("""|''')/.exec(value);
    if (ms !== null && !value.slice(3).includes(ms[1]!)) {
      inMultiString = ms[1];
      continue;
    }
    const d = bracketDelta(value);
    if (d > 0) arrayDepth = d;
  }
  return out;
}

function lineFor(lines: Map<string, number>, path: readonly PropertyKey[]): number | undefined {
  const parts = path.filter((p): p is string => typeof p === 'string');
  for (let k = parts.length; k > 0; k--) {
    const l = lines.get(parts.slice(0, k).join('.'));
    if (l !== undefined) return l;
  }
  return undefined;
}

function keyString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s;
}

/** The keys the schema allows directly under table `parent` ('' = top level). */
function allowedKeys(parent: string): string[] {
  const set = new Set<string>();
  const prefix = parent === '' ? '' : `${parent}.`;
  for (const k of schemaKeys()) {
    if (k.path.startsWith(prefix)) set.add(k.path.slice(prefix.length).split('.')[0]!);
  }
  return [...set];
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = dist(word.toLowerCase(), c);
    if (dd < bestD) {
      bestD = dd;
      best = c;
    }
  }
  return bestD <= (word.length <= 3 ? 1 : Math.max(2, Math.floor(word.length / 3))) ? best : undefined;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const m = issue.message;
  if (m.startsWith('expected')) return m;
  if (issue.code === 'invalid_type' && issue.expected === 'object') return `expected a table`;
  // zod's generic text ("Invalid input: expected number, received string")
  const i = m.indexOf('expected');
  return i >= 0 ? m.slice(i) : `expected a valid value (${m})`;
}

function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let v = doc;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Map zod issues to {@link ConfigIssue}s with key paths and lines. */
export function mapIssues(issues: readonly z.core.$ZodIssue[], source: string, doc?: unknown): ConfigIssue[] {
  const lines = tomlKeyLines(source);
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const parent = keyString(issue.path);
      const allowed = allowedKeys(parent);
      for (const k of issue.keys) {
        const full = [...issue.path, k];
        const guess = closest(k, allowed);
        out.push({
          key: keyString(full),
          line: lineFor(lines, full),
          message: `unknown key${guess === undefined ? '' : ` (did you mean "${guess}"?)`}; expected one of ${allowed.join(', ')}`,
        });
      }
      continue;
    }
    const key = keyString(issue.path);
    let message = issueMessage(issue);
    if (issue.code === 'invalid_type' && valueAt(doc, issue.path) === undefined) {
      message = `missing required key; ${message}`;
    }
    out.push({ key, line: lineFor(lines, issue.path), message });
  }
  return out;
}

/** Options of {@link parseConfigText}. */
export interface ParseConfigOptions {
  /** Directory relative paths are resolved against (default: the current directory). */
  readonly baseDir?: string;
  /** File name for messages and `Config.source`. */
  readonly source?: string;
  /** The runtime directory the admin socket defaults to (undefined: `node.data_dir`). */
  readonly runtimeDir?: string | undefined;
}

/** Parse and validate TOML text. Throws {@link ConfigError}. */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): Config {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigError('TB_ERR_CONFIG_SYNTAX', options.source, [
        { key: '', line: e.line, column: e.column, message: `expected valid TOML: ${first}` },
      ]);
    }
    throw new ConfigError('TB_ERR_CONFIG_SYNTAX', options.source, [{ key: '', line: undefined, message: 'expected valid TOML' }]);
  }
  const r = configSchema.safeParse(doc);
  if (!r.success) throw new ConfigError('TB_ERR_CONFIG_INVALID', options.source, mapIssues(r.error.issues, text, doc));
  return resolveConfigPaths(r.data, options.baseDir ?? process.cwd(), options.source, options.runtimeDir);
}

/**
 * The runtime directory for the admin socket's default: `dir` (default /run/torbalance, made
 * by systemd's `RuntimeDirectory=torbalance` while the unit runs) if it is a directory this
 * process may enter and write, else undefined (the socket then defaults to `node.data_dir`).
 * The node (user torbalance) and the operator's `torbalance status` (as torbalance or root)
 * both pass the test and agree on the socket; another user's nodes on the same machine (a
 * demo, tests) cannot use the directory and keep their own data directories.
 */
export async function defaultRuntimeDir(dir: string = RUNTIME_DIR): Promise<string | undefined> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return undefined;
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    return dir;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR' || code === 'EPERM') return undefined;
    throw e;
  }
}

/**
 * Validate a config given as a JS object shaped like the TOML document (for programs and
 * tests that build configs in memory). Issues carry key paths but no lines. Throws
 * {@link ConfigError} TB_ERR_CONFIG_INVALID.
 */
export function configFromObject(doc: unknown, options: ParseConfigOptions = {}): Config {
  const r = configSchema.safeParse(doc);
  if (!r.success) throw new ConfigError('TB_ERR_CONFIG_INVALID', options.source, mapIssues(r.error.issues, '', doc));
  return resolveConfigPaths(r.data, options.baseDir ?? process.cwd(), options.source);
}

/** Torrc entries (e.g. `testnetCommonTorrc(...)`) as `tor.extra_config` lines ("Keyword value"). */
export function extraConfigLines(entries: readonly (readonly [string, string])[]): string[] {
  return entries.map(([k, v]) => (v === '' ? k : `${k} ${v}`));
}

/**
 * Read, parse and validate a config file. `admin.listen` defaults into {@link defaultRuntimeDir}
 * when there is one (`options.runtimeDir` overrides the detection; undefined: none). Relative
 * paths in it are relative to the file's
 * directory — the directory of the file a symbolic link points to when `file` is one, so
 * /etc/torbalance/torbalance.toml can link to the config `torbalance init` wrote in the node
 * directory (docs/OPERATIONS.md). Throws {@link ConfigError} (TB_ERR_CONFIG_INVALID, TB_ERR_CONFIG_SYNTAX) or
 * TorbalanceError TB_ERR_CONFIG_NOT_FOUND / TB_ERR_CONFIG_READ / TB_ERR_CONFIG_TOO_LARGE /
 * TB_ERR_CONFIG_PERMISSIONS (the file is group- or world-writable).
 */
export async function loadConfig(file: string, options: { readonly runtimeDir?: string | undefined } = {}): Promise<Config> {
  const abs = resolve(file);
  let text: string;
  let baseDir = dirname(abs);
  try {
    if ((await lstat(abs)).isSymbolicLink()) baseDir = dirname(await realpath(abs));
    const fh = await open(abs, constants.O_RDONLY);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new TorbalanceError('TB_ERR_CONFIG_READ', 'config', `config ${abs} is not a regular file`);
      // The config names the program run as tor (tor.binary), the key paths and raw torrc
      // lines: whoever can write it runs code as the node's user. Refused like a readable key.
      if ((st.mode & 0o022) !== 0) {
        throw new TorbalanceError(
          'TB_ERR_CONFIG_PERMISSIONS',
          'config',
          `config ${abs} is writable by ${(st.mode & 0o002) !== 0 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); it names the tor program and the key paths, so it is refused: run chmod 600 '${abs}' (or 640 with the node's group)`,
        );
      }
      if (st.size > MAX_CONFIG_SIZE) throw new TorbalanceError('TB_ERR_CONFIG_TOO_LARGE', 'config', `config ${abs} is larger than ${MAX_CONFIG_SIZE} bytes`);
      const buf = Buffer.alloc(MAX_CONFIG_SIZE + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_CONFIG_SIZE) throw new TorbalanceError('TB_ERR_CONFIG_TOO_LARGE', 'config', `config ${abs} is larger than ${MAX_CONFIG_SIZE} bytes`);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : String(e);
    if (code === 'ENOENT') throw new TorbalanceError('TB_ERR_CONFIG_NOT_FOUND', 'config', `config ${abs} does not exist`, { cause: e });
    throw new TorbalanceError('TB_ERR_CONFIG_READ', 'config', `cannot read config ${abs}: ${code}`, { cause: e });
  }
  const runtimeDir = 'runtimeDir' in options ? options.runtimeDir : await defaultRuntimeDir();
  return parseConfigText(text, { baseDir, source: abs, runtimeDir });
}

/** The master key and what the file checks found. */
export interface MasterKeyCheck {
  readonly key: LoadedKeyDirectory;
  /** `<56>.onion` of the master key. */
  readonly masterAddress: string;
  /** Non-fatal findings for the operator. */
  readonly warnings: readonly string[];
}

/**
 * Check the files a config references: the master key directory (permissions via the key
 * store: TB_ERR_KEYSTORE_*), that the target is not the master address
 * (TB_ERR_CONFIG_TARGET_IS_MASTER) and that `target.tls.ca_file`, if set, is a readable file
 * (TB_ERR_CONFIG_FILE). Returns the loaded key (secret: never log it).
 */
export async function loadMasterKey(config: Config): Promise<MasterKeyCheck> {
  const key = await readKeyDirectory(config.master.key_dir);
  const masterAddress = key.keypair.address;
  if (masterAddress === config.target.address) {
    throw new TorbalanceError(
      'TB_ERR_CONFIG_TARGET_IS_MASTER',
      'config',
      `target.address is the master address ${masterAddress}; the target must be the backend service, not the balanced one`,
    );
  }
  const warnings: string[] = [];
  if (!key.hasHostnameFile) warnings.push(`${config.master.key_dir} has no hostname file (tor will write one)`);
  const ca = config.target.tls.ca_file;
  if (ca !== undefined) {
    const st = await stat(ca).catch(() => undefined);
    if (st?.isFile() !== true) throw new TorbalanceError('TB_ERR_CONFIG_FILE', 'config', `target.tls.ca_file ${ca} is not a readable file`);
  }
  if (!config.target.tls.enabled && (ca !== undefined || config.target.tls.servername !== undefined)) {
    warnings.push('target.tls.ca_file/servername are set but target.tls.enabled is false; they are ignored');
  }
  return { key, masterAddress, warnings };
}
