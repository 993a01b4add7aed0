/**
 * Time to the next hidden-service time period, for `/status` and `/metrics`.
 *
 * Periods (rend-spec-v3 §2.2.1; tor `hs_common.c: hs_get_time_period_num,
 * hs_get_start_time_of_next_time_period`; src/core/hs/time-period.ts) depend on the consensus
 * voting interval: on the live network 1440 min (`hsdir_interval`, not set in practice) with a
 * 12 h offset; under `TestingTorNetwork` one SR run, 24 voting intervals. The voting interval
 * is `fresh-until − valid-after` of the current consensus, read with `GETINFO
 * consensus/valid-after` and `consensus/fresh-until` (control-spec: ISOTime
 * "YYYY-MM-DD HH:MM:SS", UTC; new in tor 0.2.6.3-alpha) and cached for a minute.
 */
import type { ControlLike } from '../node-health.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { parseIsoTimeNoSpace } from '../../core/hsdesc/util.js';
import { livePeriodParams, nextTimePeriodStart, testingNetworkPeriodParams, timePeriodNum, type TimePeriodParams } from '../../core/hs/time-period.js';
import type { PeriodInfo } from './snapshot.js';

/**
 * Parse a control-port ISOTime (`2024-05-01 12:00:00`, UTC, optionally quoted) to unix
 * seconds with the descriptor parser's strict ISO time ({@link parseIsoTimeNoSpace});
 * undefined if malformed.
 */
export function parseControlIsoTime(s: string): number | undefined {
  const m = /^"?(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})"?$/.exec(s.trim());
  if (m === null) return undefined;
  try {
    return parseIsoTimeNoSpace(`${m[1]!}T${m[2]!}`, 'TB_ERR_TOR_CONTROL_REPLY', 'consensus time');
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return undefined;
  }
}

/** The schedule for a consensus voting interval. */
export function periodParamsFor(votingIntervalSeconds: number, testingTorNetwork: boolean): TimePeriodParams {
  return testingTorNetwork ? testingNetworkPeriodParams(votingIntervalSeconds) : livePeriodParams();
}

/** Period facts at `nowSeconds` under `params`. */
export function periodInfoAt(nowSeconds: number, params: TimePeriodParams): PeriodInfo {
  const next = nextTimePeriodStart(nowSeconds, params);
  return { secondsToNext: Math.max(0, Math.round(next - nowSeconds)), lengthMinutes: params.lengthMinutes, nextStartAt: next, periodNum: timePeriodNum(nowSeconds, params) };
}

/** Options of {@link PeriodClock}. */
export interface PeriodClockOptions {
  readonly control: () => ControlLike | undefined;
  readonly testingTorNetwork: boolean;
  /** Wall clock ms. Default Date.now. */
  readonly now?: () => number;
  /** Re-read the consensus times after this long. Default 60 000. */
  readonly cacheMs?: number;
}

/** Reads the voting interval from tor (cached) and computes {@link PeriodInfo}. */
export class PeriodClock {
  readonly #o: PeriodClockOptions;
  #params: TimePeriodParams | undefined;
  #readAt = -Infinity;
  #reading: Promise<void> | undefined;

  constructor(o: PeriodClockOptions) {
    this.#o = o;
  }

  /** Current period facts (undefined until tor has a consensus). Never rejects. */
  async info(): Promise<PeriodInfo | undefined> {
    const now = (this.#o.now ?? Date.now)();
    if (now - this.#readAt > (this.#o.cacheMs ?? 60_000)) {
      this.#reading ??= this.#read(now).finally(() => {
        this.#reading = undefined;
      });
      await this.#reading;
    }
    return this.cached(now);
  }

  /** From the cached schedule only (no tor round trip). */
  cached(nowMs: number = (this.#o.now ?? Date.now)()): PeriodInfo | undefined {
    if (this.#params === undefined) return undefined;
    try {
      return periodInfoAt(Math.floor(nowMs / 1000), this.#params);
    } catch (e) {
      // a clock before the first period, or a schedule from a degenerate voting interval
      if (!(e instanceof RangeError)) throw e;
      return undefined;
    }
  }

  async #read(now: number): Promise<void> {
    const c = this.#o.control();
    if (c === undefined) return;
    try {
      const va = parseControlIsoTime(await c.getInfo('consensus/valid-after', { timeoutMs: 5000 }));
      const fu = parseControlIsoTime(await c.getInfo('consensus/fresh-until', { timeoutMs: 5000 }));
      if (va === undefined || fu === undefined || fu <= va) return;
      this.#params = periodParamsFor(fu - va, this.#o.testingTorNetwork);
      this.#readAt = now;
    } catch (e) {
      if (!(e instanceof TorbalanceError)) throw e;
      // no consensus yet or control down: try again on the next call
    }
  }
}
