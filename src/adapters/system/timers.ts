/**
 * The clock and timers every service takes as a parameter, so that policy is testable with a
 * fake clock (test/unit/publisher/fakes.ts `FakeClock`) instead of sleeping.
 */

/** Opaque timer handle returned by {@link Timers.setTimeout} (any object). */
export type TimerHandle = object;

/** Clock and timers, injectable for tests. */
export interface Timers {
  /** Milliseconds on a monotonic-enough clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock and timers. */
export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => {
    clearTimeout(h as NodeJS.Timeout);
  },
};
