/**
 * vitest globalSetup of the `integration` and `integration-wait` projects (vitest.config.ts):
 * ONE shared private Tor network per project and run (src/adapters/tor/testnet.ts: 3
 * authorities, 5 relays, one client per worker of the project and one plain onion service
 * `hs0` whose port 80 forwards to a tiny HTTP server started here). Tests get its
 * description with `inject('testnet')` (see test/helpers/testnet.ts). The network is torn
 * down at the end; when the start or any test failed, the tors' torrcs and logs are kept
 * under `.torlab/failed-<timestamp>/`.
 */
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import {
  startTestnet,
  type Testnet,
  type TestnetDescription,
} from '../../src/adapters/tor/testnet.js';
import { preserveTestnetLogs } from '../helpers/testnet-logs.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared private network. */
    testnet: TestnetDescription;
    /** The HTTP server behind `testnet.services[0]` (hs0) and the body it serves at `/`. */
    testnetHttp: { host: string; port: number; body: string };
  }
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

async function startHttp(body: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('http server has no port');
  return { server, port: a.port };
}

/** How many client tors the network of `project` gets: one per worker (at least 1, at most 8). */
function clientCount(project: TestProject): number {
  const n = project.config.maxWorkers;
  return Number.isInteger(n) && n >= 1 ? Math.min(n, 8) : 1;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Unix socket paths must stay short (≤100 bytes): use /tmp if the repo path is long.
  const local = join(REPO, '.torlab', `run-${process.pid}-${project.name}`);
  const baseDir = local.length <= 60 ? local : join('/tmp', `torbalance-testnet-${process.pid}-${project.name}`);
  const body = `hello from the torbalance testnet ${randomBytes(8).toString('hex')}\n`;
  const { server, port } = await startHttp(body);
  const t0 = Date.now();
  let net: Testnet;
  try {
    net = await startTestnet({
      baseDir,
      authorities: Number(process.env['TORBALANCE_TESTNET_AUTHORITIES'] ?? 3),
      relays: Number(process.env['TORBALANCE_TESTNET_RELAYS'] ?? 5),
      // One client per worker: test/helpers/testnet.ts gives each concurrently running file
      // its own (a project running one file at a time has maxWorkers 1 → one client).
      clients: clientCount(project),
      votingIntervalSeconds: 10,
      // 2 replicas × 2 HSDirs: each descriptor goes to 4 of the 8 relays, so a wrong ring
      // computation shows up as a wrong set, not only as a wrong order.
      consensusParams: [
        ['hsdir_spread_store', 2],
        ['hsdir_spread_fetch', 2],
      ],
      services: [{ nickname: 'hs0', target: { host: '127.0.0.1', port } }],
      infoLogs: process.env['TORBALANCE_TESTNET_INFO_LOGS'] === '1',
      onProgress: (m) => {
        console.log(`[testnet ${project.name}] ${m}`);
      },
    });
  } catch (e) {
    const dest = join(REPO, '.torlab', `failed-${stamp()}-${project.name}`);
    await preserveTestnetLogs(baseDir, dest).catch(() => undefined);
    console.log(`[testnet] start failed; logs kept in ${dest}`);
    server.close();
    await rm(baseDir, { recursive: true, force: true });
    throw e;
  }
  console.log(
    `[testnet] shared network usable in ${((Date.now() - t0) / 1000).toFixed(1)}s (${baseDir})`,
  );
  project.provide('testnet', net.description);
  project.provide('testnetHttp', { host: '127.0.0.1', port, body });

  return async () => {
    const failed = project.vitest.state.getCountOfFailedTests() > 0;
    if (failed) {
      const dest = join(REPO, '.torlab', `failed-${stamp()}-${project.name}`);
      await preserveTestnetLogs(net.description.baseDir, dest, net.description).catch(() => undefined);
      console.log(`[testnet] tests failed; tor logs kept in ${dest}`);
    }
    const t1 = Date.now();
    await net.stop();
    console.log(`[testnet] stopped in ${((Date.now() - t1) / 1000).toFixed(1)}s`);
    await new Promise<void>((r) =>
      server.close(() => {
        r();
      }),
    );
    await rm(baseDir, { recursive: true, force: true });
  };
}
