/**
 * Reverse-proxy benchmark on loopback (`npm run bench -- proxy [--quick]`).
 *
 * Three processes, like a real node: a "tor side" (test/helpers/fake-socks-server.ts, a
 * SOCKS5 server, in front of test/helpers/target-app.ts, the target), the proxy
 * (src/node/proxy ReverseProxy, http mode, body rewriting on) and this process, the client.
 * The same client (node's http with a keep-alive agent) is measured two ways in one run:
 *   direct: client → SOCKS → target        proxy: client → proxy → SOCKS → target
 * and the ratio proxy/direct is printed for requests/s (small HTML page, keep-alive,
 * `concurrency` connections) and MB/s (a large text body naming the target every KiB, so
 * the proxy rewrites it while streaming).
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
import { encodeOnionAddress } from '../src/core/hs/address.js';

const TARGET = encodeOnionAddress(new Uint8Array(32).fill(0x11));
const MASTER = encodeOnionAddress(new Uint8Array(32).fill(0x22));
const SELF = fileURLToPath(import.meta.url);

/** Sizes of one run. */
export interface ProxyBenchOptions {
  readonly requests: number;
  readonly concurrency: number;
  readonly bodyBytes: number;
  readonly bodies: number;
  readonly idleCounts: readonly number[];
}

export const FULL: ProxyBenchOptions = { requests: 20_000, concurrency: 32, bodyBytes: 10 * 1024 * 1024, bodies: 8, idleCounts: [1_000, 10_000] };
export const QUICK: ProxyBenchOptions = { requests: 400, concurrency: 8, bodyBytes: 1024 * 1024, bodies: 2, idleCounts: [100, 1_000] };

/** One measurement of a path. */
export interface PathResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly bodyBytes: number;
  readonly bodySeconds: number;
  readonly mbPerSecond: number;
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
    if (m['cmd'] === 'stop') {
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

/** A keep-alive agent whose connections are made by `dial` (async). */
class DialAgent extends http.Agent {
  readonly #dial: () => Promise<net.Socket>;
  constructor(dial: () => Promise<net.Socket>, maxSockets: number) {
    super({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.#dial = dial;
  }
  override createConnection(_o: unknown, cb?: (err: Error | null, s: Duplex) => void): Duplex {
    this.#dial().then(
      (s) => {
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

async function measurePath(o: ProxyBenchOptions, host: string, dial: () => Promise<net.Socket>): Promise<PathResult> {
  const agent = new DialAgent(dial, o.concurrency);
  try {
    // warm-up: open the pooled connections
    await Promise.all(Array.from({ length: o.concurrency }, () => get(agent, host, '/')));
    let left = o.requests;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (left > 0) {
          left--;
          await get(agent, host, '/');
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    let bytes = 0;
    const t1 = performance.now();
    for (let i = 0; i < o.bodies; i++) bytes += await get(agent, host, `/big?size=${o.bodyBytes}`);
    const bodySeconds = (performance.now() - t1) / 1000;
    return { requests: o.requests, seconds, requestsPerSecond: o.requests / seconds, bodyBytes: bytes, bodySeconds, mbPerSecond: bytes / 1e6 / bodySeconds };
  } finally {
    agent.destroy();
  }
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

    log(`requests: ${o.requests} GET / (keep-alive, ${o.concurrency} connections); bodies: ${o.bodies} × ${(o.bodyBytes / 1048576).toFixed(0)} MiB`);
    const direct = await measurePath(o, TARGET, () => dialThroughTor(socks, { host: TARGET, port: 80 }, 30_000));
    log(`direct (client → SOCKS → target): ${direct.requestsPerSecond.toFixed(0)} req/s, ${direct.mbPerSecond.toFixed(1)} MB/s`);
    const viaProxy = await measurePath(o, MASTER, () => connectTcp(proxyPort));
    log(`proxy  (client → proxy → SOCKS → target, rewriting): ${viaProxy.requestsPerSecond.toFixed(0)} req/s, ${viaProxy.mbPerSecond.toFixed(1)} MB/s`);
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
