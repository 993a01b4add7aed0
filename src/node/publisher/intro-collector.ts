/**
 * Harvests the node's own intro points (tor-facts §1.4, §8 item 2; tor `control_getinfo.c`,
 * `hs_service.c: hs_service_lookup_current_desc, refresh_service_descriptor`).
 *
 * `GETINFO hs/service/desc/id/<master>` returns the node tor's `desc_current`, freshly
 * encoded; it is decrypted with the PUBLIC identity key only (the subcredential comes from
 * the identity key and the blinded key named by the descriptor's own signing-key
 * certificate, so no period arithmetic is needed). While tor has not refreshed it yet
 * (revision counter 0) or has none (`551 Not found in cache`) there is nothing to publish.
 * The intro-point list inside is rebuilt only when tor refreshes the descriptor (once all
 * intro circuits are established), so after a change we re-poll a few times.
 *
 * Re-poll triggers: every `pollMs`; `HS_DESC CREATED` for the master address (tor's 00:00
 * UTC rotation closes desc_current's intro circuits, §4); `CIRC` events of purpose
 * `HS_SERVICE_INTRO` for the master address (an intro circuit established or closed).
 * Listeners get the new state whenever the intro digest, the period or the pow-params (seed,
 * suggested effort, expiry: per-node placement publishes them) change, or the descriptor goes away.
 */
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { toBase64NoPad } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { decodeOwnServiceDescriptor } from '../../core/hsdesc/descriptor.js';
import { parseCirc, parseHsDesc } from '../../core/torctl/events.js';
import type { PublisherControl } from './control.js';
import { introDigest, introPointToWire, powParamsToWire, type IntroPointWire, type PowParamsWire } from '../../core/intro/wire.js';

/** The node's harvested intro points. */
export interface CollectedIntroPoints {
  readonly points: readonly IntroPointWire[];
  readonly digest: string;
  /** Wall-clock ms of the GETINFO that produced this set. */
  readonly fetchedAtMs: number;
  /** The node tor's own revision counter (decimal). */
  readonly revisionCounter: string;
  /** Blinded key (base64, no padding) of the desc_current they came from: names its period. */
  readonly blindedKey: string;
  /** The descriptor's pow-params (tor's PoW defenses on): the seed clients must solve for. */
  readonly pow?: PowParamsWire | undefined;
}

/** Options of {@link IntroCollector}. */
export interface IntroCollectorOptions {
  readonly control: Pick<PublisherControl, 'getInfo' | 'onEvent'>;
  /** The master address (with or without `.onion`). */
  readonly masterAddress: string;
  readonly identityPublicKey: Uint8Array;
  /** Wall clock, ms since the epoch (certificate expiry checks). */
  readonly now: () => number;
  readonly timers: Timers;
  readonly logger: Logger;
  /** Regular poll interval. */
  readonly pollMs: number;
  /** Follow-up polls after an event (ms after it). Default [500, 2000, 5000]. */
  readonly eventPollDelaysMs?: readonly number[];
}

/**
 * Decode a `GETINFO hs/service/desc/id/<addr>` value into wire intro points; undefined while
 * tor's revision counter is still 0. Throws DecodeError (TB_ERR_HSDESC_*) for a descriptor
 * that does not verify.
 */
export function introPointsFromServiceDescriptor(
  text: string,
  identityPublicKey: Uint8Array,
  nowSeconds: number,
): { points: IntroPointWire[]; revisionCounter: bigint; blindedKey: string; pow?: PowParamsWire } | undefined {
  const d = decodeOwnServiceDescriptor(text, identityPublicKey, nowSeconds);
  if (d.revisionCounter === 0n) return undefined;
  const pow = d.inner.powParams;
  return {
    points: d.introPoints.map(introPointToWire),
    revisionCounter: d.revisionCounter,
    blindedKey: toBase64NoPad(d.blindedPublicKey),
    ...(pow === undefined ? {} : { pow: powParamsToWire(pow) }),
  };
}

/** Polls the node tor's descriptor for its intro points; see the module doc. */
export class IntroCollector {
  /** Event types the collector needs subscribed. */
  static readonly EVENTS: readonly string[] = ['HS_DESC', 'CIRC'];

  readonly #o: IntroCollectorOptions;
  readonly #label: string;
  readonly #log: Logger;
  readonly #listeners = new Set<(c: CollectedIntroPoints | undefined) => void>();
  readonly #offs: (() => void)[] = [];
  readonly #eventTimers = new Set<TimerHandle>();
  #timer: TimerHandle | undefined;
  #current: CollectedIntroPoints | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #started = false;
  #lastError: string | undefined;

  constructor(o: IntroCollectorOptions) {
    this.#o = o;
    this.#label = decodeOnionAddress(o.masterAddress).label;
    this.#log = o.logger.child({ component: 'intro-collector' });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#offs.push(
      this.#o.control.onEvent('HS_DESC', (e) => {
        try {
          const ev = parseHsDesc(e);
          if (ev.action === 'CREATED' && ev.address === this.#label) this.#onEvent();
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err; // malformed event: ignore
        }
      }),
      this.#o.control.onEvent('CIRC', (e) => {
        try {
          const c = parseCirc(e);
          if (c.purpose === 'HS_SERVICE_INTRO' && c.rendQuery === this.#label && (c.status === 'BUILT' || c.status === 'CLOSED' || c.status === 'FAILED')) {
            this.#onEvent();
          }
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err; // malformed event: ignore
        }
      }),
    );
    void this.poll();
    this.#schedule();
  }

  stop(): void {
    this.#started = false;
    for (const off of this.#offs.splice(0)) off();
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const t of this.#eventTimers) this.#o.timers.clearTimeout(t);
    this.#eventTimers.clear();
  }

  /** The last harvested set (undefined while tor has no ready descriptor). */
  current(): CollectedIntroPoints | undefined {
    return this.#current;
  }

  /** The last read error (undefined after a successful read). */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Called with the new state whenever the intro digest changes. */
  onChange(listener: (c: CollectedIntroPoints | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Poll now (coalesced with a running poll). Resolves when done. */
  poll(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    const run = async (): Promise<void> => {
      try {
        const more = (): boolean => this.#again && this.#started;
        do {
          this.#again = false;
          await this.#read();
        } while (more());
      } finally {
        this.#running = undefined;
      }
    };
    this.#running = run();
    return this.#running;
  }

  #onEvent(): void {
    for (const d of this.#o.eventPollDelaysMs ?? [500, 2000, 5000]) {
      const h = this.#o.timers.setTimeout(() => {
        this.#eventTimers.delete(h);
        if (this.#started) void this.poll();
      }, d);
      this.#eventTimers.add(h);
    }
  }

  #schedule(): void {
    if (!this.#started) return;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.poll();
      this.#schedule();
    }, this.#o.pollMs);
  }

  async #read(): Promise<void> {
    const atMs = this.#o.now();
    let text: string;
    try {
      text = await this.#o.control.getInfo(`hs/service/desc/id/${this.#label}`, { timeoutMs: 30_000 });
    } catch (e) {
      const status = (e as { status?: unknown } | null)?.status;
      if (e instanceof TorbalanceError && e.code === 'TB_ERR_TOR_CONTROL_REPLY' && status === 551) {
        this.#lastError = undefined;
        this.#set(undefined);
        return;
      }
      this.#lastError = e instanceof Error ? e.message : String(e);
      this.#log.warn({ err: this.#lastError }, 'cannot read the node descriptor');
      return;
    }
    let got;
    try {
      got = introPointsFromServiceDescriptor(text, this.#o.identityPublicKey, Math.floor(atMs / 1000));
    } catch (e) {
      this.#lastError = e instanceof TorbalanceError ? `${e.code}: ${e.message}` : String(e);
      this.#log.warn({ err: this.#lastError }, 'node descriptor does not decode');
      return;
    }
    this.#lastError = undefined;
    if (got === undefined) {
      this.#set(undefined);
      return;
    }
    const digest = introDigest(got.points);
    this.#set({ points: got.points, digest, fetchedAtMs: atMs, revisionCounter: got.revisionCounter.toString(), blindedKey: got.blindedKey, ...(got.pow === undefined ? {} : { pow: got.pow }) });
  }

  #set(next: CollectedIntroPoints | undefined): void {
    const prev = this.#current;
    const samePow = (a: PowParamsWire | undefined, b: PowParamsWire | undefined): boolean =>
      a === undefined ? b === undefined : b !== undefined && a.seed === b.seed && a.effort === b.effort && a.expires === b.expires;
    if (next !== undefined && prev !== undefined && next.digest === prev.digest && next.blindedKey === prev.blindedKey && samePow(next.pow, prev.pow)) {
      this.#current = next; // same points, period and pow-params, newer fetch time
      return;
    }
    if (next === undefined && prev === undefined) return;
    this.#current = next;
    this.#log.info(
      { introPoints: next?.points.length ?? 0, rotated: next !== undefined && prev !== undefined && next.blindedKey !== prev.blindedKey, powEffort: next?.pow?.effort },
      'node intro points or pow-params changed',
    );
    for (const l of this.#listeners) {
      try {
        l(next);
      } catch (e) {
        // A listener's bug must not stop polling: logged, not rethrown.
        this.#log.error({ err: e instanceof Error ? e.message : String(e) }, 'an intro-point listener threw');
      }
    }
  }
}
