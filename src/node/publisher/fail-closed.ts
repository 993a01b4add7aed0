/**
 * Fail closed (tor-facts §5 "Backend app down, tor up", §8 item 6): when the node's target is
 * unhealthy its intro points must stop accepting, not merely vanish from the next merged
 * descriptor (which only new fetchers see). We PAUSE the master onion service: one `SETCONF`
 * of the node's HiddenService* group without the master's lines (the coordination onion, if
 * any, stays, in torrc order: src/core/node-torrc.ts `hsOptionGroups`); back to healthy, one
 * `SETCONF` of the full group. docs/DESIGN.md "Fail closed without spending tor's
 * intro-circuit budget" has the reasoning; in short, from tor's `hs_service.c`:
 * - a service missing from the new configuration is dropped by `register_all_services`,
 *   which closes its intro AND rendezvous circuits at once (`close_service_circuits`); each
 *   intro relay then answers a cached client's INTRODUCE1 with INTRODUCE_ACK status 1 and the
 *   client re-extends to another node's intro point of the same descriptor (tor-facts §5);
 *   a visitor whose rendezvous circuit ended here re-introduces through another node;
 * - while it is absent tor launches nothing for it, so its per-period intro-circuit budget
 *   (`get_max_intro_circ_per_period`, `INTRO_CIRC_RETRY_PERIOD` = 300 s) is not spent — the
 *   older way, closing its intro circuits again and again, made tor relaunch each one and
 *   could leave the node without intro points for up to 5 min after the target recovered;
 * - a re-added service is a new service object: fresh budget, new intro points, new
 *   descriptors (and, with PoW, new seeds — every SETCONF redraws them anyway).
 *
 * Hysteresis: two SETCONFs are at least `minIntervalMs` apart; a change that comes sooner is
 * applied when the interval ends (only the newest wish counts, so a target that flaps faster
 * than that costs one pause and one resume at most per interval).
 */
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { TorbalanceError } from '../../core/errors.js';
import { hsSetConfArgs } from '../../core/node-torrc.js';
import type { TorrcEntry } from '../../core/torrc.js';
import type { PublisherControl } from './control.js';

/** The node torrc's HiddenService* group with and without the master service (src/core/node-torrc.ts `hsOptionGroups`). */
export interface HsOptionGroups {
  readonly serving: readonly TorrcEntry[];
  readonly paused: readonly TorrcEntry[];
}

/** Options of {@link FailClosed}. */
export interface FailClosedOptions {
  readonly control: Pick<PublisherControl, 'setConf'>;
  readonly hs: HsOptionGroups;
  readonly timers: Timers;
  readonly logger: Logger;
  /** Least time between two SETCONFs. Default 5 000 ms. */
  readonly minIntervalMs?: number;
}

type Mode = 'serving' | 'paused';

/** Pauses the master onion service while the target is unhealthy; see the module doc. */
export class FailClosed {
  readonly #o: FailClosedOptions;
  readonly #log: Logger;
  readonly #minMs: number;
  #want: Mode = 'serving';
  /** What tor runs now: its torrc (serving) until our first SETCONF. */
  #applied: Mode = 'serving';
  #lastSetAt: number | undefined;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #pauses = 0;
  readonly #listeners = new Set<(paused: boolean) => void>();

  constructor(o: FailClosedOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'fail-closed' });
    this.#minMs = o.minIntervalMs ?? 5000;
  }

  /** True while the master service is removed from the node's tor. */
  get active(): boolean {
    return this.#applied === 'paused';
  }

  /** Pauses so far (SETCONFs that removed the master service). */
  get pauses(): number {
    return this.#pauses;
  }

  /** Called after each applied change with the new state (true = paused). */
  onChange(listener: (paused: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Report the target's health: unhealthy → pause the master service, healthy → serve it.
   * Resolves once the change is applied, or at once when the hysteresis defers it.
   */
  setHealthy(healthy: boolean): Promise<void> {
    this.#want = healthy ? 'serving' : 'paused';
    return this.#drive();
  }

  /** tor restarted and read its torrc again (the master service is back): re-apply the wish. */
  invalidate(): void {
    const was = this.#applied;
    this.#applied = 'serving';
    if (was !== 'serving') this.#notify();
    void this.#drive();
  }

  /** Stop (tor keeps its current configuration). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #drive(): Promise<void> {
    if (this.#running !== undefined) return this.#running;
    const run = this.#run().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #run(): Promise<void> {
    while (!this.#stopped && this.#timer === undefined && this.#want !== this.#applied) {
      const wait = this.#lastSetAt === undefined ? 0 : this.#lastSetAt + this.#minMs - this.#o.timers.now();
      if (wait > 0) {
        this.#arm(wait);
        return;
      }
      const target = this.#want;
      this.#lastSetAt = this.#o.timers.now();
      try {
        await this.#o.control.setConf(hsSetConfArgs(target === 'paused' ? this.#o.hs.paused : this.#o.hs.serving));
      } catch (e) {
        if (!(e instanceof TorbalanceError)) throw e;
        this.#log.warn({ err: e.code }, target === 'paused' ? 'cannot pause the master onion service; will retry' : 'cannot restore the master onion service; will retry');
        this.#arm(this.#minMs);
        return;
      }
      this.#applied = target;
      if (target === 'paused') {
        this.#pauses++;
        this.#log.warn('target unhealthy: master onion service paused on this node (its intro and rendezvous circuits closed)');
      } else {
        this.#log.info('target healthy again: master onion service restored (tor builds fresh intro points)');
      }
      this.#notify();
    }
  }

  #arm(ms: number): void {
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#drive();
    }, ms);
  }

  #notify(): void {
    for (const l of this.#listeners) {
      try {
        l(this.#applied === 'paused');
      } catch (e) {
        this.#log.error({ err: e instanceof Error ? e.message : String(e) }, 'a fail-closed listener threw');
      }
    }
  }
}
