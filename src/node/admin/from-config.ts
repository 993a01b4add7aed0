/**
 * The node's admin API from its config (daemon step 4a): off with `[admin] enabled = false`;
 * over TCP it trusts nobody by default — privileged routes need the bearer secret
 * (`admin.secret_file`), read routes the opt-in `admin.tcp_open_reads` (docs/SECURITY.md,
 * "Admin API"). Time-period facts come from the node's tor once its control port is up.
 */
import { readAdminSecret } from '../../adapters/admin/secret.js';
import type { Config } from '../../adapters/config/schema.js';
import type { Logger } from '../../adapters/log/logger.js';
import type { ControlLike } from '../node-health.js';
import type { NodeStatus } from '../node-status.js';
import { AdminService } from './index.js';
import { PeriodClock } from './period.js';

/** Where the node's admin API reads the node. */
export interface NodeAdminSources {
  /** A cheap snapshot (no tor round trip). */
  readonly snapshot: () => NodeStatus;
  /** A fresh status for `/status` (may ask tor). */
  readonly status: () => Promise<NodeStatus>;
  /** tor's control connection while tor is up. */
  readonly control: () => ControlLike | undefined;
}

/** The admin service (not started), or undefined when `[admin] enabled = false`. */
export async function createNodeAdmin(config: Config, sources: NodeAdminSources, logger: Logger): Promise<AdminService | undefined> {
  if (!config.admin.enabled) return undefined;
  const periodClock = new PeriodClock({
    control: sources.control,
    testingTorNetwork: config.tor.extra_config.some(([k, v]) => k === 'TestingTorNetwork' && v.trim() === '1'),
  });
  const adminSecret = config.admin.listen.kind === 'tcp' && config.admin.secret_file !== undefined ? await readAdminSecret(config.admin.secret_file) : undefined;
  return new AdminService({
    listen: config.admin.listen,
    tcpAccess: { ...(adminSecret === undefined ? {} : { bearerSecret: adminSecret }), openReads: config.admin.tcp_open_reads },
    logger,
    snapshot: sources.snapshot,
    status: sources.status,
    period: () => periodClock.info(),
  });
}
