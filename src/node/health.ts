/**
 * Target health checker: probes the target onion service through the node's own tor
 * SocksPort on an interval and keeps the result as a {@link HealthState}.
 *
 * A probe dials the target with {@link dialThroughTor} (SOCKS5 with the hostname sent to
 * tor, ATYP 0x03 — nothing is resolved locally), then either
 * - `tcp`: counts a completed SOCKS CONNECT as healthy (tor answers the CONNECT only after the
 *   rendezvous circuit is open and the service accepted the stream: tor's
 *   `connection_ap_handshake_socks_reply` sends success on RELAY_CONNECTED), or
 * - `http`: sends `GET <path> HTTP/1.1` with `Host: <target address>` and `Connection: close`,
 *   reads the status line (bounded: 8 KiB) and compares the status with `expectStatus`
 *   (default: any 2xx or 3xx).
 * Each probe is bounded by `timeoutMs` (dial + answer). Probes never overlap: the next one is
 * scheduled `intervalMs` after the previous one finished. Timers are injectable
 * ({@link Timers} from the tor supervisor) so tests drive the schedule with a fake clock.
 *
 * Error codes in `lastError` (the probe's own; dial failures carry the SOCKS dialer's
 * TB_ERR_SOCKS_* codes): TB_ERR_HEALTH_TIMEOUT, TB_ERR_HEALTH_STATUS, TB_ERR_HEALTH_PROTOCOL;
 * TB_ERR_HEALTH_CONFIG (thrown by the constructor for invalid options).
 */
import type net from 'node:net';
import type { Logger } from '../adapters/log/logger.js';
import { dialThroughTor, type DialDestination, type SocksEndpoint } from '../adapters/net/socks-dialer.js';
import { realTimers, type Timers } from '../adapters/system/timers.js';
import { SingleFlightPoller } from './poller.js';
import { TorbalanceError } from '../core/errors.js';

/** How to probe the target. */
export type HealthProbe =
  | { readonly kind: 'http'; readonly path: string; readonly expectStatus?: readonly number[] }
  | { readonly kind: 'tcp' };

/** The dial function (injectable for tests; default {@link dialThroughTor}). */
export type DialFunction = (socks: SocksEndpoint, dest: DialDestination, timeoutMs: number, signal?: AbortSignal) => Promise<net.Socket>;

/** Options of {@link TargetHealth} (docs: notes/node-contracts.md). */
export interface HealthOptions {
  readonly target: { readonly address: string; readonly port: number };
  readonly socks: { readonly host: string; readonly port: number };
  readonly probe: HealthProbe;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Clock and timers for the schedule and the probe deadline. Default: the real ones. */
  readonly timers?: Timers;
  readonly logger: Logger;
  /** Consecutive failures before a healthy target counts as unhealthy. Default 1. */
  readonly unhealthyAfter?: number;
  /** Wall clock for `lastCheckAt` (ms since the epoch). Default `Date.now`. */
  readonly wallClock?: () => number;
  /** Dialer. Default {@link dialThroughTor}. */
  readonly dial?: DialFunction;
}

/** The checker's view of the target. */
export interface HealthState {
  /** Healthy after a successful probe; false before the first probe. */
  readonly healthy: boolean;
  /** Wall-clock ms of the last finished probe. */
  readonly lastCheckAt?: number;
  /** Duration of the last successful probe. */
  readonly latencyMs?: number;
  /** `<code>: <message>` of the last failed probe (cleared by a success). */
  readonly lastError?: string;
  readonly consecutiveFailures: number;
}

/** One finished probe ({@link TargetHealth.onProbe}). */
export interface ProbeResult {
  readonly ok: boolean;
  /** From the start of the dial to success or failure (timeouts included), ms. */
  readonly durationMs: number;
}

/** Longest status line / header block read from the target before giving up. */
export const MAX_STATUS_LINE_BYTES = 8192;

const INITIAL: HealthState = Object.freeze({ healthy: false, consecutiveFailures: 0 });

function configError(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_HEALTH_CONFIG', 'config', message);
}

function checkOptions(o: HealthOptions): void {
  if (!Number.isInteger(o.intervalMs) || o.intervalMs < 1) throw configError('health interval must be a positive integer (ms)');
  if (!Number.isInteger(o.timeoutMs) || o.timeoutMs < 1) throw configError('health timeout must be a positive integer (ms)');
  if (!Number.isInteger(o.target.port) || o.target.port < 1 || o.target.port > 65535) throw configError('health target port out of range');
  if (o.unhealthyAfter !== undefined && (!Number.isInteger(o.unhealthyAfter) || o.unhealthyAfter < 1)) {
    throw configError('unhealthyAfter must be a positive integer');
  }
  if (o.probe.kind === 'http') {
    if (!/^\/[\x21-\x7e]*$/.test(o.probe.path) || o.probe.path.length > 2048) throw configError('health path must start with "/" and be printable ASCII');
    for (const s of o.probe.expectStatus ?? []) {
      if (!Number.isInteger(s) || s < 100 || s > 599) throw configError('expected health status codes must be 100..599');
    }
  }
}

/** `Host` header value for the target (port omitted when it is 80). */
function hostHeader(t: { readonly address: string; readonly port: number }): string {
  return t.port === 80 ? t.address : `${t.address}:${t.port}`;
}

/** `code: message` of an error, for `lastError`. */
export function describeError(e: unknown): string {
  if (e instanceof TorbalanceError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Read an HTTP/1.x status code from the start of a response. Returns undefined while the
 * status line is incomplete; throws TB_ERR_HEALTH_PROTOCOL if it is not a status line.
 */
export function parseStatusLine(head: Uint8Array): number | undefined {
  let end = -1;
  for (let i = 0; i + 1 < head.length; i++) {
    if (head[i] === 0x0d && head[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    if (head.length >= MAX_STATUS_LINE_BYTES) throw new TorbalanceError('TB_ERR_HEALTH_PROTOCOL', 'target', 'target sent no HTTP status line');
    return undefined;
  }
  const line = new TextDecoder('latin1').decode(head.subarray(0, end));
  const m = /^HTTP\/1\.[01] ([1-5][0-9]{2})(?: |$)/.exec(line);
  if (m === null) throw new TorbalanceError('TB_ERR_HEALTH_PROTOCOL', 'target', 'target did not answer with an HTTP/1.x status line');
  return Number(m[1]);
}

/** Periodic target prober. */
export class TargetHealth {
  #o: HealthOptions;
  readonly #timers: Timers;
  readonly #wall: () => number;
  readonly #dial: DialFunction;
  readonly #listeners = new Set<(s: HealthState) => void>();
  readonly #probeListeners = new Set<(p: ProbeResult) => void>();
  #state: HealthState = INITIAL;
  readonly #poller: SingleFlightPoller<HealthState>;
  #abort: AbortController | undefined;

  constructor(options: HealthOptions) {
    checkOptions(options);
    this.#o = options;
    this.#timers = options.timers ?? realTimers;
    this.#wall = options.wallClock ?? Date.now;
    this.#dial = options.dial ?? dialThroughTor;
    this.#poller = new SingleFlightPoller(() => this.#runProbe(), options.intervalMs, this.#timers);
  }

  /** The latest state (a frozen snapshot). */
  get state(): HealthState {
    return this.#state;
  }

  /**
   * Change the probe, its interval and timeout while running (SIGHUP reload): the next probe
   * uses them (a probe in flight finishes with the old ones; a pending wait keeps its length).
   * Throws TB_ERR_HEALTH_CONFIG (nothing changed) for invalid values.
   */
  update(next: { readonly probe?: HealthProbe; readonly intervalMs?: number; readonly timeoutMs?: number }): void {
    const o: HealthOptions = {
      ...this.#o,
      ...(next.probe === undefined ? {} : { probe: next.probe }),
      ...(next.intervalMs === undefined ? {} : { intervalMs: next.intervalMs }),
      ...(next.timeoutMs === undefined ? {} : { timeoutMs: next.timeoutMs }),
    };
    checkOptions(o);
    this.#o = o;
    this.#poller.setIntervalMs(o.intervalMs);
  }

  /** Start probing: one probe now, then one `intervalMs` after each probe finished. */
  start(): void {
    this.#poller.start();
  }

  /** Stop probing; an in-flight probe is aborted and its result dropped. */
  stop(): void {
    this.#poller.stop();
    this.#abort?.abort();
  }

  /**
   * Listen for changes of `healthy` or `lastError` (called after the probe that changed
   * them, and after the first probe). Returns the unsubscribe function.
   */
  onChange(listener: (s: HealthState) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Listen for every finished probe (success or failure, with its duration on the injected
   * clock; a probe aborted by {@link stop} does not count). Feeds the probe-duration
   * histogram. Returns the unsubscribe function.
   */
  onProbe(listener: (p: ProbeResult) => void): () => void {
    this.#probeListeners.add(listener);
    return () => {
      this.#probeListeners.delete(listener);
    };
  }

  /** Run one probe now (joins a probe already in flight) and return the new state. */
  probeOnce(): Promise<HealthState> {
    return this.#poller.now();
  }

  async #runProbe(): Promise<HealthState> {
    const abort = new AbortController();
    this.#abort = abort;
    const started = this.#timers.now();
    let error: unknown;
    try {
      await this.#probe(abort.signal);
    } catch (e) {
      error = e;
    } finally {
      if (this.#abort === abort) this.#abort = undefined;
    }
    if (abort.signal.aborted && error !== undefined) return this.#state; // stopped mid-probe: keep the previous state
    const prev = this.#state;
    const now = this.#wall();
    const durationMs = Math.max(0, this.#timers.now() - started);
    let next: HealthState;
    if (error === undefined) {
      next = Object.freeze({ healthy: true, lastCheckAt: now, latencyMs: Math.round(durationMs), consecutiveFailures: 0 });
    } else {
      const failures = prev.consecutiveFailures + 1;
      const threshold = this.#o.unhealthyAfter ?? 1;
      const healthy = prev.healthy && failures < threshold;
      next = Object.freeze({
        healthy,
        lastCheckAt: now,
        ...(prev.latencyMs === undefined || !healthy ? {} : { latencyMs: prev.latencyMs }),
        lastError: describeError(error),
        consecutiveFailures: failures,
      });
    }
    this.#state = next;
    for (const l of [...this.#probeListeners]) {
      try {
        l({ ok: error === undefined, durationMs });
      } catch (e) {
        this.#o.logger.error({ err: describeError(e) }, 'probe listener threw');
      }
    }
    const first = prev.lastCheckAt === undefined;
    if (first || prev.healthy !== next.healthy || prev.lastError !== next.lastError) {
      if (prev.healthy !== next.healthy || first) {
        this.#o.logger[next.healthy ? 'info' : 'warn'](
          { healthy: next.healthy, consecutiveFailures: next.consecutiveFailures, latencyMs: next.latencyMs, error: next.lastError },
          next.healthy ? 'target healthy' : 'target unhealthy',
        );
      }
      for (const l of [...this.#listeners]) {
        try {
          l(next);
        } catch (e) {
          this.#o.logger.error({ err: describeError(e) }, 'health listener threw');
        }
      }
    }
    return next;
  }

  /** One probe, bounded by `timeoutMs` on the injectable clock. Resolves when healthy. */
  #probe(outer: AbortSignal): Promise<void> {
    const o = this.#o;
    return new Promise<void>((resolve, reject) => {
      let sock: net.Socket | undefined;
      let done = false;
      const ac = new AbortController();
      const finish = (e?: unknown): void => {
        if (done) return;
        done = true;
        this.#timers.clearTimeout(timer);
        outer.removeEventListener('abort', onOuterAbort);
        ac.abort();
        sock?.destroy();
        if (e === undefined) resolve();
        else reject(e instanceof Error ? e : new Error(describeError(e)));
      };
      const timer = this.#timers.setTimeout(() => {
        finish(new TorbalanceError('TB_ERR_HEALTH_TIMEOUT', 'target', `no answer from the target within ${o.timeoutMs} ms`));
      }, o.timeoutMs);
      const onOuterAbort = (): void => {
        finish(new TorbalanceError('TB_ERR_HEALTH_TIMEOUT', 'internal', 'health probe stopped'));
      };
      outer.addEventListener('abort', onOuterAbort, { once: true });
      this.#dial(o.socks, { host: o.target.address, port: o.target.port }, o.timeoutMs, ac.signal).then(
        (s) => {
          if (done) {
            s.destroy();
            return;
          }
          sock = s;
          if (o.probe.kind === 'tcp') {
            finish();
            return;
          }
          this.#httpExchange(s, o.probe, finish);
        },
        (e: unknown) => {
          finish(e);
        },
      );
    });
  }

  #httpExchange(s: net.Socket, probe: { readonly path: string; readonly expectStatus?: readonly number[] }, finish: (e?: unknown) => void): void {
    let head = Buffer.alloc(0);
    s.on('error', (e) => {
      finish(new TorbalanceError('TB_ERR_HEALTH_PROTOCOL', 'target', `connection to the target failed: ${e.message}`));
    });
    s.on('data', (d: Buffer) => {
      head = Buffer.concat([head, d]).subarray(0, MAX_STATUS_LINE_BYTES);
      let status: number | undefined;
      try {
        status = parseStatusLine(head);
      } catch (e) {
        finish(e);
        return;
      }
      if (status === undefined) return;
      const ok = probe.expectStatus === undefined ? status >= 200 && status < 400 : probe.expectStatus.includes(status);
      finish(ok ? undefined : new TorbalanceError('TB_ERR_HEALTH_STATUS', 'target', `target answered ${probe.path} with HTTP ${status}`));
    });
    s.on('end', () => {
      finish(new TorbalanceError('TB_ERR_HEALTH_PROTOCOL', 'target', 'target closed the connection before sending a status line'));
    });
    s.write(
      `GET ${probe.path} HTTP/1.1\r\nHost: ${hostHeader(this.#o.target)}\r\nUser-Agent: torbalance-health\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
    );
    s.resume();
  }
}
