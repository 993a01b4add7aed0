/**
 * A node's run state (`NodeStatus.state`: running → stopping → stopped, or failed when tor
 * cannot be kept up) and the two moments others wait for: the first complete bootstrap of its
 * tor (`NodeHandle.bootstrapped`; `torbalance run` then tells systemd READY=1) and the end of
 * the stop (`NodeHandle.stopped`).
 */
import type { NodeStatus } from './node-status.js';

/** See the module doc. */
export class NodeLifecycle {
  #state: NodeStatus['state'] = 'running';
  #bootstrapped = false;
  #resolveBootstrapped: () => void = () => undefined;
  #resolveStopped: () => void = () => undefined;
  /** Resolves the first time tor reports 100 % bootstrap; never, if the node stops first. */
  readonly bootstrapped = new Promise<void>((r) => {
    this.#resolveBootstrapped = r;
  });
  /** Resolves when the stop has finished. */
  readonly stopped = new Promise<void>((r) => {
    this.#resolveStopped = r;
  });

  get state(): NodeStatus['state'] {
    return this.#state;
  }

  /** tor's bootstrap progress; true when tor has just (again) reached 100 %. */
  torProgress(progress: number): boolean {
    if (progress === 100 && !this.#bootstrapped) {
      this.#bootstrapped = true;
      this.#resolveBootstrapped();
      return true;
    }
    if (progress < 100) this.#bootstrapped = false;
    return false;
  }

  /** tor is being restarted: its bootstrap starts over. */
  torRestarting(): void {
    this.#bootstrapped = false;
  }

  /** The node failed for good; true if it was running (so the failure is reported once). */
  fail(): boolean {
    if (this.#state !== 'running') return false;
    this.#state = 'failed';
    return true;
  }

  /** The stop begins; returns a token for {@link stopFinished}: whether the node had failed. */
  stopStarted(): boolean {
    const wasFailed = this.#state === 'failed';
    this.#state = 'stopping';
    return wasFailed;
  }

  /** The stop is done: stopped (or still failed, if it had failed). */
  stopFinished(wasFailed: boolean): void {
    this.#state = wasFailed ? 'failed' : 'stopped';
    this.#resolveStopped();
  }
}
