/**
 * The `/status` document of the admin API (documented in docs/admin-api.md):
 * a versioned JSON view of one node and of the cluster as this node sees it — nodes with
 * their roles, health, intro points and last contact; the elected publisher; the descriptor
 * revision and which HSDirs accepted each descriptor; the time to the next time period.
 * Other nodes' traffic and, on members, the publisher's acceptance counts come from the
 * peers' mesh heartbeats (ClusterPeerStatus.traffic, ClusterStatus.lastPublish).
 *
 * Built from an {@link AdminSnapshot} and the {@link PublishView}; contains no secrets (no
 * key material, no cluster secret, no target credentials).
 */
import type { TrafficSummary } from '../../core/mesh/index.js';
import type { MeshPublishReport } from '../cluster.js';
import type { ProxyStats } from '../proxy/index.js';
import type { DescriptorState, PublishView } from '../publisher/view.js';
import { peerRole, pickTraffic, type AdminSnapshot, type PeriodInfo } from './snapshot.js';

/** Version of the `/status` document; bumped on incompatible changes. */
export const STATUS_VERSION = 1;

/** Role of a node in the cluster view. */
export type NodeRole = 'publisher' | 'member' | 'alone';

/** A node's visitor traffic: cumulative proxy counters (its own for self, from heartbeats for peers). */
export type NodeTraffic = TrafficSummary;

/** The publisher's last publish round as its heartbeats report it (`publish.publisherReport`). */
export interface PublisherReport {
  readonly id: string;
  readonly name: string;
  /** When the round started (the publisher's clock), ms. */
  readonly atMs: number;
  /** Nodes whose intro points are in the descriptor. */
  readonly nodes: number;
  readonly descriptors: readonly {
    readonly descriptor: 'first' | 'second';
    readonly revisionCounter: string | null;
    readonly accepted: number | null;
    readonly total: number | null;
  }[];
}

/** One node in `/status` `cluster.nodes`. */
export interface StatusNode {
  readonly id: string;
  readonly name: string;
  /** True for the node that answered. */
  readonly self: boolean;
  readonly role: NodeRole;
  /** `self` for the answering node, else the mesh state: alive, suspect, dead, left, … */
  readonly state: string;
  readonly healthy: boolean;
  readonly reasons: readonly string[];
  readonly introPoints: number;
  /** Milliseconds since the last message from this node (0 for self; null if never). */
  readonly lastSeenAgoMs: number | null;
  readonly addr: string | null;
  readonly priority: number | null;
  /** Its traffic counters (null: it sent none, e.g. an older node). Absent in older documents. */
  readonly traffic?: NodeTraffic | null;
}

/** The `/status` document (version 1). */
export interface StatusDocument {
  readonly version: number;
  readonly generatedAt: number;
  readonly node: {
    readonly id: string | null;
    readonly name: string;
    readonly masterAddress: string;
    readonly targetAddress: string;
    readonly state: string;
  };
  readonly tor: { readonly state: string; readonly pid: number | null; readonly restarts: number; readonly bootstrap: number; readonly warning: string | null };
  readonly health: {
    readonly healthy: boolean;
    readonly reasons: readonly string[];
    readonly target: { readonly healthy: boolean; readonly latencyMs: number | null; readonly lastCheckAt: number | null; readonly consecutiveFailures: number; readonly lastError: string | null };
    readonly introPoints: number;
    readonly descriptor: string;
  };
  /** The proxy's counters ({@link ProxyStats} without the rejection reasons). */
  readonly proxy: Omit<ProxyStats, 'rejectedBy'>;
  readonly cluster: {
    readonly nodeId: string;
    readonly role: NodeRole;
    readonly clustered: boolean;
    readonly transport: string;
    readonly publisher: { readonly id: string; readonly name: string | null } | null;
    readonly electionReason: string;
    readonly nodes: readonly StatusNode[];
    readonly mesh: { readonly accepted: number; readonly sent: number; readonly connections: number; readonly rejected: Readonly<Record<string, number>> } | null;
    readonly failClosed: boolean;
  } | null;
  readonly publish: {
    /** True when this node's publisher is publishing (it is the elected publisher with input). */
    readonly active: boolean;
    readonly publishes: number;
    readonly lastPublishAt: number | null;
    readonly lastReason: string | null;
    readonly introPoints: number;
    readonly lastError: { readonly code: string; readonly message: string; readonly atMs: number } | null;
    readonly descriptors: readonly {
      readonly descriptor: 'first' | 'second';
      readonly periodNum: number;
      readonly revisionCounter: string;
      readonly accepted: number;
      readonly total: number;
      readonly hsdirs: readonly { readonly fp: string; readonly result: string; readonly reason: string | null; readonly atMs: number }[];
    }[];
    readonly verification: { readonly atMs: number; readonly verified: number; readonly total: number } | null;
    /** On a node that does not publish: the publisher's report from the mesh (absent in older documents). */
    readonly publisherReport?: PublisherReport | null;
  } | null;
  readonly timePeriod: PeriodInfo | null;
}

function descriptorJson(d: DescriptorState): NonNullable<StatusDocument['publish']>['descriptors'][number] {
  return {
    descriptor: d.descriptor,
    periodNum: d.periodNum,
    revisionCounter: d.revisionCounter,
    accepted: d.accepted,
    total: d.total,
    hsdirs: d.hsdirs.map((h) => ({ fp: h.fp, result: h.result, reason: h.reason ?? null, atMs: h.atMs })),
  };
}

/** The `/status` form of a publish summary received over the mesh. */
export function publisherReportJson(r: MeshPublishReport): PublisherReport {
  const s = r.summary;
  const descriptors = (['first', 'second'] as const).flatMap((descriptor, i) => {
    const rev = s.revisions[i] ?? null;
    const acc = s.accepted[i] ?? null;
    return rev === null && acc === null ? [] : [{ descriptor, revisionCounter: rev, accepted: acc === null ? null : acc[0], total: acc === null ? null : acc[1] }];
  });
  return { id: r.nodeId, name: r.name, atMs: s.at, nodes: s.nodes, descriptors };
}

function trafficOf(t: NodeTraffic | undefined): NodeTraffic | null {
  return t === undefined ? null : pickTraffic(t);
}

/** Build the `/status` document. */
export function buildStatus(snap: AdminSnapshot, view: PublishView): StatusDocument {
  const n = snap.node;
  const c = n.cluster;
  let cluster: StatusDocument['cluster'] = null;
  if (c !== undefined) {
    const self: StatusNode = {
      id: c.nodeId,
      name: c.name,
      self: true,
      role: c.role,
      state: 'self',
      healthy: c.selfHealthy,
      reasons: n.health.reasons,
      introPoints: c.introPoints,
      lastSeenAgoMs: 0,
      addr: c.advertise ?? null,
      priority: null,
      traffic: trafficOf(n.proxy),
    };
    const peers: StatusNode[] = c.peers.map((p) => ({
      id: p.id,
      name: p.name,
      self: false,
      role: peerRole(c, p.id),
      state: p.state,
      healthy: p.healthy,
      reasons: p.reasons,
      introPoints: p.introPoints,
      lastSeenAgoMs: p.lastSeenAgoMs ?? null,
      addr: p.addr,
      priority: p.priority,
      traffic: trafficOf(p.traffic),
    }));
    const nodes = [self, ...peers].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    const pub = c.publisher === undefined ? null : { id: c.publisher, name: nodes.find((x) => x.id === c.publisher)?.name ?? null };
    cluster = {
      nodeId: c.nodeId,
      role: c.role,
      clustered: c.clustered,
      transport: c.transport,
      publisher: pub,
      electionReason: c.electionReason,
      nodes,
      mesh: c.mesh === undefined ? null : { accepted: c.mesh.accepted, sent: c.mesh.sent, connections: c.mesh.connections, rejected: { ...c.mesh.rejected } },
      failClosed: c.failClosed.active,
    };
  }
  const p = c?.publish;
  const lv = p?.lastVerification;
  const publish: StatusDocument['publish'] =
    p === undefined
      ? null
      : {
          active: p.active,
          publishes: p.publishes,
          lastPublishAt: p.lastPublish?.atMs ?? null,
          lastReason: p.lastPublish?.reason ?? null,
          introPoints: p.introPoints,
          lastError: p.lastError === undefined ? null : { code: p.lastError.code, message: p.lastError.message, atMs: p.lastError.atMs },
          descriptors: view.descriptors().map(descriptorJson),
          verification: lv === undefined ? null : { atMs: lv.atMs, verified: lv.hsdirs.filter((h) => h.result === 'verified').length, total: lv.hsdirs.length },
          publisherReport: c?.lastPublish === undefined ? null : publisherReportJson(c.lastPublish),
        };
  const t = n.health.target;
  return {
    version: STATUS_VERSION,
    generatedAt: snap.atMs,
    node: { id: c?.nodeId ?? null, name: n.name, masterAddress: n.masterAddress, targetAddress: n.targetAddress, state: n.state },
    tor: { state: n.tor.state, pid: n.tor.pid ?? null, restarts: n.tor.restarts, bootstrap: n.health.tor.progress, warning: n.health.tor.warning ?? null },
    health: {
      healthy: n.health.healthy,
      reasons: n.health.reasons,
      target: { healthy: t.healthy, latencyMs: t.latencyMs ?? null, lastCheckAt: t.lastCheckAt ?? null, consecutiveFailures: t.consecutiveFailures, lastError: t.lastError ?? null },
      introPoints: n.health.intro.introPoints,
      descriptor: n.health.intro.descriptor,
    },
    proxy: {
      open: n.proxy.open,
      accepted: n.proxy.accepted,
      rejected: n.proxy.rejected,
      bytesIn: n.proxy.bytesIn,
      bytesOut: n.proxy.bytesOut,
      requests: n.proxy.requests,
      byStatus: { ...n.proxy.byStatus },
    },
    cluster,
    publish,
    timePeriod: snap.period === undefined ? null : { ...snap.period },
  };
}

/** Why `/healthz` is not ok (empty = ok). */
export function healthzReasons(snap: AdminSnapshot): string[] {
  const n = snap.node;
  if (n.state !== 'running') return [`node ${n.state}`];
  return n.health.healthy ? [] : [...n.health.reasons];
}
