/**
 * Fail closed (tor-facts §5 "Backend app down, tor up", §8 item 6): when the node is
 * unhealthy its intro points must stop accepting, not merely vanish from the next merged
 * descriptor (which only new fetchers see). Closing the node's `HS_SERVICE_INTRO` circuits
 * for the master address makes each intro relay drop the service side; a cached client's
 * INTRODUCE1 then gets INTRODUCE_ACK status 1 (UNKNOWN_ID) at once (`hs_intropoint.c`), it
 * marks that intro point failed and re-extends to another node's intro point in the same
 * descriptor (`close_or_reextend_intro_circ`) — failover in about one RTT.
 *
 * Tor re-establishes closed intro circuits by itself (`hs_service.c:
 * launch_intro_point_circuits`), so while unhealthy we keep closing: on every `CIRC` event
 * that shows a new intro circuit for the address (BUILT), and by sweeping `GETINFO
 * circuit-status` every `sweepMs`. Note tor limits intro-circuit launches per period
 * (`get_max_intro_circ_per_period`, then waits `INTRO_CIRC_RETRY_PERIOD` = 300 s), so after a
 * long unhealthy spell the node may need up to ~5 min to re-establish intro points once
 * healthy (inferred from tor's source, not measured). Only circuits whose REND_QUERY is the
 * master address are touched (the node's mesh onion service keeps its own).
 */
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { parseCirc, type CircEvent } from '../../core/torctl/events.js';
import type { PublisherControl } from './control.js';

/** Options of {@link FailClosed}. */
export interface FailClosedOptions {
  readonly control: Pick<PublisherControl, 'getInfo' | 'closeCircuit' | 'onEvent'>;
  readonly masterAddress: string;
  readonly timers: Timers;
  readonly logger: Logger;
  /** Re-sweep interval while unhealthy. Default 5 000 ms. */
  readonly sweepMs?: number;
}

/** `GETINFO circuit-status` → the master address's service intro circuits (any state but CLOSED/FAILED). */
export function serviceIntroCircuits(circuitStatus: string, label: string): CircEvent[] {
  const out: CircEvent[] = [];
  for (const line of circuitStatus.split('\n')) {
    if (line.trim() === '') continue;
    let c: CircEvent;
    try {
      c = parseCirc(`CIRC ${line}`);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      continue;
    }
    if (c.purpose === 'HS_SERVICE_INTRO' && c.rendQuery === label && c.status !== 'CLOSED' && c.status !== 'FAILED') out.push(c);
  }
  return out;
}

/** Closes the node's intro circuits while it is unhealthy; see the module doc. */
export class FailClosed {
  /** Event types needed. */
  static readonly EVENTS: readonly string[] = ['CIRC'];

  readonly #o: FailClosedOptions;
  readonly #label: string;
  readonly #log: Logger;
  #closing = false;
  #off: (() => void) | undefined;
  #timer: TimerHandle | undefined;
  #closed = 0;

  constructor(o: FailClosedOptions) {
    this.#o = o;
    this.#label = decodeOnionAddress(o.masterAddress).label;
    this.#log = o.logger.child({ component: 'fail-closed' });
  }

  /** True while closing (the node was reported unhealthy). */
  get active(): boolean {
    return this.#closing;
  }

  /** Circuits closed so far. */
  get closedCount(): number {
    return this.#closed;
  }

  /** Report the node's health; unhealthy → close intro circuits now and keep closing new ones. Resolves after the first sweep. */
  async setHealthy(healthy: boolean): Promise<void> {
    if (healthy) {
      if (!this.#closing) return;
      this.#closing = false;
      this.#off?.();
      this.#off = undefined;
      if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#log.info('node healthy again: tor may re-establish its intro points');
      return;
    }
    if (!this.#closing) {
      this.#closing = true;
      this.#log.warn('node unhealthy: closing its intro circuits');
      this.#off = this.#o.control.onEvent('CIRC', (e) => {
        let c: CircEvent;
        try {
          c = parseCirc(e);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          return;
        }
        if (this.#closing && c.purpose === 'HS_SERVICE_INTRO' && c.rendQuery === this.#label && c.status === 'BUILT') void this.#close(c.id);
      });
      this.#schedule();
    }
    await this.sweep();
  }

  /** Close every current intro circuit of the address (no-op while healthy). */
  async sweep(): Promise<number> {
    if (!this.#closing) return 0;
    let status: string;
    try {
      status = await this.#o.control.getInfo('circuit-status', { timeoutMs: 30_000 });
    } catch (e) {
      this.#log.warn({ err: e instanceof Error ? e.message : String(e) }, 'cannot list circuits');
      return 0;
    }
    const circs = serviceIntroCircuits(status, this.#label);
    await Promise.all(circs.map((c) => this.#close(c.id)));
    return circs.length;
  }

  /** Stop (without changing tor). */
  stop(): void {
    this.#closing = false;
    this.#off?.();
    this.#off = undefined;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #close(id: string): Promise<void> {
    try {
      await this.#o.control.closeCircuit(id);
      this.#closed++;
    } catch (e) {
      // already gone (552 Unknown circuit) or connection trouble: the next sweep retries
      if (!(e instanceof TorbalanceError)) throw e;
    }
  }

  #schedule(): void {
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closing) return;
      void this.sweep().finally(() => {
        if (this.#closing) this.#schedule();
      });
    }, this.#o.sweepMs ?? 5000);
  }
}
