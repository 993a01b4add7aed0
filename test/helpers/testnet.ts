/**
 * Helpers for integration tests against the shared private Tor network that
 * test/integration/global-setup.ts starts (one per test run).
 *
 * - `sharedTestnet()` / `sharedHttp()`: the injected network description and the tiny HTTP
 *   server its plain onion service `hs0` points at.
 * - `addService()` / `addClient()`: start extra tors joining the shared network from a test
 *   file (owned by the test worker: they die with it); `stopAdded()` in `afterAll` stops them.
 * - `httpGetViaSocks()` / `fetchOnionUntil()`: plain HTTP/1.1 GET over a SOCKS5 connection
 *   with remote name resolution (the `.onion` name goes to tor), retried until a deadline.
 */
import { inject } from 'vitest';
import { SocksClient } from 'socks';
import {
  startTestnetClient,
  startTestnetService,
  type StartedNode,
  type TestnetClientInfo,
  type TestnetClientSpec,
  type TestnetDescription,
  type TestnetServiceInfo,
  type TestnetServiceSpec,
} from '../../src/adapters/tor/testnet.js';
import type { TorProcess } from '../../src/adapters/tor/process.js';

/**
 * The shared network (from globalSetup), as this test file sees it: `clients[0]` is the
 * client tor reserved for this worker. The network has one client per worker of its project
 * (global-setup.ts), and concurrently running files have distinct `VITEST_POOL_ID`s (1…maxWorkers),
 * so files running at the same time never share a client (NEWNYM purges a client's onion
 * descriptor cache and circuits; HSFETCH and SOCKS isolation are per client). In a project
 * that runs one file at a time this is the network's first client, as before.
 */
export function sharedTestnet(): TestnetDescription {
  const net = inject('testnet');
  const n = net.clients.length;
  const poolId = Number(process.env['VITEST_POOL_ID'] ?? '1');
  const k = n > 0 && Number.isInteger(poolId) && poolId >= 1 ? (poolId - 1) % n : 0;
  if (k === 0) return net;
  return { ...net, clients: [...net.clients.slice(k), ...net.clients.slice(0, k)] };
}

/** The HTTP server behind the shared service `hs0`: where it listens and the exact body it serves at `/`. */
export function sharedHttp(): { host: string; port: number; body: string } {
  return inject('testnetHttp');
}

const added: TorProcess[] = [];
let counter = 0;

/** A nickname unique across test workers (tor nicknames: ≤19 alphanumerics). */
export function uniqueNickname(prefix: string): string {
  counter += 1;
  return `${prefix}${process.pid % 100000}n${counter}`.slice(0, 19);
}

/** Start an onion service in the shared network (stopped by {@link stopAdded}). */
export async function addService(
  spec: TestnetServiceSpec,
): Promise<StartedNode<TestnetServiceInfo>> {
  const node = await startTestnetService(
    sharedTestnet(),
    { ...spec, nickname: spec.nickname ?? uniqueNickname('hs') },
    {
      owned: true,
      onProcess: (_n, p) => added.push(p),
    },
  );
  return node;
}

/** Start a client in the shared network, bootstrapped (stopped by {@link stopAdded}). */
export async function addClient(
  spec: TestnetClientSpec = {},
): Promise<StartedNode<TestnetClientInfo>> {
  return startTestnetClient(
    sharedTestnet(),
    { ...spec, nickname: spec.nickname ?? uniqueNickname('c') },
    {
      owned: true,
      onProcess: (_n, p) => added.push(p),
    },
  );
}

/** Stop every tor started with addService/addClient in this worker. */
export async function stopAdded(): Promise<void> {
  const procs = added.splice(0);
  await Promise.all(procs.map((p) => p.stop()));
}

export interface HttpResult {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}

/** One HTTP/1.1 GET through tor's SOCKS5 port (hostname resolved by tor). */
export async function httpGetViaSocks(
  socksPort: number,
  host: string,
  port: number,
  path = '/',
  timeoutMs = 15_000,
): Promise<HttpResult> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5 },
    command: 'connect',
    destination: { host, port },
    timeout: timeoutMs,
  });
  return new Promise<HttpResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('HTTP over SOCKS timed out'));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (split < 0 || m === null) {
        reject(new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      resolve({ status: Number(m[1]), headers: text.slice(0, split), body: text.slice(split + 4) });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

export interface RetryResult extends HttpResult {
  readonly attempts: number;
  readonly elapsedMs: number;
  readonly lastErrors: readonly string[];
}

/**
 * GET `http://<onion>/<path>` through `socksPort`, retrying every `intervalMs` until it
 * succeeds or `deadlineMs` passes (torlab: descriptors appear 10–30 s after network start;
 * tor re-queries HSDirs after 5 s in test networks, so 1–2 s retries work).
 */
export async function fetchOnionUntil(
  socksPort: number,
  onion: string,
  opts: {
    readonly port?: number;
    readonly path?: string;
    readonly deadlineMs?: number;
    readonly intervalMs?: number;
  } = {},
): Promise<RetryResult> {
  const start = Date.now();
  const deadline = start + (opts.deadlineMs ?? 90_000);
  const errors: string[] = [];
  for (let attempts = 1; ; attempts++) {
    try {
      const r = await httpGetViaSocks(socksPort, onion, opts.port ?? 80, opts.path ?? '/', 20_000);
      return { ...r, attempts, elapsedMs: Date.now() - start, lastErrors: errors.slice(-5) };
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
      if (Date.now() > deadline) {
        throw new Error(
          `no answer from ${onion} after ${attempts} attempts in ${Date.now() - start} ms; last errors: ${errors.slice(-3).join(' | ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1500));
    }
  }
}
