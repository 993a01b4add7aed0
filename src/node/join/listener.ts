/**
 * The join listener: a unix socket (`<data_dir>/join.sock`, mode 0600) that tor connects to
 * for the master onion's join port (docs/OPERATIONS.md; the torrc line comes from
 * src/core/node-torrc.ts `extraPorts`). Every connection is one join attempt:
 *
 * - attempts are rate-limited to `maxAttemptsPerMinute` over a sliding 60 s window (all of
 *   them come from tor, so there is no per-client address to limit by): an attempt over the
 *   limit gets the `rate-limited` refusal at once and nothing of it is read;
 * - at most {@link MAX_OPEN} attempts are open at a time (more are closed unanswered);
 * - with `proxyHeader` (the default; the node's torrc has `HiddenServiceExportCircuitID
 *   haproxy`, which applies to every port of the master service, so tor writes a PROXY v1
 *   header before the joiner's first byte, src/core/proxy-protocol.ts) that header is read
 *   and dropped first (src/node/proxy/index.ts `readProxyHeader`, as the proxy listener does); a missing or malformed one gets the `malformed` refusal;
 * - the request is ONE frame (u32 big-endian length ‖ body, ≤ 64 KiB, src/core/join/handshake.ts
 *   `JoinFrameDecoder`) that must arrive within `deadlineMs`; a longer frame gets the
 *   `malformed` refusal, a slow one is closed (`timeout`); bytes after the frame are ignored;
 * - the frame body goes to `handle`, whose response frame is written before the socket ends.
 *
 * Each finished attempt is reported once to `onAttempt` (result and, from `handle`, the token
 * id and joiner; never a secret) for the service's counters and log.
 */
import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { JoinFrameDecoder, refuseJoin, type JoinRefusal } from '../../core/join/handshake.js';
import { readProxyHeader } from '../proxy/index.js';

/** At most this many attempts are open at once. */
export const MAX_OPEN = 8;

/** What `handle` decided. */
export interface JoinOutcome {
  /** The response frame to send (already framed: from `acceptJoin` / `refuseJoin`). */
  readonly response: Uint8Array;
  readonly result: 'accepted' | JoinRefusal;
  readonly tokenId?: string;
  readonly joiner?: string;
}

/** One finished attempt. */
export interface JoinAttempt {
  readonly result: 'accepted' | JoinRefusal | 'timeout' | 'closed' | 'too-many-open' | 'error';
  readonly tokenId?: string;
  readonly joiner?: string;
}

/** Options of {@link JoinListener}. */
export interface JoinListenerOptions {
  readonly path: string;
  readonly maxAttemptsPerMinute: number;
  /** Deadline for the whole request frame. Default 60 s (tor circuits are slow). */
  readonly deadlineMs?: number;
  readonly handle: (body: Uint8Array) => Promise<JoinOutcome>;
  readonly onAttempt?: (a: JoinAttempt) => void;
  /** Clock in ms (rate-limit window). Default Date.now. */
  readonly now?: () => number;
  /** Expect tor's PROXY v1 header first. Default true. */
  readonly proxyHeader?: boolean;
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
    this.#times = this.#times.filter((t) => nowMs - t < this.#windowMs);
    if (this.#times.length >= this.#max) return false;
    this.#times.push(nowMs);
    return true;
  }
}

/** See the module doc. */
export class JoinListener {
  readonly #o: JoinListenerOptions;
  readonly #limiter: SlidingWindowLimiter;
  readonly #now: () => number;
  readonly #open = new Set<net.Socket>();
  #server: net.Server | undefined;

  constructor(o: JoinListenerOptions) {
    this.#o = o;
    this.#limiter = new SlidingWindowLimiter(o.maxAttemptsPerMinute, 60_000);
    this.#now = o.now ?? Date.now;
  }

  /** Listen on the socket path (a stale socket file is replaced); the socket is made 0600. */
  async start(): Promise<void> {
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

  /** Stop listening and close open attempts. */
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const c of this.#open) c.destroy();
    if (s !== undefined) await new Promise<void>((r) => s.close(() => { r(); }));
    await rm(this.#o.path, { force: true }).catch(() => undefined);
  }

  #report(a: JoinAttempt): void {
    try {
      this.#o.onAttempt?.(a);
    } catch {
      // reporting must not break the listener
    }
  }

  #onConnection(sock: net.Socket): void {
    let done = false;
    const finish = (a: JoinAttempt, response?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.removeAllListeners('data');
      this.#report(a);
      if (response === undefined) sock.destroy();
      else sock.end(response);
    };
    sock.on('error', () => {
      finish({ result: 'closed' });
    });
    sock.on('close', () => {
      this.#open.delete(sock);
      finish({ result: 'closed' });
    });
    const timer = setTimeout(() => {
      finish({ result: 'timeout' });
    }, this.#o.deadlineMs ?? 60_000);
    if (this.#open.size >= MAX_OPEN) {
      finish({ result: 'too-many-open' });
      return;
    }
    this.#open.add(sock);
    if (!this.#limiter.take(this.#now())) {
      finish({ result: 'rate-limited' }, refuseJoin('rate-limited'));
      return;
    }
    const decoder = new JoinFrameDecoder();
    const onData = (chunk: Buffer): void => {
      if (done) return;
      let frames: Uint8Array[];
      try {
        frames = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch {
        finish({ result: 'malformed' }, refuseJoin('malformed'));
        return;
      }
      const body = frames[0];
      if (body === undefined) return;
      sock.pause();
      sock.removeAllListeners('data');
      this.#o.handle(body).then(
        (out) => {
          finish({ result: out.result, ...(out.tokenId === undefined ? {} : { tokenId: out.tokenId }), ...(out.joiner === undefined ? {} : { joiner: out.joiner }) }, out.response);
        },
        () => {
          finish({ result: 'error' }, refuseJoin('not-ready'));
        },
      );
    };
    if (this.#o.proxyHeader === false) {
      sock.on('data', onData);
      return;
    }
    // The header reader leaves the bytes after the header in the socket; a closed or slow
    // connection is reported by the handlers above (its rejection is then ignored).
    readProxyHeader(sock, this.#o.deadlineMs ?? 60_000).then(
      () => {
        if (done) return;
        sock.on('data', onData);
        sock.resume();
      },
      (e: unknown) => {
        if (e instanceof DecodeError) finish({ result: 'malformed' }, refuseJoin('malformed'));
      },
    );
  }
}
