/**
 * `torbalance doctor`: checks of a node's installation, as data ({@link DoctorCheck}: id,
 * status ok | warn | fail, message, fix). The CLI (src/cli/commands/doctor.ts) prints them.
 *
 * Checks, in order (later ones are skipped when what they need failed):
 * - `tor`: the tor binary (`tor.binary`, else `tor` on PATH) runs and `tor --version` says
 *   ≥ 0.4.8 (the first line is "Tor version X.Y.Z.W." — tor's `print_version` in
 *   src/app/main/main.c; 0.4.8 brought the onion service PoW defences torbalance configures);
 * - `config`: the file loads (src/adapters/config/load.ts);
 * - `master-key`: the master key directory passes the key store's checks (loadMasterKey);
 * - `mode:*`: file modes and owners — master key directory 0700 and its files 0600, cluster
 *   secret and node key 0600 (cluster enabled), data directory 0700, config file not readable
 *   by others, every path owned by the user running doctor;
 * - `clock`: `timedatectl show -p NTPSynchronized --value` ("yes"), else `chronyc -n tracking`
 *   ("Leap status : Normal"); neither available → warn "cannot tell". No network is used;
 * - `admin` / `node-health` / `tor-bootstrap`: the admin API (contract A, GET /status) answers,
 *   the node says healthy, its tor is bootstrapped (100 %);
 * - `reachability` (only with `reachability: true`): a connection to
 *   `<master>:<proxy.virtual_port>` through the node's own SOCKS port succeeds.
 *
 * Nothing here prints or returns secret material: only paths, modes and addresses.
 */
import { publishModeNotes } from './cluster.js';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { adminAuthFor, adminRequest } from '../adapters/admin/client.js';
import { loadConfig, loadMasterKey } from '../adapters/config/load.js';
import type { Config } from '../adapters/config/schema.js';
import { KEY_DIR_MODE, KEY_FILE_MODE, keyDirectoryPaths } from '../adapters/fs/key-store.js';
import { dialThroughTor } from '../adapters/net/socks-dialer.js';
import { errnoCode, isErrno } from '../adapters/system/errno.js';
import { TorbalanceError } from '../core/errors.js';
import { nodePaths } from './node-files.js';

/** One check's outcome. */
export interface DoctorCheck {
  readonly id: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly message: string;
  /** What to do about a warn/fail. */
  readonly fix?: string;
}

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  readonly configPath: string;
  /** Also dial the master onion through the node's SOCKS port. */
  readonly reachability?: boolean;
  /** Environment for the programs run (tor, timedatectl, chronyc); tests set PATH. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Timeout of the admin request (default 5 s) and of the reachability dial (default 60 s). */
  readonly adminTimeoutMs?: number;
  readonly reachabilityTimeoutMs?: number;
  /** The uid that should own the files. Default: process.getuid(). */
  readonly uid?: number;
}

/** The lowest tor version torbalance supports. */
export const MIN_TOR_VERSION: readonly [number, number, number] = [0, 4, 8];

/** Parse the first line of `tor --version` ("Tor version 0.4.9.11."); undefined if absent. */
export function parseTorVersion(output: string): { readonly text: string; readonly parts: readonly number[] } | undefined {
  const m = /^Tor version (\d{1,4})\.(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?(-[A-Za-z0-9-]{1,32})?/m.exec(output);
  if (m === null) return undefined;
  const parts = [m[1], m[2], m[3], m[4] ?? '0'].map((x) => Number(x));
  return { text: `${m[1]!}.${m[2]!}.${m[3]!}${m[4] === undefined ? '' : `.${m[4]}`}${m[5] ?? ''}`, parts };
}

/** True if `v` ≥ `min` (component-wise). */
export function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

interface RunResult {
  readonly ok: boolean;
  readonly missing: boolean;
  readonly stdout: string;
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { env, timeout: timeoutMs, maxBuffer: 256 * 1024, encoding: 'utf8' }, (err, stdout) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      resolve({ ok: err === null, missing: code === 'ENOENT' || code === 'EACCES', stdout: typeof stdout === 'string' ? stdout : '' });
    });
  });
}

const ok = (id: string, message: string): DoctorCheck => ({ id, status: 'ok', message });
const warn = (id: string, message: string, fix: string): DoctorCheck => ({ id, status: 'warn', message, fix });
const fail = (id: string, message: string, fix: string): DoctorCheck => ({ id, status: 'fail', message, fix });

function errText(e: unknown): string {
  if (e instanceof TorbalanceError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

const octal = (m: number): string => `0${(m & 0o777).toString(8)}`;

/** tor present and new enough. */
export async function checkTor(binary: string, env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const install = 'install tor ≥ 0.4.8: `apt-get install tor` (Debian 13+), or the Tor Project\'s Debian repository (https://support.torproject.org/apt/); or set tor.binary';
  const r = await run(binary, ['--version'], env);
  if (r.missing) return fail('tor', `tor not found (${binary})`, install);
  const v = parseTorVersion(r.stdout);
  if (!r.ok || v === undefined) return fail('tor', `\`${binary} --version\` did not print a tor version`, install);
  if (!versionAtLeast(v.parts, MIN_TOR_VERSION)) return fail('tor', `tor ${v.text} is older than ${MIN_TOR_VERSION.join('.')}`, install);
  return ok('tor', `tor ${v.text}`);
}

/** Check a path's mode (exact) and owner. `absent` decides what a missing path means. */
async function checkMode(id: string, path: string, want: number, uid: number | undefined, absent: DoctorCheck | undefined, kind: 'dir' | 'file'): Promise<DoctorCheck | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return absent;
    return fail(id, `cannot stat ${path}: ${errText(e)}`, 'check the path and its parent directories');
  }
  if (kind === 'dir' ? !st.isDirectory() : !st.isFile()) return fail(id, `${path} is not a ${kind === 'dir' ? 'directory' : 'regular file'}`, `move it away and recreate it`);
  if (uid !== undefined && uid !== 0 && st.uid !== uid) return fail(id, `${path} is owned by uid ${st.uid}, not by this user (uid ${uid})`, `run doctor as the node's user, or \`chown ${uid} ${path}\``);
  const mode = st.mode & 0o777;
  if (mode !== want) return fail(id, `${path} has mode ${octal(mode)}, expected ${octal(want)}`, `chmod ${want.toString(8)} ${path}`);
  return ok(id, `${path} ${octal(mode)}`);
}

/** File modes and owners of the config, the master key, the cluster secrets and the data dir. */
export async function checkModes(configPath: string, config: Config, uid: number | undefined): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const push = (c: DoctorCheck | undefined): void => {
    if (c !== undefined) out.push(c);
  };
  try {
    const st = await stat(configPath);
    const mode = st.mode & 0o777;
    if (uid !== undefined && uid !== 0 && st.uid !== uid) out.push(warn('mode:config', `${configPath} is owned by uid ${st.uid}, not by this user (uid ${uid})`, `chown ${uid} ${configPath}`));
    else if ((mode & 0o002) !== 0) out.push(fail('mode:config', `${configPath} is writable by everyone (${octal(mode)})`, `chmod 600 ${configPath}`));
    else if ((mode & 0o004) !== 0) out.push(warn('mode:config', `${configPath} is readable by everyone (${octal(mode)})`, `chmod 600 ${configPath} (or 640 with group torbalance)`));
    else out.push(ok('mode:config', `${configPath} ${octal(mode)}`));
  } catch (e) {
    out.push(fail('mode:config', `cannot stat ${configPath}: ${errText(e)}`, 'check the path'));
  }
  const keyDir = config.master.key_dir;
  const missingKey = fail('mode:master-dir', `${keyDir} does not exist`, 'create the master key: `torbalance init` (first node) or `torbalance join` (more nodes)');
  push(await checkMode('mode:master-dir', keyDir, KEY_DIR_MODE, uid, missingKey, 'dir'));
  const kp = keyDirectoryPaths(keyDir);
  for (const [id, p, required] of [
    ['mode:master-secret', kp.secretKey, true],
    ['mode:master-public', kp.publicKey, false],
    ['mode:master-hostname', kp.hostname, false],
  ] as const) {
    push(await checkMode(id, p, KEY_FILE_MODE, uid, required && out.at(-1)?.id !== 'mode:master-dir' ? fail(id, `${p} does not exist`, 'restore the master key from your backup') : undefined, 'file'));
  }
  if (config.cluster.enabled) {
    const missing = (p: string): DoctorCheck => fail('mode:cluster', `${p} does not exist`, '`torbalance join` writes it (or copy it from the first node for the cluster secret)');
    push(await checkMode('mode:cluster-secret', config.cluster.secret_file, 0o600, uid, missing(config.cluster.secret_file), 'file'));
    push(await checkMode('mode:node-key', config.cluster.node_key_file, 0o600, uid, missing(config.cluster.node_key_file), 'file'));
  }
  push(
    await checkMode(
      'mode:data-dir',
      config.node.data_dir,
      0o700,
      uid,
      warn('mode:data-dir', `${config.node.data_dir} does not exist yet`, 'it is created (0700) on the first `torbalance run`'),
      'dir',
    ),
  );
  return out;
}

/** Is the system clock synchronised? (no network: asks timedatectl or chronyc) */
export async function checkClock(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const fix = 'enable time synchronisation: `timedatectl set-ntp true` (systemd-timesyncd) or install chrony; onion service descriptors and the cluster mesh need a correct clock';
  const t = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], env);
  if (t.ok) {
    const v = t.stdout.trim();
    if (v === 'yes') return ok('clock', 'clock synchronised (timedatectl)');
    if (v === 'no') return fail('clock', 'the clock is not synchronised (timedatectl NTPSynchronized=no)', fix);
  }
  const c = await run('chronyc', ['-n', 'tracking'], env);
  if (c.ok) {
    const m = /^Leap status\s*:\s*(.+)$/m.exec(c.stdout);
    if (m !== null && m[1]!.trim() === 'Normal') return ok('clock', 'clock synchronised (chronyc)');
    if (m !== null) return fail('clock', `the clock is not synchronised (chronyc leap status: ${m[1]!.trim()})`, fix);
  }
  return warn('clock', 'cannot tell whether the clock is synchronised (no answer from timedatectl or chronyc)', fix);
}

function field(o: unknown, ...path: string[]): unknown {
  let v = o;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** Admin API, node health, tor bootstrap (and the SOCKS port for the reachability check). */
export async function checkRunningNode(config: Config, timeoutMs: number): Promise<{ checks: DoctorCheck[]; socksPort: number | undefined }> {
  const runHint = 'start the node: `systemctl start torbalance` (or `torbalance run --config FILE`); logs: `journalctl -u torbalance`';
  if (!config.admin.enabled) return { checks: [warn('admin', 'the admin API is disabled (admin.enabled = false): the running node cannot be checked', 'set admin.enabled = true and reload (restart)')], socksPort: undefined };
  const where = config.admin.listen.kind === 'unix' ? `unix:${config.admin.listen.path}` : `${config.admin.listen.host}:${config.admin.listen.port}`;
  let res;
  try {
    res = await adminRequest(config.admin.listen, 'GET', '/status', undefined, timeoutMs, await adminAuthFor(config.admin));
  } catch (e) {
    return { checks: [fail('admin', `the admin API at ${where} does not answer (${errText(e)})`, runHint)], socksPort: undefined };
  }
  if (res.status !== 200 || res.json === undefined) return { checks: [fail('admin', `GET /status at ${where} answered ${res.status}`, runHint)], socksPort: undefined };
  const checks: DoctorCheck[] = [ok('admin', `admin API answers at ${where}`)];
  const s = res.json;
  // /status (src/node/admin/status.ts): health.{healthy,reasons}, tor.bootstrap (0..100).
  const healthy = field(s, 'health', 'healthy');
  const reasons = field(s, 'health', 'reasons');
  const bootstrap = field(s, 'tor', 'bootstrap');
  const progress = typeof bootstrap === 'number' ? bootstrap : field(s, 'health', 'tor', 'progress');
  if (typeof healthy !== 'boolean') checks.push(warn('node-health', '/status has no health.healthy field (another torbalance version?)', 'run doctor from the same installation as the node'));
  else if (healthy) checks.push(ok('node-health', 'the node is healthy'));
  else {
    const why = Array.isArray(reasons) ? reasons.filter((r) => typeof r === 'string').join('; ') : '';
    checks.push(fail('node-health', `the node is not healthy${why === '' ? '' : `: ${why}`}`, 'see `torbalance status` and the logs (`journalctl -u torbalance`); check the target is up and reachable through tor'));
  }
  if (typeof progress === 'number') {
    checks.push(
      progress >= 100
        ? ok('tor-bootstrap', 'tor is bootstrapped (100%)')
        : fail('tor-bootstrap', `tor is not bootstrapped (${progress}%)`, 'wait a minute; if it stays: check the network, the firewall (outgoing TCP to tor relays), the clock, and tor.extra_config (DisableNetwork, bridges)'),
    );
  }
  return { checks, socksPort: typeof config.tor.socks_port === 'number' ? config.tor.socks_port : await torrcSocksPort(config) };
}

/** The SOCKS port the running node's tor uses: its torrc (`<data_dir>/tor/torrc`, "SocksPort 127.0.0.1:<port> …"). */
async function torrcSocksPort(config: Config): Promise<number | undefined> {
  try {
    const text = await readFile(join(nodePaths(config.node.data_dir).torDir, 'torrc'), 'utf8');
    const m = /^SocksPort "?127\.0\.0\.1:(\d{1,5})\b/m.exec(text);
    return m === null ? undefined : Number(m[1]);
  } catch (e) {
    if (errnoCode(e) === undefined) throw e; // any file-system error: the port is unknown
    return undefined;
  }
}

/** Connect to the master onion through the node's own SOCKS port. */
export async function checkReachability(config: Config, masterAddress: string, socksPort: number, timeoutMs: number): Promise<DoctorCheck> {
  const dest = `${masterAddress}:${config.proxy.virtual_port}`;
  try {
    const sock = await dialThroughTor({ host: '127.0.0.1', port: socksPort }, { host: masterAddress, port: config.proxy.virtual_port }, timeoutMs);
    sock.destroy();
    return ok('reachability', `${dest} is reachable through tor`);
  } catch (e) {
    return fail(
      'reachability',
      `${dest} is not reachable through the node's tor (${errText(e)})`,
      'a fresh node needs a few minutes to publish; check `torbalance status` (publisher, HSDir uploads) and that some node is healthy',
    );
  }
}

/** Run every check. Never throws for a problem it can describe. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorCheck[]> {
  const env = options.env ?? process.env;
  const uid = options.uid ?? process.getuid?.();
  const checks: DoctorCheck[] = [];
  let config: Config | undefined;
  try {
    config = await loadConfig(options.configPath);
  } catch (e) {
    checks.push(await checkTor('tor', env));
    checks.push(fail('config', errText(e), `fix the file (reference: docs/config.md), then \`torbalance config check ${options.configPath}\``));
    checks.push(await checkClock(env));
    return checks;
  }
  checks.push(await checkTor(config.tor.binary, env));
  checks.push(ok('config', `${options.configPath} loads`));
  let masterAddress: string | undefined;
  try {
    masterAddress = (await loadMasterKey(config)).masterAddress;
    checks.push(ok('master-key', `master key ${masterAddress}`));
  } catch (e) {
    checks.push(fail('master-key', errText(e), `fix the master key directory ${config.master.key_dir} (0700, files 0600, owned by the node's user)`));
  }
  checks.push(...(await checkModes(options.configPath, config, uid)));
  const modes = publishModeNotes(config);
  checks.push(modes.warn ? warn('publish-mode', modes.text, 'see docs/DESIGN.md "Rotation-safe intro points" and docs/config.md (cluster.publish.rotation_safe, tor.pow)') : ok('publish-mode', modes.text));
  checks.push(await checkClock(env));
  const running = await checkRunningNode(config, options.adminTimeoutMs ?? 5000);
  checks.push(...running.checks);
  if (options.reachability === true) {
    if (masterAddress === undefined || running.socksPort === undefined) {
      checks.push(fail('reachability', 'cannot check: the master key or the running node\'s SOCKS port (from <data_dir>/tor/torrc) is unknown', 'fix the checks above first'));
    } else {
      checks.push(await checkReachability(config, masterAddress, running.socksPort, options.reachabilityTimeoutMs ?? 60_000));
    }
  }
  return checks;
}

/** Text table: one line per check, a `fix:` line under each warn/fail. */
export function formatDoctor(checks: readonly DoctorCheck[]): string {
  const w = Math.max(...checks.map((c) => c.id.length), 2);
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.status.toUpperCase().padEnd(4)}  ${c.id.padEnd(w)}  ${c.message}`);
    if (c.fix !== undefined && c.status !== 'ok') lines.push(`${' '.repeat(6 + w)}  fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  lines.push(failed === 0 ? `all checks passed${warned > 0 ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}` : `${failed} check${failed === 1 ? '' : 's'} failed`);
  return lines.join('\n') + '\n';
}
