/**
 * Tor control-port client (control-spec.txt; tor's `control.c`, `control_cmd.c`,
 * `control_auth.c`, `control_proto.c`) over a unix socket or TCP.
 *
 * - Authentication from PROTOCOLINFO: SAFECOOKIE (preferred), COOKIE, HASHEDPASSWORD (when a
 *   password is configured) or NULL. The cookie file named by tor is read with node:fs and
 *   must be exactly 32 bytes; tor's SAFECOOKIE server hash is verified before we answer.
 * - Commands are pipelined: written at once, replies matched in order (tor answers in
 *   order). Every command has a timeout. **A timed-out command poisons the connection**: its
 *   reply may still arrive later and would be taken as the reply to the next command, so
 *   the connection is closed and every pending command fails (TB_ERR_TOR_CONTROL_CLOSED,
 *   the timed-out one with TB_ERR_TOR_CONTROL_TIMEOUT). The same happens on a malformed or
 *   oversized reply. Callers reconnect (see {@link ReconnectingTorControl}).
 * - Asynchronous events (6xx) are separated from replies by the sans-IO parser and handed to
 *   listeners from a microtask, so a slow or throwing listener never delays a reply.
 * - HSPOST always sends HSADDRESS (tor never replies to an HSPOST without it) and validates
 *   the address and each SERVER fingerprint first.
 *
 * Errors: failed replies (4xx/5xx) reject with {@link ControlReplyError}
 * (TB_ERR_TOR_CONTROL_REPLY, with `status` and tor's text); timeouts TB_ERR_TOR_CONTROL_TIMEOUT;
 * a dropped connection TB_ERR_TOR_CONTROL_CLOSED; connect failures TB_ERR_TOR_CONTROL_CONNECT;
 * authentication TB_ERR_TOR_CONTROL_AUTH / TB_ERR_TOR_CONTROL_COOKIE.
 */
import { open } from 'node:fs/promises';
import { readAtMost } from '../fs/key-store.js';
import { connect as netConnect, type Socket } from 'node:net';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import type { RandomBytes } from '../../core/random.js';
import {
  PROTOCOLINFO_COMMAND,
  authChallengeCommand,
  authenticateCommand,
  checkCookie,
  chooseAuthMethod,
  parseAuthChallenge,
  parseProtocolInfo,
  safeCookieResponse,
  SAFECOOKIE_NONCE_LENGTH,
  type ProtocolInfo,
  COOKIE_LENGTH,
} from '../../core/torctl/auth.js';
import {
  checkName,
  encodeCommand,
  encodeGetInfo,
  encodeHsFetch,
  encodeHsPost,
  encodeRawCommand,
  encodeResetConf,
  encodeSetConf,
  encodeSetEvents,
} from '../../core/torctl/command.js';
import {
  DEFAULT_MAX_REPLY_BYTES,
  ReplyParser,
  getInfoValues,
  isSuccess,
  replySummary,
  type ControlEvent,
  type ControlReply,
} from '../../core/torctl/reply.js';

export type { ControlEvent, ControlReply, ReplyLine } from '../../core/torctl/reply.js';

export type ControlEndpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export interface ControlOptions {
  /** Control password for HASHEDPASSWORD; else SAFECOOKIE/COOKIE/NULL chosen from PROTOCOLINFO. */
  readonly password?: string;
  /** Per-command timeout (default 30 000 ms). Every command has one. */
  readonly commandTimeoutMs?: number;
  /** Timeout for connecting and authenticating (default 10 000 ms). */
  readonly connectTimeoutMs?: number;
  /** Largest accepted reply (default 2 MiB); override per call for big GETINFOs. */
  readonly maxReplyBytes?: number;
  /** Largest accepted event (default 2 MiB). */
  readonly maxEventBytes?: number;
  /** Use this cookie file instead of PROTOCOLINFO's COOKIEFILE (e.g. tor in a container). */
  readonly cookieFile?: string;
  /** Random source for the SAFECOOKIE nonce (default: Web Crypto getRandomValues). */
  readonly randomBytes?: RandomBytes;
  /** Called when an event listener throws (default: the error is dropped). */
  readonly onListenerError?: (err: unknown, event: ControlEvent) => void;
}

/** Per-call options. */
export interface RequestOptions {
  readonly timeoutMs?: number;
  readonly maxReplyBytes?: number;
}

/** A 4xx/5xx reply from tor (code TB_ERR_TOR_CONTROL_REPLY). */
export class ControlReplyError extends TorbalanceError {
  /** Tor's status code, e.g. 552. */
  readonly status: number;
  readonly reply: ControlReply;

  constructor(command: string, reply: ControlReply) {
    super('TB_ERR_TOR_CONTROL_REPLY', 'tor', `tor rejected ${command}: ${replySummary(reply)}`);
    this.name = 'ControlReplyError';
    this.status = reply.status;
    this.reply = reply;
  }
}

export type EventListener = (e: ControlEvent) => void;

interface Pending {
  readonly command: string;
  /** 0-based sequence number of this command on the connection. */
  readonly index: number;
  readonly maxReplyBytes: number;
  readonly resolve: (r: ControlReply) => void;
  readonly reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MAX_COOKIE_FILE_READ = COOKIE_LENGTH + 1;

function defaultRandomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function closedError(why: string, cause?: unknown): TorbalanceError {
  return new TorbalanceError('TB_ERR_TOR_CONTROL_CLOSED', 'tor', `tor control connection closed: ${why}`, { cause });
}

function endpointName(e: ControlEndpoint): string {
  return e.kind === 'unix' ? `unix:${e.path}` : `${e.host}:${e.port}`;
}

/** The first word of a command line, for error messages (never the arguments: they may hold secrets). */
function commandName(wire: string): string {
  const m = /^\+?([A-Za-z0-9_]+)/.exec(wire);
  return m === null ? 'command' : m[1]!;
}

/** Open a socket to `endpoint`, rejecting with TB_ERR_TOR_CONTROL_CONNECT. */
function openSocket(endpoint: ControlEndpoint, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock =
      endpoint.kind === 'unix' ? netConnect({ path: endpoint.path }) : netConnect({ host: endpoint.host, port: endpoint.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TorbalanceError('TB_ERR_TOR_CONTROL_TIMEOUT', 'tor', `connecting to tor control port ${endpointName(endpoint)} timed out`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(
        new TorbalanceError('TB_ERR_TOR_CONTROL_CONNECT', 'tor', `cannot connect to tor control port ${endpointName(endpoint)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, {
          cause: err,
        }),
      );
    });
  });
}

/** Read a cookie file: exactly 32 bytes, at most 33 read. Throws TB_ERR_TOR_CONTROL_COOKIE. */
export async function readCookieFile(path: string): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (cause) {
    throw new TorbalanceError('TB_ERR_TOR_CONTROL_COOKIE', 'config', `cannot read tor control cookie ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  try {
    const cookie = await readAtMost(fh, MAX_COOKIE_FILE_READ);
    checkCookie(cookie);
    return cookie;
  } finally {
    await fh.close();
  }
}

/** A connected, authenticated tor control connection. */
/**
 * Register `listener` for events of `type` in `map` (wrapped, so the same function may be
 * added twice and removed independently). Returns the unsubscribe function.
 */
function addListener(map: Map<string, Set<EventListener>>, type: string, listener: EventListener): () => void {
  let set = map.get(type);
  if (set === undefined) {
    set = new Set();
    map.set(type, set);
  }
  const s = set;
  const wrapped: EventListener = (e) => {
    listener(e);
  };
  s.add(wrapped);
  return () => {
    s.delete(wrapped);
  };
}

/** The listeners for an event of `type`, including the `*` ones. */
function listenersFor(map: Map<string, Set<EventListener>>, type: string): EventListener[] {
  return [...(map.get(type) ?? []), ...(map.get('*') ?? [])];
}

export class TorControl {
  /** Resolves when the connection closes: undefined after {@link close}, else the error. */
  readonly closed: Promise<Error | undefined>;
  /** PROTOCOLINFO as seen when connecting. */
  get protocolInfo(): ProtocolInfo {
    return this.info;
  }
  private info: ProtocolInfo;
  /** The endpoint this connection uses. */
  readonly endpoint: ControlEndpoint;

  private readonly socket: Socket;
  private readonly parser: ReplyParser;
  private readonly pending: Pending[] = [];
  private readonly listeners = new Map<string, Set<EventListener>>();
  private readonly commandTimeoutMs: number;
  private readonly maxReplyBytes: number;
  private readonly onListenerError: ((err: unknown, event: ControlEvent) => void) | undefined;
  private resolveClosed!: (e: Error | undefined) => void;
  private closing = false;
  private closeError: Error | undefined;
  private isClosed = false;
  private subscribed: readonly string[] = [];
  private sentCount = 0;

  private constructor(socket: Socket, endpoint: ControlEndpoint, options: ControlOptions, info: ProtocolInfo | undefined) {
    this.socket = socket;
    this.endpoint = endpoint;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.onListenerError = options.onListenerError;
    this.info = info ?? { protocolVersion: 1, methods: [], otherMethods: [], cookieFile: undefined, torVersion: undefined };
    this.parser = new ReplyParser({
      // The n-th synchronous reply on this connection answers the n-th command sent.
      maxReplyBytes: (syncIndex) => {
        const head = this.pending[0];
        const p = head === undefined ? undefined : this.pending[syncIndex - head.index];
        return p?.maxReplyBytes ?? this.maxReplyBytes;
      },
      ...(options.maxEventBytes === undefined ? {} : { maxEventBytes: options.maxEventBytes }),
    });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.onData(chunk);
    });
    socket.on('error', (err) => {
      this.closeError ??= closedError((err as NodeJS.ErrnoException).code ?? err.message, err);
    });
    socket.on('close', () => {
      this.onClose();
    });
  }

  /**
   * Connect to tor's control port and authenticate (PROTOCOLINFO → SAFECOOKIE / COOKIE /
   * HASHEDPASSWORD / NULL). The whole handshake is bounded by `connectTimeoutMs`.
   */
  static async connect(endpoint: ControlEndpoint, options: ControlOptions = {}): Promise<TorControl> {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + connectTimeoutMs;
    const socket = await openSocket(endpoint, connectTimeoutMs);
    const remaining = (): number => Math.max(1, deadline - Date.now());
    const ctl = new TorControl(socket, endpoint, options, undefined);
    try {
      const piReply = await ctl.sendWire(PROTOCOLINFO_COMMAND, { timeoutMs: remaining() }, false);
      const info = parseProtocolInfo(piReply);
      ctl.info = info;
      const method = chooseAuthMethod(info, options.password !== undefined);
      let authLine: string;
      switch (method) {
        case 'NULL':
          authLine = authenticateCommand(null);
          break;
        case 'HASHEDPASSWORD':
          authLine = authenticateCommand({ password: options.password ?? '' });
          break;
        case 'COOKIE': {
          const cookie = await readCookieFile(options.cookieFile ?? info.cookieFile!);
          authLine = authenticateCommand({ hex: cookie });
          break;
        }
        case 'SAFECOOKIE': {
          const cookie = await readCookieFile(options.cookieFile ?? info.cookieFile!);
          const nonce = (options.randomBytes ?? defaultRandomBytes)(SAFECOOKIE_NONCE_LENGTH);
          const chReply = await ctl.sendWire(authChallengeCommand(nonce), { timeoutMs: remaining() }, false);
          const challenge = parseAuthChallenge(chReply);
          authLine = authenticateCommand({ hex: safeCookieResponse(cookie, nonce, challenge) });
          break;
        }
      }
      const authReply = await ctl.sendWire(authLine, { timeoutMs: remaining() }, false);
      if (!isSuccess(authReply)) {
        throw new TorbalanceError('TB_ERR_TOR_CONTROL_AUTH', method === 'HASHEDPASSWORD' ? 'config' : 'tor', `tor control authentication (${method}) failed: ${replySummary(authReply)}`);
      }
      return ctl;
    } catch (e) {
      ctl.destroy(e instanceof Error ? e : closedError('handshake failed'));
      throw e;
    }
  }

  /** True once the connection is closed or closing. */
  get isOpen(): boolean {
    return !this.isClosed && !this.closing;
  }

  // -------------------------------------------------------------------------------------
  // Typed commands

  /** `GETINFO key` → the value (a data block's lines joined by `\n`, no trailing newline). */
  async getInfo(key: string, options: RequestOptions = {}): Promise<string> {
    const values = await this.getInfoMany([key], options);
    const v = values.get(key);
    if (v === undefined) throw new DecodeError('TB_ERR_TOR_CONTROL_PROTOCOL', 'GETINFO reply lacks the requested key');
    return v;
  }

  /** `GETINFO k1 k2 …` → map of the returned keys. */
  async getInfoMany(keys: readonly string[], options: RequestOptions = {}): Promise<Map<string, string>> {
    const reply = await this.send(encodeGetInfo(keys), options);
    return getInfoValues(reply);
  }

  /** `SETCONF k="v" …`; a `null` value resets that option to its default. */
  async setConf(entries: readonly (readonly [string, string | null])[]): Promise<void> {
    await this.send(encodeSetConf(entries));
  }

  /** `RESETCONF k …`. */
  async resetConf(keys: readonly string[]): Promise<void> {
    await this.send(encodeResetConf(keys));
  }

  /** `SETEVENTS …` (replaces the subscription; remembered for reconnects). */
  async setEvents(events: readonly string[]): Promise<void> {
    await this.send(encodeSetEvents(events));
    this.subscribed = [...events];
  }

  /** Events last set with {@link setEvents}. */
  get subscribedEvents(): readonly string[] {
    return this.subscribed;
  }

  /**
   * Listen for events of `type` (e.g. `HS_DESC`; `*` for every event). Subscribe with
   * {@link setEvents} as well. Returns an unsubscribe function.
   */
  onEvent(type: string, listener: EventListener): () => void {
    return addListener(this.listeners, type, listener);
  }

  /**
   * `+HSPOST [SERVER=<fp>]… HSADDRESS=<label>` with the descriptor as body. `hsAddress` may
   * carry ".onion" (it is validated and sent as the bare label). `servers` must be non-empty
   * (the publisher computes the hash ring; see tor-facts §1.1) unless `allowNoServers`.
   * Resolves on `250 OK`, which tor sends once the descriptor parsed, before any upload.
   */
  async hsPost(
    descriptor: string,
    opts: { readonly hsAddress: string; readonly servers: readonly string[]; readonly allowNoServers?: boolean; readonly timeoutMs?: number },
  ): Promise<void> {
    const { label } = decodeOnionAddress(opts.hsAddress);
    if (opts.servers.length === 0 && opts.allowNoServers !== true) {
      throw new TorbalanceError('TB_ERR_TOR_CONTROL_ARG', 'input', 'HSPOST needs at least one SERVER (tor picks the wrong HSDirs half of the day otherwise)');
    }
    await this.send(encodeHsPost(descriptor, label, opts.servers), opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
  }

  /** `HSFETCH <label> [SERVER=<fp>]…` (results arrive as HS_DESC / HS_DESC_CONTENT events). */
  async hsFetch(address: string, servers: readonly string[] = []): Promise<void> {
    const { label } = decodeOnionAddress(address);
    await this.send(encodeHsFetch(label, servers));
  }

  /** `SIGNAL <name>` (RELOAD, NEWNYM, HUP, SHUTDOWN, …). */
  async signal(name: string): Promise<void> {
    await this.send(encodeCommand('SIGNAL', [checkName(name, 'signal')]));
  }

  /** `CLOSECIRCUIT <id>`. */
  async closeCircuit(id: string): Promise<void> {
    if (!/^[0-9]{1,10}$/.test(id)) throw new TorbalanceError('TB_ERR_TOR_CONTROL_ARG', 'input', 'circuit id must be decimal');
    await this.send(encodeCommand('CLOSECIRCUIT', [id]));
  }

  /** `TAKEOWNERSHIP`: tor exits when this connection closes. */
  async takeOwnership(): Promise<void> {
    await this.send(encodeCommand('TAKEOWNERSHIP'));
  }

  /**
   * Raw command (`GETINFO version`); with `body`, the multi-line `+` form with the body
   * dot-stuffed. Rejects with {@link ControlReplyError} on 4xx/5xx.
   */
  async request(line: string, body?: string, options: RequestOptions = {}): Promise<ControlReply> {
    return this.send(encodeRawCommand(line, body), options);
  }

  /** Close the connection (pending commands fail with TB_ERR_TOR_CONTROL_CLOSED); resolves when closed. */
  async close(): Promise<void> {
    if (!this.isClosed && !this.closing) {
      this.closing = true;
      if (this.pending.length === 0) {
        this.socket.end();
        const t = setTimeout(() => this.socket.destroy(), 1000);
        t.unref();
      } else {
        this.socket.destroy();
      }
    }
    await this.closed;
  }

  // -------------------------------------------------------------------------------------
  // Internals

  /** Send an encoded command; rejects with ControlReplyError on 4xx/5xx. */
  private async send(wire: string, options: RequestOptions = {}): Promise<ControlReply> {
    const reply = await this.sendWire(wire, options, true);
    return reply;
  }

  private sendWire(wire: string, options: RequestOptions, failOnError: boolean): Promise<ControlReply> {
    if (this.isClosed || this.closing) {
      const why = this.closeError;
      return Promise.reject(
        why instanceof TorbalanceError && why.code === 'TB_ERR_TOR_CONTROL_CLOSED' ? why : closedError(why === undefined ? 'connection is closed' : why.message, why),
      );
    }
    const command = commandName(wire);
    return new Promise<ControlReply>((resolve, reject) => {
      const p: Pending = {
        command,
        index: this.sentCount++,
        maxReplyBytes: options.maxReplyBytes ?? this.maxReplyBytes,
        resolve: (r) => {
          if (failOnError && !isSuccess(r)) reject(new ControlReplyError(command, r));
          else resolve(r);
        },
        reject,
        timer: undefined,
      };
      const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
      p.timer = setTimeout(() => {
        p.timer = undefined;
        const err = new TorbalanceError('TB_ERR_TOR_CONTROL_TIMEOUT', 'tor', `tor did not answer ${command} within ${timeoutMs} ms; closing the control connection`);
        const idx = this.pending.indexOf(p);
        if (idx >= 0) this.pending.splice(idx, 1);
        reject(err);
        this.destroy(err);
      }, timeoutMs);
      this.pending.push(p);
      this.socket.write(wire);
    });
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    let items;
    try {
      items = this.parser.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (e) {
      this.destroy(e instanceof Error ? e : closedError('bad reply'));
      return;
    }
    for (const item of items) {
      if (item.kind === 'event') {
        this.dispatch(item.event);
      } else {
        const p = this.pending.shift();
        if (p === undefined) {
          this.destroy(new DecodeError('TB_ERR_TOR_CONTROL_PROTOCOL', 'tor sent a reply with no command pending'));
          return;
        }
        if (p.timer !== undefined) clearTimeout(p.timer);
        p.resolve(item.reply);
      }
    }
  }

  private dispatch(event: ControlEvent): void {
    const targets = listenersFor(this.listeners, event.type);
    if (targets.length === 0) return;
    queueMicrotask(() => {
      for (const l of targets) {
        try {
          l(event);
        } catch (err) {
          try {
            this.onListenerError?.(err, event);
          } catch (_ignored) {
            // Whatever a failing error hook throws must not break the connection either.
          }
        }
      }
    });
  }

  /** Tear the connection down because of `reason`; pending commands fail. */
  private destroy(reason: Error): void {
    if (this.isClosed) return;
    this.closeError ??= reason;
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const reason = this.closing && this.closeError === undefined ? undefined : (this.closeError ?? closedError('tor closed the connection'));
    const pendingErr =
      reason === undefined
        ? closedError('closed by us')
        : reason instanceof TorbalanceError && reason.code === 'TB_ERR_TOR_CONTROL_CLOSED'
          ? reason
          : closedError(reason.message, reason);
    for (const p of this.pending.splice(0)) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(pendingErr);
    }
    this.resolveClosed(reason);
  }
}

// ---------------------------------------------------------------------------------------
// Reconnection

export interface ReconnectOptions extends ControlOptions {
  /** First retry delay (default 250 ms), doubled up to `maxDelayMs` (default 10 000 ms). */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Stops retrying (and closes the connection for ReconnectingTorControl). */
  readonly signal?: AbortSignal;
  /** Called after each attempt fails (for logging). */
  readonly onRetry?: (err: Error, attempt: number, delayMs: number) => void;
}

function abortError(): TorbalanceError {
  return new TorbalanceError('TB_ERR_TOR_CONTROL_CLOSED', 'tor', 'tor control connection aborted');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortError());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Connect with retries and exponential backoff until it succeeds or `signal` aborts.
 * Authentication failures caused by configuration (wrong password, unreadable cookie) are
 * retried too, since tor may still be writing its cookie file at start.
 */
export async function connectWithRetry(endpoint: ControlEndpoint, options: ReconnectOptions = {}): Promise<TorControl> {
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 10_000;
  let delay = initial;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted === true) throw abortError();
    try {
      return await TorControl.connect(endpoint, options);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
      delay = Math.min(max, delay * 2);
    }
  }
}

/**
 * A control connection that comes back after tor restarts. Listeners and the SETEVENTS set
 * live here and are re-applied on every new connection; `onConnect` runs first (e.g.
 * TAKEOWNERSHIP or SETCONF). Commands go through {@link use}, which waits for a connection.
 * A command that fails because the connection dropped is not retried (it may have run).
 */
export class ReconnectingTorControl {
  private readonly endpoint: ControlEndpoint;
  private readonly options: ReconnectOptions;
  private readonly onConnect: ((c: TorControl) => Promise<void>) | undefined;
  private readonly listeners = new Map<string, Set<EventListener>>();
  private readonly abort = new AbortController();
  private events: readonly string[] = [];
  private conn: TorControl | undefined;
  private waiters: { resolve: (c: TorControl) => void; reject: (e: Error) => void }[] = [];
  private connectionCount = 0;
  private readonly loop: Promise<void>;

  private constructor(endpoint: ControlEndpoint, options: ReconnectOptions, onConnect: ((c: TorControl) => Promise<void>) | undefined) {
    this.endpoint = endpoint;
    this.options = options;
    this.onConnect = onConnect;
    options.signal?.addEventListener(
      'abort',
      () => {
        this.abort.abort();
      },
      { once: true },
    );
    this.abort.signal.addEventListener(
      'abort',
      () => {
        void this.conn?.close();
      },
      { once: true },
    );
    this.loop = this.run();
  }

  /** Start connecting in the background. */
  static start(endpoint: ControlEndpoint, options: ReconnectOptions = {}, onConnect?: (c: TorControl) => Promise<void>): ReconnectingTorControl {
    return new ReconnectingTorControl(endpoint, options, onConnect);
  }

  /** The live connection, if any. */
  get current(): TorControl | undefined {
    return this.conn?.isOpen === true ? this.conn : undefined;
  }

  /** How many times a connection has been established (1 after the first). */
  get connections(): number {
    return this.connectionCount;
  }

  /** Wait for a live connection (rejects with TB_ERR_TOR_CONTROL_CLOSED once closed). */
  ready(): Promise<TorControl> {
    const c = this.current;
    if (c !== undefined) return Promise.resolve(c);
    if (this.abort.signal.aborted) return Promise.reject(abortError());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Run `fn` with a live connection. */
  async use<T>(fn: (c: TorControl) => Promise<T>): Promise<T> {
    return fn(await this.ready());
  }

  /** Listen for events (kept across reconnects). */
  onEvent(type: string, listener: EventListener): () => void {
    return addListener(this.listeners, type, listener);
  }

  /** SETEVENTS now (if connected) and after every reconnect. */
  async setEvents(events: readonly string[]): Promise<void> {
    this.events = [...events];
    const c = this.current;
    if (c !== undefined) await c.setEvents(events);
  }

  /** Stop reconnecting and close the connection. */
  async close(): Promise<void> {
    this.abort.abort();
    const c = this.conn;
    if (c !== undefined) await c.close();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      const got: { c: TorControl | undefined } = { c: undefined };
      try {
        const c = await connectWithRetry(this.endpoint, { ...this.options, signal });
        got.c = c;
        c.onEvent('*', (e) => {
          for (const l of listenersFor(this.listeners, e.type)) {
            try {
              l(e);
            } catch (err) {
              this.options.onListenerError?.(err, e);
            }
          }
        });
        if (this.onConnect !== undefined) await this.onConnect(c);
        if (this.events.length > 0) await c.setEvents(this.events);
      } catch (e) {
        if (got.c !== undefined) await got.c.close();
        if (stopped()) break;
        // onConnect or SETEVENTS failed: drop this connection and retry.
        this.options.onRetry?.(e instanceof Error ? e : new Error(String(e)), 0, this.options.initialDelayMs ?? 250);
        await sleep(this.options.initialDelayMs ?? 250, signal).catch(() => undefined);
        continue;
      }
      const c = got.c;
      if (stopped()) {
        await c.close();
        break;
      }
      this.conn = c;
      this.connectionCount++;
      for (const w of this.waiters.splice(0)) w.resolve(c);
      await c.closed;
      this.conn = undefined;
    }
    for (const w of this.waiters.splice(0)) w.reject(abortError());
  }
}
