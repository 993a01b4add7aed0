/**
 * What the publisher's records add up to across rounds ({@link PublishView}): per descriptor
 * (first, second) the last result of each HSDir of the CURRENT responsible set (bounded: HSDirs
 * that left the set are dropped), the upload counts by result and the latest publish events.
 * The admin API (status, metrics, dashboard history) and the cluster's mesh publish summary
 * both read it; it is fed {@link PublishRecord}s only, so it depends on nothing but the
 * publisher's record type.
 */
import type { PublishRecord } from './publisher.js';

/** Result of one HSDir upload. */
export type UploadResult = 'uploaded' | 'failed' | 'timeout';

/** Last known result of one HSDir of the responsible set. */
export interface HsdirState {
  readonly fp: string;
  readonly result: UploadResult;
  readonly reason?: string | undefined;
  readonly atMs: number;
}

/** Per descriptor (first/second): revision, period and the responsible HSDirs' last results. */
export interface DescriptorState {
  readonly descriptor: 'first' | 'second';
  readonly periodNum: number;
  readonly revisionCounter: string;
  readonly hsdirs: readonly HsdirState[];
  readonly accepted: number;
  readonly total: number;
}

/** A publish round, as the dashboard shows it. */
export interface PublishEvent {
  readonly atMs: number;
  readonly reason: string;
  readonly introPoints: number;
  readonly nodes: number;
  readonly uploaded: number;
  readonly failed: number;
}

/** Most publish events kept. */
export const MAX_PUBLISH_EVENTS = 100;

function sameRecord(a: PublishRecord | undefined, b: PublishRecord | undefined): boolean {
  return a !== undefined && b !== undefined && a.atMs === b.atMs && a.endMs === b.endMs && a.reason === b.reason;
}

/** Follows the publisher's records across snapshots; see the module doc. */
export class PublishView {
  readonly #desc = new Map<'first' | 'second', { periodNum: number; revisionCounter: string; responsible: Set<string>; results: Map<string, HsdirState> }>();
  readonly #uploads = new Map<string, number>();
  readonly #events: PublishEvent[] = [];
  #last: PublishRecord | undefined;
  #records = 0;

  /** Take one publish record into account (idempotent for the same record). */
  observeRecord(rec: PublishRecord): void {
    if (sameRecord(rec, this.#last)) return;
    this.#last = rec;
    this.#records += 1;
    const full = !rec.reason.split(',').every((r) => r === 'retry' || r === 'verify');
    for (const d of rec.descriptors) {
      let s = this.#desc.get(d.descriptor);
      if (s === undefined || s.periodNum !== d.periodNum || full) {
        const prev = s;
        s = { periodNum: d.periodNum, revisionCounter: d.revisionCounter, responsible: new Set(d.servers), results: new Map() };
        if (prev !== undefined && prev.periodNum === d.periodNum) {
          for (const [fp, r] of prev.results) if (s.responsible.has(fp)) s.results.set(fp, r);
        }
        this.#desc.set(d.descriptor, s);
      }
      if (d.revisionCounter !== '') s.revisionCounter = d.revisionCounter;
    }
    let uploaded = 0;
    let failed = 0;
    for (const h of rec.hsdirs) {
      const key = `${h.descriptor}|${h.result}`;
      this.#uploads.set(key, (this.#uploads.get(key) ?? 0) + 1);
      if (h.result === 'uploaded') uploaded++;
      else failed++;
      const s = this.#desc.get(h.descriptor);
      if (s?.responsible.has(h.fp) === true) s.results.set(h.fp, { fp: h.fp, result: h.result, reason: h.reason, atMs: rec.endMs });
    }
    this.#events.push({ atMs: rec.atMs, reason: rec.reason, introPoints: rec.introPoints, nodes: Object.keys(rec.perNode).length, uploaded, failed });
    if (this.#events.length > MAX_PUBLISH_EVENTS) this.#events.splice(0, this.#events.length - MAX_PUBLISH_EVENTS);
  }

  /** Both descriptors' state (first, then second), if this node has published. */
  descriptors(): DescriptorState[] {
    const out: DescriptorState[] = [];
    for (const k of ['first', 'second'] as const) {
      const s = this.#desc.get(k);
      if (s === undefined) continue;
      const hsdirs = [...s.responsible].map((fp) => s.results.get(fp)).filter((x): x is HsdirState => x !== undefined);
      out.push({
        descriptor: k,
        periodNum: s.periodNum,
        revisionCounter: s.revisionCounter,
        hsdirs,
        accepted: hsdirs.filter((h) => h.result === 'uploaded').length,
        total: s.responsible.size,
      });
    }
    return out;
  }

  /** Uploads counted so far, by `descriptor|result`. */
  uploads(): ReadonlyMap<string, number> {
    return this.#uploads;
  }

  /** The newest publish record observed. */
  get lastRecord(): PublishRecord | undefined {
    return this.#last;
  }

  /** Publish rounds seen. */
  get records(): number {
    return this.#records;
  }

  /** The latest publish events (oldest first, at most {@link MAX_PUBLISH_EVENTS}). */
  events(): readonly PublishEvent[] {
    return this.#events;
  }
}
