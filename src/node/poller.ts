/**
 * A single-flight periodic task: `now()` runs the task or joins the run in flight; while
 * started, the next run is scheduled `intervalMs` after the previous one finished (never
 * overlapping, never drifting into a burst after a slow run). Timers are injected.
 */
import { realTimers, type TimerHandle, type Timers } from '../adapters/system/timers.js';

export class SingleFlightPoller<T> {
  readonly #run: () => Promise<T>;
  #intervalMs: number;
  readonly #timers: Timers;
  #running = false;
  #timer: TimerHandle | undefined;
  #inflight: Promise<T> | undefined;

  constructor(run: () => Promise<T>, intervalMs: number, timers: Timers = realTimers) {
    this.#run = run;
    this.#intervalMs = intervalMs;
    this.#timers = timers;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Change the interval; it applies from the next wait scheduled. */
  setIntervalMs(ms: number): void {
    this.#intervalMs = ms;
  }

  /** Run now, then every `intervalMs` after each run finished. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  /** Stop scheduling; a run in flight finishes but schedules nothing. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Run now, or join the run in flight. */
  now(): Promise<T> {
    if (this.#inflight !== undefined) return this.#inflight;
    const p = this.#run().finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  #tick(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    void this.now().then(
      () => {
        this.#schedule();
      },
      () => {
        this.#schedule();
      },
    );
  }

  #schedule(): void {
    if (this.#running && this.#timer === undefined) {
      this.#timer = this.#timers.setTimeout(() => {
        this.#tick();
      }, this.#intervalMs);
    }
  }
}
