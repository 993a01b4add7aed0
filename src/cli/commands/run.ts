/**
 * `torbalance run --config FILE`: run a node (src/node/daemon.ts) in the foreground until
 * SIGTERM or SIGINT, then drain (`drain.timeout_ms`) and stop; exit code 0. A second signal
 * while draining skips the rest of the drain. If tor keeps failing (restart budget used up)
 * the node stops and the command fails with TB_ERR_NODE_FAILED (exit code 1).
 * `--exit-with-parent`: stop as soon as the parent process is gone (used by `torbalance demo`).
 * SIGHUP re-reads the config file and applies what can change live (`NodeHandle.reload`,
 * src/node/reload.ts): connections stay open; keys that need a restart are logged; an invalid
 * file is refused and the node keeps running with the old config.
 * Logs go to stderr (JSON, or human-readable on a terminal; `log.format`).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../adapters/config/load.js';
import { TorbalanceError } from '../../core/errors.js';
import { loggerForConfig, startNode } from '../../node/daemon.js';

/** Options of {@link runNode}. */
export interface RunOptions {
  readonly configPath: string;
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
}

/** Run a node until a signal; resolves after a clean stop. */
export async function runNode(options: RunOptions): Promise<void> {
  const config = await loadConfig(options.configPath);
  const log = loggerForConfig(config);
  let fatal: Error | undefined;
  // The stop signals are handled from before the node starts: startNode logs "node running"
  // before it returns, and a SIGTERM that arrived between that line and a later handler
  // installation would take the default action (killed by the signal, no drain, no exit 0).
  // A signal during start-up is remembered and acted on once the node exists.
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let count = 0;
  let node: Awaited<ReturnType<typeof startNode>> | undefined;
  const act = (n: NonNullable<typeof node>): void => {
    if (count === 1) void n.stop();
    else void n.stop(0);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    count += 1;
    if (count === 1) log.info({ signal: sig }, node === undefined ? 'signal received while starting; stopping once started' : 'signal received; draining');
    else log.warn({ signal: sig }, 'second signal; closing open connections now');
    if (node !== undefined) act(node);
  };
  for (const s of signals) process.on(s, onSignal);
  try {
    node = await startNode({
      config,
      logger: log,
      onFatal: (e) => {
        fatal = e;
        void node?.stop(0);
      },
    });
  } catch (e) {
    for (const s of signals) process.off(s, onSignal);
    throw e;
  }
  if (count > 0) act(node);
  const onHup = (): void => {
    log.info({ signal: 'SIGHUP' }, 'signal received; reloading the configuration');
    node.reload().catch(() => undefined); // reload() logs the outcome itself
  };
  if (options.reloadOnSighup !== false) process.on('SIGHUP', onHup);
  let parentTimer: NodeJS.Timeout | undefined;
  if (options.exitWithParent === true) {
    const parent = process.ppid;
    parentTimer = setInterval(() => {
      // An orphan is re-parented (to init or a subreaper): ppid changes.
      if (process.ppid !== parent) {
        clearInterval(parentTimer);
        log.warn({ parent }, 'parent process gone; stopping');
        void node.stop(0);
      }
    }, options.parentCheckMs ?? 1000);
    parentTimer.unref();
  }
  try {
    await node.stopped;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.off('SIGHUP', onHup);
    if (parentTimer !== undefined) clearInterval(parentTimer);
  }
  if (fatal !== undefined) {
    throw new TorbalanceError('TB_ERR_NODE_FAILED', 'tor', `the node stopped because tor keeps failing: ${fatal.message}`, { cause: fatal });
  }
}

/** Register `run`. */
export function register(program: Command): void {
  program
    .command('run')
    .description('run a node: its own tor with the master key, the reverse proxy and health checks (SIGTERM drains and stops, SIGHUP reloads the config)')
    .requiredOption('--config <file>', 'config file (see docs/config.md)')
    .option('--exit-with-parent', 'stop when the parent process exits (for nodes started by a supervisor such as `torbalance demo`)')
    .action(async (opts: { config: string; exitWithParent?: boolean }) => {
      await runNode({ configPath: opts.config, exitWithParent: opts.exitWithParent === true });
    });
}
