/**
 * The reverse proxy's and the target health checker's settings from a config: at start
 * (src/node/daemon.ts) and, for what can change live, on reload (src/node/reload.ts).
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../adapters/config/schema.js';
import type { Logger } from '../adapters/log/logger.js';
import type { Timers } from '../adapters/system/timers.js';
import { TorbalanceError } from '../core/errors.js';
import type { HealthOptions, HealthProbe } from './health.js';
import type { ProxyOptions, ProxySettings } from './proxy/index.js';

/** tor's SocksPort, which both the proxy and the health checker dial through. */
export interface SocksEndpoint {
  readonly host: string;
  readonly port: number;
}

/** What of the proxy can change while it runs: limits, timeouts, body rewriting. */
export function proxySettings(c: Config): ProxySettings {
  const l = c.proxy.limits;
  return {
    limits: {
      maxConnections: l.max_connections,
      maxConnectionsPerCircuit: l.max_connections_per_circuit,
      connectTimeoutMs: l.connect_timeout_ms,
      headerTimeoutMs: l.header_timeout_ms,
      idleTimeoutMs: l.idle_timeout_ms,
    },
    rewriteBodies: c.proxy.rewrite_bodies,
  };
}

/** What of the health checker can change while it runs: the probe and its schedule. */
export function healthSettings(c: Config): { readonly probe: HealthProbe; readonly intervalMs: number; readonly timeoutMs: number } {
  const probe: HealthProbe =
    c.health.kind === 'http'
      ? { kind: 'http', path: c.health.path, ...(c.health.expect_status === undefined ? {} : { expectStatus: c.health.expect_status }) }
      : { kind: 'tcp' };
  return { probe, intervalMs: c.health.interval_ms, timeoutMs: c.health.timeout_ms };
}

/** TLS to the target (`target.tls`), with the CA file read; undefined when off. */
async function targetTls(c: Config): Promise<NonNullable<ProxyOptions['target']['tls']> | undefined> {
  const t = c.target.tls;
  if (!t.enabled) return undefined;
  let ca: string | undefined;
  if (t.ca_file !== undefined) {
    try {
      ca = await readFile(t.ca_file, 'utf8');
    } catch (e) {
      throw new TorbalanceError('TB_ERR_CONFIG_FILE', 'config', `cannot read target.tls.ca_file ${t.ca_file}`, { cause: e });
    }
  }
  return { verify: t.verify, ...(t.servername === undefined ? {} : { servername: t.servername }), ...(ca === undefined ? {} : { ca }) };
}

/** The reverse proxy's options (reads `target.tls.ca_file`). */
export async function proxyOptions(c: Config, masterAddress: string, socks: SocksEndpoint, logger: Logger): Promise<ProxyOptions> {
  const tls = await targetTls(c);
  return {
    listen: c.proxy.listen,
    mode: c.target.mode,
    masterAddress,
    target: { address: c.target.address, port: c.target.port, ...(tls === undefined ? {} : { tls }) },
    socks,
    proxyProtocol: true,
    ...proxySettings(c),
    logger,
  };
}

/** The target health checker's options. */
export function healthOptions(c: Config, socks: SocksEndpoint, timers: Timers | undefined, logger: Logger): HealthOptions {
  return {
    target: { address: c.target.address, port: c.target.port },
    socks,
    ...healthSettings(c),
    ...(timers === undefined ? {} : { timers }),
    logger,
  };
}
