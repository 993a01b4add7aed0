/**
 * The join listener: a unix socket (`<data_dir>/join.sock`, mode 0600) that tor connects to
 * for the master onion's join port (docs/OPERATIONS.md; the torrc line comes from
 * src/core/node-torrc.ts `extraPorts`). The join service opens it only while this node has a
 * token outstanding (docs/SECURITY.md "The join port"). Every connection is one join attempt:
 *
 * - nothing identifies torbalance to someone without a valid token: every connection that
 *   does not deliver a well-formed frame, and every attempt `handle` answers without a
 *   response (a request whose proof does not verify), is closed without a byte;
 * - with `proxyHeader` (the default; the node's torrc has `HiddenServiceExportCircuitID
 *   haproxy`, which applies to every port of the master service, so tor writes a PROXY v1
 *   header before the joiner's first byte, src/core/proxy-protocol.ts) that header is read
 *   first (src/node/proxy/index.ts `readProxyHeader`) within {@link HEADER_DEADLINE_MS} (tor
 *   writes it on connect); its circuit id keys the per-circuit limits. A missing or malformed
 *   header, or one without a circuit id, closes the connection;
 * - per circuit: at most {@link PER_CIRCUIT_OPEN} attempt open, at most `perCircuitPerMinute`
 *   attempts over a sliding 60 s window; more are closed silently. One visitor therefore needs
 *   a fresh rendezvous circuit per attempt (each costs it an introduction, which tor's
 *   intro-point defences rate-limit) to reach the global limits;
 * - at most `maxOpen` attempts are open at a time; a connection over that limit evicts the
 *   oldest attempt that has not yet delivered its frame (a joiner sends the frame at once, so a
 *   held-open connection is what gets evicted), or is closed if every open one is being
 *   handled;
 * - the request is ONE frame (u32 big-endian length ‖ body, ≤ 64 KiB, src/core/join/handshake.ts
 *   `JoinFrameDecoder`) that must arrive within `deadlineMs`; bytes after the frame are ignored;
 * - the frame body goes to `handle`; its response frame, if any, is written before the socket
 *   ends. Rate limiting of attempts that prove a token is the service's
 *   (`cluster.join.max_attempts_per_minute`), so strangers cannot spend that budget.
 *
 * Each finished attempt is reported once to `onAttempt` (result and, from `handle`, the token
 * id and joiner; never a secret) for the service's counters and log.
 */
import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { JoinFrameDecoder, type JoinRefusal } from '../../core/join/handshake.js';
import { readProxyHeader } from '../proxy/index.js';

/** Default of `maxOpen`: attempts open at once. */
export const MAX_OPEN = 32;
/** Attempts open at once per circuit. */
export const PER_CIRCUIT_OPEN = 1;
/** Default of `perCircuitPerMinute`. */
export const PER_CIRCUIT_PER_MINUTE = 3;
/** tor writes the PROXY header as soon as it connects; a connection without one by then is closed. */
export const HEADER_DEADLINE_MS = 5000;
/** Circuits remembered for the per-circuit window; beyond that, new circuits are closed until entries age out. */
export const MAX_TRACKED_CIRCUITS = 4096;

/** What `handle` decided. */
export interface JoinOutcome {
  /** The response frame (from `acceptJoin` / `refuseJoin`), or undefined to close without a byte. */
  readonly response: Uint8Array | undefined;
  readonly result: 'accepted' | JoinRefusal;
  readonly tokenId?: string;
  readonly joiner?: string;
}

/** One finished attempt. */
export interface JoinAttempt {
  readonly result: 'accepted' | JoinRefusal | 'timeout' | 'closed' | 'too-many-open' | 'evicted' | 'circuit-limit' | 'error';
  readonly tokenId?: string;
  readonly joiner?: string;
}

/** Options of {@link JoinListener}. */
export interface JoinListenerOptions {
  readonly path: string;
  /** Deadline for the whole request frame. Default 60 s (tor circuits are slow). */
  readonly deadlineMs?: number;
  readonly handle: (body: Uint8Array) => Promise<JoinOutcome>;
  readonly onAttempt?: (a: JoinAttempt) => void;
  /** Clock in ms (per-circuit window). Default Date.now. */
  readonly now?: () => number;
  /** Expect tor's PROXY v1 header first. Default true. */
  readonly proxyHeader?: boolean;
  /** Default {@link MAX_OPEN}. */
  readonly maxOpen?: number;
  /** Default {@link PER_CIRCUIT_PER_MINUTE}. */
  readonly perCircuitPerMinute?: number;
}

/** Sliding-window counter: at most `max` events per `windowMs`. */
export class SlidingWindowLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  #times: number[] = [];

  constructor(max: number, windowMs: number) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  /** Count an event at `nowMs` if under the limit; false (not counted) if over. */
  take(nowMs: number): boolean {
    this.#prune(nowMs);
    if (this.#times.length >= this.#max) return false;
    this.#times.push(nowMs);
    return true;
  }

  /** True if no event is inside the window at `nowMs`. */
  idle(nowMs: number): boolean {
    this.#prune(nowMs);
    return this.#times.length === 0;
  }

  #prune(nowMs: number): void {
    this.#times = this.#times.filter((t) => nowMs - t < this.#windowMs);
  }
}

interface Circuit {
  open: number;
  readonly window: SlidingWindowLimiter;
}

interface Attempt {
  /** Until the frame is in: eviction candidates. */
  reading: boolean;
  readonly kill: (a: JoinAttempt) => void;
}

/** See the module doc. */
export class JoinListener {
  readonly #o: JoinListenerOptions;
  readonly #now: () => number;
  readonly #maxOpen: number;
  readonly #perCircuit: number;
  /** Open attempts in arrival order (Map keeps insertion order). */
  readonly #open = new Map<net.Socket, Attempt>();
  readonly #circuits = new Map<string, Circuit>();
  #server: net.Server | undefined;

  constructor(o: JoinListenerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#maxOpen = o.maxOpen ?? MAX_OPEN;
    this.#perCircuit = o.perCircuitPerMinute ?? PER_CIRCUIT_PER_MINUTE;
  }

  /** True while listening. */
  get listening(): boolean {
    return this.#server !== undefined;
  }

  /** Listen on the socket path (a stale socket file is replaced); the socket is made 0600. Idempotent. */
  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    await rm(this.#o.path, { force: true });
    const server = net.createServer((s) => {
      this.#onConnection(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.path, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: unknown) => {
      throw new TorbalanceError('TB_ERR_JOIN_LISTEN', 'config', `cannot listen on ${this.#o.path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    });
    await chmod(this.#o.path, 0o600);
    this.#server = server;
  }

  /**
   * Stop accepting connections and remove the socket file, letting open attempts finish (the
   * one whose handler just closed the port still sends its answer). Idempotent.
   */
  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    s.close();
    await rm(this.#o.path, { force: true }).catch(() => undefined);
  }

  /** Stop listening, close open attempts and remove the socket file. Idempotent. */
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const c of [...this.#open.keys()]) c.destroy();
    if (s !== undefined) await new Promise<void>((r) => s.close(() => { r(); }));
    await rm(this.#o.path, { force: true }).catch(() => undefined);
  }

  #report(a: JoinAttempt): void {
    try {
      this.#o.onAttempt?.(a);
    } catch (_ignored) {
      // whatever the reporting hook throws is its own bug and must not break the listener
    }
  }

  /** The circuit's record, or undefined when too many circuits are tracked. */
  #circuit(key: string, nowMs: number): Circuit | undefined {
    let c = this.#circuits.get(key);
    if (c !== undefined) return c;
    if (this.#circuits.size >= MAX_TRACKED_CIRCUITS) {
      for (const [k, v] of this.#circuits) if (v.open === 0 && v.window.idle(nowMs)) this.#circuits.delete(k);
      if (this.#circuits.size >= MAX_TRACKED_CIRCUITS) return undefined;
    }
    c = { open: 0, window: new SlidingWindowLimiter(this.#perCircuit, 60_000) };
    this.#circuits.set(key, c);
    return c;
  }

  #onConnection(sock: net.Socket): void {
    let done = false;
    let circuit: Circuit | undefined;
    const finish = (a: JoinAttempt, response?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.#open.delete(sock);
      if (circuit !== undefined) circuit.open -= 1;
      sock.removeAllListeners('data');
      this.#report(a);
      if (response === undefined) sock.destroy();
      else sock.end(response);
    };
    sock.on('error', () => {
      finish({ result: 'closed' });
    });
    sock.on('close', () => {
      finish({ result: 'closed' });
    });
    const timer = setTimeout(() => {
      finish({ result: 'timeout' });
    }, this.#o.deadlineMs ?? 60_000);
    if (this.#open.size >= this.#maxOpen) {
      let victim: Attempt | undefined;
      for (const a of this.#open.values()) {
        if (a.reading) {
          victim = a;
          break;
        }
      }
      if (victim === undefined) {
        finish({ result: 'too-many-open' });
        return;
      }
      victim.kill({ result: 'evicted' });
    }
    const attempt: Attempt = { reading: true, kill: (a) => { finish(a); } };
    this.#open.set(sock, attempt);

    const decoder = new JoinFrameDecoder();
    const onData = (chunk: Buffer): void => {
      if (done) return;
      let frames: Uint8Array[];
      try {
        frames = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (e) {
        // a bad frame is the joiner's fault; anything else a bug here, reported without crashing the node
        finish({ result: e instanceof DecodeError ? 'malformed' : 'error' });
        return;
      }
      const body = frames[0];
      if (body === undefined) return;
      attempt.reading = false;
      sock.pause();
      sock.removeAllListeners('data');
      this.#o.handle(body).then(
        (out) => {
          finish({ result: out.result, ...(out.tokenId === undefined ? {} : { tokenId: out.tokenId }), ...(out.joiner === undefined ? {} : { joiner: out.joiner }) }, out.response);
        },
        () => {
          finish({ result: 'error' });
        },
      );
    };
    const admit = (key: string): void => {
      const nowMs = this.#now();
      const c = this.#circuit(key, nowMs);
      if (c === undefined || c.open >= PER_CIRCUIT_OPEN || !c.window.take(nowMs)) {
        finish({ result: 'circuit-limit' });
        return;
      }
      circuit = c;
      c.open += 1;
      sock.on('data', onData);
      sock.resume();
    };
    if (this.#o.proxyHeader === false) {
      admit('direct');
      return;
    }
    // The header reader leaves the bytes after the header in the socket; a closed connection
    // is reported by the handlers above (its rejection is then ignored).
    readProxyHeader(sock, Math.min(HEADER_DEADLINE_MS, this.#o.deadlineMs ?? 60_000)).then(
      (h) => {
        if (done) return;
        if (h.circuitId === undefined) finish({ result: 'malformed' });
        else admit(String(h.circuitId));
      },
      () => {
        finish({ result: 'malformed' });
      },
    );
  }
}
