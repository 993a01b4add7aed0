/**
 * The node daemon: the composition root of `torbalance run`.
 *
 * Start-up, in order:
 * 1. check the master key directory (key-store permission checks; target ≠ master);
 * 2. prepare `node.data_dir` (0700) and its HiddenServiceDir `hs/` (0700): a copy of the master
 *    key (files 0600) and `ob_config` (`MasterOnionAddress <master>.onion`, 0600) — written before
 *    tor starts, as `HiddenServiceOnionBalanceInstance` requires (tor-facts §1.8, §4);
 * 3. pick the SOCKS port (`tor.socks_port = "auto"`: a free 127.0.0.1 port chosen once, so it
 *    stays the same across tor restarts);
 * 4. start the reverse proxy (src/node/proxy) where HiddenServicePort points, so visitors
 *    never meet a closed socket once tor publishes;
 * 4a. with `[admin] enabled` (default): the admin API (src/node/admin: /status, /metrics,
 *    /healthz, /history, dashboard) on `admin.listen`; the cluster's admin routes are added
 *    once the cluster runs; it stops after the drain;
 * 5. start the node's own tor (src/adapters/tor/process.ts: supervised, restarted with
 *    backoff) with the torrc from
 *    src/core/node-torrc.ts; ready = control port up. Bootstrap progress is watched in the
 *    background and reported in {@link NodeHandle.status} (tor may run offline with
 *    `DisableNetwork 1`, or take long on a slow network);
 * 6. start the target health checker (src/node/health.ts);
 * 7. with `[cluster] enabled = true`: the cluster service (src/node/cluster.ts: mesh, intro
 *    collector, publisher, publish-mode switch, fail-closed). Its secrets are read before tor
 *    starts (and, for the tor transport, the coordination onion service is added to the torrc).
 *
 * With the environment variable `TORBALANCE_STATUS_FILE` set, the node writes a JSON status
 * snapshot (no secrets: addresses, counters, cluster roles) to that file every second
 * (atomically, mode 0600) — a debugging and test aid; it is off by default.
 *
 * `reload()` (SIGHUP in `torbalance run`) re-reads the config file and applies what can change
 * live (src/node/reload.ts) without dropping connections; other changed keys are logged by name
 * and need a restart; an invalid file is refused and the running config kept.
 *
 * `stop()` first leaves the cluster (mesh `leave`, so the others republish without this node at
 * once), then drains: the proxy stops accepting and waits up to `drain.timeout_ms` for open
 * connections (tor stays up meanwhile: both legs of a connection run through it), then the
 * health checker and tor are stopped. Secrets are never logged: only addresses and paths.
 */
import { mkdir, chmod, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { loadConfig, loadMasterKey } from '../adapters/config/load.js';
import type { Config } from '../adapters/config/schema.js';
import { writeFileAtomic, writeKeyDirectory } from '../adapters/fs/key-store.js';
import { createLogger, isJournalStream, type Logger } from '../adapters/log/logger.js';
import { TorProcess } from '../adapters/tor/process.js';
import { realTimers, type Timers } from '../adapters/system/timers.js';
import { TorbalanceError } from '../core/errors.js';
import { hsOptionGroups, nodeTorrcEntries, obConfigContent } from '../core/node-torrc.js';
import { readAdminSecret } from '../adapters/admin/secret.js';
import { AdminService, PeriodClock } from './admin/index.js';
import { ClusterService, prepareCluster, rotationSafe } from './cluster.js';
import { joinSocketPath } from './join/paths.js';
import { TargetHealth, type HealthProbe } from './health.js';
import { NodeHealth, type NodeHealthState } from './node-health.js';
import type { NodeStatus } from './node-status.js';
import { ReverseProxy, type ProxyLimits } from './proxy/index.js';
import { planReload, type ReloadPlan } from './reload.js';

/**
 * Write the debug status file (`TORBALANCE_STATUS_FILE`) safely: a fresh temp file in the
 * same directory, created 0600 with O_EXCL|O_NOFOLLOW, renamed over `path`
 * (src/adapters/fs/key-store.ts `writeFileAtomic`). A symlink at `path` is replaced, not
 * followed.
 */
export function writeStatusFile(path: string, text: string): Promise<void> {
  return writeFileAtomic(dirname(path), path, new TextEncoder().encode(text));
}

/** Layout of `node.data_dir`. */
export interface NodePaths {
  readonly dataDir: string;
  /** tor's DataDirectory (torrc, control.sock, tor-output.log). */
  readonly torDir: string;
  /** The HiddenServiceDir (master key copy + ob_config). */
  readonly hsDir: string;
  readonly obConfig: string;
}

/** The paths the node uses under `dataDir`. */
export function nodePaths(dataDir: string): NodePaths {
  const hsDir = join(dataDir, 'hs');
  return { dataDir, torDir: join(dataDir, 'tor'), hsDir, obConfig: join(hsDir, 'ob_config') };
}

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

/** The proxy's limits from a config (at start and on reload). */
function proxyLimits(c: Config): ProxyLimits {
  const l = c.proxy.limits;
  return {
    maxConnections: l.max_connections,
    maxConnectionsPerCircuit: l.max_connections_per_circuit,
    connectTimeoutMs: l.connect_timeout_ms,
    headerTimeoutMs: l.header_timeout_ms,
    idleTimeoutMs: l.idle_timeout_ms,
  };
}

/** The target health probe from a config (at start and on reload). */
function healthProbe(c: Config): HealthProbe {
  return c.health.kind === 'http'
    ? { kind: 'http', path: c.health.path, ...(c.health.expect_status === undefined ? {} : { expectStatus: c.health.expect_status }) }
    : { kind: 'tcp' };
}

function daemonError(code: string, message: string, cause?: unknown): TorbalanceError {
  return new TorbalanceError(code, 'config', message, cause === undefined ? {} : { cause });
}

/** Create `dir` with mode 0700 (tightening an existing one) and check it is ours. */
async function privateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await stat(dir);
    if (!st.isDirectory()) throw daemonError('TB_ERR_NODE_DATA_DIR', `${dir} is not a directory`);
    const uid = process.getuid?.();
    if (uid !== undefined && uid !== 0 && st.uid !== uid) {
      throw daemonError('TB_ERR_NODE_DATA_DIR', `${dir} is owned by uid ${st.uid}, not by this user (uid ${uid})`);
    }
    if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw daemonError('TB_ERR_NODE_DATA_DIR', `cannot prepare directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, e);
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; used once at start-up). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

/** Logger for a config: level and format from `config.log`, stderr. */
export function loggerForConfig(config: Config, destination?: NodeJS.WritableStream | number): Logger {
  const pretty = config.log.format === 'pretty' || (config.log.format === 'auto' && process.stderr.isTTY);
  return createLogger({
    level: config.log.level,
    pretty,
    base: { node: config.node.name },
    // A file descriptor (default stderr) connected to the journal: syslog priorities.
    journal: typeof destination !== 'object' && isJournalStream(process.env, destination ?? 2),
    ...(destination === undefined ? {} : { destination }),
  });
}

/** Start a node from a loaded config. Rejects (after cleaning up) if any part fails to start. */
export async function startNode(options: StartNodeOptions): Promise<NodeHandle> {
  const { config } = options;
  const log = options.logger ?? loggerForConfig(config);
  const paths = nodePaths(config.node.data_dir);

  const { key, masterAddress, warnings } = await loadMasterKey(config);
  for (const w of warnings) log.warn(w);
  await privateDir(paths.dataDir);
  await privateDir(paths.torDir);
  await writeKeyDirectory(paths.hsDir, key.keypair, { force: true });
  await writeFile(paths.obConfig, obConfigContent(masterAddress), { mode: 0o600 });
  await chmod(paths.obConfig, 0o600);

  const prepared = config.cluster.enabled ? await prepareCluster(config) : undefined;
  const socksPort = config.tor.socks_port === 'auto' ? await freeLoopbackPort() : config.tor.socks_port;
  const socks = { host: '127.0.0.1', port: socksPort };
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
  // The coordination onion service (tor transport) comes after the master service's group.
  if (prepared !== undefined) torrc.push(...prepared.torrcEntries);
  // Fail closed pauses the master service with these (src/core/node-torrc.ts hsOptionGroups).
  const hsGroups = hsOptionGroups(torrc, paths.hsDir);

  let ca: string | undefined;
  if (config.target.tls.enabled && config.target.tls.ca_file !== undefined) {
    try {
      ca = await readFile(config.target.tls.ca_file, 'utf8');
    } catch (e) {
      throw daemonError('TB_ERR_CONFIG_FILE', `cannot read target.tls.ca_file ${config.target.tls.ca_file}`, e);
    }
  }
  const tls = config.target.tls.enabled
    ? {
        verify: config.target.tls.verify,
        ...(config.target.tls.servername === undefined ? {} : { servername: config.target.tls.servername }),
        ...(ca === undefined ? {} : { ca }),
      }
    : undefined;

  const proxy = new ReverseProxy({
    listen: config.proxy.listen,
    mode: config.target.mode,
    masterAddress,
    target: { address: config.target.address, port: config.target.port, ...(tls === undefined ? {} : { tls }) },
    socks,
    proxyProtocol: true,
    limits: proxyLimits(config),
    rewriteBodies: config.proxy.rewrite_bodies,
    logger: log.child({ component: 'proxy' }),
  });

  const tor = new TorProcess({
    dataDir: paths.torDir,
    torrc,
    torBinary: config.tor.binary,
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
    startTimeoutMs: options.torStartTimeoutMs ?? 120_000,
    ...(options.timers === undefined ? {} : { timers: options.timers }),
  });
  const torLog = log.child({ component: 'tor' });

  const health = new TargetHealth({
    target: { address: config.target.address, port: config.target.port },
    socks,
    probe: healthProbe(config),
    intervalMs: config.health.interval_ms,
    timeoutMs: config.health.timeout_ms,
    ...(options.timers === undefined ? {} : { timers: options.timers }),
    logger: log.child({ component: 'health' }),
  });

  const nodeHealth = new NodeHealth({
    target: health,
    control: () => (tor.state === 'ready' ? tor.control : undefined),
    serviceAddress: masterAddress,
    intervalMs: Math.min(5000, config.health.interval_ms),
    ...(options.timers === undefined ? {} : { timers: options.timers }),
    logger: log.child({ component: 'node-health' }),
  });

  let state: NodeStatus['state'] = 'running';
  let bootstrapped = false;
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let stopPromise: Promise<void> | undefined;
  let resolveBootstrapped: () => void = () => undefined;
  const firstBootstrap = new Promise<void>((r) => {
    resolveBootstrapped = r;
  });

  nodeHealth.onChange((h) => {
    if (h.tor.progress === 100 && !bootstrapped) {
      bootstrapped = true;
      resolveBootstrapped();
      torLog.info({ masterAddress }, 'tor bootstrapped; the onion service is being published');
    } else if (h.tor.progress < 100) bootstrapped = false;
    log.info({ healthy: h.healthy, reasons: h.reasons, introPoints: h.intro.introPoints }, h.healthy ? 'node healthy' : 'node not healthy');
  });

  tor.on('exit', (e) => {
    if (!e.expected) torLog.warn({ pid: e.pid, code: e.code, signal: e.signal, output: tor.output().slice(-5) }, 'tor exited unexpectedly');
  });
  tor.on('restart', (e) => {
    bootstrapped = false;
    torLog.warn({ attempt: e.attempt, delayMs: e.delayMs }, 'restarting tor');
  });
  tor.on('ready', (e) => {
    torLog.info({ pid: e.pid, restarts: e.restarts }, 'tor is up');
  });
  tor.on('error', (e) => {
    torLog.error({ err: e.error, gaveUp: e.gaveUp }, e.gaveUp ? 'tor keeps failing; giving up' : 'tor restart failed');
    if (e.gaveUp && state === 'running') {
      state = 'failed';
      options.onFatal?.(e.error);
    }
  });

  let cluster: ClusterService | undefined;
  let statusTimer: NodeJS.Timeout | undefined;

  // The config in effect for what reload() can change (config = the one we started with).
  let applied: Config = config;
  const stop = (drainMs: number = applied.drain.timeout_ms): Promise<void> => {
    if (stopPromise !== undefined) {
      // Already draining: a zero drain cuts it short (closes what is still open).
      if (drainMs === 0 && state === 'stopping') void proxy.stop(0).catch(() => undefined);
      return stopPromise;
    }
    stopPromise = (async () => {
      const wasFailed = state === 'failed';
      state = 'stopping';
      if (statusTimer !== undefined) clearInterval(statusTimer);
      if (cluster !== undefined) {
        log.info('leaving the cluster');
        await cluster.stop().catch((e: unknown) => {
          log.warn({ err: e }, 'cluster stop failed');
        });
      }
      nodeHealth.stop();
      log.info({ drainMs }, 'stopping: draining connections');
      try {
        await proxy.stop(drainMs);
      } catch (e) {
        log.warn({ err: e }, 'proxy stop failed');
      }
      health.stop();
      await admin?.stop().catch((e: unknown) => {
        log.warn({ err: e }, 'admin API stop failed');
      });
      await tor.stop();
      state = wasFailed ? 'failed' : 'stopped';
      log.info('stopped');
      resolveStopped();
    })();
    return stopPromise;
  };

  // The admin API (src/node/admin): up right after the proxy, so the status is visible while tor starts.
  const periodClock = new PeriodClock({
    control: () => (tor.state === 'ready' ? tor.control : undefined),
    testingTorNetwork: config.tor.extra_config.some(([k, v]) => k === 'TestingTorNetwork' && v.trim() === '1'),
  });
  // Over TCP the admin API trusts nobody by default: privileged routes need the bearer secret,
  // read routes the opt-in (docs/SECURITY.md, "Admin API").
  const adminSecret = config.admin.enabled && config.admin.listen.kind === 'tcp' && config.admin.secret_file !== undefined ? await readAdminSecret(config.admin.secret_file) : undefined;
  const admin = config.admin.enabled
    ? new AdminService({
        listen: config.admin.listen,
        tcpAccess: { ...(adminSecret === undefined ? {} : { bearerSecret: adminSecret }), openReads: config.admin.tcp_open_reads },
        logger: log.child({ component: 'admin' }),
        snapshot: () => snapshot(nodeHealth.state),
        status: async () => snapshot(state === 'running' ? await nodeHealth.refresh() : nodeHealth.state),
        period: () => periodClock.info(),
      })
    : undefined;
  // Every probe (not just changes of health) into the probe-duration histogram.
  if (admin !== undefined) {
    health.onProbe((p) => {
      admin.routes.metrics.observeProbe(p.durationMs / 1000, p.ok);
    });
  }

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
    let targetSeenHealthy = false;
    cluster = new ClusterService({
      config,
      prepared,
      masterAddress,
      identity: { expandedSecretKey: key.keypair.expandedSecretKey, publicKey: key.keypair.publicKey },
      controlEndpoint: tor.controlEndpoint,
      socksPort,
      health: {
        node: () => nodeHealth.state,
        // Fail-closed only once the target has been seen healthy through a bootstrapped tor:
        // probes fail while tor bootstraps, and closing fresh intro circuits then would cost
        // the node its intro points for minutes (tor's intro-circuit retry limits).
        targetHealthy: () => {
          if (health.state.healthy && nodeHealth.state.tor.progress === 100) targetSeenHealthy = true;
          return !targetSeenHealthy || health.state.lastCheckAt === undefined ? undefined : health.state.healthy;
        },
        onChange: (l) => {
          const a = nodeHealth.onChange(l);
          const b = health.onChange(l);
          return () => {
            a();
            b();
          };
        },
      },
      timers: options.timers ?? realTimers,
      logger: log.child({ component: 'cluster' }),
      traffic: () => proxy.stats(),
      hsGroups,
    });
    try {
      await cluster.start();
    } catch (e) {
      await cluster.stop().catch(() => undefined);
      cluster = undefined;
      await stop(0);
      throw e;
    }
    if (admin !== undefined) {
      for (const r of cluster.adminRoutes()) admin.addRoute(r);
      const m = admin.routes.metrics;
      cluster.onPublish((r) => {
        m.observePublish(r);
      });
    }
  }
  log.info({ masterAddress, target: config.target.address, listen: config.proxy.listen }, 'node running');

  // A function declaration (hoisted): the admin API calls it while tor is still starting.
  function snapshot(h: NodeHealthState): NodeStatus {
    return {
      name: config.node.name,
      masterAddress,
      targetAddress: config.target.address,
      state,
      tor: { state: tor.state, pid: tor.pid, restarts: tor.restarts, socksPort },
      health: h,
      proxy: proxy.stats(),
      ...(cluster === undefined ? {} : { cluster: cluster.status() }),
    };
  }
  const statusFile = process.env['TORBALANCE_STATUS_FILE'];
  if (statusFile !== undefined && statusFile !== '') {
    let writing = false;
    const write = (): void => {
      if (writing) return;
      writing = true;
      const text = JSON.stringify({ ...snapshot(nodeHealth.state), pid: process.pid, atMs: Date.now() }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      // A fresh temp name opened O_CREAT|O_EXCL|O_NOFOLLOW 0600, then renamed over the path
      // (rename replaces a symlink there instead of following it): a symlink planted at the
      // path or at a guessable temp name cannot redirect the write.
      writeStatusFile(statusFile, text)
        .catch((e: unknown) => {
          log.debug({ err: e }, 'cannot write the status file');
        })
        .finally(() => {
          writing = false;
        });
    };
    write();
    statusTimer = setInterval(write, 1000);
    statusTimer.unref();
  }

  return {
    masterAddress,
    paths,
    socksPort,
    stop,
    stopped,
    bootstrapped: firstBootstrap,
    async reload(): Promise<ReloadPlan> {
      const source = applied.source;
      if (state !== 'running' || source === undefined) {
        throw daemonError('TB_ERR_NODE_RELOAD', state !== 'running' ? `cannot reload: the node is ${state}` : 'cannot reload: the node was not started from a config file');
      }
      let next: Config;
      try {
        next = await loadConfig(source);
      } catch (e) {
        log.error({ err: e, file: source }, 'reload refused: the config file is invalid; keeping the running configuration');
        throw e;
      }
      const plan = planReload(config, applied, next);
      try {
        proxy.updateSettings({ limits: proxyLimits(next), rewriteBodies: next.proxy.rewrite_bodies });
        health.update({ probe: healthProbe(next), intervalMs: next.health.interval_ms, timeoutMs: next.health.timeout_ms });
      } catch (e) {
        log.error({ err: e, file: source }, 'reload refused: cannot apply the new values; keeping the running configuration');
        throw e;
      }
      log.level = next.log.level;
      applied = next;
      if (plan.restart.length > 0) log.warn({ keys: plan.restart, file: source }, 'config keys changed that need a restart; not applied until the node restarts');
      log.info({ applied: plan.live, file: source }, plan.live.length > 0 ? 'configuration reloaded' : 'configuration reloaded; nothing to apply live');
      return plan;
    },
    async status(): Promise<NodeStatus> {
      const h = state === 'running' ? await nodeHealth.refresh() : nodeHealth.state;
      return snapshot(h);
    },
  };
}
