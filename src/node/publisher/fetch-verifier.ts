/**
 * What the HSDirs actually serve: one `HSFETCH <master> SERVER=<fp>…` round at a time and
 * its per-HSDir outcome (tor-facts §1.2, §1.3; tor `hs_client.c: client_dir_fetch_200,
 * client_dir_fetch_404, client_dir_fetch_400, client_dir_fetch_unexpected`,
 * `hs_cache.c: cache_store_as_client`).
 *
 * Event order per HSDir as tor emits them for a fetch:
 * - HTTP 200 that decodes: `HS_DESC RECEIVED <addr> NO_AUTH <$FP~nick> <blindedB64>`, then
 *   `650+HS_DESC_CONTENT <addr> <blindedB64> <$FP~nick>` with the descriptor. tor's client
 *   cache keeps a cached descriptor with a higher revision counter but still reports the
 *   fetched one as RECEIVED with its body, so an OLDER descriptor on an HSDir is visible here;
 * - 404: `HS_DESC FAILED … REASON=NOT_FOUND`, then an empty HS_DESC_CONTENT;
 * - 400 / other / undecodable: FAILED with QUERY_REJECTED / UNEXPECTED / BAD_DESC, then an
 *   empty HS_DESC_CONTENT;
 * - connection or circuit failure: possibly nothing, hence the timeout.
 *
 * HSFETCH always asks for the client-current period's blinded key (tor-facts §1.3), and tor
 * emits these events for ANY fetch of the address (also tor's own client fetches), so events
 * are credited only while a round is open, only for its address, blinded key and HSDirs
 * still pending. The served descriptor is decoded with our core ({@link decodeDescriptor},
 * period pinned) and its revision counter compared with the one of our last post that HSDir
 * accepted (retries give single HSDirs higher counters, so this is per HSDir): lower →
 * `stale`, equal or higher (another publisher's, later) → `verified`.
 */
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { BugError, DecodeError, TorbalanceError } from '../../core/errors.js';
import { decodeDescriptor } from '../../core/hsdesc/descriptor.js';
import type { HsDescContentEvent, HsDescEvent } from '../../core/torctl/events.js';

/** One HSDir's verification result. */
export type VerifyResult = 'verified' | 'stale' | 'not-found' | 'error';

/** The outcome for one HSDir. */
export interface HsdirVerification {
  /** 40 upper-case hex digits. */
  readonly fp: string;
  readonly result: VerifyResult;
  /** Wall-clock ms of the answer (timeouts: the end of the round). */
  readonly atMs: number;
  /** Milliseconds from HSFETCH to the answer. */
  readonly ms: number;
  /** Revision counter the HSDir served (decimal), when one was decoded. */
  readonly servedCounter?: string;
  /** FAILED reason (NOT_FOUND, BAD_DESC, …), `timeout`, `hsfetch` or a decode error code. */
  readonly reason?: string;
}

/** What one round checks. */
export interface VerifyRoundInput {
  /** Upper-case fingerprints. */
  readonly hsdirs: readonly string[];
  /** The client-current blinded key, base64 without padding (as in events). */
  readonly blindedKey: string;
  readonly periodNum: number;
  readonly periodLengthMinutes: number;
  /** Per HSDir (upper-case fp): the revision counter of our last post it accepted (UPLOADED). */
  readonly expected: ReadonlyMap<string, bigint>;
  readonly timeoutMs: number;
}

/** An open round. */
export interface VerifyRound {
  /** Resolves when every HSDir answered or the timeout fired; never rejects. */
  readonly done: Promise<readonly HsdirVerification[]>;
  /** Finish now: unanswered HSDirs get `error` with `reason`. */
  cancel(reason: string): void;
}

interface OpenRound {
  readonly input: VerifyRoundInput;
  readonly order: readonly string[];
  readonly pending: Set<string>;
  readonly outcomes: Map<string, HsdirVerification>;
  readonly startedMs: number;
  readonly resolve: (o: readonly HsdirVerification[]) => void;
  timer: TimerHandle | undefined;
}

/** Tracks HSFETCH results (HS_DESC RECEIVED/FAILED + HS_DESC_CONTENT) for one address. */
export class FetchVerifier {
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #address: string;
  readonly #identityPublicKey: Uint8Array;
  #open: OpenRound | undefined;

  /**
   * `address`: the 56-char label; `now`: wall clock in ms (certificate expiry checks and
   * result times); `identityPublicKey`: the master's public identity key.
   */
  constructor(o: { readonly timers: Timers; readonly now: () => number; readonly address: string; readonly identityPublicKey: Uint8Array }) {
    this.#timers = o.timers;
    this.#now = o.now;
    this.#address = o.address.toLowerCase().replace(/\.onion$/, '');
    this.#identityPublicKey = o.identityPublicKey.slice();
  }

  /** True while a round is open. */
  get busy(): boolean {
    return this.#open !== undefined;
  }

  /**
   * Open a round (call right before sending HSFETCH).
   * @throws BugError if a round is already open.
   */
  begin(input: VerifyRoundInput): VerifyRound {
    if (this.#open !== undefined) throw new BugError('a verification round is already open');
    const order = [...new Set(input.hsdirs.map((h) => h.replace(/^\$/, '').toUpperCase()))];
    let resolve!: (o: readonly HsdirVerification[]) => void;
    const done = new Promise<readonly HsdirVerification[]>((r) => {
      resolve = r;
    });
    const round: OpenRound = { input, order, pending: new Set(order), outcomes: new Map(), startedMs: this.#timers.now(), resolve, timer: undefined };
    this.#open = round;
    if (order.length === 0) this.#finish(round, 'timeout');
    else {
      round.timer = this.#timers.setTimeout(() => {
        round.timer = undefined;
        this.#finish(round, 'timeout');
      }, input.timeoutMs);
    }
    return {
      done,
      cancel: (reason) => {
        this.#finish(round, reason);
      },
    };
  }

  /** Close the open round, if any. */
  cancelOpen(reason = 'cancelled'): void {
    if (this.#open !== undefined) this.#finish(this.#open, reason);
  }

  /** Feed a parsed HS_DESC event (anything not of the open round is ignored). */
  handleHsDesc(ev: HsDescEvent): void {
    const round = this.#match(ev.address, ev.descriptorId, ev.hsDir?.fingerprint);
    if (round === undefined) return;
    const fp = ev.hsDir!.fingerprint;
    if (ev.action === 'FAILED') {
      // UPLOAD_REJECTED only comes from uploads (dirclient.c: handle_response_upload_hsdesc).
      if (ev.reason === 'UPLOAD_REJECTED') return;
      const reason = ev.reason ?? 'UNKNOWN';
      this.#settle(round, fp, reason === 'NOT_FOUND' ? { result: 'not-found', reason } : { result: 'error', reason });
    }
    // RECEIVED: the body follows in HS_DESC_CONTENT, which settles the HSDir.
  }

  /** Feed a parsed HS_DESC_CONTENT event (empty bodies follow a FAILED and are ignored). */
  handleContent(ev: HsDescContentEvent): void {
    const round = this.#match(ev.address, ev.descriptorId, ev.hsDir?.fingerprint);
    if (round === undefined || ev.descriptor === '') return;
    const fp = ev.hsDir!.fingerprint;
    const inp = round.input;
    let counter: bigint;
    try {
      counter = decodeDescriptor(ev.descriptor, {
        identityPublicKey: this.#identityPublicKey,
        periodNum: inp.periodNum,
        periodLengthMinutes: inp.periodLengthMinutes,
        nowSeconds: Math.floor(this.#now() / 1000),
      }).revisionCounter;
    } catch (e) {
      const code = e instanceof DecodeError || e instanceof TorbalanceError ? e.code : 'TB_ERR_PUBLISHER_INTERNAL';
      this.#settle(round, fp, { result: 'error', reason: code });
      return;
    }
    const expected = inp.expected.get(fp) ?? 0n;
    this.#settle(round, fp, { result: counter < expected ? 'stale' : 'verified', servedCounter: counter.toString() });
  }

  #match(address: string | undefined, descriptorId: string | undefined, fp: string | undefined): OpenRound | undefined {
    const round = this.#open;
    if (round === undefined || address !== this.#address || fp === undefined) return undefined;
    if (descriptorId !== round.input.blindedKey || !round.pending.has(fp)) return undefined;
    return round;
  }

  #settle(round: OpenRound, fp: string, r: { result: VerifyResult; reason?: string; servedCounter?: string }): void {
    round.pending.delete(fp);
    round.outcomes.set(fp, { fp, ...r, atMs: this.#now(), ms: this.#timers.now() - round.startedMs });
    if (round.pending.size === 0) this.#finish(round, 'timeout');
  }

  #finish(round: OpenRound, reason: string): void {
    if (this.#open !== round) return;
    this.#open = undefined;
    if (round.timer !== undefined) this.#timers.clearTimeout(round.timer);
    const ms = this.#timers.now() - round.startedMs;
    const atMs = this.#now();
    round.resolve(round.order.map((fp) => round.outcomes.get(fp) ?? { fp, result: 'error', reason, atMs, ms }));
  }
}
