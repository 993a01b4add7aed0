/**
 * Per-HSDir outcome of one HSPOST (tor-facts §1.2; tor `dirclient.c:
 * handle_response_upload_hsdesc`, `hs_control.c`):
 *
 * - `650 HS_DESC UPLOADED <addr> UNKNOWN <$FP~nick>` on HTTP 200: **no descriptor id**;
 * - `650 HS_DESC FAILED <addr> NO_AUTH <$FP~nick> <blindedB64> REASON=UPLOAD_REJECTED` (HTTP
 *   400: malformed, or revision counter not higher than the HSDir's) or `REASON=UNEXPECTED`;
 * - a connection or circuit failure produces **no event at all**, hence the timeout.
 *
 * Because UPLOADED names no descriptor, only ONE round may be open at a time: the publisher
 * posts its two descriptors one after the other and waits for each round to finish (or time
 * out) before the next HSPOST. Events are credited to the open round if they name the
 * round's address and an HSDir still pending in it; a FAILED whose blinded key differs from
 * the round's is ignored, and so is a FAILED with a reason only fetches produce (NOT_FOUND,
 * BAD_DESC, … from an HSFETCH verification or tor's own client). Residual ambiguity: a late UPLOADED for an HSDir that timed out in
 * the previous round and is also in the current round's set is credited to the current one
 * (harmless: the next refresh re-posts anyway).
 */
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { BugError } from '../../core/errors.js';
import type { HsDescEvent } from '../../core/torctl/events.js';

/** FAILED reasons that only fetches produce (tor `hs_client.c`, `hs_control.c`); uploads give UPLOAD_REJECTED / UNEXPECTED. */
const FETCH_ONLY_REASONS: ReadonlySet<string> = new Set(['NOT_FOUND', 'QUERY_REJECTED', 'BAD_DESC', 'QUERY_NO_HSDIR', 'QUERY_RATE_LIMITED']);

/** The outcome for one HSDir. */
export interface HsdirOutcome {
  /** 40 upper-case hex digits. */
  readonly fp: string;
  readonly result: 'uploaded' | 'failed' | 'timeout';
  /** REASON= of a FAILED event (UPLOAD_REJECTED, UNEXPECTED, …). */
  readonly reason?: string;
  /** Milliseconds from the round's start to the answer (timeouts: the timeout). */
  readonly ms: number;
}

/** An open round. */
export interface UploadRound {
  /** Resolves when every HSDir answered or the timeout fired; never rejects. */
  readonly done: Promise<readonly HsdirOutcome[]>;
  /** Finish now; unanswered HSDirs count as timeouts. */
  cancel(): void;
}

interface OpenRound {
  readonly pending: Set<string>;
  readonly outcomes: HsdirOutcome[];
  readonly order: readonly string[];
  readonly startedMs: number;
  readonly blindedKey: string | undefined;
  readonly resolve: (o: readonly HsdirOutcome[]) => void;
  timer: TimerHandle | undefined;
}

/** Tracks HS_DESC UPLOADED/FAILED for one onion address, one round at a time. */
export class UploadTracker {
  readonly #timers: Timers;
  readonly #address: string;
  #open: OpenRound | undefined;

  /** `address`: the 56-char label (no `.onion`) the HSPOST used as HSADDRESS. */
  constructor(o: { readonly timers: Timers; readonly address: string }) {
    this.#timers = o.timers;
    this.#address = o.address.toLowerCase().replace(/\.onion$/, '');
  }

  /** True while a round is open. */
  get busy(): boolean {
    return this.#open !== undefined;
  }

  /**
   * Open a round for `hsdirs` (upper-case fingerprints) that closes after `timeoutMs`.
   * `blindedKey` (base64 without padding, as in events) filters FAILED events.
   * @throws BugError if a round is already open.
   */
  begin(hsdirs: readonly string[], timeoutMs: number, blindedKey?: string): UploadRound {
    if (this.#open !== undefined) throw new BugError('an upload round is already open');
    const order = [...new Set(hsdirs.map((h) => h.replace(/^\$/, '').toUpperCase()))];
    let resolve!: (o: readonly HsdirOutcome[]) => void;
    const done = new Promise<readonly HsdirOutcome[]>((r) => {
      resolve = r;
    });
    const round: OpenRound = {
      pending: new Set(order),
      outcomes: [],
      order,
      startedMs: this.#timers.now(),
      blindedKey,
      resolve,
      timer: undefined,
    };
    this.#open = round;
    if (order.length === 0) {
      this.#finish(round);
    } else {
      round.timer = this.#timers.setTimeout(() => {
        round.timer = undefined;
        this.#finish(round);
      }, timeoutMs);
    }
    return {
      done,
      cancel: () => {
        this.#finish(round);
      },
    };
  }

  /** Close the open round, if any (its unanswered HSDirs count as timeouts). */
  cancelOpen(): void {
    if (this.#open !== undefined) this.#finish(this.#open);
  }

  /** Feed a parsed HS_DESC event (any action; irrelevant ones are ignored). */
  handleEvent(ev: HsDescEvent): void {
    const round = this.#open;
    if (round === undefined) return;
    if (ev.action !== 'UPLOADED' && ev.action !== 'FAILED') return;
    if (ev.address !== this.#address || ev.hsDir === undefined) return;
    const fp = ev.hsDir.fingerprint;
    if (!round.pending.has(fp)) return;
    // Fetch-only reasons (our own HSFETCH verification, tor's client fetches) are no upload result.
    if (ev.action === 'FAILED' && ev.reason !== undefined && FETCH_ONLY_REASONS.has(ev.reason)) return;
    if (ev.action === 'FAILED' && round.blindedKey !== undefined && ev.descriptorId !== undefined && ev.descriptorId !== round.blindedKey) return;
    round.pending.delete(fp);
    const ms = this.#timers.now() - round.startedMs;
    round.outcomes.push(ev.action === 'UPLOADED' ? { fp, result: 'uploaded', ms } : { fp, result: 'failed', reason: ev.reason ?? 'UNKNOWN', ms });
    if (round.pending.size === 0) this.#finish(round);
  }

  #finish(round: OpenRound): void {
    if (this.#open !== round) return;
    this.#open = undefined;
    if (round.timer !== undefined) this.#timers.clearTimeout(round.timer);
    const ms = this.#timers.now() - round.startedMs;
    const byFp = new Map(round.outcomes.map((o) => [o.fp, o]));
    round.resolve(round.order.map((fp) => byFp.get(fp) ?? { fp, result: 'timeout', ms }));
  }
}
