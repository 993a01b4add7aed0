/**
 * The node's overall health: the target (from {@link TargetHealth}), the node's own tor
 * bootstrap, and the intro points of the node's onion-service descriptor, in one state.
 *
 * Tor facts (control-spec §3.9 GETINFO; tor `src/feature/control/control_getinfo.c`,
 * `src/feature/hs/hs_service.c`):
 * - `GETINFO status/bootstrap-phase` → `NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`
 *   (parsed with core/torctl/events.ts `parseBootstrapPhase`); the node is usable at 100.
 * - `GETINFO hs/service/desc/id/<56-char address>` → the service's current descriptor for the
 *   current time period (`hs_service_lookup_current_desc` in `getinfo_helper_dir`), or
 *   `551 Not found in cache` while tor has not built one yet.
 *   The descriptor is decoded with core/hsdesc `decodeDescriptor`. The keys are taken from
 *   the descriptor itself: its signing-key certificate names the blinded key, and the
 *   subcredential is derived from the identity key (the master address) and that blinded
 *   key, so decoding does not depend on the network's time-period length (test networks use
 *   shorter periods). A descriptor signed by a blinded key of another identity fails to
 *   decrypt (the layer keys depend on the subcredential).
 *
 * `healthy` = target healthy ∧ bootstrap 100 % ∧ at least `minIntroPoints` intro points.
 * `reasons` lists what is missing, for status output and logs.
 */
import type { Logger } from '../adapters/log/logger.js';
import { realTimers, type Timers } from '../adapters/system/timers.js';
import { SingleFlightPoller } from './poller.js';
import { DecodeError, TorbalanceError } from '../core/errors.js';
import { decodeOnionAddress } from '../core/hs/address.js';
import { decodeOwnServiceDescriptor } from '../core/hsdesc/descriptor.js';
import { parseBootstrapPhase } from '../core/torctl/events.js';
import { describeError, type HealthState } from './health.js';

/** The part of TorControl that node health uses (TorControl satisfies it). */
export interface ControlLike {
  getInfo(key: string, options?: { readonly timeoutMs?: number }): Promise<string>;
}

/** The part of TargetHealth that node health uses. */
export interface TargetHealthLike {
  readonly state: HealthState;
  onChange(listener: (s: HealthState) => void): () => void;
}

/** Tor's bootstrap as last read. */
export interface TorBootstrapState {
  /** 0–100; 0 while unknown. */
  readonly progress: number;
  readonly tag?: string;
  /** Bootstrap problem reported by tor (WARNING=). */
  readonly warning?: string;
  /** Why the control port could not be asked. */
  readonly error?: string;
}

/** The node's descriptor as last read. */
export interface IntroState {
  /** `none`: tor has no descriptor yet (551); `present`: decoded; `error`: could not read/decode. */
  readonly descriptor: 'none' | 'present' | 'error';
  readonly introPoints: number;
  /** Decimal revision counter of the decoded descriptor. */
  readonly revisionCounter?: string;
  readonly error?: string;
}

/** Everything about the node's health. */
export interface NodeHealthState {
  readonly healthy: boolean;
  readonly target: HealthState;
  readonly tor: TorBootstrapState;
  readonly intro: IntroState;
  /** Wall-clock ms of the last refresh (undefined before the first). */
  readonly checkedAt?: number;
  /** Why the node is not healthy (empty when healthy). */
  readonly reasons: readonly string[];
}

/** Options of {@link NodeHealth}. */
export interface NodeHealthOptions {
  readonly target: TargetHealthLike;
  /** The node tor's control connection (a getter: the supervisor may reconnect). */
  readonly control: () => ControlLike | undefined;
  /** The node's onion address (the master address in single-node mode), with or without `.onion`. */
  readonly serviceAddress: string;
  /** How often tor is asked. */
  readonly intervalMs: number;
  /** Intro points needed for `healthy`. Default 1. */
  readonly minIntroPoints?: number;
  /** Per-GETINFO timeout. Default 10 s. */
  readonly commandTimeoutMs?: number;
  readonly timers?: Timers;
  /** Wall clock, ms since the epoch. Default Date.now. */
  readonly wallClock?: () => number;
  readonly logger: Logger;
}

/** Count the intro points of a descriptor text of `identityPublicKey` (keys from the descriptor's own cert). */
export function countIntroPoints(text: string, identityPublicKey: Uint8Array, nowSeconds: number): { introPoints: number; revisionCounter: bigint } {
  const d = decodeOwnServiceDescriptor(text, identityPublicKey, nowSeconds);
  return { introPoints: d.introPoints.length, revisionCounter: d.revisionCounter };
}

/** True for tor's "551 Not found"-style answers (no descriptor yet). */
function isNotFound(e: unknown): boolean {
  const status = (e as { status?: unknown } | null)?.status;
  return e instanceof TorbalanceError && e.code === 'TB_ERR_TOR_CONTROL_REPLY' && status === 551;
}

/** Combines target, bootstrap and intro-point state; refreshes tor's part on an interval. */
export class NodeHealth {
  readonly #o: NodeHealthOptions;
  readonly #timers: Timers;
  readonly #wall: () => number;
  readonly #identity: Uint8Array;
  readonly #address: string;
  readonly #listeners = new Set<(s: NodeHealthState) => void>();
  #tor: TorBootstrapState = { progress: 0 };
  #intro: IntroState = { descriptor: 'none', introPoints: 0 };
  #checkedAt: number | undefined;
  #state: NodeHealthState;
  readonly #poller: SingleFlightPoller<NodeHealthState>;
  #offTarget: (() => void) | undefined;

  constructor(options: NodeHealthOptions) {
    if (!Number.isInteger(options.intervalMs) || options.intervalMs < 1) {
      throw new TorbalanceError('TB_ERR_HEALTH_CONFIG', 'config', 'node health interval must be a positive integer (ms)');
    }
    const decoded = decodeOnionAddress(options.serviceAddress);
    this.#o = options;
    this.#identity = decoded.publicKey;
    this.#address = decoded.address.replace(/\.onion$/, '');
    this.#timers = options.timers ?? realTimers;
    this.#wall = options.wallClock ?? Date.now;
    this.#state = this.#combine();
    this.#poller = new SingleFlightPoller(() => this.#refresh(), options.intervalMs, this.#timers);
  }

  get state(): NodeHealthState {
    return this.#state;
  }

  /** Listen for changes of `healthy` or of `reasons`. Returns the unsubscribe function. */
  onChange(listener: (s: NodeHealthState) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Refresh now, then every `intervalMs`; also recombine whenever the target state changes. */
  start(): void {
    if (this.#poller.running) return;
    this.#offTarget = this.#o.target.onChange(() => {
      this.#publish();
    });
    this.#poller.start();
  }

  stop(): void {
    this.#offTarget?.();
    this.#offTarget = undefined;
    this.#poller.stop();
  }

  /** Ask tor now (joins a refresh in flight). */
  refresh(): Promise<NodeHealthState> {
    return this.#poller.now();
  }

  async #refresh(): Promise<NodeHealthState> {
    const ctl = this.#o.control();
    const timeoutMs = this.#o.commandTimeoutMs ?? 10_000;
    if (ctl === undefined) {
      this.#tor = { progress: 0, error: 'tor control connection is not available' };
      this.#intro = { descriptor: 'error', introPoints: 0, error: 'tor control connection is not available' };
    } else {
      try {
        const b = parseBootstrapPhase(await ctl.getInfo('status/bootstrap-phase', { timeoutMs }));
        this.#tor = { progress: b.progress, tag: b.tag, ...(b.warning === undefined ? {} : { warning: b.warning }) };
      } catch (e) {
        this.#tor = { progress: 0, error: describeError(e) };
      }
      try {
        const text = await ctl.getInfo(`hs/service/desc/id/${this.#address}`, { timeoutMs });
        const { introPoints, revisionCounter } = countIntroPoints(text, this.#identity, Math.floor(this.#wall() / 1000));
        this.#intro = { descriptor: 'present', introPoints, revisionCounter: revisionCounter.toString() };
      } catch (e) {
        if (isNotFound(e)) this.#intro = { descriptor: 'none', introPoints: 0 };
        else {
          const msg = describeError(e);
          if (e instanceof DecodeError) this.#o.logger.warn({ err: msg }, 'cannot decode our own descriptor');
          this.#intro = { descriptor: 'error', introPoints: 0, error: msg };
        }
      }
    }
    this.#checkedAt = this.#wall();
    return this.#publish();
  }

  #combine(): NodeHealthState {
    const target = this.#o.target.state;
    const reasons: string[] = [];
    if (!target.healthy) reasons.push(target.lastError === undefined ? 'target not checked yet' : `target unhealthy: ${target.lastError}`);
    if (this.#tor.error !== undefined) reasons.push(`tor: ${this.#tor.error}`);
    else if (this.#tor.progress < 100) reasons.push(`tor bootstrapping (${this.#tor.progress}%${this.#tor.tag === undefined ? '' : ` ${this.#tor.tag}`})`);
    const min = this.#o.minIntroPoints ?? 1;
    if (this.#intro.descriptor === 'error') reasons.push(`descriptor: ${this.#intro.error ?? 'unreadable'}`);
    else if (this.#intro.introPoints < min) {
      reasons.push(this.#intro.descriptor === 'none' ? 'no descriptor yet' : `${this.#intro.introPoints} intro points (need ${min})`);
    }
    return Object.freeze({
      healthy: reasons.length === 0,
      target,
      tor: this.#tor,
      intro: this.#intro,
      ...(this.#checkedAt === undefined ? {} : { checkedAt: this.#checkedAt }),
      reasons: Object.freeze(reasons),
    });
  }

  #publish(): NodeHealthState {
    const prev = this.#state;
    const next = this.#combine();
    this.#state = next;
    if (prev.healthy !== next.healthy || prev.reasons.join('\n') !== next.reasons.join('\n')) {
      if (prev.healthy !== next.healthy) {
        this.#o.logger[next.healthy ? 'info' : 'warn']({ healthy: next.healthy, reasons: next.reasons, introPoints: next.intro.introPoints, bootstrap: next.tor.progress }, next.healthy ? 'node healthy' : 'node not healthy');
      }
      for (const l of [...this.#listeners]) {
        try {
          l(next);
        } catch (e) {
          this.#o.logger.error({ err: describeError(e) }, 'node health listener threw');
        }
      }
    }
    return next;
  }
}
