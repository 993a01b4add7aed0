/**
 * The node's own tor (daemon step 5): the torrc (src/core/node-torrc.ts: the master service
 * as an OnionBalance instance, the join port, then the coordination onion service of the tor
 * transport), the supervised process (src/adapters/tor/process.ts: restarted with backoff;
 * ready = control port up) and what its events mean for the node's log.
 */
import type { Config } from '../adapters/config/schema.js';
import { freeLoopbackPort } from '../adapters/net/loopback-port.js';
import type { Logger } from '../adapters/log/logger.js';
import type { Timers } from '../adapters/system/timers.js';
import { TorProcess } from '../adapters/tor/process.js';
import { nodeTorrcEntries } from '../core/node-torrc.js';
import type { TorrcEntry } from '../core/torrc.js';
import { rotationSafe, type PreparedCluster } from './cluster.js';
import { joinSocketPath } from './join/paths.js';
import type { NodePaths } from './node-files.js';

/**
 * tor's SocksPort: `tor.socks_port`, or with `"auto"` a free 127.0.0.1 port chosen once (so it
 * stays the same across tor restarts).
 */
export async function chooseSocksPort(config: Config): Promise<number> {
  return config.tor.socks_port === 'auto' ? await freeLoopbackPort() : config.tor.socks_port;
}

/** The node's torrc entries; the cluster's (tor transport) come after the master service's group. */
export function nodeTorrc(config: Config, paths: NodePaths, socksPort: number, cluster: PreparedCluster | undefined): TorrcEntry[] {
  const torrc = nodeTorrcEntries({
    hsDir: paths.hsDir,
    socksPort,
    virtualPort: config.proxy.virtual_port,
    proxyListen: config.proxy.listen,
    numIntroPoints: config.tor.num_intro_points,
    maxStreamsPerCircuit: config.proxy.limits.max_connections_per_circuit,
    maxStreamsCloseCircuit: config.tor.max_streams_close_circuit,
    introDos: { enabled: config.tor.intro_dos.enabled, ratePerSec: config.tor.intro_dos.rate_per_sec, burstPerSec: config.tor.intro_dos.burst_per_sec },
    // Rotation-safe clusters need PoW defenses on: their seeds attribute a harvested
    // desc_next to this node (docs/DESIGN.md "Rotation-safe intro points").
    pow: { enabled: config.tor.pow.enabled || rotationSafe(config), queueRate: config.tor.pow.queue_rate, queueBurst: config.tor.pow.queue_burst },
    publishDescriptors: true,
    extra: config.tor.extra_config,
    // The join port (src/node/join): joining nodes reach the cluster through the master onion.
    extraPorts: config.cluster.enabled && config.cluster.join.enabled ? [{ virtualPort: config.cluster.join.onion_port, target: { kind: 'unix', path: joinSocketPath(config.node.data_dir) } }] : [],
  });
  if (cluster !== undefined) torrc.push(...cluster.torrcEntries);
  return torrc;
}

/** Options of {@link createNodeTor}. */
export interface NodeTorOptions {
  readonly config: Config;
  readonly paths: NodePaths;
  readonly torrc: readonly TorrcEntry[];
  /** Deadline for tor's control port to come up. */
  readonly startTimeoutMs: number;
  readonly timers?: Timers | undefined;
}

/** The node's supervised tor (not started). */
export function createNodeTor(o: NodeTorOptions): TorProcess {
  return new TorProcess({
    dataDir: o.paths.torDir,
    torrc: o.torrc,
    torBinary: o.config.tor.binary,
    readiness: 'control',
    restart: true,
    // Fail closed when this process dies (docs/DESIGN.md "Losing a node"): TAKEOWNERSHIP makes
    // tor exit the moment our control connection closes — the kernel closes it when we die,
    // even by SIGKILL — so its intro points stop accepting introductions for a node that no
    // longer proxies. __OwningControllerProcess alone is polled by tor only every 15 s
    // (measured: 13 s of a live tor after its node was SIGKILLed). A control connection that
    // is closed on a command timeout takes tor down too; the supervisor then restarts it.
    owned: true,
    takeOwnership: true,
    // tor must run with the control port, listeners, directories and onion service written here.
    checkManagedOptions: true,
    startTimeoutMs: o.startTimeoutMs,
    ...(o.timers === undefined ? {} : { timers: o.timers }),
  });
}

/** What the node does on tor's supervisor events, besides logging them. */
export interface TorEventHooks {
  /** tor is being restarted (its bootstrap starts over). */
  readonly onRestart: () => void;
  /** The restart budget is used up: tor stays down. */
  readonly onGaveUp: (error: Error) => void;
}

/** Log tor's supervisor events on `torLog` and pass restarts and giving up on to `hooks`. */
export function watchTor(tor: TorProcess, torLog: Logger, hooks: TorEventHooks): void {
  tor.on('exit', (e) => {
    if (!e.expected) torLog.warn({ pid: e.pid, code: e.code, signal: e.signal, output: tor.output().slice(-5) }, 'tor exited unexpectedly');
  });
  tor.on('restart', (e) => {
    hooks.onRestart();
    torLog.warn({ attempt: e.attempt, delayMs: e.delayMs }, 'restarting tor');
  });
  tor.on('ready', (e) => {
    torLog.info({ pid: e.pid, restarts: e.restarts }, 'tor is up');
  });
  tor.on('error', (e) => {
    torLog.error({ err: e.error, gaveUp: e.gaveUp }, e.gaveUp ? 'tor keeps failing; giving up' : 'tor restart failed');
    if (e.gaveUp) hooks.onGaveUp(e.error);
  });
}
