/**
 * Tor process supervisor: runs one `tor` as a child process, reaches its control port and
 * keeps it running.
 *
 * What it does (tor behaviour from tor's manual and `src/app/config/config.c`,
 * `src/feature/control/control.c`):
 * - writes `<dataDir>/torrc` (mode 0600; the data dir is 0700, which tor insists on) with
 *   `DataDirectory`, `ControlPort unix:<dataDir>/control.sock`, `CookieAuthentication 1` and,
 *   unless disabled, `__OwningControllerProcess <our pid>` (tor polls that pid and exits when
 *   it is gone, so a crashed parent leaves no stray tor);
 * - starts `tor -f <torrc> --defaults-torrc <empty file>` in the foreground (never
 *   RunAsDaemon); its stdout/stderr go to a bounded ring buffer and `<dataDir>/tor-output.log`
 *   (size-capped with one rotation to `.1`, src/adapters/log/rotating-file.ts; a `detached` tor writes the file itself, unbounded);
 * - waits for the control socket, connects with {@link TorControl} (cookie auth), optionally
 *   checks with one GETCONF that every option torbalance manages (core/node-torrc.ts
 *   `MANAGED_TOR_OPTIONS` and the HiddenService* groups) holds exactly the torrc's value —
 *   else an abbreviated option name, a second value for a list option or an unexpected file
 *   changed it, and the start fails with TB_ERR_TOR_MANAGED_OPTION after tor is stopped —,
 *   optionally sends TAKEOWNERSHIP (tor then exits when that control connection closes), and optionally
 *   waits for bootstrap 100% via `GETINFO status/bootstrap-phase` and `STATUS_CLIENT`
 *   events (never by reading logs);
 * - restarts tor with bounded exponential backoff when it dies unexpectedly (timers and clock
 *   are injectable: {@link RestartBackoff}, {@link Timers});
 * - `stop()` sends SIGTERM, then SIGKILL after a grace period, and resolves when tor exited.
 *
 * A `detached` process (for `torbalance testnet up`) runs in its own process group, writes
 * its output straight to the log file and can be left running with {@link TorProcess.detach}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  openSync,
  readSync,
  fstatSync,
} from 'node:fs';
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { RotatingLogFile } from '../log/rotating-file.js';
import { errnoCode } from '../system/errno.js';
import { withoutNotifyEnv } from '../system/sd-notify.js';
import { TorbalanceError } from '../../core/errors.js';
import { managedGetconfKeys, managedOptionMismatches } from '../../core/node-torrc.js';
import { renderTorrc, type TorrcEntry } from '../../core/torrc.js';
import { TorControl, type ControlEndpoint } from './control.js';
import { realTimers, type TimerHandle, type Timers } from '../system/timers.js';

/** Restart policy: delay = min(maxDelayMs, initialDelayMs · factor^(n−1)) for the n-th consecutive restart. */
export interface BackoffOptions {
  /** Delay before the first restart. Default 500 ms. */
  readonly initialDelayMs?: number;
  /** Upper bound on the delay. Default 30 s. */
  readonly maxDelayMs?: number;
  /** Growth factor. Default 2. */
  readonly factor?: number;
  /** A process that stayed up this long resets the count. Default 60 s. */
  readonly resetAfterMs?: number;
  /** Give up after this many consecutive restarts. Default 10. */
  readonly maxRestarts?: number;
}

/**
 * Bounded exponential backoff for restarts. Pure bookkeeping: times are passed in.
 */
export class RestartBackoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #resetAfter: number;
  readonly #maxRestarts: number;
  #consecutive = 0;
  #startedAt: number | undefined;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialDelayMs ?? 500;
    this.#max = options.maxDelayMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#resetAfter = options.resetAfterMs ?? 60_000;
    this.#maxRestarts = options.maxRestarts ?? 10;
    if (!(
      this.#initial >= 0 &&
      this.#max >= this.#initial &&
      this.#factor >= 1 &&
      this.#maxRestarts >= 0
    )) {
      throw new TorbalanceError(
        'TB_ERR_TOR_PROCESS_CONFIG',
        'config',
        'invalid restart backoff options',
      );
    }
  }

  /** Consecutive restarts so far (0 after a reset). */
  get consecutive(): number {
    return this.#consecutive;
  }

  /** Record that the process (re)started at `nowMs`. */
  started(nowMs: number): void {
    this.#startedAt = nowMs;
  }

  /**
   * The process died at `nowMs`: the delay before the next restart, or `undefined` when the
   * restart budget is used up.
   */
  nextDelay(nowMs: number): number | undefined {
    if (this.#startedAt !== undefined && nowMs - this.#startedAt >= this.#resetAfter)
      this.#consecutive = 0;
    this.#startedAt = undefined;
    if (this.#consecutive >= this.#maxRestarts) return undefined;
    this.#consecutive += 1;
    return Math.min(this.#max, this.#initial * this.#factor ** (this.#consecutive - 1));
  }
}

/** What the supervisor waits for before a start counts as done. */
export type TorReadiness = 'control' | 'bootstrap';

/** Options of {@link TorProcess}. */
export interface TorProcessOptions {
  /** Absolute path of tor's DataDirectory (created 0700). No whitespace. */
  readonly dataDir: string;
  /** torrc entries besides DataDirectory/ControlPort/CookieAuthentication/__OwningControllerProcess. */
  readonly torrc: readonly TorrcEntry[];
  /** The tor binary. Default `tor`. */
  readonly torBinary?: string;
  /** Add `__OwningControllerProcess <process.pid>`. Default true. */
  readonly owned?: boolean;
  /**
   * After connecting, check with GETCONF that tor runs with exactly the managed options of
   * the torrc written (see the module comment); a mismatch fails the start. Default false.
   */
  readonly checkManagedOptions?: boolean;
  /**
   * Send TAKEOWNERSHIP after connecting (tor exits when our control connection closes). Default
   * false. An owned tor that has not exited `ownerExitGraceMs` after that connection closed
   * while we still run it (e.g. a command timed out because tor is frozen) is SIGKILLed: a tor
   * that no longer answers its controller must not keep serving (docs/DESIGN.md "Losing a
   * node"). With `restart`, the supervisor then starts a new one.
   */
  readonly takeOwnership?: boolean;
  /** See `takeOwnership`. Default 3000 ms. */
  readonly ownerExitGraceMs?: number;
  /** Wait for the control port only, or for bootstrap 100% too. Default 'bootstrap'. */
  readonly readiness?: TorReadiness;
  /** Overall deadline for one start (spawn → ready). Default 120 s. */
  readonly startTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL in stop(). Default 10 s. */
  readonly killTimeoutMs?: number;
  /** Restart on unexpected exit. Default true. */
  readonly restart?: boolean;
  readonly backoff?: BackoffOptions;
  /** Lines kept in the in-memory output ring. Default 300. */
  readonly ringLines?: number;
  /**
   * Run in a new process group with output written directly to the log file, so the process
   * can outlive us after {@link TorProcess.detach}. Default false.
   */
  readonly detached?: boolean;
  readonly timers?: Timers;
  /** Control client options (timeouts). */
  readonly commandTimeoutMs?: number;
}

/** Event payloads. */
export interface TorProcessEvents {
  /** tor exited; `expected` is true after stop(). */
  exit: {
    readonly pid: number;
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
    readonly expected: boolean;
  };
  /** A restart is scheduled after `delayMs` (n-th consecutive restart). */
  restart: { readonly attempt: number; readonly delayMs: number };
  /** tor is up (control connected; bootstrapped if readiness is 'bootstrap'). */
  ready: { readonly pid: number; readonly restarts: number };
  /** A restart failed or the restart budget is used up; `gaveUp` means no more restarts. */
  error: { readonly error: Error; readonly gaveUp: boolean };
}

export type TorProcessState =
  'idle' | 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped' | 'failed' | 'detached';

type Listener<K extends keyof TorProcessEvents> = (e: TorProcessEvents[K]) => void;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Run {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  hasExited: boolean;
}

/** Unix socket paths are limited to 107 bytes (sun_path) on Linux. */
const MAX_SOCKET_PATH = 100;

function procError(code: string, message: string, cause?: unknown): TorbalanceError {
  return new TorbalanceError(
    code,
    code === 'TB_ERR_TOR_PROCESS_CONFIG' || code === 'TB_ERR_TOR_MANAGED_OPTION' ? 'config' : 'tor',
    message,
    cause === undefined ? {} : { cause },
  );
}

/** Parse `PROGRESS=NN` from a bootstrap status line (GETINFO status/bootstrap-phase or STATUS_CLIENT). */
export function parseBootstrapProgress(line: string): number | undefined {
  const m = /\bBOOTSTRAP\b.*?\bPROGRESS=(\d{1,3})\b/.exec(line);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return n <= 100 ? n : undefined;
}

/** Read at most the last `maxBytes` of a file as text ('' if unreadable). */
export function tailFile(path: string, maxBytes = 8192): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } catch (e) {
    if (errnoCode(e) === undefined) throw e; // any file-system error: the file is unreadable
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Supervises one tor child process. */
export class TorProcess {
  readonly dataDir: string;
  readonly torrcPath: string;
  readonly logPath: string;
  readonly controlSocketPath: string;
  readonly #opts: TorProcessOptions;
  readonly #timers: Timers;
  readonly #backoff: RestartBackoff;
  readonly #ring: string[] = [];
  readonly #ringMax: number;
  readonly #listeners = new Map<keyof TorProcessEvents, Set<(e: never) => void>>();
  #state: TorProcessState = 'idle';
  #run: Run | undefined;
  #control: TorControl | undefined;
  #log: RotatingLogFile | undefined;
  #restartTimer: TimerHandle | undefined;
  #restarts = 0;
  #partial = '';
  #stopRequested = false;
  /** Every entry of the torrc last written (for the managed-options check). */
  #rendered: readonly TorrcEntry[] = [];

  constructor(options: TorProcessOptions) {
    if (!isAbsolute(options.dataDir) || /\s/.test(options.dataDir)) {
      throw procError(
        'TB_ERR_TOR_PROCESS_CONFIG',
        'tor data directory must be an absolute path without whitespace',
      );
    }
    this.#opts = options;
    this.dataDir = options.dataDir;
    this.torrcPath = join(options.dataDir, 'torrc');
    this.logPath = join(options.dataDir, 'tor-output.log');
    this.controlSocketPath = join(options.dataDir, 'control.sock');
    if (Buffer.byteLength(this.controlSocketPath) > MAX_SOCKET_PATH) {
      throw procError(
        'TB_ERR_TOR_PROCESS_CONFIG',
        `control socket path is longer than ${MAX_SOCKET_PATH} bytes: ${this.controlSocketPath}`,
      );
    }
    this.#timers = options.timers ?? realTimers;
    this.#backoff = new RestartBackoff(options.backoff);
    this.#ringMax = options.ringLines ?? 300;
  }

  /** The control endpoint (a unix socket in the data dir). */
  get controlEndpoint(): ControlEndpoint {
    return { kind: 'unix', path: this.controlSocketPath };
  }

  /** The current tor pid, if running. */
  get pid(): number | undefined {
    return this.#run !== undefined && !this.#run.hasExited ? this.#run.pid : undefined;
  }

  get state(): TorProcessState {
    return this.#state;
  }

  /** Number of restarts so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The current control connection (valid while state is 'ready'). */
  get control(): TorControl {
    if (this.#control === undefined)
      throw procError('TB_ERR_TOR_PROCESS_STATE', 'tor control connection is not available');
    return this.#control;
  }

  /** The last lines tor printed (from the ring, or the log file for detached processes). */
  output(): string[] {
    if (this.#opts.detached === true)
      return tailFile(this.logPath).split('\n').slice(-this.#ringMax);
    return [...this.#ring];
  }

  /** Subscribe to an event; returns an unsubscribe function. */
  on<K extends keyof TorProcessEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const l = listener as (e: never) => void;
    set.add(l);
    return () => set.delete(l);
  }

  #emit<K extends keyof TorProcessEvents>(event: K, payload: TorProcessEvents[K]): void {
    for (const l of this.#listeners.get(event) ?? []) {
      try {
        (l as Listener<K>)(payload);
      } catch (_ignored) {
        // whatever a listener throws is its own bug and must not break supervision
      }
    }
  }

  /** Start tor and wait until ready (control, or bootstrap 100%). Rejects on timeout, abort or exit. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#state !== 'idle' && this.#state !== 'stopped' && this.#state !== 'failed') {
      throw procError('TB_ERR_TOR_PROCESS_STATE', `cannot start tor in state ${this.#state}`);
    }
    this.#state = 'starting';
    this.#stopRequested = false;
    try {
      await this.#launch(signal);
    } catch (e) {
      await this.#killCurrent();
      this.#state = 'failed';
      throw e;
    }
    this.#state = 'ready';
    this.#emit('ready', { pid: this.#run!.pid, restarts: this.#restarts });
  }

  /** Send TAKEOWNERSHIP on the current control connection: tor exits when it closes. */
  async takeOwnership(): Promise<void> {
    await this.control.takeOwnership();
  }

  async #prepare(): Promise<string[]> {
    const dir = this.dataDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const entries: TorrcEntry[] = [
      ['DataDirectory', dir],
      ['ControlPort', `unix:${this.controlSocketPath}`],
      ['CookieAuthentication', '1'],
      ['Log', 'notice stdout'],
    ];
    if (this.#opts.owned ?? true) entries.push(['__OwningControllerProcess', String(process.pid)]);
    entries.push(...this.#opts.torrc);
    this.#rendered = entries;
    await writeFile(this.torrcPath, renderTorrc(entries), { mode: 0o600 });
    await chmod(this.torrcPath, 0o600);
    const defaults = join(dir, 'torrc-defaults');
    await writeFile(defaults, '', { mode: 0o600 });
    await rm(this.controlSocketPath, { force: true });
    return ['-f', this.torrcPath, '--defaults-torrc', defaults];
  }

  #onOutput(chunk: Buffer): void {
    const text = this.#partial + chunk.toString('utf8');
    const lines = text.split('\n');
    this.#partial = (lines.pop() ?? '').slice(-4096);
    for (const line of lines) {
      this.#ring.push(line);
      if (this.#ring.length > this.#ringMax) this.#ring.shift();
    }
    this.#log?.write(chunk);
  }

  #spawn(args: string[]): Run {
    const bin = this.#opts.torBinary ?? 'tor';
    let child: ChildProcess;
    if (this.#opts.detached === true) {
      const fd = openSync(this.logPath, 'a', 0o600);
      try {
        child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: true, env: withoutNotifyEnv(process.env) });
      } finally {
        closeSync(fd);
      }
    } else {
      // Bounded: at most ~2 × 8 MiB (src/adapters/log/rotating-file.ts).
      this.#log ??= new RotatingLogFile(this.logPath);
      child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: withoutNotifyEnv(process.env) });
      child.stdout?.on('data', (c: Buffer) => {
        this.#onOutput(c);
      });
      child.stderr?.on('data', (c: Buffer) => {
        this.#onOutput(c);
      });
    }
    const exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, sig) => {
        resolve({ code, signal: sig });
      });
      child.once('error', () => {
        resolve({ code: null, signal: null });
      });
    });
    const run: Run = { child, pid: child.pid ?? -1, exited, hasExited: false };
    void exited.then((ex) => {
      run.hasExited = true;
      this.#onExit(run, ex);
    });
    return run;
  }

  #describeOutput(): string {
    const tail = this.output()
      .filter((l) => l.trim() !== '')
      .slice(-8)
      .join(' | ');
    return tail === '' ? '' : `; tor said: ${tail.slice(-1500)}`;
  }

  async #launch(signal?: AbortSignal): Promise<void> {
    const deadline = this.#timers.now() + (this.#opts.startTimeoutMs ?? 120_000);
    const args = await this.#prepare();
    if (this.#stopRequested)
      throw procError('TB_ERR_TOR_PROCESS_ABORTED', 'tor start aborted by stop()');
    const spawnError = new Promise<Error>((resolve) => {
      const run = this.#spawn(args);
      this.#run = run;
      run.child.once('error', (e) => {
        resolve(e);
      });
    });
    const run = this.#run!;
    if (run.pid === -1) {
      const e = await spawnError;
      throw procError(
        'TB_ERR_TOR_PROCESS_SPAWN',
        `cannot start ${this.#opts.torBinary ?? 'tor'}: ${e.message}`,
        e,
      );
    }
    this.#backoff.started(this.#timers.now());

    // Everything below races against: tor exiting, the deadline, the abort signal.
    let cleanup = (): void => undefined;
    const failure = new Promise<never>((_, reject) => {
      const timer = this.#timers.setTimeout(
        () => {
          reject(
            procError(
              'TB_ERR_TOR_PROCESS_TIMEOUT',
              `tor did not become ready in time${this.#describeOutput()}`,
            ),
          );
        },
        Math.max(0, deadline - this.#timers.now()),
      );
      const onAbort = (): void => {
        reject(procError('TB_ERR_TOR_PROCESS_ABORTED', 'tor start aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted === true) onAbort();
      void run.exited.then((ex) => {
        reject(
          procError(
            'TB_ERR_TOR_PROCESS_EXITED',
            `tor exited during start (code ${ex.code}, signal ${ex.signal})${this.#describeOutput()}`,
          ),
        );
      });
      cleanup = () => {
        this.#timers.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
    });
    failure.catch(() => undefined);
    let stopped = false;
    try {
      const control = await Promise.race([this.#connect(() => stopped), failure]);
      this.#control = control;
      if (this.#opts.checkManagedOptions === true) await Promise.race([this.#checkManaged(control), failure]);
      if (this.#opts.takeOwnership === true) {
        await Promise.race([control.takeOwnership(), failure]);
        this.#watchOwner(control, run);
      }
      if ((this.#opts.readiness ?? 'bootstrap') === 'bootstrap')
        await Promise.race([this.#waitBootstrap(control, () => stopped), failure]);
    } finally {
      stopped = true;
      cleanup();
    }
  }

  /**
   * tor exits when its owning control connection closes (control.c `lost_owning_controller`).
   * If that connection closes while it is still our current one (not closed by stop/restart,
   * which clear `#control` first) and tor is still running after the grace period, tor is not
   * processing anything (frozen, SIGSTOPped, wedged): kill it so its intro circuits go.
   */
  #watchOwner(control: TorControl, run: Run): void {
    void control.closed.then(() => {
      if (this.#control !== control || run.hasExited) return;
      const timer = this.#timers.setTimeout(() => {
        if (run.hasExited || this.#run !== run) return;
        run.child.kill('SIGKILL'); // returns false (never throws) if tor is already gone
      }, this.#opts.ownerExitGraceMs ?? 3000);
      void run.exited.then(() => {
        this.#timers.clearTimeout(timer);
      });
    });
  }

  async #checkManaged(control: TorControl): Promise<void> {
    const reply = await control.request(`GETCONF ${managedGetconfKeys().join(' ')}`);
    const bad = managedOptionMismatches(this.#rendered, reply.lines.map((l) => l.text));
    if (bad.length > 0) {
      throw procError(
        'TB_ERR_TOR_MANAGED_OPTION',
        `tor runs with a value torbalance did not write for ${bad.join(', ')} (an abbreviated option name or a line outside torbalance's control set it); refusing to run — check tor.extra_config`,
      );
    }
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => this.#timers.setTimeout(resolve, ms));
  }

  async #connect(stopped: () => boolean): Promise<TorControl> {
    let lastError: unknown;
    while (!stopped()) {
      const exists = await stat(this.controlSocketPath).then(
        (s) => s.isSocket(),
        () => false,
      );
      if (exists) {
        try {
          return await TorControl.connect(this.controlEndpoint, {
            connectTimeoutMs: 5000,
            ...(this.#opts.commandTimeoutMs === undefined
              ? {}
              : { commandTimeoutMs: this.#opts.commandTimeoutMs }),
          });
        } catch (e) {
          lastError = e;
        }
      }
      await this.#sleep(50);
    }
    throw procError(
      'TB_ERR_TOR_PROCESS_TIMEOUT',
      'gave up connecting to the control socket',
      lastError,
    );
  }

  async #waitBootstrap(control: TorControl, stopped: () => boolean): Promise<void> {
    const flag = { done: false };
    let wake: (() => void) | undefined;
    const off = control.onEvent('STATUS_CLIENT', (e) => {
      const p = parseBootstrapProgress(e.raw);
      if (p === 100) {
        flag.done = true;
        wake?.();
      }
    });
    try {
      await control.setEvents(['STATUS_CLIENT']);
      while (!flag.done && !stopped()) {
        const p = parseBootstrapProgress(await control.getInfo('status/bootstrap-phase'));
        if (p === 100) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.#timers.setTimeout(resolve, 500);
        });
      }
    } finally {
      off();
      if (this.#control === control) await control.setEvents([]).catch(() => undefined);
    }
  }

  #onExit(run: Run, ex: Exit): void {
    if (run !== this.#run) return;
    const expected =
      this.#state === 'stopping' ||
      this.#state === 'stopped' ||
      this.#state === 'detached' ||
      this.#state === 'starting' ||
      this.#state === 'failed';
    this.#emit('exit', { pid: run.pid, code: ex.code, signal: ex.signal, expected });
    if (this.#state === 'detached') return;
    const control = this.#control;
    this.#control = undefined;
    void control?.close().catch(() => undefined);
    if (this.#state === 'ready' && (this.#opts.restart ?? true)) this.#scheduleRestart();
    else if (this.#state === 'ready') this.#state = 'failed';
  }

  #scheduleRestart(): void {
    const delay = this.#backoff.nextDelay(this.#timers.now());
    if (delay === undefined) {
      this.#state = 'failed';
      this.#emit('error', {
        error: procError(
          'TB_ERR_TOR_PROCESS_EXITED',
          `tor keeps dying; gave up after ${this.#backoff.consecutive} restarts${this.#describeOutput()}`,
        ),
        gaveUp: true,
      });
      return;
    }
    this.#state = 'restarting';
    this.#emit('restart', { attempt: this.#backoff.consecutive, delayMs: delay });
    this.#restartTimer = this.#timers.setTimeout(() => {
      this.#restartTimer = undefined;
      void this.#doRestart();
    }, delay);
  }

  async #doRestart(): Promise<void> {
    if (this.#state !== 'restarting') return;
    this.#restarts += 1;
    try {
      await this.#launch();
    } catch (e) {
      if ((this.#state as TorProcessState) !== 'restarting') return;
      const run = this.#run;
      await this.#killCurrent();
      if ((this.#state as TorProcessState) !== 'restarting' || run !== this.#run) return;
      this.#emit('error', { error: e instanceof Error ? e : new Error(String(e)), gaveUp: false });
      this.#state = 'ready'; // treat as a crash of a running process
      this.#scheduleRestart();
      return;
    }
    if ((this.#state as TorProcessState) !== 'restarting') return;
    this.#state = 'ready';
    this.#emit('ready', { pid: this.#run!.pid, restarts: this.#restarts });
  }

  async #killCurrent(): Promise<void> {
    const run = this.#run;
    const control = this.#control;
    this.#control = undefined;
    await control?.close().catch(() => undefined);
    if (run === undefined || run.hasExited) return;
    const prev = this.#state;
    // Mark expected so #onExit does not schedule a restart for this kill.
    if (prev === 'restarting' || prev === 'ready') this.#state = 'stopping';
    await this.#terminate(run);
    if (this.#state === 'stopping' && (prev === 'restarting' || prev === 'ready'))
      this.#state = prev;
  }

  async #terminate(run: Run): Promise<void> {
    if (run.hasExited) return;
    run.child.kill('SIGTERM'); // returns false (never throws) if tor is already gone
    let timer: TimerHandle | undefined;
    const killed = await Promise.race([
      run.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = this.#timers.setTimeout(() => {
          resolve(true);
        }, this.#opts.killTimeoutMs ?? 10_000);
      }),
    ]);
    if (timer !== undefined) this.#timers.clearTimeout(timer);
    if (killed) {
      run.child.kill('SIGKILL');
      await run.exited;
    }
  }

  /** Stop tor (SIGTERM, then SIGKILL after `killTimeoutMs`); resolves when it exited. No restarts after this. */
  async stop(): Promise<void> {
    if (this.#restartTimer !== undefined) {
      this.#timers.clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
    this.#state = 'stopping';
    this.#stopRequested = true;
    const control = this.#control;
    this.#control = undefined;
    await control?.close().catch(() => undefined);
    const run = this.#run;
    if (run !== undefined) await this.#terminate(run);
    this.#state = 'stopped';
    this.#closeLog();
  }

  /**
   * Stop supervising without stopping tor: close the control connection and let the process
   * outlive us. Only meaningful for `detached` processes without `owned`.
   */
  async detach(): Promise<void> {
    if (this.#restartTimer !== undefined) this.#timers.clearTimeout(this.#restartTimer);
    this.#state = 'detached';
    const control = this.#control;
    this.#control = undefined;
    await control?.close().catch(() => undefined);
    this.#run?.child.unref();
    this.#closeLog();
  }

  #closeLog(): void {
    const log = this.#log;
    this.#log = undefined;
    log?.close();
  }
}
