/**
 * The node daemon: the composition root of `torbalance run` (ARCHITECTURE.md). It only wires;
 * each part lives in its own module:
 *
 * - files: the master key is checked and copied into the HiddenServiceDir with `ob_config`
 *   before tor starts (src/node/node-files.ts); the cluster's secrets are read, and for the
 *   tor transport its coordination onion service joins the torrc (src/node/cluster.ts
 *   `prepareCluster`);
 * - adapters: the node's supervised tor with its torrc and SOCKS port (src/node/node-tor.ts);
 * - services: the reverse proxy where HiddenServicePort points (src/node/proxy), the target
 *   health checker (src/node/health.ts) and the node health over both (src/node/node-health.ts),
 *   the admin API with `[admin] enabled` (src/node/admin/from-config.ts), and with
 *   `[cluster] enabled` the cluster service (src/node/cluster.ts: mesh, intro collector,
 *   publisher, publish-mode switch, fail-closed; its health view: src/node/cluster-health.ts);
 *   their settings come from src/node/service-settings.ts;
 * - start, in order: the proxy (visitors never meet a closed socket once tor publishes), the
 *   admin API (the status is visible while tor starts), tor (ready = control port up; its
 *   bootstrap is watched in the background: it may run offline with `DisableNetwork 1`, or take
 *   long), the health checks, the cluster (whose admin routes are added once it runs);
 * - stop (`stop()`): the reverse of start, except that the proxy drains first among the
 *   parts started before it — tor must stay up meanwhile (both legs of a connection run
 *   through it), and the health checker and the admin API keep reporting: leave the cluster
 *   (mesh `leave`, so the others republish without this node at once), stop the node health,
 *   drain the proxy (up to `drain.timeout_ms`), stop the target health checker, the admin API,
 *   then tor.
 *
 * The run state and the bootstrapped/stopped promises: src/node/node-lifecycle.ts. With
 * `TORBALANCE_STATUS_FILE` set the node writes its status to that file (src/node/status-file.ts).
 * `reload()` (SIGHUP in `torbalance run`) re-reads the config file and applies what can change
 * live (src/node/reload.ts) without dropping connections; other changed keys are logged by name
 * and need a restart; an invalid file is refused and the running config kept. Secrets are
 * never logged: only addresses and paths.
 */
import type { Config } from '../adapters/config/schema.js';
import type { Logger } from '../adapters/log/logger.js';
import { realTimers, type Timers } from '../adapters/system/timers.js';
import { TorbalanceError } from '../core/errors.js';
import { hsOptionGroups } from '../core/node-torrc.js';
import { createNodeAdmin } from './admin/from-config.js';
import { ClusterService, prepareCluster } from './cluster.js';
import { clusterHealthSource } from './cluster-health.js';
import { TargetHealth } from './health.js';
import { NodeHealth, type NodeHealthState } from './node-health.js';
import { prepareNodeFiles, type NodePaths } from './node-files.js';
import { NodeLifecycle } from './node-lifecycle.js';
import { loggerForConfig } from './node-logger.js';
import type { NodeStatus } from './node-status.js';
import { chooseSocksPort, createNodeTor, nodeTorrc, watchTor } from './node-tor.js';
import { ReverseProxy } from './proxy/index.js';
import { applyReload, type ReloadPlan } from './reload.js';
import { healthOptions, proxyOptions } from './service-settings.js';
import { startStatusFile } from './status-file.js';

/** Options of {@link startNode}. */
export interface StartNodeOptions {
  readonly config: Config;
  /** Default: a logger built from `config.log` writing to stderr. */
  readonly logger?: Logger;
  readonly timers?: Timers;
  /** Deadline for tor's control port to come up. Default 120 s. */
  readonly torStartTimeoutMs?: number;
  /** Called once if the node fails for good (tor's restart budget is used up). */
  readonly onFatal?: (error: Error) => void;
}

/** A running node. */
export interface NodeHandle {
  readonly masterAddress: string;
  readonly paths: NodePaths;
  readonly socksPort: number;
  /** Drain and stop (idempotent): stop accepting, wait up to `drainMs` (default `drain.timeout_ms`), stop health and tor. */
  stop(drainMs?: number): Promise<void>;
  status(): Promise<NodeStatus>;
  /** Resolves when the node has stopped. */
  readonly stopped: Promise<void>;
  /**
   * Resolves the first time the node's tor reports 100 % bootstrap (the proxy already listens:
   * startNode resolved); never, if the node stops first. `torbalance run` then tells systemd
   * `READY=1` (src/core/sd-notify.ts).
   */
  readonly bootstrapped: Promise<void>;
  /**
   * Re-read the config file (SIGHUP) and apply what can change live (src/node/reload.ts:
   * log level, proxy limits and timeouts, body rewriting, health checks, drain timeout)
   * without dropping connections; keys that need a restart are logged by name and not
   * applied. An invalid file is refused (the error is logged and thrown; the running config
   * stays). TB_ERR_NODE_RELOAD when the node is not running or has no config file.
   */
  reload(): Promise<ReloadPlan>;
}

/** Start a node from a loaded config. Rejects (after cleaning up) if any part fails to start. */
export async function startNode(options: StartNodeOptions): Promise<NodeHandle> {
  const { config, timers } = options;
  const log = options.logger ?? loggerForConfig(config);

  // What tor needs on disk and in its torrc before it starts.
  const { key, masterAddress, paths } = await prepareNodeFiles(config, log);
  const prepared = config.cluster.enabled ? await prepareCluster(config) : undefined;
  const socksPort = await chooseSocksPort(config);
  const socks = { host: '127.0.0.1', port: socksPort };

  // Construct: the adapters, then the services (nothing runs yet).
  const torrc = nodeTorrc(config, paths, socksPort, prepared);
  // Fail closed pauses the master service with these (src/core/node-torrc.ts hsOptionGroups).
  const hsGroups = hsOptionGroups(torrc, paths.hsDir);
  const tor = createNodeTor({ config, paths, torrc, startTimeoutMs: options.torStartTimeoutMs ?? 120_000, timers });
  const control = () => (tor.state === 'ready' ? tor.control : undefined);
  const proxy = new ReverseProxy(await proxyOptions(config, masterAddress, socks, log.child({ component: 'proxy' })));
  const health = new TargetHealth(healthOptions(config, socks, timers, log.child({ component: 'health' })));
  const nodeHealth = new NodeHealth({
    target: health,
    control,
    serviceAddress: masterAddress,
    intervalMs: Math.min(5000, config.health.interval_ms),
    ...(timers === undefined ? {} : { timers }),
    logger: log.child({ component: 'node-health' }),
  });
  const life = new NodeLifecycle();
  let cluster: ClusterService | undefined;
  const snapshot = (h: NodeHealthState = nodeHealth.state): NodeStatus => ({
    name: config.node.name,
    masterAddress,
    targetAddress: config.target.address,
    state: life.state,
    tor: { state: tor.state, pid: tor.pid, restarts: tor.restarts, socksPort },
    health: h,
    proxy: proxy.stats(),
    ...(cluster === undefined ? {} : { cluster: cluster.status() }),
  });
  const status = async (): Promise<NodeStatus> => snapshot(life.state === 'running' ? await nodeHealth.refresh() : nodeHealth.state);
  const admin = await createNodeAdmin(config, { snapshot: () => snapshot(), status, control }, log.child({ component: 'admin' }));

  // Connect: tor's events and the health changes to the log and the run state; probes to the metrics.
  const torLog = log.child({ component: 'tor' });
  watchTor(tor, torLog, {
    onRestart: () => {
      life.torRestarting();
    },
    onGaveUp: (error) => {
      if (life.fail()) options.onFatal?.(error);
    },
  });
  nodeHealth.onChange((h) => {
    if (life.torProgress(h.tor.progress)) torLog.info({ masterAddress }, 'tor bootstrapped; the onion service is being published');
    log.info({ healthy: h.healthy, reasons: h.reasons, introPoints: h.intro.introPoints }, h.healthy ? 'node healthy' : 'node not healthy');
  });
  // Every probe (not just changes of health) into the probe-duration histogram.
  if (admin !== undefined) {
    health.onProbe((p) => {
      admin.routes.metrics.observeProbe(p.durationMs / 1000, p.ok);
    });
  }

  // Stop (idempotent; see the module doc for the order).
  let stopStatusFile: (() => void) | undefined;
  let stopping: Promise<void> | undefined;
  // The config in effect for what reload() can change (config = the one we started with).
  let applied: Config = config;
  const stop = (drainMs: number = applied.drain.timeout_ms): Promise<void> => {
    if (stopping !== undefined) {
      // Already draining: a zero drain cuts it short (closes what is still open).
      if (drainMs === 0 && life.state === 'stopping') void proxy.stop(0).catch(() => undefined);
      return stopping;
    }
    stopping = (async () => {
      const wasFailed = life.stopStarted();
      stopStatusFile?.();
      if (cluster !== undefined) {
        log.info('leaving the cluster');
        await cluster.stop().catch((e: unknown) => {
          log.warn({ err: e }, 'cluster stop failed');
        });
      }
      nodeHealth.stop();
      log.info({ drainMs }, 'stopping: draining connections');
      await proxy.stop(drainMs).catch((e: unknown) => {
        log.warn({ err: e }, 'proxy stop failed');
      });
      health.stop();
      await admin?.stop().catch((e: unknown) => {
        log.warn({ err: e }, 'admin API stop failed');
      });
      await tor.stop();
      log.info('stopped');
      life.stopFinished(wasFailed);
    })();
    return stopping;
  };

  // Start, in order (see the module doc); a part that fails to start undoes the ones before.
  try {
    await proxy.start();
    await admin?.start();
    log.info({ torDir: paths.torDir, socksPort }, 'starting tor');
    await tor.start();
  } catch (e) {
    await admin?.stop().catch(() => undefined);
    await proxy.stop(0).catch(() => undefined);
    await tor.stop().catch(() => undefined);
    throw e;
  }
  health.start();
  nodeHealth.start();
  if (prepared !== undefined) {
    // Assigned before it starts: a stop() meanwhile leaves the cluster too.
    const c = new ClusterService({
      config,
      prepared,
      masterAddress,
      identity: { expandedSecretKey: key.keypair.expandedSecretKey, publicKey: key.keypair.publicKey },
      controlEndpoint: tor.controlEndpoint,
      socksPort,
      health: clusterHealthSource(health, nodeHealth),
      timers: timers ?? realTimers,
      logger: log.child({ component: 'cluster' }),
      traffic: () => proxy.stats(),
      hsGroups,
    });
    cluster = c;
    try {
      await c.start();
    } catch (e) {
      await c.stop().catch(() => undefined);
      cluster = undefined;
      await stop(0);
      throw e;
    }
    if (admin !== undefined) {
      for (const r of c.adminRoutes()) admin.addRoute(r);
      const m = admin.routes.metrics;
      c.onPublish((r) => {
        m.observePublish(r);
      });
    }
  }
  log.info({ masterAddress, target: config.target.address, listen: config.proxy.listen }, 'node running');
  const statusFile = process.env['TORBALANCE_STATUS_FILE'];
  if (statusFile !== undefined && statusFile !== '') stopStatusFile = startStatusFile(statusFile, () => snapshot(), log);

  return {
    masterAddress,
    paths,
    socksPort,
    stop,
    stopped: life.stopped,
    bootstrapped: life.bootstrapped,
    async reload(): Promise<ReloadPlan> {
      const source = applied.source;
      if (life.state !== 'running' || source === undefined) {
        throw new TorbalanceError('TB_ERR_NODE_RELOAD', 'config', life.state !== 'running' ? `cannot reload: the node is ${life.state}` : 'cannot reload: the node was not started from a config file');
      }
      const { plan, next } = await applyReload(source, config, applied, { proxy, health, log });
      applied = next;
      return plan;
    },
    status,
  };
}
