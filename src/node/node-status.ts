/**
 * The status a running node reports: tor's supervisor, target and tor health, the proxy's
 * counters and (with `[cluster] enabled`) the cluster view. The daemon builds it; the admin API
 * (src/node/admin) and the CLI's demo read it. Only public facts: no key or secret.
 */
import type { ClusterStatus } from './cluster.js';
import type { NodeHealthState } from './node-health.js';
import type { ProxyStats } from './proxy/index.js';

/** What a running node reports (src/node/daemon.ts `NodeHandle.status`; the admin API's snapshots, the debug status file). */
export interface NodeStatus {
  readonly name: string;
  readonly masterAddress: string;
  readonly targetAddress: string;
  readonly state: 'running' | 'stopping' | 'stopped' | 'failed';
  /** The supervisor's view of tor. */
  readonly tor: {
    readonly state: string;
    readonly pid: number | undefined;
    readonly restarts: number;
    readonly socksPort: number;
  };
  /**
   * Target health, tor bootstrap (`health.tor.progress`, 100 = bootstrapped) and the intro
   * points of tor's current descriptor for the master address (`health.intro`), freshly read.
   */
  readonly health: NodeHealthState;
  readonly proxy: ProxyStats;
  /** Cluster state (peers, roles, publisher, last publish), when `[cluster] enabled`. */
  readonly cluster?: ClusterStatus;
}
