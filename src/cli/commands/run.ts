/**
 * `torbalance run [--config FILE]`: run a node (src/node/daemon.ts) in the foreground until
 * SIGTERM or SIGINT, then drain (`drain.timeout_ms`) and stop; exit code 0. A second signal
 * while draining skips the rest of the drain. The handlers are in place before the node starts:
 * a signal during start-up stops (or, SIGHUP, reloads) the node as soon as it has started.
 * If tor keeps failing (restart budget used up) the node stops and the command fails with
 * TB_ERR_NODE_FAILED (exit code 1).
 * `--exit-with-parent`: stop as soon as the parent process is gone (used by `torbalance demo`).
 * SIGHUP re-reads the config file and applies what can change live (`NodeHandle.reload`,
 * src/node/reload.ts): connections stay open; keys that need a restart are logged; an invalid
 * file is refused and the node keeps running with the old config.
 * Logs go to stderr (JSON, or human-readable on a terminal; `log.format`).
 * The config file: `--config`, else `TORBALANCE_CONFIG`, else /etc/torbalance/torbalance.toml
 * (src/adapters/config/path.ts).
 * Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) it tells the service manager `READY=1`
 * once the proxy listens and tor has bootstrapped, `STOPPING=1` when it starts to drain, and
 * pings `WATCHDOG=1` at half `WATCHDOG_USEC` (src/core/sd-notify.ts,
 * src/adapters/system/sd-notify.ts); without `NOTIFY_SOCKET` nothing is sent.
 */
import type { Command } from 'commander';
import { loadConfigFrom } from '../../adapters/config/path.js';
import { SdNotifier } from '../../adapters/system/sd-notify.js';
import { ReadinessPolicy, type NodeEvent } from '../../core/sd-notify.js';
import { TorbalanceError } from '../../core/errors.js';
import { startNode, type NodeHandle } from '../../node/daemon.js';
import { loggerForConfig } from '../../node/node-logger.js';
import { withConfigOption } from './config-option.js';

/** Options of {@link runNode}. */
export interface RunOptions {
  /** The config file; undefined: `TORBALANCE_CONFIG`, else the default (src/adapters/config/path.ts). */
  readonly configPath?: string | undefined;
  /** Signals that stop the node. Default SIGTERM and SIGINT. */
  readonly signals?: readonly NodeJS.Signals[];
  /** Reload the config on SIGHUP. Default true. */
  readonly reloadOnSighup?: boolean;
  /**
   * Stop (without draining) when the parent process goes away — for nodes a supervisor such as
   * `torbalance demo` starts, so a SIGKILLed supervisor leaves no node behind (tor follows its
   * node through `__OwningControllerProcess`). Checked every `parentCheckMs` (default 1000).
   */
  readonly exitWithParent?: boolean;
  readonly parentCheckMs?: number;
  /** Notifications to systemd. Default: a {@link SdNotifier} on `process.env`. */
  readonly notifier?: SdNotifier;
}

/** Run a node until a signal; resolves after a clean stop. */
export async function runNode(options: RunOptions): Promise<void> {
  const { config } = await loadConfigFrom(options.configPath);
  const log = loggerForConfig(config);
  const notifier = options.notifier ?? new SdNotifier({
      onError: (e) => {
        log.warn({ err: e }, 'cannot notify systemd');
      },
    });
  const policy = new ReadinessPolicy();
  const notify = (e: NodeEvent): void => {
    void notifier.send(policy.on(e));
  };
  // Set by the handlers below, which may run while the node is still starting (`node` unset).
  const failure: { error?: Error } = {};
  const pending = { reload: false };
  // The handlers are installed before the node starts: without a listener a SIGTERM (or SIGHUP)
  // takes the process's default action and kills it outright, with no drain and no exit code,
  // and "node running" is logged inside startNode — a supervisor that signals as soon as it
  // reads that line must meet the handler. A signal that arrives while the node starts is
  // acted on once it has started (startNode cannot be interrupted half-way).
  let node: NodeHandle | undefined;
  let count = 0;
  const stopFor = (n: number): void => {
    notify({ kind: 'stopping' });
    void node?.stop(n === 1 ? undefined : 0);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    count += 1;
    if (node === undefined) {
      log.info({ signal: sig }, 'signal received while starting; stopping once started');
    } else if (count === 1) {
      log.info({ signal: sig }, 'signal received; draining');
      stopFor(count);
    } else {
      log.warn({ signal: sig }, 'second signal; closing open connections now');
      stopFor(count);
    }
  };
  const onHup = (): void => {
    if (node === undefined) {
      log.info({ signal: 'SIGHUP' }, 'signal received while starting; reloading the configuration once started');
      pending.reload = true;
      return;
    }
    log.info({ signal: 'SIGHUP' }, 'signal received; reloading the configuration');
    node.reload().catch(() => undefined); // reload() logs the outcome itself
  };
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  for (const s of signals) process.on(s, onSignal);
  if (options.reloadOnSighup !== false) process.on('SIGHUP', onHup);
  const removeHandlers = (): void => {
    for (const s of signals) process.off(s, onSignal);
    process.off('SIGHUP', onHup);
  };
  try {
    node = await startNode({
      config,
      logger: log,
      onFatal: (e) => {
        failure.error = e;
        notify({ kind: 'stopping' });
        void node?.stop(0);
      },
    });
  } catch (e) {
    removeHandlers();
    await notifier.close();
    throw e;
  }
  const started = node;
  notify({ kind: 'listening' });
  void started.bootstrapped.then(() => {
    notify({ kind: 'tor-progress', percent: 100 });
  });
  const watchdogMs = notifier.startWatchdog();
  if (watchdogMs !== undefined) log.info({ intervalMs: watchdogMs }, 'systemd watchdog on');
  if (failure.error !== undefined) {
    notify({ kind: 'stopping' });
    void started.stop(0);
  } else if (count > 0) {
    log.info({ signals: count }, 'started after a stop signal; draining');
    stopFor(count);
  } else if (pending.reload) {
    started.reload().catch(() => undefined); // reload() logs the outcome itself
  }
  let parentTimer: NodeJS.Timeout | undefined;
  if (options.exitWithParent === true) {
    const parent = process.ppid;
    parentTimer = setInterval(() => {
      // An orphan is re-parented (to init or a subreaper): ppid changes.
      if (process.ppid !== parent) {
        clearInterval(parentTimer);
        log.warn({ parent }, 'parent process gone; stopping');
        notify({ kind: 'stopping' });
        void started.stop(0);
      }
    }, options.parentCheckMs ?? 1000);
    parentTimer.unref();
  }
  try {
    await started.stopped;
  } finally {
    removeHandlers();
    if (parentTimer !== undefined) clearInterval(parentTimer);
    await notifier.close();
  }
  const fatal = failure.error;
  if (fatal !== undefined) {
    throw new TorbalanceError('TB_ERR_NODE_FAILED', 'tor', `the node stopped because tor keeps failing: ${fatal.message}`, { cause: fatal });
  }
}

/** Register `run`. */
export function register(program: Command): void {
  withConfigOption(
    program
      .command('run')
      .description('run a node: its own tor with the master key, the reverse proxy and health checks (SIGTERM drains and stops, SIGHUP reloads the config)'),
  )
    .option('--exit-with-parent', 'stop when the parent process exits (for nodes started by a supervisor such as `torbalance demo`)')
    .action(async (opts: { config?: string; exitWithParent?: boolean }) => {
      await runNode({ configPath: opts.config, exitWithParent: opts.exitWithParent === true });
    });
}
