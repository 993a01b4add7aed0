/**
 * The node's health as the cluster service sees it (src/node/cluster.ts `ClusterHealthSource`):
 * the node health (target ∧ tor bootstrapped ∧ intro points) for the mesh, and the target's
 * health for fail-closed — but only once the target has been seen healthy through a
 * bootstrapped tor: probes fail while tor bootstraps, and closing fresh intro circuits then
 * would cost the node its intro points for minutes (tor's intro-circuit retry limits).
 */
import type { ClusterHealthSource } from './cluster.js';
import type { TargetHealth } from './health.js';
import type { NodeHealth } from './node-health.js';

/** The cluster's view of `target` and `node` (see the module doc). */
export function clusterHealthSource(target: TargetHealth, node: NodeHealth): ClusterHealthSource {
  let targetSeenHealthy = false;
  return {
    node: () => node.state,
    targetHealthy: () => {
      if (target.state.healthy && node.state.tor.progress === 100) targetSeenHealthy = true;
      return !targetSeenHealthy || target.state.lastCheckAt === undefined ? undefined : target.state.healthy;
    },
    onChange: (l) => {
      const a = node.onChange(l);
      const b = target.onChange(l);
      return () => {
        a();
        b();
      };
    },
  };
}
