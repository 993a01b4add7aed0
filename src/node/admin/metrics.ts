/**
 * Prometheus metrics of one node (connections, bytes, requests by status, target
 * probe durations, publish results per HSDir, mesh messages accepted/rejected by reason,
 * election changes, the build and prom-client's default process/runtime metrics), exposed by
 * the admin API at `/metrics`. docs/admin-api.md lists them; names follow Prometheus'
 * conventions (base units as the suffix — `_seconds`, `_bytes`, `_ratio` —, counters end in
 * `_total`, no `_percent`), which test/unit/metrics-lint.test.ts checks on the exposition.
 *
 * Every {@link NodeMetrics} has its own prom-client `Registry` (never the global default
 * registry: tests run several nodes in one process). The numbers come from the node's own
 * counters ({@link AdminSnapshot}: ProxyStats, NodeHealthState, ClusterStatus, MeshStats,
 * PublisherStatus), except the probe histogram, which the health checker feeds one probe at a
 * time ({@link NodeMetrics.observeProbe}). Cardinality is bounded: per-node series only for the
 * cluster's current nodes (at most {@link MAX_NODE_SERIES}), per-HSDir series only for the
 * current responsible set ({@link PublishView}), both cleared and rebuilt on every update.
 *
 * Cumulative values are exported as counters whose value is *copied* from their source at
 * each scrape ({@link CopiedCounter}), not incremented by this module. That is what
 * Prometheus' guide to writing exporters asks for values that are already counted elsewhere
 * (a collector creates the metric fresh on every scrape — Go's `MustNewConstMetric` — with
 * the source's type), and it holds for the per-node traffic too
 * (`torbalance_cluster_node_requests_total`, `…_received_bytes_total`, `…_sent_bytes_total`):
 * a peer's numbers are its own proxy counters as its latest mesh heartbeat reported them. They
 * only go up, except when that peer restarts and starts again from 0 — exactly a counter reset,
 * which `rate()`/`increase()` detect and handle. A gauge would be wrong for them: `rate()` on
 * a gauge is meaningless and Prometheus documents that `rate` is only for counters. The same
 * goes for a component of this node that restarts its counters (a new publisher): the series
 * shows a reset rather than being kept monotonic by hand.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { torbalanceVersion } from '../../adapters/system/version.js';
import type { TrafficSummary } from '../../core/mesh/index.js';
import { REJECT_REASONS } from '../proxy/index.js';
import type { PublishView } from '../publisher/view.js';
import type { PublishRecord } from '../publisher/publisher.js';
import type { AdminSnapshot } from './snapshot.js';

type Labels = Record<string, string>;

/** Most nodes with per-node series (self included). */
export const MAX_NODE_SERIES = 64;

/**
 * Upper bounds (seconds) of the target-probe histogram: a probe dials the target through tor
 * (an onion target: a rendezvous, typically 0.3–5 s; a clearnet target: an exit circuit, well
 * under a second) and ends at `health.timeout_ms` (default 10 s).
 */
export const PROBE_BUCKETS_SECONDS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Buckets of the publish-round, HSPOST and HSDir-answer histograms (seconds): a round's target is ≤ 0.3 s. */
export const PUBLISH_BUCKETS_SECONDS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30];

/**
 * A prom-client Counter whose values are copied from cumulative sources at each scrape (see
 * the module doc): {@link set} records the latest value per label set, {@link clear} forgets
 * series that no longer exist (a node that left), and the counter's `collect` hook exposes
 * exactly the recorded values.
 */
class CopiedCounter {
  readonly #values = new Map<string, { readonly labels: Labels; readonly value: number }>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[] = []) {
    const values = this.#values;
    new Counter({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      collect(this: Counter) {
        this.reset();
        for (const { labels, value } of values.values()) this.inc(labels, value);
      },
    });
  }

  /** Record the cumulative value `total` for `labels` (ignored unless a finite number ≥ 0). */
  set(total: number, labels: Labels = {}): void {
    if (!Number.isFinite(total) || total < 0) return;
    this.#values.set(JSON.stringify(Object.entries(labels).sort()), { labels, value: total });
  }

  /** Forget every series. */
  clear(): void {
    this.#values.clear();
  }
}

function gauge(registry: Registry, name: string, help: string, labelNames: readonly string[] = []): Gauge {
  return new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] });
}

function makeGauges(r: Registry) {
  return {
    up: gauge(r, 'torbalance_node_running', 'Node state is running (1) or not (0)'),
    healthy: gauge(r, 'torbalance_node_healthy', 'Node healthy: target up, tor bootstrapped, intro points present'),
    info: gauge(r, 'torbalance_node_info', 'Static node facts (value 1)', ['name', 'node_id', 'master']),
    open: gauge(r, 'torbalance_proxy_connections_open', 'Visitor connections open now'),
    targetHealthy: gauge(r, 'torbalance_target_healthy', 'Target health-check result (1 healthy)'),
    probeFailures: gauge(r, 'torbalance_target_probe_consecutive_failures', 'Consecutive failed target probes'),
    bootstrap: gauge(r, 'torbalance_tor_bootstrap_ratio', 'tor bootstrap progress (0 to 1, 1 = done)'),
    intro: gauge(r, 'torbalance_intro_points', "Intro points of this node's own descriptor"),
    clusterIntro: gauge(r, 'torbalance_cluster_node_intro_points', 'Intro points per cluster node as this node sees them', ['node', 'node_id']),
    clusterHealthy: gauge(r, 'torbalance_cluster_node_healthy', 'Health per cluster node as this node sees it', ['node', 'node_id']),
    nodeOpen: gauge(r, 'torbalance_cluster_node_connections_open', 'Visitor connections open per cluster node (from heartbeats)', ['node', 'node_id']),
    clusterNodes: gauge(r, 'torbalance_cluster_nodes', 'Cluster nodes by mesh state (self counted as alive)', ['state']),
    isPublisher: gauge(r, 'torbalance_is_publisher', 'This node is the elected publisher (1) or not (0)'),
    clustered: gauge(r, 'torbalance_clustered', 'Live peers exist: descriptors are published by the cluster (1) or by tor itself (0)'),
    revision: gauge(r, 'torbalance_descriptor_revision', 'Revision counter of the last published descriptor', ['descriptor']),
    hsdirLast: gauge(r, 'torbalance_publish_hsdir_last_result', 'Last upload result per HSDir of the current responsible set (value 1)', ['descriptor', 'hsdir', 'result']),
    hsdirAccepted: gauge(r, 'torbalance_publish_hsdirs_accepted', 'HSDirs of the responsible set whose last upload was accepted', ['descriptor']),
    hsdirTotal: gauge(r, 'torbalance_publish_hsdirs_responsible', 'HSDirs responsible for the descriptor', ['descriptor']),
    meshConnections: gauge(r, 'torbalance_mesh_connections', 'Open mesh connections'),
    periodSeconds: gauge(r, 'torbalance_time_period_remaining_seconds', 'Seconds to the next hidden-service time period'),
    buildInfo: gauge(r, 'torbalance_build_info', 'The torbalance version of this node (value 1)', ['version']),
    failClosed: gauge(r, 'torbalance_fail_closed_active', 'The master onion service is paused on this node because the target is down (1)'),
  };
}

function makeCounters(r: Registry) {
  return {
    accepted: new CopiedCounter(r, 'torbalance_proxy_connections_total', 'Visitor connections accepted'),
    rejected: new CopiedCounter(r, 'torbalance_proxy_connections_rejected_total', 'Visitor connections rejected, by reason', ['reason']),
    bytesIn: new CopiedCounter(r, 'torbalance_proxy_visitor_received_bytes_total', 'Bytes received from visitors'),
    bytesOut: new CopiedCounter(r, 'torbalance_proxy_visitor_sent_bytes_total', 'Bytes sent to visitors'),
    requests: new CopiedCounter(r, 'torbalance_http_requests_total', 'HTTP requests answered, by status class', ['status_class']),
    torRestarts: new CopiedCounter(r, 'torbalance_tor_restarts_total', 'tor restarts by the supervisor'),
    publishes: new CopiedCounter(r, 'torbalance_publishes_total', 'Publish rounds run by this node'),
    uploads: new CopiedCounter(r, 'torbalance_publish_uploads_total', 'Descriptor uploads to HSDirs, by descriptor and result', ['descriptor', 'result']),
    meshAccepted: new CopiedCounter(r, 'torbalance_mesh_messages_accepted_total', 'Mesh messages accepted, by type', ['type']),
    meshRejected: new CopiedCounter(r, 'torbalance_mesh_messages_rejected_total', 'Mesh messages rejected, by reason', ['reason']),
    meshSent: new CopiedCounter(r, 'torbalance_mesh_messages_sent_total', 'Mesh messages sent'),
    elections: new CopiedCounter(r, 'torbalance_election_changes_total', 'Changes of the elected publisher seen by this node'),
    failClosedPauses: new CopiedCounter(r, 'torbalance_fail_closed_pauses_total', 'Times the master onion service was paused on this node because the target was down'),
    nodeRequests: new CopiedCounter(r, 'torbalance_cluster_node_requests_total', 'HTTP requests answered per cluster node (self from its proxy, peers from their heartbeats)', ['node', 'node_id']),
    nodeBytesIn: new CopiedCounter(r, 'torbalance_cluster_node_received_bytes_total', 'Bytes received from visitors per cluster node (self from its proxy, peers from their heartbeats)', ['node', 'node_id']),
    nodeBytesOut: new CopiedCounter(r, 'torbalance_cluster_node_sent_bytes_total', 'Bytes sent to visitors per cluster node (self from its proxy, peers from their heartbeats)', ['node', 'node_id']),
  };
}

/** `2xx`, `5xx`, … of an HTTP status code string. */
export function statusClass(code: string): string {
  return /^[1-5]\d\d$/.test(code) ? `${code[0]!}xx` : 'other';
}

/** The metrics of one node; see the module doc. */
export class NodeMetrics {
  /** This node's registry (scrape with `registry.metrics()`). */
  readonly registry = new Registry();
  readonly #g: ReturnType<typeof makeGauges>;
  readonly #c: ReturnType<typeof makeCounters>;
  readonly #probe: Histogram;
  readonly #round: Histogram;
  readonly #hspost: Histogram;
  readonly #ack: Histogram;
  #lastPublisher: string | undefined;
  #publisherSeen = false;
  #electionChanges = 0;

  constructor() {
    const r = this.registry;
    this.#g = makeGauges(r);
    this.#c = makeCounters(r);
    this.#probe = new Histogram({
      name: 'torbalance_target_probe_duration_seconds',
      help: 'Duration of target health probes through tor, by result (success, failure)',
      labelNames: ['result'],
      buckets: [...PROBE_BUCKETS_SECONDS],
      registers: [r],
    });
    this.#round = new Histogram({
      name: 'torbalance_publish_round_duration_seconds',
      help: 'Duration of a publish round (build, HSPOST and HSDir answers for every descriptor posted)',
      buckets: [...PUBLISH_BUCKETS_SECONDS],
      registers: [r],
    });
    this.#hspost = new Histogram({
      name: 'torbalance_hspost_duration_seconds',
      help: "Time from sending HSPOST to tor's reply, per descriptor (all its variants)",
      labelNames: ['descriptor'],
      buckets: [...PUBLISH_BUCKETS_SECONDS],
      registers: [r],
    });
    this.#ack = new Histogram({
      name: 'torbalance_publish_hsdir_answer_duration_seconds',
      help: "Time from a round's start to an HSDir's answer, by result (uploaded, failed, timeout)",
      labelNames: ['result'],
      buckets: [...PUBLISH_BUCKETS_SECONDS],
      registers: [r],
    });
    this.#g.buildInfo.set({ version: torbalanceVersion() }, 1);
    collectDefaultMetrics({ register: r });
  }

  /** Record one finished target probe (the health checker calls this for every probe). */
  observeProbe(durationSeconds: number, ok: boolean): void {
    if (!Number.isFinite(durationSeconds) || durationSeconds < 0) return;
    this.#probe.observe({ result: ok ? 'success' : 'failure' }, durationSeconds);
  }

  /** Record one publish round (the cluster calls this for every round this node publishes). */
  observePublish(rec: PublishRecord): void {
    const sec = (ms: number): number | undefined => (Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined);
    const round = sec(rec.endMs - rec.atMs);
    if (round !== undefined) this.#round.observe(round);
    for (const d of rec.descriptors) {
      const post = sec(d.postMs);
      if (d.revisionCounter !== '' && post !== undefined) this.#hspost.observe({ descriptor: d.descriptor }, post);
    }
    for (const h of rec.hsdirs) {
      const ack = sec(h.ms);
      if (ack !== undefined) this.#ack.observe({ result: h.result }, ack);
    }
  }

  /** Prometheus text exposition content type of the registry. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Publisher changes seen so far. */
  get electionChanges(): number {
    return this.#electionChanges;
  }

  /** Bring every metric up to date with a snapshot (the PublishView must have observed it). */
  update(snap: AdminSnapshot, view: PublishView): void {
    const n = snap.node;
    const g = this.#g;
    const c = this.#c;
    g.up.set(n.state === 'running' ? 1 : 0);
    g.healthy.set(n.health.healthy ? 1 : 0);
    g.info.reset();
    g.info.set({ name: n.name, node_id: n.cluster?.nodeId ?? '', master: n.masterAddress }, 1);
    g.open.set(n.proxy.open);
    c.accepted.set(n.proxy.accepted);
    // Every reason has a series from the start (0 until it happens), so alerts on rate() see it.
    for (const reason of REJECT_REASONS) c.rejected.set(n.proxy.rejectedBy?.[reason] ?? 0, { reason });
    c.bytesIn.set(n.proxy.bytesIn);
    c.bytesOut.set(n.proxy.bytesOut);
    const classes = new Map<string, number>();
    for (const [code, v] of Object.entries(n.proxy.byStatus)) classes.set(statusClass(code), (classes.get(statusClass(code)) ?? 0) + v);
    for (const [k, v] of classes) c.requests.set(v, { status_class: k });

    const t = n.health.target;
    g.targetHealthy.set(t.healthy ? 1 : 0);
    g.probeFailures.set(t.consecutiveFailures);
    g.bootstrap.set(Math.min(100, Math.max(0, n.health.tor.progress)) / 100);
    c.torRestarts.set(n.tor.restarts);
    g.intro.set(n.cluster?.introPoints ?? n.health.intro.introPoints);

    const cl = n.cluster;
    g.clusterIntro.reset();
    g.clusterHealthy.reset();
    g.clusterNodes.reset();
    g.nodeOpen.reset();
    for (const m of [c.nodeRequests, c.nodeBytesIn, c.nodeBytesOut]) m.clear();
    if (cl !== undefined) {
      const traffic = (labels: Labels, t: TrafficSummary): void => {
        c.nodeRequests.set(t.requests, labels);
        c.nodeBytesIn.set(t.bytesIn, labels);
        c.nodeBytesOut.set(t.bytesOut, labels);
        g.nodeOpen.set(labels, t.open);
      };
      const self = { node: cl.name, node_id: cl.nodeId };
      g.clusterIntro.set(self, cl.introPoints);
      g.clusterHealthy.set(self, cl.selfHealthy ? 1 : 0);
      traffic(self, n.proxy);
      const states = new Map<string, number>([['alive', 1]]);
      let series = 1;
      for (const p of cl.peers) {
        states.set(p.state, (states.get(p.state) ?? 0) + 1);
        if (series >= MAX_NODE_SERIES) continue;
        series += 1;
        const labels = { node: p.name, node_id: p.id };
        g.clusterIntro.set(labels, p.introPoints);
        g.clusterHealthy.set(labels, p.healthy ? 1 : 0);
        if (p.traffic !== undefined) traffic(labels, p.traffic);
      }
      for (const [s, v] of states) g.clusterNodes.set({ state: s }, v);
      g.isPublisher.set(cl.role === 'publisher' ? 1 : 0);
      g.clustered.set(cl.clustered ? 1 : 0);
      g.failClosed.set(cl.failClosed.active ? 1 : 0);
      c.failClosedPauses.set(cl.failClosed.pauses);
      if (this.#publisherSeen && cl.publisher !== this.#lastPublisher) this.#electionChanges += 1;
      this.#publisherSeen = true;
      this.#lastPublisher = cl.publisher;
      c.elections.set(this.#electionChanges);
      const m = cl.mesh;
      if (m !== undefined) {
        for (const [type, v] of Object.entries(m.acceptedByType)) c.meshAccepted.set(v, { type });
        for (const [reason, v] of Object.entries(m.rejected)) c.meshRejected.set(v, { reason });
        c.meshSent.set(m.sent);
        g.meshConnections.set(m.connections);
      }
      if (cl.publish !== undefined) c.publishes.set(cl.publish.publishes);
    } else {
      g.isPublisher.set(0);
      g.clustered.set(0);
    }

    for (const [key, v] of view.uploads()) {
      const [descriptor, result] = key.split('|') as [string, string];
      c.uploads.set(v, { descriptor, result });
    }
    g.hsdirLast.reset();
    g.revision.reset();
    g.hsdirAccepted.reset();
    g.hsdirTotal.reset();
    for (const d of view.descriptors()) {
      const rev = Number(d.revisionCounter);
      if (d.revisionCounter !== '' && Number.isFinite(rev)) g.revision.set({ descriptor: d.descriptor }, rev);
      g.hsdirAccepted.set({ descriptor: d.descriptor }, d.accepted);
      g.hsdirTotal.set({ descriptor: d.descriptor }, d.total);
      for (const h of d.hsdirs) g.hsdirLast.set({ descriptor: d.descriptor, hsdir: h.fp, result: h.result }, 1);
    }
    if (snap.period !== undefined) g.periodSeconds.set(snap.period.secondsToNext);
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
