/**
 * Reverse-proxy benchmark on loopback (`npm run bench -- proxy [--quick]`).
 *
 * Processes, like a real node: a "tor side" (test/helpers/fake-socks-server.ts, a SOCKS5
 * server, in front of test/helpers/target-app.ts, the target; plus a plain TCP relay to the
 * same target, the hop nginx's upstream goes through), the proxy in http mode (src/node/proxy
 * ReverseProxy, body rewriting on), the proxy in tcp mode, nginx when installed, and this
 * process, the client. The same client (node's http with a keep-alive agent, `concurrency`
 * pooled connections, TCP_NODELAY, every body read to the end) measures each path in one run:
 *   direct: client → SOCKS CONNECT <target>:80 (once per pooled connection) → target
 *   proxy:  client → TCP to the proxy → proxy (http mode: request and response headers and
 *           text bodies rewritten; its own keep-alive pool of SOCKS streams) → SOCKS → target
 *   nginx:  client → nginx (one worker process; the same rewriting: sub_filter of the target
 *           name in bodies, proxy_redirect, proxy_cookie_domain; upstream keep-alive) → TCP
 *           relay → target. Skipped, with a printed line, when nginx is not installed.
 *   tcp:    client → TCP to the proxy in tcp mode (one SOCKS stream per visitor connection) → target
 * Requests/s are for `GET /page` (the test app's ~10 KB HTML page with 60 links naming the
 * target and a Set-Cookie Domain=<target>, keep-alive); MB/s for a large text body naming the
 * target every KiB, rewritten while streaming by the proxy and by nginx (same size every way).
 * CPU per request: CPU time (user + system) of the proxy process (process.cpuUsage) and of
 * the nginx worker (/proc/<pid>/stat) over all request rounds, divided by the requests; the
 * load generator shares the machine, so this is the fairer comparison when cores are few.
 * The paths alternate in rounds (the order reversed every other round) and each rate is the
 * median over its rounds, so load from other processes on the machine hits all alike.
 * The SOCKS CONNECTs each path made are counted (the proxy reuses its upstream streams).
 * Memory per idle connection: N client connections are opened to the proxy and left idle
 * (no request sent); the proxy process reports RSS and heap+external after a forced GC, before
 * and after; the delta / N is printed for N = 1 000 and 10 000 (quick mode: 100 and 1 000).
 * Loops are bounded by counts, never by time. Nothing is asserted about timing.
 *
 * File descriptors: 10 000 idle connections need 10 000 descriptors in this process and in
 * the proxy; the soft `ulimit -n` is checked first and the largest N that fits is used
 * (reported), never more.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { dialThroughTor } from '../src/adapters/net/socks-dialer.js';
import { prepareHttpSocket } from '../src/node/proxy/upstream.js';
import { encodeOnionAddress } from '../src/core/hs/address.js';

const TARGET = encodeOnionAddress(new Uint8Array(32).fill(0x11));
const MASTER = encodeOnionAddress(new Uint8Array(32).fill(0x22));
const SELF = fileURLToPath(import.meta.url);

/** Sizes of one run. */
export interface ProxyBenchOptions {
  /** Requests per path, split evenly over `rounds`. */
  readonly requests: number;
  readonly rounds: number;
  readonly concurrency: number;
  readonly bodyBytes: number;
  readonly bodies: number;
  readonly idleCounts: readonly number[];
}

export const FULL: ProxyBenchOptions = { requests: 20_000, rounds: 10, concurrency: 32, bodyBytes: 10 * 1024 * 1024, bodies: 8, idleCounts: [1_000, 10_000] };
export const QUICK: ProxyBenchOptions = { requests: 400, rounds: 4, concurrency: 8, bodyBytes: 1024 * 1024, bodies: 2, idleCounts: [100, 1_000] };

/** One measurement of a path. */
export interface PathResult {
  readonly requests: number;
  readonly seconds: number;
  /** Median over the rounds. */
  readonly requestsPerSecond: number;
  readonly roundRequestsPerSecond: readonly number[];
  readonly bodyBytes: number;
  readonly bodySeconds: number;
  /** Median over the bodies. */
  readonly mbPerSecond: number;
  /** SOCKS CONNECTs the SOCKS server saw while this path was measured. */
  readonly socksConnects: number;
  /** CPU time (µs) of the path's server process per request over the request rounds (undefined: not measured). */
  readonly cpuMicrosPerRequest: number | undefined;
  /** CPU time (µs) of the path's server process per MB of body (undefined: not measured). */
  readonly cpuMicrosPerMb: number | undefined;
}

export interface IdleResult {
  readonly connections: number;
  readonly rssBytesPerConnection: number;
  readonly heapBytesPerConnection: number;
}

export interface ProxyBenchResult {
  readonly direct: PathResult;
  readonly proxy: PathResult;
  /** The proxy in tcp mode. */
  readonly tcp: PathResult;
  /** nginx with the same rewriting; undefined when nginx is not installed. */
  readonly nginx: PathResult | undefined;
  /** proxy / direct. */
  readonly requestRatio: number;
  readonly throughputRatio: number;
  /** tcp / direct. */
  readonly tcpRequestRatio: number;
  readonly tcpThroughputRatio: number;
  /** proxy / nginx (req/s and MB/s), nginx / proxy (CPU per request: above 1 means the proxy spends less). */
  readonly nginxRequestRatio: number | undefined;
  readonly nginxThroughputRatio: number | undefined;
  readonly nginxCpuRatio: number | undefined;
  readonly idle: readonly IdleResult[];
  readonly notes: readonly string[];
}

// ---------------------------------------------------------------------------------------
// Child processes (same file, role chosen by argv)

type Msg = { readonly id: number; readonly [k: string]: unknown };

async function runBackend(): Promise<void> {
  const { TargetApp } = await import('../test/helpers/target-app.js');
  const { FakeSocksServer } = await import('../test/helpers/fake-socks-server.js');
  const app = new TargetApp({ address: TARGET });
  await app.start();
  const socks = new FakeSocksServer({ route: (host) => (host === TARGET ? { host: '127.0.0.1', port: app.port } : undefined) });
  await socks.start();
  // nginx's upstream: a plain TCP relay to the app, the same hop a SOCKS stream is once connected
  const relay = net.createServer({ noDelay: true }, (client) => {
    const up = net.connect({ host: '127.0.0.1', port: app.port, noDelay: true });
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayPort = (relay.address() as net.AddressInfo).port;
  process.send?.({ id: 0, socksPort: socks.port, appPort: app.port, relayPort });
  process.on('message', (m: Msg) => {
    if (m['cmd'] === 'connects') process.send?.({ id: m.id, connects: socks.requests.length });
    else if (m['cmd'] === 'stop') {
      relay.close();
      void Promise.all([socks.stop(), app.stop()]).then(() => {
        process.send?.({ id: m.id });
        process.exit(0);
      });
    }
  });
}

async function runProxyChild(socksPort: number, mode: 'http' | 'tcp'): Promise<void> {
  const { ReverseProxy } = await import('../src/node/proxy/index.js');
  const { createLogger } = await import('../src/adapters/log/logger.js');
  const proxy = new ReverseProxy({
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    mode,
    masterAddress: MASTER,
    target: { address: TARGET, port: 80 },
    socks: { host: '127.0.0.1', port: socksPort },
    proxyProtocol: false,
    limits: { maxConnections: 50_000, maxConnectionsPerCircuit: 50_000, connectTimeoutMs: 30_000, headerTimeoutMs: 600_000, idleTimeoutMs: 600_000 },
    rewriteBodies: true,
    logger: createLogger({ level: 'silent' }),
  });
  await proxy.start();
  const a = proxy.address();
  if (a === undefined || typeof a === 'string') throw new Error('proxy has no TCP address');
  process.send?.({ id: 0, port: a.port });
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (m: Msg) => {
    if (m['cmd'] === 'mem') {
      gc?.();
      gc?.();
      const u = process.memoryUsage();
      process.send?.({ id: m.id, rss: u.rss, heap: u.heapUsed + u.external + u.arrayBuffers, open: proxy.stats().open });
    } else if (m['cmd'] === 'cpu') {
      const c = process.cpuUsage();
      process.send?.({ id: m.id, cpu: c.user + c.system });
    } else if (m['cmd'] === 'stop') {
      void proxy.stop(0).then(() => {
        process.send?.({ id: m.id });
        process.exit(0);
      });
    }
  });
}

class Child {
  readonly proc: ChildProcess;
  #next = 1;
  readonly #waiting = new Map<number, (m: Msg) => void>();
  readonly ready: Promise<Msg>;

  constructor(args: string[]) {
    // TORBALANCE_BENCH_CPU_PROF=<dir>: the proxy children write a V8 CPU profile there on exit
    const prof = process.env['TORBALANCE_BENCH_CPU_PROF'];
    const profArgs = prof !== undefined && args[0] === '--bench-role=proxy' ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
    this.proc = fork(SELF, args, { execArgv: ['--import', 'tsx', '--expose-gc', ...profArgs], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.#waiting.set(0, resolve);
      this.proc.once('exit', (code) => {
        reject(new Error(`bench child ${args.join(' ')} exited with ${code}`));
      });
    });
    this.proc.on('message', (m: Msg) => {
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      w?.(m);
    });
  }

  ask(cmd: string): Promise<Msg> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.proc.send({ id, cmd });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => { r(); }));
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    this.proc.send({ id: -1, cmd: 'stop' });
    await exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------------------------------
// The client

/**
 * A keep-alive agent whose connections are made by `dial` (async). Its sockets get the
 * proxy's own treatment (prepareHttpSocket: TCP_NODELAY, destroyed when the server ends
 * them): dialThroughTor's sockets are allowHalfOpen, and a pooled one the target app
 * closed after its 5 s keep-alive timeout (while the other path was being measured) would
 * otherwise stay in the pool and hang the next request.
 */
class DialAgent extends http.Agent {
  readonly #dial: () => Promise<net.Socket>;
  constructor(dial: () => Promise<net.Socket>, maxSockets: number) {
    super({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.#dial = dial;
  }
  override createConnection(_o: unknown, cb?: (err: Error | null, s: Duplex) => void): Duplex {
    this.#dial().then(
      (s) => {
        prepareHttpSocket(s);
        cb?.(null, s);
        s.resume();
      },
      (e: unknown) => {
        cb?.(e instanceof Error ? e : new Error(String(e)), undefined as unknown as Duplex);
      },
    );
    return undefined as unknown as Duplex;
  }
}

function get(agent: http.Agent, host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host, port: 80, path, method: 'GET', headers: { host } }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => {
        n += d.length;
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode} for ${path}`));
        else resolve(n);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** One GET, its body and Set-Cookie headers as text (to check that a rewriting path rewrote). */
function getText(agent: http.Agent, host: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host, port: 80, path, method: 'GET', headers: { host } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => { resolve(`${(res.headers['set-cookie'] ?? []).join('\n')}\n${Buffer.concat(parts).toString('latin1')}`); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function median(xs: readonly number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 === 1 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

interface BenchPath {
  readonly name: string;
  readonly host: string;
  readonly agent: DialAgent;
  /** CPU time (µs) of the process serving this path, if measured. */
  readonly cpu: (() => Promise<number>) | undefined;
  readonly rounds: number[];
  readonly bodyRates: number[];
  requests: number;
  seconds: number;
  bodyBytes: number;
  bodySeconds: number;
  socksConnects: number;
  requestCpu: number;
  bodyCpu: number;
}

/** The page of the request rounds (see the header comment). */
const PAGE = '/page';

async function runRequests(p: BenchPath, n: number, concurrency: number): Promise<void> {
  let left = n;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left--;
        await get(p.agent, p.host, PAGE);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  p.rounds.push(n / s);
  p.requests += n;
  p.seconds += s;
}

async function runBody(p: BenchPath, size: number): Promise<void> {
  const t0 = performance.now();
  const bytes = await get(p.agent, p.host, `/big?size=${size}`);
  const s = (performance.now() - t0) / 1000;
  p.bodyRates.push(bytes / 1e6 / s);
  p.bodyBytes += bytes;
  p.bodySeconds += s;
}

/** Measure every path, alternating them round by round (order reversed every other round). */
async function measureAll(o: ProxyBenchOptions, backend: Child, paths: readonly BenchPath[]): Promise<void> {
  const connects = async (): Promise<number> => (await backend.ask('connects'))['connects'] as number;
  const timed = async (p: BenchPath, f: () => Promise<void>): Promise<void> => {
    const c0 = await connects();
    await f();
    p.socksConnects += (await connects()) - c0;
  };
  /** CPU of each path's server over `f` (each server is idle while the others are measured). */
  const withCpu = async (f: () => Promise<void>, add: (p: BenchPath, micros: number) => void): Promise<void> => {
    const read = (): Promise<(number | undefined)[]> => Promise.all(paths.map((p) => (p.cpu === undefined ? Promise.resolve(undefined) : p.cpu())));
    const before = await read();
    await f();
    const after = await read();
    paths.forEach((p, i) => {
      const b = before[i];
      const a = after[i];
      if (a !== undefined && b !== undefined) add(p, a - b);
    });
  };
  // warm-up: open the pooled connections (both of the client and of the servers)
  for (const p of paths) await timed(p, () => Promise.all(Array.from({ length: o.concurrency }, () => get(p.agent, p.host, PAGE))).then(() => undefined));
  const perRound = Math.ceil(o.requests / o.rounds);
  const order = (i: number): readonly BenchPath[] => (i % 2 === 0 ? paths : [...paths].reverse());
  await withCpu(async () => {
    for (let r = 0; r < o.rounds; r++) {
      for (const p of order(r)) {
        const n = Math.min(perRound, o.requests - p.requests);
        if (n > 0) await timed(p, () => runRequests(p, n, o.concurrency));
      }
    }
  }, (p, us) => { p.requestCpu += us; });
  await withCpu(async () => {
    for (let b = 0; b < o.bodies; b++) {
      for (const p of order(b)) await timed(p, () => runBody(p, o.bodyBytes));
    }
  }, (p, us) => { p.bodyCpu += us; });
}

function pathResult(p: BenchPath): PathResult {
  return {
    requests: p.requests,
    seconds: p.seconds,
    requestsPerSecond: median(p.rounds),
    roundRequestsPerSecond: p.rounds,
    bodyBytes: p.bodyBytes,
    bodySeconds: p.bodySeconds,
    mbPerSecond: median(p.bodyRates),
    socksConnects: p.socksConnects,
    cpuMicrosPerRequest: p.cpu === undefined ? undefined : p.requestCpu / p.requests,
    cpuMicrosPerMb: p.cpu === undefined ? undefined : p.bodyCpu / (p.bodyBytes / 1e6),
  };
}

function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function openIdle(port: number, n: number, into: net.Socket[]): Promise<void> {
  const batch = 256;
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    const socks = await Promise.all(Array.from({ length: k }, () => connectTcp(port)));
    for (const s of socks) {
      s.on('error', () => undefined);
      into.push(s);
    }
  }
}

async function waitOpen(proxy: Child, n: number): Promise<Msg> {
  for (let i = 0; i < 600; i++) {
    const m = await proxy.ask('mem');
    if (m['open'] === n) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`proxy never reported ${n} open connections`);
}

/** The soft limit on open files (`ulimit -n`), or undefined if unknown. */
function openFileLimit(): number | undefined {
  try {
    const v = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// nginx with the same rewriting (its own instance: temp prefix, loopback port, one process)

const NGINX = '/usr/sbin/nginx';

interface Nginx {
  readonly port: number;
  /** CPU time (µs) of the nginx process so far. */
  cpu(): number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => { resolve(port); });
    });
  });
}

/** The nginx configuration doing what the proxy does on the bench's responses. */
export function nginxConfig(dir: string, port: number, upstreamPort: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream target { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://target;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${TARGET};
      proxy_set_header Accept-Encoding "";
      proxy_redirect http://${TARGET}/ http://${MASTER}/;
      proxy_cookie_domain ${TARGET} ${MASTER};
      sub_filter ${TARGET} ${MASTER};
      sub_filter_once off;
      sub_filter_types text/plain;
    }
  }
}
`;
}

async function startNginx(upstreamPort: number): Promise<Nginx> {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tb-bench-nginx-'));
  const port = await freePort();
  const conf = joinPath(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, upstreamPort));
  const proc = spawn(NGINX, ['-p', dir, '-c', conf, '-e', joinPath(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => { r(); }));
  const tick = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`nginx exited with ${proc.exitCode}`);
    }
    try {
      (await connectTcp(port)).destroy();
      break;
    } catch (e) {
      if (i >= 100) {
        await stop();
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    cpu: () => {
      // fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)), in clock ticks
      const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * tick;
    },
    stop,
  };
}

/** Run the benchmark; `log` receives progress lines. */
export async function runProxyBench(o: ProxyBenchOptions, log: (line: string) => void = console.log): Promise<ProxyBenchResult> {
  const notes: string[] = [];
  const backend = new Child(['--bench-role=backend']);
  let proxy: Child | undefined;
  let tcpProxy: Child | undefined;
  let nginx: Nginx | undefined;
  const idle: IdleResult[] = [];
  try {
    const b = await backend.ready;
    const socksPort = b['socksPort'] as number;
    proxy = new Child(['--bench-role=proxy', String(socksPort), 'http']);
    tcpProxy = new Child(['--bench-role=proxy', String(socksPort), 'tcp']);
    const proxyPort = (await proxy.ready)['port'] as number;
    const tcpPort = (await tcpProxy.ready)['port'] as number;
    if (existsSync(NGINX)) nginx = await startNginx(b['relayPort'] as number);
    else log(`nginx: ${NGINX} not installed; the nginx comparison is skipped`);
    const socks = { host: '127.0.0.1', port: socksPort };

    log(`requests: ${o.requests} GET ${PAGE} per path in ${o.rounds} alternating rounds (keep-alive, ${o.concurrency} connections); bodies: ${o.bodies} × ${(o.bodyBytes / 1048576).toFixed(0)} MiB per path; medians`);
    log('client (every path): node http, keep-alive agent, TCP_NODELAY, bodies read to the end');
    const cpuOf = (c: Child) => async (): Promise<number> => (await c.ask('cpu'))['cpu'] as number;
    const mk = (name: string, host: string, dial: () => Promise<net.Socket>, cpu: (() => Promise<number>) | undefined): BenchPath => ({
      name, host, agent: new DialAgent(dial, o.concurrency), cpu, rounds: [], bodyRates: [], requests: 0, seconds: 0, bodyBytes: 0, bodySeconds: 0, socksConnects: 0, requestCpu: 0, bodyCpu: 0,
    });
    const dPath = mk('direct', TARGET, () => dialThroughTor(socks, { host: TARGET, port: 80 }, 30_000), undefined);
    const pPath = mk('proxy', MASTER, () => connectTcp(proxyPort), cpuOf(proxy));
    const tPath = mk('tcp', TARGET, () => connectTcp(tcpPort), cpuOf(tcpProxy));
    const ng = nginx;
    const nPath = ng === undefined ? undefined : mk('nginx', MASTER, () => connectTcp(ng.port), () => Promise.resolve(ng.cpu()));
    const paths = [dPath, pPath, ...(nPath === undefined ? [] : [nPath]), tPath];
    for (const p of [pPath, ...(nPath === undefined ? [] : [nPath])]) {
      const text = (await getText(p.agent, p.host, PAGE)).toLowerCase();
      if (text.includes(TARGET) || !text.includes(MASTER)) notes.push(`${p.name}: ${PAGE} was not rewritten`);
    }
    try {
      await measureAll(o, backend, paths);
    } finally {
      for (const p of paths) p.agent.destroy();
    }
    const direct = pathResult(dPath);
    const viaProxy = pathResult(pPath);
    const tcp = pathResult(tPath);
    const viaNginx = nPath === undefined ? undefined : pathResult(nPath);
    const cpuText = (r: PathResult): string => (r.cpuMicrosPerRequest === undefined ? '' : `; CPU ${r.cpuMicrosPerRequest.toFixed(1)} µs/request, ${(r.cpuMicrosPerMb ?? 0).toFixed(0)} µs/MB`);
    log(`direct (client → SOCKS CONNECT per pooled connection → target): ${direct.requestsPerSecond.toFixed(0)} req/s, ${direct.mbPerSecond.toFixed(1)} MB/s; ${direct.socksConnects} SOCKS connects`);
    log(`proxy  (client → proxy [rewrites headers and text bodies] → its pooled SOCKS streams → target): ${viaProxy.requestsPerSecond.toFixed(0)} req/s, ${viaProxy.mbPerSecond.toFixed(1)} MB/s; ${viaProxy.socksConnects} SOCKS connects${cpuText(viaProxy)}`);
    if (viaNginx !== undefined) log(`nginx  (client → nginx, 1 worker [sub_filter, proxy_redirect, proxy_cookie_domain] → keep-alive upstream → TCP relay → target): ${viaNginx.requestsPerSecond.toFixed(0)} req/s, ${viaNginx.mbPerSecond.toFixed(1)} MB/s${cpuText(viaNginx)}`);
    log(`tcp    (client → proxy in tcp mode → one SOCKS stream per connection → target): ${tcp.requestsPerSecond.toFixed(0)} req/s, ${tcp.mbPerSecond.toFixed(1)} MB/s; ${tcp.socksConnects} SOCKS connects${cpuText(tcp)}`);
    const requestRatio = viaProxy.requestsPerSecond / direct.requestsPerSecond;
    const throughputRatio = viaProxy.mbPerSecond / direct.mbPerSecond;
    const tcpRequestRatio = tcp.requestsPerSecond / direct.requestsPerSecond;
    const tcpThroughputRatio = tcp.mbPerSecond / direct.mbPerSecond;
    log(`ratio proxy/direct: requests ${requestRatio.toFixed(2)}, throughput ${throughputRatio.toFixed(2)}`);
    log(`ratio tcp/direct: requests ${tcpRequestRatio.toFixed(2)}, throughput ${tcpThroughputRatio.toFixed(2)}`);
    let nginxRequestRatio: number | undefined;
    let nginxThroughputRatio: number | undefined;
    let nginxCpuRatio: number | undefined;
    if (viaNginx !== undefined) {
      nginxRequestRatio = viaProxy.requestsPerSecond / viaNginx.requestsPerSecond;
      nginxThroughputRatio = viaProxy.mbPerSecond / viaNginx.mbPerSecond;
      nginxCpuRatio = (viaNginx.cpuMicrosPerRequest ?? 0) / (viaProxy.cpuMicrosPerRequest ?? 1);
      log(`ratio proxy/nginx: requests ${nginxRequestRatio.toFixed(2)}, throughput ${nginxThroughputRatio.toFixed(2)}; CPU per request nginx/proxy ${nginxCpuRatio.toFixed(2)}`);
    }
    for (const p of [viaProxy, tcp, ...(viaNginx === undefined ? [] : [viaNginx])]) {
      if (p.bodyBytes !== direct.bodyBytes) notes.push(`body sizes differ: direct ${direct.bodyBytes}, other path ${p.bodyBytes}`);
    }
    await nginx?.stop();
    nginx = undefined;
    await tcpProxy.stop();
    tcpProxy = undefined;
    const limit = openFileLimit();
    const base = await waitOpen(proxy, 0);
    for (const wanted of o.idleCounts) {
      // each idle connection needs one descriptor here and one in the proxy; keep 512 spare
      const n = limit === undefined ? wanted : Math.min(wanted, limit - 512);
      if (n < wanted) notes.push(`ulimit -n is ${limit}: measured ${n} idle connections instead of ${wanted}`);
      if (n <= 0) continue;
      const conns: net.Socket[] = [];
      try {
        await openIdle(proxyPort, n, conns);
        const m = await waitOpen(proxy, n);
        const r: IdleResult = {
          connections: n,
          rssBytesPerConnection: ((m['rss'] as number) - (base['rss'] as number)) / n,
          heapBytesPerConnection: ((m['heap'] as number) - (base['heap'] as number)) / n,
        };
        idle.push(r);
        log(`idle: ${n} connections → ${(r.rssBytesPerConnection / 1024).toFixed(1)} KiB RSS and ${(r.heapBytesPerConnection / 1024).toFixed(1)} KiB heap+external per connection`);
      } finally {
        for (const s of conns) s.destroy();
      }
      await waitOpen(proxy, 0);
    }
    for (const n of notes) log(`note: ${n}`);
    return { direct, proxy: viaProxy, tcp, nginx: viaNginx, requestRatio, throughputRatio, tcpRequestRatio, tcpThroughputRatio, nginxRequestRatio, nginxThroughputRatio, nginxCpuRatio, idle, notes };
  } finally {
    await nginx?.stop();
    await tcpProxy?.stop();
    await proxy?.stop();
    await backend.stop();
  }
}

/** Entry point for bench/run.ts: `proxy [--quick]`. */
export async function main(args: readonly string[]): Promise<void> {
  const quick = args.includes('--quick');
  console.log(`proxy benchmark (${quick ? 'quick' : 'full'}) on loopback, node ${process.version}`);
  const r = await runProxyBench(quick ? QUICK : FULL);
  console.log(JSON.stringify(r, null, 2));
}

const role = process.argv.find((a) => a.startsWith('--bench-role='))?.slice('--bench-role='.length);
if (role === 'backend') void runBackend();
else if (role === 'proxy') {
  const i = process.argv.indexOf('--bench-role=proxy');
  void runProxyChild(Number(process.argv[i + 1]), process.argv[i + 2] === 'tcp' ? 'tcp' : 'http');
}
else if (resolvePath(process.argv[1] ?? '') === SELF) void main(process.argv.slice(2));
