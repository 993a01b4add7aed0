/**
 * A visitor: GET / of an onion service every `everyMs` (or as soon as the previous visit ended,
 * if it took longer) over a fresh circuit each time (a new SOCKS isolation username), through
 * one long-lived client tor that is never NEWNYMed — so its cached descriptor is what crosses a
 * rotation or a period start. Used by test/integration/cluster.test.ts and bench/availability.ts.
 */
import { httpGetThroughTor } from '../../src/adapters/net/onion-http.js';

/** One visit. */
export interface Visit {
  /** Wall-clock ms when it started. */
  readonly at: number;
  readonly ms: number;
  readonly ok: boolean;
  readonly err?: string;
  /** Attempts made (1 + the retries it needed; see {@link VisitLoopOptions.retries}). */
  readonly tries: number;
}

/** Options of {@link visitLoop}. */
export interface VisitLoopOptions {
  readonly socksPort: number;
  /** `<56>.onion` */
  readonly host: string;
  readonly port: number;
  readonly tag: string;
  /** Keep visiting while this returns true. */
  readonly running: () => boolean;
  /** Default 2000. */
  readonly everyMs?: number;
  /** A visit slower than this fails. Default 30 000. */
  readonly timeoutMs?: number;
  /**
   * A failed attempt is retried at once, on fresh circuits, up to this many times; the visit
   * (its time covers every attempt) fails only if all fail. Default 0.
   */
  readonly retries?: number;
  /** Called with each visit as it ends. */
  readonly onVisit?: (v: Visit) => void;
}

/** Visit until `running()` is false; resolves with every visit. */
export async function visitLoop(o: VisitLoopOptions): Promise<Visit[]> {
  const visits: Visit[] = [];
  const every = o.everyMs ?? 2000;
  while (o.running()) {
    const at = Date.now();
    let v: Visit | undefined;
    for (let tries = 1; v === undefined; tries++) {
      const last = tries > (o.retries ?? 0);
      try {
        const r = await httpGetThroughTor({ host: '127.0.0.1', port: o.socksPort, isolation: `${o.tag}-${at}-${tries}` }, { host: o.host, port: o.port, path: '/' }, { timeoutMs: o.timeoutMs ?? 30_000 });
        if (r.status === 200) v = { at, ms: Date.now() - at, ok: true, tries };
        else if (last) v = { at, ms: Date.now() - at, ok: false, err: `status ${r.status}`, tries };
      } catch (e) {
        if (last) v = { at, ms: Date.now() - at, ok: false, err: e instanceof Error ? e.message : String(e), tries };
      }
    }
    visits.push(v);
    o.onVisit?.(v);
    await new Promise((r) => setTimeout(r, Math.max(0, every - (Date.now() - at))));
  }
  return visits;
}

/** What a run of visits amounted to. */
export interface VisitSummary {
  readonly visits: number;
  readonly failed: number;
  /** From the start of the first failed visit of a run of failures to the start of the next good one. */
  readonly longestOutageMs: number;
  readonly slowestMs: number;
  readonly medianMs: number;
}

/** Summarize the visits that started in [fromMs, toMs). */
export function summarizeVisits(all: readonly Visit[], fromMs = -Infinity, toMs = Infinity): VisitSummary {
  const vs = all.filter((v) => v.at >= fromMs && v.at < toMs);
  let outage = 0;
  let since: number | undefined;
  for (const v of vs) {
    if (!v.ok) since ??= v.at;
    else if (since !== undefined) {
      outage = Math.max(outage, v.at - since);
      since = undefined;
    }
  }
  if (since !== undefined) outage = Math.max(outage, (vs.at(-1)?.at ?? since) + (vs.at(-1)?.ms ?? 0) - since);
  const ms = vs.map((v) => v.ms).sort((a, b) => a - b);
  return { visits: vs.length, failed: vs.filter((v) => !v.ok).length, longestOutageMs: outage, slowestMs: ms.at(-1) ?? 0, medianMs: ms[Math.floor(ms.length / 2)] ?? 0 };
}

/** One line for a summary. */
export function formatVisits(name: string, s: VisitSummary): string {
  const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  return `${name}: ${s.visits - s.failed}/${s.visits} ok, ${s.failed} failed, longest outage ${sec(s.longestOutageMs)}, slowest ${sec(s.slowestMs)}, median ${sec(s.medianMs)}`;
}
