/**
 * What the admin API reads from a running node: one {@link AdminSnapshot} — the node's
 * {@link NodeStatus} (src/node/node-status.ts; it carries the cluster view, publisher status
 * and mesh counters) plus the time-period clock. The publish rounds followed across snapshots
 * are src/node/publisher/view.ts `PublishView`.
 *
 * Only public facts are in a snapshot: names, node ids, addresses, counters, HSDir
 * fingerprints. Keys and secrets never reach this module.
 */
import type { TrafficSummary } from '../../core/mesh/index.js';
import type { ClusterStatus } from '../cluster.js';
import type { NodeStatus } from '../node-status.js';
import type { PublishView } from '../publisher/view.js';

/** Time-period facts (rend-spec-v3 §2.2.1), from {@link PeriodClock}. */
export interface PeriodInfo {
  /** Seconds from now to the start of the next time period (≥ 0). */
  readonly secondsToNext: number;
  readonly lengthMinutes: number;
  /** Unix seconds of the next period's start. */
  readonly nextStartAt: number;
  readonly periodNum: number;
}

/** One reading of the node. */
export interface AdminSnapshot {
  /** Wall-clock ms of the reading. */
  readonly atMs: number;
  readonly node: NodeStatus;
  readonly period?: PeriodInfo | undefined;
}

/** Feed a snapshot's last publish record (if any) to the publish view (idempotent for the same record). */
export function observePublish(view: PublishView, node: NodeStatus): void {
  const rec = node.cluster?.publish?.lastPublish;
  if (rec !== undefined) view.observeRecord(rec);
}

/** A peer's role as this node sees it: `alone` while not clustered, else publisher or member. */
export function peerRole(c: ClusterStatus, peerId: string): ClusterStatus['role'] {
  return !c.clustered ? 'alone' : peerId === c.publisher ? 'publisher' : 'member';
}

/** Just the traffic counters of a proxy's stats or a peer's heartbeat summary. */
export function pickTraffic(t: TrafficSummary): TrafficSummary {
  return { open: t.open, accepted: t.accepted, requests: t.requests, bytesIn: t.bytesIn, bytesOut: t.bytesOut };
}
