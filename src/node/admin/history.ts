/**
 * A bounded history of the node and its cluster for the dashboard (`/history`): one sample
 * per interval (the admin service takes one every 5 s; 720 samples = one hour) in a ring
 * buffer, plus the latest publish events (from {@link PublishView}).
 *
 * A sample holds every cluster node's health, role, mesh state and intro points as this node
 * sees them, this node's own traffic counters, and every node's traffic (`traffic`: this
 * node's own, the peers' from their latest mesh heartbeat; cumulative: the dashboard plots
 * the differences per node). Bounded: at most {@link MAX_TRAFFIC_NODES} nodes per sample.
 */
import type { TrafficSummary } from '../../core/mesh/index.js';
import type { PublishEvent, PublishView } from '../publisher/view.js';
import { peerRole, pickTraffic, type AdminSnapshot } from './snapshot.js';

/** Default capacity: one hour at one sample per 5 s. */
export const DEFAULT_HISTORY_SAMPLES = 720;
/** Most nodes with traffic in one sample (self first). */
export const MAX_TRAFFIC_NODES = 64;

/** One node's traffic in a history sample (cumulative counters). */
export interface HistoryTraffic extends TrafficSummary {
  readonly id: string;
  readonly name: string;
}

/** One node in a history sample. */
export interface HistoryNode {
  readonly id: string;
  readonly name: string;
  readonly role: 'publisher' | 'member' | 'alone';
  readonly state: string;
  readonly healthy: boolean;
  readonly introPoints: number;
}

/** One history sample. */
export interface HistorySample {
  /** Wall-clock ms. */
  readonly t: number;
  readonly nodes: readonly HistoryNode[];
  /** This node's counters (cumulative). */
  readonly self: HistoryTraffic & {
    readonly healthy: boolean;
    readonly errors5xx: number;
  };
  /** Every node's traffic that is known (self first, then peers that sent theirs). */
  readonly traffic: readonly HistoryTraffic[];
  /** Publish rounds seen so far (cumulative). */
  readonly publishes: number;
  readonly publisher: string | null;
}

/** The `/history` document. */
export interface HistoryDocument {
  readonly version: number;
  readonly intervalMs: number;
  readonly samples: readonly HistorySample[];
  readonly publishEvents: readonly PublishEvent[];
}

/** Ring buffer of {@link HistorySample}s. */
export class History {
  readonly #cap: number;
  readonly #intervalMs: number;
  readonly #buf: HistorySample[] = [];
  #start = 0;

  constructor(capacity = DEFAULT_HISTORY_SAMPLES, intervalMs = 5000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('history capacity must be a positive integer');
    this.#cap = capacity;
    this.#intervalMs = intervalMs;
  }

  get length(): number {
    return this.#buf.length;
  }

  /** Add a sample built from a snapshot. */
  record(snap: AdminSnapshot, view: PublishView): HistorySample {
    const n = snap.node;
    const c = n.cluster;
    const nodes: HistoryNode[] = [];
    const selfId = c?.nodeId ?? n.name;
    nodes.push({ id: selfId, name: n.name, role: c?.role ?? 'alone', state: 'self', healthy: n.health.healthy, introPoints: c?.introPoints ?? n.health.intro.introPoints });
    if (c !== undefined) {
      for (const p of c.peers) nodes.push({ id: p.id, name: p.name, role: peerRole(c, p.id), state: p.state, healthy: p.healthy, introPoints: p.introPoints });
    }
    let errors5xx = 0;
    for (const [code, v] of Object.entries(n.proxy.byStatus)) if (code.startsWith('5')) errors5xx += v;
    const traffic: HistoryTraffic[] = [{ id: selfId, name: n.name, ...pickTraffic(n.proxy) }];
    for (const p of c?.peers ?? []) {
      if (traffic.length >= MAX_TRAFFIC_NODES) break;
      if (p.traffic !== undefined) traffic.push({ id: p.id, name: p.name, ...pickTraffic(p.traffic) });
    }
    const sample: HistorySample = {
      t: snap.atMs,
      nodes,
      self: { id: selfId, name: n.name, healthy: n.health.healthy, ...pickTraffic(n.proxy), errors5xx },
      traffic,
      publishes: Math.max(view.records, c?.publish?.publishes ?? 0),
      publisher: c?.publisher ?? null,
    };
    this.push(sample);
    return sample;
  }

  /** Add a sample (the oldest is dropped when full). */
  push(s: HistorySample): void {
    if (this.#buf.length < this.#cap) {
      this.#buf.push(s);
      return;
    }
    this.#buf[this.#start] = s;
    this.#start = (this.#start + 1) % this.#cap;
  }

  /** Samples, oldest first; only those after `sinceMs` when given. */
  samples(sinceMs?: number): HistorySample[] {
    const out = [...this.#buf.slice(this.#start), ...this.#buf.slice(0, this.#start)];
    return sinceMs === undefined ? out : out.filter((s) => s.t > sinceMs);
  }

  /** The `/history` document. */
  document(view: PublishView, sinceMs?: number): HistoryDocument {
    return { version: 1, intervalMs: this.#intervalMs, samples: this.samples(sinceMs), publishEvents: view.events() };
  }
}
