/**
 * When a node harvests its `desc_next` and when the publisher seeds the next period's
 * descriptor (docs/DESIGN.md "Rotation-safe intro points"; the policy is
 * src/core/publish/rotation.ts, the mechanism src/node/publisher/next-harvest.ts).
 *
 * While the node is clustered and rotation-safe, every `checkMs` (sooner when the policy
 * names a time) it reads the local tor's consensus and:
 * - in the `next` phase (period start → rotation), harvests once per period, jittered so the
 *   nodes do not all pulse in the same second, again after `reharvestMs`, never within
 *   `marginMs` of the rotation; "every HSDir holds another node's newer desc_next" is retried
 *   after 1–4 s (another node's pulse won that second), other failures back off 5 s → 60 s;
 * - on the publisher only, in the `current` phase after its tor rotated: one seed per SR run
 *   (tor uploads its own descriptors once), then {@link NextHarvestSchedulerOptions.onSeeded}
 *   so the merged descriptors are posted again over tor's.
 * A new harvest is handed to {@link NextHarvestSchedulerOptions.onHarvest} (the cluster
 * gossips it); {@link NextHarvestScheduler.current} is the newest.
 */
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { toBase64NoPad } from '../../core/bytes.js';
import { TorbalanceError } from '../../core/errors.js';
import { descriptorTargets } from '../../core/hs/hashring.js';
import { srRunSeconds, type TimePeriodParams } from '../../core/hs/time-period.js';
import { nextHarvestAction, nextReconfigurationMs, rotationPhase, seedDue, type HarvestState } from '../../core/publish/rotation.js';
import type { HarvestedNextSet, NextPeriodHarvester } from './next-harvest.js';
import type { NetworkSource } from './publisher.js';

/** Options of {@link NextHarvestScheduler}. */
export interface NextHarvestSchedulerOptions {
  readonly harvester: Pick<NextPeriodHarvester, 'harvest' | 'seed'>;
  readonly network: NetworkSource;
  readonly identityPublicKey: Uint8Array;
  readonly testingTorNetwork: boolean;
  /** Wall clock, ms. */
  readonly now: () => number;
  readonly timers: Timers;
  /** A uniform random number in [0, 1) (jitter). */
  readonly random: () => number;
  readonly logger: Logger;
  /** Clustered and rotation-safe now (otherwise the scheduler idles). */
  readonly active: () => boolean;
  /** This node is the elected publisher now. */
  readonly isPublisher: () => boolean;
  /** Blinded key of the node tor's desc_current (from the intro collector), if known. */
  readonly currentKey: () => string | undefined;
  readonly onHarvest: (set: HarvestedNextSet) => void;
  /** tor uploaded its own descriptors; every HSDir had answered by `uploadedAtMs`. */
  readonly onSeeded: (uploadedAtMs: number) => void;
  /** Poll interval. Default: a fifth of the voting interval, 1–30 s. */
  readonly checkMs?: number;
}

/** Shortest pause between two checks. */
const MIN_WAIT_MS = 500;

/** No harvest starts this close to the rotation (an SR run `run` ms long). */
function marginMs(run: number): number {
  return Math.min(30 * 60_000, Math.max(20_000, run / 8));
}

/** Harvest again after this long (tor replaces intro points that fail or expire). */
function reharvestMs(run: number): number {
  return run / 4;
}

interface Schedule {
  readonly params: TimePeriodParams;
  readonly validAfter: number;
  readonly clientKey: string;
}

/** See the module doc. */
export class NextHarvestScheduler {
  readonly #o: NextHarvestSchedulerOptions;
  readonly #log: Logger;
  #timer: TimerHandle | undefined;
  #running = false;
  #started = false;
  #last: HarvestedNextSet | undefined;
  #notBeforeMs = 0;
  #failures = 0;
  /** Client key whose phase start was jittered already. */
  #jitteredFor: string | undefined;
  #seededRun: number | undefined;
  #harvests = 0;
  #seeds = 0;
  #lastError: string | undefined;
  /** The schedule read by the last check (for {@link NextHarvestScheduler.nextReconfigurationMs}). */
  #schedule_: Schedule | undefined;
  #wasPublisher = false;

  constructor(o: NextHarvestSchedulerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'next-schedule' });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#arm(0);
  }

  stop(): void {
    this.#started = false;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Check now (e.g. the node became publisher, or tor rotated). */
  poke(): void {
    if (this.#started && !this.#running) this.#arm(0);
  }

  /**
   * Drop the newest harvest and check again: the node's tor re-created the master service (a
   * fail-closed resume), so that desc_next and its intro points no longer exist.
   */
  forget(): void {
    this.#last = undefined;
    this.poke();
  }

  /** The newest harvest. */
  current(): HarvestedNextSet | undefined {
    return this.#last;
  }

  /**
   * When this scheduler will next reconfigure the node's tor (and so redraw its PoW seeds):
   * wall-clock ms, `now` if due or unknown (src/core/publish/rotation.ts nextReconfigurationMs).
   */
  nextReconfigurationMs(): number {
    const s = this.#schedule_;
    const now = this.#o.now();
    if (s === undefined || !this.#o.active()) return now;
    const currentKey = this.#o.currentKey();
    return nextReconfigurationMs({
      ...this.#harvestState(s, now, currentKey),
      // The publisher role as of the last check: asking now would re-enter the mesh view, which
      // reads this node's advertised state (and so this method).
      seedPending: this.#wasPublisher && seedDue({ validAfterSeconds: s.validAfter, params: s.params, clientKey: s.clientKey, currentKey, seededRun: this.#seededRun }),
    });
  }

  /** The policy's view of the schedule (src/core/publish/rotation.ts HarvestState, without the backoff). */
  #harvestState(s: Schedule, nowMs: number, currentKey: string | undefined): Omit<HarvestState, 'notBeforeMs'> {
    const run = srRunSeconds(s.params) * 1000;
    return {
      validAfterSeconds: s.validAfter,
      nowMs,
      params: s.params,
      clientKey: s.clientKey,
      currentKey,
      last: this.#last === undefined ? undefined : { blindedKey: this.#last.blindedKey, harvestedAtMs: this.#last.harvestedAtMs },
      marginMs: marginMs(run),
      reharvestMs: reharvestMs(run),
    };
  }

  status(): { readonly harvests: number; readonly seeds: number; readonly lastHarvestAtMs?: number; readonly lastError?: string } {
    return {
      harvests: this.#harvests,
      seeds: this.#seeds,
      ...(this.#last === undefined ? {} : { lastHarvestAtMs: this.#last.harvestedAtMs }),
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
    };
  }

  #arm(ms: number): void {
    if (!this.#started) return;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, Math.max(0, ms));
  }

  async #schedule(): Promise<Schedule> {
    const net = await this.#o.network.read();
    const targets = descriptorTargets(net.consensus, this.#o.identityPublicKey, { relays: net.relays, testingTorNetwork: this.#o.testingTorNetwork });
    const client = targets.descriptors.find((d) => d.periodNum === targets.plan.currentPeriodNum);
    if (client === undefined) throw new TorbalanceError('TB_ERR_PUBLISHER_INTERNAL', 'internal', 'no descriptor for the client-current period');
    return { params: targets.plan.periodParams, validAfter: net.consensus.validAfter, clientKey: toBase64NoPad(client.blindedPublicKey) };
  }

  async #tick(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    let nextMs: number | undefined;
    try {
      nextMs = await this.#step();
    } catch (e) {
      this.#lastError = e instanceof TorbalanceError ? e.code : e instanceof Error ? e.message : String(e);
      this.#log.warn({ err: this.#lastError }, 'rotation-safe scheduling failed');
    } finally {
      this.#running = false;
    }
    this.#arm(nextMs ?? 5000);
  }

  /** One decision; resolves with the delay to the next check. */
  async #step(): Promise<number> {
    const defaultCheck = 5000;
    if (!this.#o.active()) return this.#o.checkMs ?? defaultCheck;
    const s = await this.#schedule();
    this.#schedule_ = s;
    this.#wasPublisher = this.#o.isPublisher();
    const check = this.#o.checkMs ?? Math.min(30_000, Math.max(1000, (s.params.votingIntervalSeconds * 1000) / 5));
    const run = srRunSeconds(s.params) * 1000;
    const currentKey = this.#o.currentKey();
    const now = this.#o.now();

    if (this.#o.isPublisher() && seedDue({ validAfterSeconds: s.validAfter, params: s.params, clientKey: s.clientKey, currentKey, seededRun: this.#seededRun })) {
      this.#seededRun = rotationPhase(s.validAfter, s.params).runStart;
      try {
        const r = await this.#o.harvester.seed();
        this.#seeds++;
        this.#o.onSeeded(r.uploadedAtMs);
      } catch (e) {
        this.#lastError = e instanceof TorbalanceError ? e.code : String(e);
        // The pulse may still have put tor's own desc_current over the merged one (only
        // desc_next was refused, or some uploads were answered late): post ours again anyway.
        this.#log.warn({ err: this.#lastError }, "seeding the next period's descriptor failed; re-posting the merged descriptors");
        this.#o.onSeeded(this.#o.now());
      }
      return MIN_WAIT_MS;
    }

    const ph = rotationPhase(s.validAfter, s.params);
    if (ph.phase === 'next' && this.#jitteredFor !== s.clientKey) {
      // Entering the window: spread the nodes' pulses over a few seconds.
      this.#jitteredFor = s.clientKey;
      const jitter = Math.min(60_000, Math.max(1000, run / 80));
      this.#notBeforeMs = Math.max(this.#notBeforeMs, now + Math.floor(this.#o.random() * jitter));
      this.#failures = 0;
    }
    const act = nextHarvestAction({ ...this.#harvestState(s, now, currentKey), notBeforeMs: this.#notBeforeMs });
    // A time already past (the consensus lags the wall clock) means: look again soon.
    if (act.action === 'wait') return Math.max(MIN_WAIT_MS, Math.min(check, act.untilMs - now));
    try {
      const set = await this.#o.harvester.harvest();
      this.#last = set;
      this.#harvests++;
      this.#failures = 0;
      this.#lastError = undefined;
      this.#o.onHarvest(set);
    } catch (e) {
      const code = e instanceof TorbalanceError ? e.code : e instanceof Error ? e.message : String(e);
      this.#lastError = code;
      this.#failures++;
      const retry = code === 'TB_ERR_HARVEST_NOT_OURS' ? 1000 + Math.floor(this.#o.random() * 3000) : Math.min(60_000, 5000 * 2 ** (this.#failures - 1));
      this.#notBeforeMs = this.#o.now() + retry;
      this.#log.info({ err: code, retryMs: retry }, 'desc_next harvest failed; will retry');
    }
    return MIN_WAIT_MS;
  }
}
