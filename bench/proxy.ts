/**
 * Reverse-proxy benchmark on loopback (`npm run bench -- proxy [--quick]`).
 *
 * Three processes, like a real node: a "tor side" (test/helpers/fake-socks-server.ts, a
 * SOCKS5 server, in front of test/helpers/target-app.ts, the target), the proxy
 * (src/node/proxy ReverseProxy, http mode, body rewriting on) and this process, the client.
 * The same client (node's http with a keep-alive agent, `concurrency` pooled connections,
 * TCP_NODELAY, every body read to the end) is measured two ways in one run:
 *   direct: client → SOCKS CONNECT <target>:80 (once per pooled connection) → target
 *   proxy:  client → TCP to the proxy → proxy (http mode: request and response headers and
 *           text bodies rewritten; its own keep-alive pool of SOCKS streams) → SOCKS → target
 * and the ratio proxy/direct is printed for requests/s (`GET /`, the test app's HTML page
 * with its target-naming headers, keep-alive) and MB/s (a large text body naming the target
 * every KiB, so the proxy rewrites it while streaming; same size both ways).
 * The two paths alternate in rounds (direct, proxy, proxy, direct, …) and each figure is
 * the median over its rounds, so load from other processes on the machine hits both alike.
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
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { resolve as resolvePath } from 'node:path';
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
}

export interface IdleResult {
  readonly connections: number;
  readonly rssBytesPerConnection: number;
  readonly heapBytesPerConnection: number;
}

export interface ProxyBenchResult {
  readonly direct: PathResult;
  readonly proxy: PathResult;
  readonly requestRatio: number;
  readonly throughputRatio: number;
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
  process.send?.({ id: 0, socksPort: socks.port, appPort: app.port });
  process.on('message', (m: Msg) => {
    if (m['cmd'] === 'connects') process.send?.({ id: m.id, connects: socks.requests.length });
    else if (m['cmd'] === 'stop') {
      void Promise.all([socks.stop(), app.stop()]).then(() => {
        process.send?.({ id: m.id });
        process.exit(0);
      });
    }
  });
}

async function runProxyChild(socksPort: number): Promise<void> {
  const { ReverseProxy } = await import('../src/node/proxy/index.js');
  const { createLogger } = await import('../src/adapters/log/logger.js');
  const proxy = new ReverseProxy({
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    mode: 'http',
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
    this.proc = fork(SELF, args, { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

function median(xs: readonly number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 === 1 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

interface BenchPath {
  readonly host: string;
  readonly agent: DialAgent;
  readonly rounds: number[];
  readonly bodyRates: number[];
  requests: number;
  seconds: number;
  bodyBytes: number;
  bodySeconds: number;
  socksConnects: number;
}

async function runRequests(p: BenchPath, n: number, concurrency: number): Promise<void> {
  let left = n;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left--;
        await get(p.agent, p.host, '/');
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

/** Measure both paths, alternating them round by round (ABBA order). */
async function measureBoth(o: ProxyBenchOptions, backend: Child, paths: readonly [BenchPath, BenchPath]): Promise<void> {
  const connects = async (): Promise<number> => (await backend.ask('connects'))['connects'] as number;
  const timed = async (p: BenchPath, f: () => Promise<void>): Promise<void> => {
    const c0 = await connects();
    await f();
    p.socksConnects += (await connects()) - c0;
  };
  // warm-up: open the pooled connections (both of the client and of the proxy)
  for (const p of paths) await timed(p, () => Promise.all(Array.from({ length: o.concurrency }, () => get(p.agent, p.host, '/'))).then(() => undefined));
  const perRound = Math.ceil(o.requests / o.rounds);
  const order = (i: number): readonly BenchPath[] => (i % 2 === 0 ? paths : [paths[1], paths[0]]);
  for (let r = 0; r < o.rounds; r++) {
    for (const p of order(r)) {
      const n = Math.min(perRound, o.requests - p.requests);
      if (n > 0) await timed(p, () => runRequests(p, n, o.concurrency));
    }
  }
  for (let b = 0; b < o.bodies; b++) {
    for (const p of order(b)) await timed(p, () => runBody(p, o.bodyBytes));
  }
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

/** Run the benchmark; `log` receives progress lines. */
export async function runProxyBench(o: ProxyBenchOptions, log: (line: string) => void = console.log): Promise<ProxyBenchResult> {
  const notes: string[] = [];
  const backend = new Child(['--bench-role=backend']);
  let proxy: Child | undefined;
  const idle: IdleResult[] = [];
  try {
    const b = await backend.ready;
    const socksPort = b['socksPort'] as number;
    proxy = new Child(['--bench-role=proxy', String(socksPort)]);
    const proxyPort = (await proxy.ready)['port'] as number;
    const socks = { host: '127.0.0.1', port: socksPort };

    log(`requests: ${o.requests} GET / per path in ${o.rounds} alternating rounds (keep-alive, ${o.concurrency} connections); bodies: ${o.bodies} × ${(o.bodyBytes / 1048576).toFixed(0)} MiB per path; medians`);
    log('client (both paths): node http, keep-alive agent, TCP_NODELAY, bodies read to the end');
    const mk = (host: string, dial: () => Promise<net.Socket>): BenchPath => ({
      host, agent: new DialAgent(dial, o.concurrency), rounds: [], bodyRates: [], requests: 0, seconds: 0, bodyBytes: 0, bodySeconds: 0, socksConnects: 0,
    });
    const dPath = mk(TARGET, () => dialThroughTor(socks, { host: TARGET, port: 80 }, 30_000));
    const pPath = mk(MASTER, () => connectTcp(proxyPort));
    try {
      await measureBoth(o, backend, [dPath, pPath]);
    } finally {
      dPath.agent.destroy();
      pPath.agent.destroy();
    }
    const direct = pathResult(dPath);
    const viaProxy = pathResult(pPath);
    log(`direct (client → SOCKS CONNECT per pooled connection → target): ${direct.requestsPerSecond.toFixed(0)} req/s, ${direct.mbPerSecond.toFixed(1)} MB/s; ${direct.socksConnects} SOCKS connects`);
    log(`proxy  (client → proxy [rewrites headers and text bodies] → its pooled SOCKS streams → target): ${viaProxy.requestsPerSecond.toFixed(0)} req/s, ${viaProxy.mbPerSecond.toFixed(1)} MB/s; ${viaProxy.socksConnects} SOCKS connects`);
    const requestRatio = viaProxy.requestsPerSecond / direct.requestsPerSecond;
    const throughputRatio = viaProxy.mbPerSecond / direct.mbPerSecond;
    log(`ratio proxy/direct: requests ${requestRatio.toFixed(2)}, throughput ${throughputRatio.toFixed(2)}`);
    if (viaProxy.bodyBytes !== direct.bodyBytes) notes.push(`body sizes differ after rewriting: direct ${direct.bodyBytes}, proxy ${viaProxy.bodyBytes}`);

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
    return { direct, proxy: viaProxy, requestRatio, throughputRatio, idle, notes };
  } finally {
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
else if (role === 'proxy') void runProxyChild(Number(process.argv[process.argv.indexOf('--bench-role=proxy') + 1]));
else if (resolvePath(process.argv[1] ?? '') === SELF) void main(process.argv.slice(2));
