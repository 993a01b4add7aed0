/**
 * What a configuration reload (SIGHUP, `NodeHandle.reload()` in src/node/daemon.ts) may change
 * while the node runs, and what needs a restart.
 *
 * {@link planReload} compares two loaded configs key by key (dotted leaf paths, as in
 * docs/config.md) and sorts every changed key into
 * - `live`: applied at once without dropping a connection — `log.level`, `proxy.limits.*`,
 *   `proxy.rewrite_bodies`, `health.*` and `drain.timeout_ms`;
 * - `restart`: everything else (master key, target, tor options, transport, listen addresses,
 *   cluster settings, …): logged by name, not applied, until the node is restarted.
 *
 * `proxy.limits.max_connections_per_circuit` is both: the proxy enforces the new value at
 * once, tor's `HiddenServiceMaxStreams` (written into the torrc at start) keeps the old one
 * until a restart.
 */
import { loadConfig } from '../adapters/config/load.js';
import type { Config } from '../adapters/config/schema.js';
import type { Logger } from '../adapters/log/logger.js';
import type { ProxySettings } from './proxy/index.js';
import { healthSettings, proxySettings } from './service-settings.js';

/** Keys (or key prefixes ending in ".") that can be applied while running. */
export const LIVE_RELOAD_KEYS: readonly string[] = ['log.level', 'proxy.limits.', 'proxy.rewrite_bodies', 'health.', 'drain.timeout_ms'];

/** Live keys that ALSO need a restart for part of their effect (tor's copy of the value). */
export const PARTLY_RESTART_KEYS: readonly string[] = ['proxy.limits.max_connections_per_circuit'];

/** The outcome of comparing the running config with the re-read file. */
export interface ReloadPlan {
  /** Changed keys applied at once. */
  readonly live: readonly string[];
  /** Changed keys that take effect only after a restart (not applied). */
  readonly restart: readonly string[];
}

function isLive(key: string): boolean {
  return LIVE_RELOAD_KEYS.some((k) => (k.endsWith('.') ? key.startsWith(k) : key === k));
}

/** Parsed values that are one key in the file (listen addresses are objects once loaded). */
const LEAF_OBJECTS = new Set(['proxy.listen', 'admin.listen']);

/** Flatten a config into dotted leaf paths → JSON value (arrays and listen addresses are leaves). */
export function flattenConfig(value: unknown, prefix = '', out: Map<string, string> = new Map()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !LEAF_OBJECTS.has(prefix)) {
    for (const [k, v] of Object.entries(value)) {
      if (prefix === '' && k === 'source') continue;
      flattenConfig(v, prefix === '' ? k : `${prefix}.${k}`, out);
    }
  } else if (value !== undefined) {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/** Dotted keys whose values differ between `a` and `b` (sorted). */
export function changedKeys(a: Config, b: Config): string[] {
  const fa = flattenConfig(a);
  const fb = flattenConfig(b);
  const keys = new Set([...fa.keys(), ...fb.keys()]);
  return [...keys].filter((k) => fa.get(k) !== fb.get(k)).sort();
}

/**
 * Plan a reload: `live` = keys changed since the last applied config (`applied`); `restart` =
 * keys that differ from the config the node STARTED with (`started`) and cannot be applied live,
 * so a restart-only change keeps being reported until the node restarts (or the file is
 * changed back).
 */
export function planReload(started: Config, applied: Config, next: Config): ReloadPlan {
  const live = changedKeys(applied, next).filter(isLive);
  const restart = changedKeys(started, next).filter((k) => !isLive(k) || PARTLY_RESTART_KEYS.includes(k));
  return { live, restart };
}

/** The running parts a reload changes, and where it reports. */
export interface ReloadTargets {
  readonly proxy: { updateSettings(next: ProxySettings): void };
  readonly health: { update(next: ReturnType<typeof healthSettings>): void };
  readonly log: Logger;
}

/**
 * Re-read `source` and apply its live keys to `targets` (proxy limits, timeouts and body
 * rewriting; health checks; the log level). Returns the plan and the config now applied; an
 * invalid file or values the services refuse are logged and thrown, and nothing is applied.
 */
export async function applyReload(source: string, started: Config, applied: Config, targets: ReloadTargets): Promise<{ readonly plan: ReloadPlan; readonly next: Config }> {
  const { log } = targets;
  let next: Config;
  try {
    next = await loadConfig(source);
  } catch (e) {
    log.error({ err: e, file: source }, 'reload refused: the config file is invalid; keeping the running configuration');
    throw e;
  }
  const plan = planReload(started, applied, next);
  try {
    targets.proxy.updateSettings(proxySettings(next));
    targets.health.update(healthSettings(next));
  } catch (e) {
    log.error({ err: e, file: source }, 'reload refused: cannot apply the new values; keeping the running configuration');
    throw e;
  }
  log.level = next.log.level;
  if (plan.restart.length > 0) log.warn({ keys: plan.restart, file: source }, 'config keys changed that need a restart; not applied until the node restarts');
  log.info({ applied: plan.live, file: source }, plan.live.length > 0 ? 'configuration reloaded' : 'configuration reloaded; nothing to apply live');
  return { plan, next };
}
