/**
 * Harness for real-tor tests of a whole torbalance node in the shared private network:
 *
 * - {@link startTargetBehindOnion}: the loopback test app (test/helpers/target-app.ts) behind
 *   its own onion service in the shared network; the app believes it is that onion address.
 * - {@link startNodeProcess}: `torbalance init` (master key + config, via `initNode`), then the
 *   node as a separate process (`torbalance run --config …`, run from source with tsx) whose
 *   tor joins the private network (the network's torrc lines in `[tor] extra_config`).
 *   stdout/stderr go to a file (no pipes: the process's only sockets are its own). An optional
 *   preload ({@link CONNECT_RECORDER}) logs every outgoing connect, DNS call and UDP socket
 *   of the node's JS to a file.
 * - {@link socksExchange}/{@link httpViaSocks}: raw HTTP/1.1 through a tor SocksPort with every
 *   received byte kept in {@link received} so a test can scan all of it.
 * - {@link processSockets}: the node's sockets as the OS sees them (`ss -tuxanpe`), for
 *   the no-stray-connections check.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { appendFile, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SocksClient } from 'socks';
import {
  allocatePorts,
  startTestnetService,
  testnetCommonTorrc,
  type StartedNode,
  type TestnetDescription,
  type TestnetServiceInfo,
} from '../../src/adapters/tor/testnet.js';
import { initNode, type InitClusterOptions } from '../../src/cli/commands/init.js';
import { TargetApp } from './target-app.js';
import { sharedTestnet, uniqueNickname } from './testnet.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const pexec = promisify(execFile);

/** Milliseconds since `t0`, as seconds with one decimal. */
export function since(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)}s`;
}

/** Poll `f` every `intervalMs` until it returns non-undefined; throws after `timeoutMs` with the last error. */
export async function pollUntil<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs: number, intervalMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------
// Target

export interface TargetBehindOnion {
  readonly app: TargetApp;
  readonly service: StartedNode<TestnetServiceInfo>;
  readonly onion: string;
  stop(): Promise<void>;
}

/** The test app on a loopback port, behind a new onion service of the shared network. */
export async function startTargetBehindOnion(net: TestnetDescription = sharedTestnet()): Promise<TargetBehindOnion> {
  const [port] = await allocatePorts(1);
  const service = await startTestnetService(net, { nickname: uniqueNickname('tgt'), target: { host: '127.0.0.1', port: port! } }, { owned: true });
  const app = new TargetApp({ address: service.info.onion });
  app.port = port!;
  try {
    await app.start();
  } catch (e) {
    await service.process.stop();
    throw e;
  }
  return {
    app,
    service,
    onion: service.info.onion,
    async stop() {
      await app.stop().catch(() => undefined);
      await service.process.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------
// Node process

/**
 * A preload (`node --import data:…`) that appends one JSON line per event to the file named by
 * `TB_CONNECT_LOG`: `connect` (every net.Socket#connect: host/port or unix path), `lookup`
 * (dns.lookup / dns.promises.lookup / every dns resolve*), `udp` (dgram.createSocket).
 * It only records; it does not block anything.
 */
export const CONNECT_RECORDER = `
import net from 'node:net';
import dns from 'node:dns';
import dgram from 'node:dgram';
import fs from 'node:fs';
const file = process.env.TB_CONNECT_LOG;
const rec = (o) => { try { fs.appendFileSync(file, JSON.stringify({ ...o, t: Date.now() }) + '\\n'); } catch {} };
const origConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let a = args[0];
  if (Array.isArray(a)) a = a[0];
  if (typeof a === 'object' && a !== null) rec({ kind: 'connect', host: a.host, port: a.port === undefined ? undefined : Number(a.port), path: a.path });
  else if (typeof a === 'number' || (typeof a === 'string' && /^[0-9]+$/.test(a))) rec({ kind: 'connect', port: Number(a), host: typeof args[1] === 'string' ? args[1] : undefined });
  else if (typeof a === 'string') rec({ kind: 'connect', path: a });
  else rec({ kind: 'connect', raw: String(a) });
  return origConnect.apply(this, args);
};
for (const obj of [dns, dns.promises]) {
  for (const name of Object.keys(obj)) {
    if (name !== 'lookup' && name !== 'lookupService' && !name.startsWith('resolve') && name !== 'reverse') continue;
    const orig = obj[name];
    if (typeof orig !== 'function') continue;
    obj[name] = function (...args) { rec({ kind: 'lookup', fn: name, host: String(args[0]) }); return orig.apply(this, args); };
  }
}
const origUdp = dgram.createSocket;
dgram.createSocket = function (...args) { rec({ kind: 'udp' }); return origUdp.apply(this, args); };
rec({ kind: 'preload', pid: process.pid });
`;

/** One recorded event of {@link CONNECT_RECORDER}. */
export interface ConnectRecord {
  readonly kind: 'connect' | 'lookup' | 'udp' | 'preload';
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly fn?: string;
  readonly raw?: string;
  readonly pid?: number;
}

export interface NodeProcessOptions {
  readonly target: string;
  /** Extra TOML appended to the config `init` wrote (tables other than node/master/target). */
  readonly extraToml?: string;
  /** Load {@link CONNECT_RECORDER}. */
  readonly recordConnects?: boolean;
  /** `init --cluster` with these options (cluster files and a `[cluster]` table). */
  readonly cluster?: InitClusterOptions;
  readonly net?: TestnetDescription;
}

export interface NodeProcess {
  readonly dir: string;
  readonly configPath: string;
  readonly masterAddress: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  readonly connectLog: string;
  /** The node's log so far. */
  log(): string;
  /** Records of the connect recorder so far. */
  connects(): ConnectRecord[];
  /** SIGTERM, wait (then SIGKILL after `graceMs`); removes the directory. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** TOML string array. */
function tomlArray(lines: readonly string[]): string {
  return `[\n${lines.map((l) => `  ${JSON.stringify(l)},`).join('\n')}\n]`;
}

/** init + run as a child process. */
export async function startNodeProcess(opts: NodeProcessOptions): Promise<NodeProcess> {
  const net = opts.net ?? sharedTestnet();
  // short: tor's control socket and the proxy socket live under it (unix paths ≤ 100 bytes)
  const dir = await mkdtemp('/tmp/tbn-');
  const init = await initNode({ dir, target: opts.target, name: 'e2e', ...(opts.cluster === undefined ? {} : { cluster: opts.cluster }) });
  const torDir = join(dir, 'data', 'tor');
  const common = testnetCommonTorrc(net, uniqueNickname('tbn'), torDir)
    .filter(([k]) => k !== 'SafeLogging') // the node sets SafeLogging itself
    .map(([k, v]) => `${k} ${v}`);
  await appendFile(init.configPath, `\n[tor]\nextra_config = ${tomlArray(common)}\n\n${opts.extraToml ?? ''}\n`);
  const logFile = join(dir, 'node.log');
  const connectLog = join(dir, 'connects.jsonl');
  const out = openSync(logFile, 'a');
  const preload = opts.recordConnects === true ? ['--import', `data:text/javascript,${encodeURIComponent(CONNECT_RECORDER)}`] : [];
  let proc: ChildProcess;
  try {
    proc = spawn(process.execPath, [...preload, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'run', '--config', init.configPath], {
      cwd: REPO,
      stdio: ['ignore', out, out],
      env: { ...process.env, TB_CONNECT_LOG: connectLog },
    });
  } finally {
    closeSync(out);
  }
  if (proc.pid === undefined) throw new Error('could not spawn the node');
  const exited = new Promise<void>((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) r();
    else proc.once('exit', () => { r(); });
  });
  let stopping: Promise<void> | undefined;
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    dir,
    configPath: init.configPath,
    masterAddress: init.masterAddress,
    proc,
    pid: proc.pid,
    logFile,
    connectLog,
    log,
    connects(): ConnectRecord[] {
      try {
        return readFileSync(connectLog, 'utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as ConnectRecord);
      } catch {
        return [];
      }
    },
    stop(graceMs = 15_000): Promise<void> {
      stopping ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(t);
        }
        // the node's tor exits with it (__OwningControllerProcess); wait for its pid file's pid
        const torPid = readTorPid(torDir);
        if (torPid !== undefined) await pollUntil('the node tor to exit', () => (pidAlive(torPid) ? undefined : true), 20_000, 200).catch(() => {
          try {
            process.kill(torPid, 'SIGKILL');
          } catch {
            // gone
          }
        });
        // keep the node's log (and connect log) for post-mortems; the rest is removed
        const keep = join(REPO, '.torlab', 'node-logs');
        await mkdir(keep, { recursive: true });
        const stamp = `${new Date().toISOString().replace(/[:.]/g, '-')}-${proc.pid}`;
        await copyFile(logFile, join(keep, `${stamp}.log`)).catch(() => undefined);
        await copyFile(connectLog, join(keep, `${stamp}.connects.jsonl`)).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

function readTorPid(torDir: string): number | undefined {
  try {
    const n = Number(readFileSync(join(torDir, 'pid'), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** The node tor's SocksPort, read from the torrc the node wrote. */
export function nodeSocksPort(node: NodeProcess): number | undefined {
  try {
    const m = /^SocksPort "?127\.0\.0\.1:(\d+)/m.exec(readFileSync(join(node.dir, 'data', 'tor', 'torrc'), 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** The node tor's pid (its PidFile). */
export function nodeTorPid(node: NodeProcess): number | undefined {
  return readTorPid(join(node.dir, 'data', 'tor'));
}

// ---------------------------------------------------------------------------------------
// Client through SOCKS

/** Every byte any {@link socksExchange} received (for "the target never appears" scans). */
export const received: Buffer[] = [];

/**
 * Connect to host:port through the SocksPort (name resolved by tor), send `request`, and
 * collect everything until the server closes (or `timeoutMs`). All bytes go to {@link received}.
 */
export async function socksExchange(socksPort: number, host: string, port: number, request: Buffer | string, timeoutMs = 60_000): Promise<Buffer> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5 },
    command: 'connect',
    destination: { host, port },
    timeout: 30_000,
  });
  return new Promise<Buffer>((resolveP, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of response within ${timeoutMs} ms (${chunks.reduce((n, c) => n + c.length, 0)} bytes so far)`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      received.push(c);
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolveP(Buffer.concat(chunks));
    });
    socket.write(request);
  });
}

export interface ParsedResponse {
  readonly status: number;
  /** Lower-cased header names, values in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly head: string;
  /** The body after de-chunking (still content-encoded). */
  readonly body: Buffer;
}

/** Parse one HTTP/1.1 response that ended with the connection (content-length, chunked or close-delimited). */
export function parseResponse(raw: Buffer): ParsedResponse {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`not an HTTP response: ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))}`);
  const head = raw.subarray(0, split).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (m === null) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const headers = new Map<string, string[]>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    headers.set(k, [...(headers.get(k) ?? []), l.slice(i + 1).trim()]);
  }
  let body = raw.subarray(split + 4);
  if (headers.get('transfer-encoding')?.some((v) => /chunked/i.test(v)) === true) {
    const parts: Buffer[] = [];
    let off = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', off);
      if (eol < 0) throw new Error('truncated chunked body');
      const size = parseInt(body.subarray(off, eol).toString('latin1').split(';')[0]!, 16);
      if (!Number.isFinite(size)) throw new Error('bad chunk size');
      if (size === 0) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      off = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else {
    const cl = headers.get('content-length')?.[0];
    if (cl !== undefined) body = body.subarray(0, Number(cl));
  }
  return { status: Number(m[1]), headers, head, body };
}

/** GET `path` from `host` through the SocksPort (Connection: close). */
export async function httpViaSocks(socksPort: number, host: string, path: string, extraHeaders = '', timeoutMs = 60_000): Promise<ParsedResponse> {
  const raw = await socksExchange(socksPort, host, 80, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extraHeaders}Connection: close\r\n\r\n`, timeoutMs);
  return parseResponse(raw);
}

// ---------------------------------------------------------------------------------------
// OS view of a process's sockets

export interface OsSocket {
  /** tcp, udp, u_str, u_dgr, u_seq … */
  readonly netid: string;
  readonly state: string;
  readonly local: string;
  readonly peer: string;
  /** Socket inode (unix: local inode; from `ino:` for inet). */
  readonly inode: string | undefined;
  /** Unix sockets: the peer's inode. */
  readonly peerInode: string | undefined;
  /** pids owning the socket. */
  readonly pids: readonly number[];
  readonly line: string;
}

/** All sockets on the machine with their owners (`ss -tuxanpe`; needs only our own processes' /proc). */
export async function allSockets(): Promise<OsSocket[]> {
  const { stdout } = await pexec('ss', ['-tuxanpeH'], { maxBuffer: 64 * 1024 * 1024 });
  const out: OsSocket[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const [netid, state, , , local, peer] = f as [string, string, string, string, string, string];
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((x) => Number(x[1]));
    let inode: string | undefined;
    let peerInode: string | undefined;
    if (netid.startsWith('u_')) {
      // "u_str ESTAB 0 0 /path 1234 * 5678 users:…" or "u_str ESTAB 0 0 * 1234 * 5678"
      inode = f[5];
      peerInode = f[7];
      out.push({ netid, state, local: f[4]!, peer: f[6] ?? '', inode, peerInode, pids, line });
    } else {
      inode = /ino:(\d+)/.exec(line)?.[1];
      out.push({ netid, state, local, peer, inode, peerInode, pids, line });
    }
  }
  return out;
}

/** pid and all its descendants (from /proc/<pid>/stat ppid). */
export function processTree(root: number): Set<number> {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // exited
    }
  }
  const tree = new Set<number>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}
