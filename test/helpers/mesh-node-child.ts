/**
 * A MeshNode in its own process, for integration tests that place nodes in network
 * namespaces (`ip netns exec <ns> node --import tsx test/helpers/mesh-node-child.ts`).
 *
 * Configuration: env MESH_CHILD_CONFIG (JSON, see ChildConfig). The cluster secret and node
 * seed are test values passed as hex in that JSON (never do this outside tests).
 * Output: one JSON line per event on stdout: {"event":"listening"}, {"event":"view","view":…}
 * on every change, {"event":"stopped"}. Input: a line "stop" on stdin (or SIGTERM) → the node
 * sends leave and exits 0.
 */
import { createInterface } from 'node:readline';
import { fromHex } from '../../src/core/bytes.js';
import { nodeKeyFromSeed } from '../../src/core/mesh/index.js';
import { createLogger } from '../../src/adapters/log/logger.js';
import { realTimers } from '../../src/adapters/system/timers.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import { MeshNode, type MeshOptions } from '../../src/node/mesh/index.js';
import { MutableLocalState } from './mesh-fixtures.js';

export interface ChildConfig {
  label: string;
  seedHex: string;
  secretHex: string;
  listen: MeshOptions['listen'];
  advertise: string;
  bootstrap: string[];
  socks?: { host: string; port: number };
  heartbeatMs: number;
  suspectAfterMs: number;
  deadAfterMs: number;
  connectTimeoutMs?: number;
}

const cfg = JSON.parse(process.env['MESH_CHILD_CONFIG'] ?? '{}') as ChildConfig;
const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const state = new MutableLocalState(cfg.label);
const node = new MeshNode({
  key: nodeKeyFromSeed(fromHex(cfg.seedHex)),
  clusterSecret: fromHex(cfg.secretHex),
  name: cfg.label,
  priority: 100,
  listen: cfg.listen,
  advertise: cfg.advertise,
  bootstrap: cfg.bootstrap,
  ...(cfg.socks === undefined ? {} : { socks: cfg.socks }),
  heartbeatMs: cfg.heartbeatMs,
  suspectAfterMs: cfg.suspectAfterMs,
  deadAfterMs: cfg.deadAfterMs,
  leaseMs: 15_000,
  maxSkewMs: 30_000,
  timers: realTimers,
  now: () => Date.now(),
  randomBytes: systemRandomBytes,
  logger: createLogger({ level: process.env['MESH_CHILD_LOG'] ?? 'warn' }),
  localState: state.get,
  backoff: { initialMs: 200, maxMs: 2000 },
  ...(cfg.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: cfg.connectTimeoutMs }),
});
node.onChange((view) => {
  out({ event: 'view', view });
});
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await node.stop('child asked to stop');
  out({ event: 'stopped' });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l.trim() === 'stop') void stop();
});
await node.start();
out({ event: 'listening', id: node.id });
