/**
 * Notifications to systemd (sd_notify(3)) for `Type=notify` (deploy/torbalance.service); what
 * is sent and when is src/core/sd-notify.ts.
 *
 * The protocol is a datagram on the unix socket `NOTIFY_SOCKET`. Node has no unix datagram
 * sockets, so each message is sent by spawning systemd's own client, `systemd-notify`
 * (Debian's `systemd` package, always present where the unit runs), with `--pid=<this
 * process>` (it adds `MAINPID=`) and the assignments as arguments (never secrets: `READY`,
 * `STOPPING`, `WATCHDOG`, `STATUS`). `systemd-notify` waits until the manager has read the
 * message (its notify barrier) and exits 0. It runs in the node's cgroup but is not the main
 * process, so the unit says `NotifyAccess=all`; for that reason the node's tor must not see
 * `NOTIFY_SOCKET` (Debian's tor speaks sd_notify itself and would send an early `READY=1`):
 * {@link withoutNotifyEnv} strips it from the tor's environment.
 *
 * Without `NOTIFY_SOCKET` (not under systemd, or `Type=simple`) nothing is spawned or sent.
 * Messages are sent one at a time, in order. A failed send is reported to `onError` (logged by
 * the caller) and never stops the node.
 */
import { spawn } from 'node:child_process';
import { TorbalanceError } from '../../core/errors.js';
import { notifyAssignments, watchdogIntervalMs, type NotifyField } from '../../core/sd-notify.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

/** The variables of the notify protocol, which a child (tor) must not inherit. */
export const NOTIFY_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/** `env` without {@link NOTIFY_ENV}. */
export function withoutNotifyEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (!(NOTIFY_ENV as readonly string[]).includes(k)) out[k] = v;
  return out;
}

/** Options of {@link SdNotifier}. */
export interface SdNotifierOptions {
  /** Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Default `/usr/bin/systemd-notify`. */
  readonly binary?: string;
  /** The main process (`MAINPID=`, `WATCHDOG_PID`). Default `process.pid`. */
  readonly pid?: number;
  readonly timers?: Timers;
  /** A send failed (the node goes on). */
  readonly onError?: (e: TorbalanceError) => void;
}

/** Sends sd_notify messages through `systemd-notify` (see the module comment). */
export class SdNotifier {
  readonly #socket: string | undefined;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #binary: string;
  readonly #pid: number;
  readonly #timers: Timers;
  readonly #onError: ((e: TorbalanceError) => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #watchdog: TimerHandle | undefined;
  #closed = false;

  constructor(opts: SdNotifierOptions = {}) {
    this.#env = opts.env ?? process.env;
    const s = this.#env['NOTIFY_SOCKET'];
    this.#socket = s === undefined || s === '' ? undefined : s;
    this.#binary = opts.binary ?? '/usr/bin/systemd-notify';
    this.#pid = opts.pid ?? process.pid;
    this.#timers = opts.timers ?? realTimers;
    this.#onError = opts.onError;
  }

  /** True when `NOTIFY_SOCKET` is set (something listens for notifications). */
  get enabled(): boolean {
    return this.#socket !== undefined;
  }

  /**
   * Send one message (after the ones before it). Resolves true once systemd-notify delivered
   * it, false when disabled (nothing sent) or on failure (reported to `onError`).
   */
  send(fields: readonly NotifyField[]): Promise<boolean> {
    if (this.#socket === undefined || fields.length === 0) return Promise.resolve(false);
    const args = [`--pid=${this.#pid}`, ...notifyAssignments(fields)];
    const socket = this.#socket;
    const p = this.#queue.then(() => this.#spawn(socket, args));
    this.#queue = p;
    return p;
  }

  #spawn(socket: string, args: readonly string[]): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let stderr = '';
      let settled = false; // a spawn failure emits 'error' and then 'close'
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        this.#onError?.(new TorbalanceError('TB_ERR_SD_NOTIFY', 'internal', `systemd-notify ${args.slice(1).join(' ')} failed: ${why}`));
        resolve(false);
      };
      // Only what systemd-notify needs: the socket and a PATH-independent binary.
      const child = spawn(this.#binary, args, { env: { NOTIFY_SOCKET: socket }, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.on('data', (c: Buffer) => {
        if (stderr.length < 2000) stderr += c.toString('utf8');
      });
      child.on('error', (e) => {
        fail((e as NodeJS.ErrnoException).code ?? e.message);
      });
      child.on('close', (code, signal) => {
        if (code !== 0) {
          fail(`${code === null ? `signal ${String(signal)}` : `exit ${code}`}${stderr === '' ? '' : `: ${stderr.trim().slice(0, 300)}`}`);
        } else if (!settled) {
          settled = true;
          resolve(true);
        }
      });
    });
  }

  /**
   * Start `WATCHDOG=1` pings every half `WATCHDOG_USEC` when the watchdog is on
   * (src/core/sd-notify.ts); returns the interval in ms, or undefined (no pings).
   */
  startWatchdog(): number | undefined {
    const ms = this.enabled ? watchdogIntervalMs(this.#env, this.#pid) : undefined;
    if (ms === undefined || this.#watchdog !== undefined || this.#closed) return ms;
    const tick = (): void => {
      this.#watchdog = this.#timers.setTimeout(tick, ms);
      void this.send([['WATCHDOG', '1']]);
    };
    tick();
    return ms;
  }

  /** Stop the watchdog pings; resolves after the messages already queued were sent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#watchdog !== undefined) this.#timers.clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    await this.#queue;
  }
}
