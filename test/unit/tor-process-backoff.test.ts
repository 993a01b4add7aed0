/**
 * Restart backoff of the tor supervisor (src/adapters/tor/process.ts): bounded exponential
 * delays, reset after a long enough uptime, a restart budget; driven by a fake clock.
 * Also the bootstrap-progress parser used for readiness.
 */
import { describe, expect, it } from 'vitest';
import { parseBootstrapProgress, RestartBackoff } from '../../src/adapters/tor/process.js';
import { type TimerHandle, type Timers } from '../../src/adapters/system/timers.js';
import { hasCode } from '../../src/core/errors.js';

/** A fake clock: timers fire only when the test advances time. */
class FakeClock implements Timers {
  t = 0;
  #timers: { at: number; fn: () => void; handle: TimerHandle }[] = [];
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {};
    this.#timers.push({ at: this.t + ms, fn, handle });
    return handle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((x) => x.handle !== handle);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (next === undefined || next.at > end) break;
      this.#timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

/** A process that crashes `uptimeMs` after each start; restarts use the backoff and the fake clock. */
function simulate(
  backoff: RestartBackoff,
  clock: FakeClock,
  uptimeMs: number,
  crashes: number,
): { delays: number[]; startTimes: number[]; gaveUp: boolean } {
  const delays: number[] = [];
  const startTimes: number[] = [];
  let gaveUp = false;
  let remaining = crashes;
  const start = (): void => {
    startTimes.push(clock.now());
    backoff.started(clock.now());
    if (remaining-- <= 0) return;
    clock.setTimeout(() => {
      const d = backoff.nextDelay(clock.now());
      if (d === undefined) {
        gaveUp = true;
        return;
      }
      delays.push(d);
      clock.setTimeout(start, d);
    }, uptimeMs);
  };
  start();
  clock.advance(24 * 3600_000);
  return { delays, startTimes, gaveUp };
}

describe('RestartBackoff', () => {
  it('doubles from the initial delay up to the cap', () => {
    const clock = new FakeClock();
    const r = simulate(
      new RestartBackoff({ initialDelayMs: 500, maxDelayMs: 5000, maxRestarts: 100 }),
      clock,
      100,
      8,
    );
    expect(r.delays).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
    expect(r.gaveUp).toBe(false);
    // Each restart happened exactly uptime + delay after the previous start.
    for (let i = 1; i < r.startTimes.length; i++)
      expect(r.startTimes[i]! - r.startTimes[i - 1]!).toBe(100 + r.delays[i - 1]!);
  });

  it('gives up after maxRestarts consecutive restarts', () => {
    const clock = new FakeClock();
    const r = simulate(new RestartBackoff({ initialDelayMs: 100, maxRestarts: 3 }), clock, 10, 10);
    expect(r.delays).toEqual([100, 200, 400]);
    expect(r.gaveUp).toBe(true);
    expect(r.startTimes).toHaveLength(4);
  });

  it('resets the count after an uptime of resetAfterMs', () => {
    const b = new RestartBackoff({
      initialDelayMs: 100,
      maxDelayMs: 10_000,
      resetAfterMs: 60_000,
      maxRestarts: 3,
    });
    b.started(0);
    expect(b.nextDelay(10)).toBe(100);
    b.started(110);
    expect(b.nextDelay(200)).toBe(200);
    b.started(400);
    expect(b.nextDelay(60_399)).toBe(400); // up 59.999 s: no reset
    b.started(61_000);
    expect(b.nextDelay(121_000)).toBe(100); // up exactly 60 s: reset
    expect(b.consecutive).toBe(1);
  });

  it('long uptimes never exhaust the budget', () => {
    const clock = new FakeClock();
    const r = simulate(
      new RestartBackoff({ initialDelayMs: 300, resetAfterMs: 1000, maxRestarts: 2 }),
      clock,
      5000,
      20,
    );
    expect(r.delays).toEqual(Array(20).fill(300));
    expect(r.gaveUp).toBe(false);
  });

  it('a death before started() counts as consecutive', () => {
    const b = new RestartBackoff({ initialDelayMs: 1, maxRestarts: 5 });
    expect([b.nextDelay(0), b.nextDelay(1e9), b.nextDelay(2e9)]).toEqual([1, 2, 4]);
  });

  it('rejects nonsensical options', () => {
    for (const o of [
      { initialDelayMs: -1 },
      { initialDelayMs: 10, maxDelayMs: 5 },
      { factor: 0.5 },
      { maxRestarts: -1 },
      { initialDelayMs: Number.NaN },
    ]) {
      let e: unknown;
      try {
        new RestartBackoff(o);
      } catch (x) {
        e = x;
      }
      expect(hasCode(e, 'TB_ERR_TOR_PROCESS_CONFIG')).toBe(true);
    }
  });
});

describe('parseBootstrapProgress', () => {
  it('reads PROGRESS from GETINFO status/bootstrap-phase and STATUS_CLIENT events', () => {
    expect(parseBootstrapProgress('NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"')).toBe(
      100,
    );
    expect(
      parseBootstrapProgress(
        'STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=95 TAG=circuit_create SUMMARY="Establishing a Tor circuit"',
      ),
    ).toBe(95);
    expect(
      parseBootstrapProgress('WARN BOOTSTRAP PROGRESS=5 TAG=conn WARNING="x" REASON=DONE'),
    ).toBe(5);
  });
  it('rejects other lines and out-of-range values', () => {
    expect(parseBootstrapProgress('STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED')).toBeUndefined();
    expect(parseBootstrapProgress('NOTICE BOOTSTRAP PROGRESS=101 TAG=x')).toBeUndefined();
    expect(parseBootstrapProgress('')).toBeUndefined();
  });
});
