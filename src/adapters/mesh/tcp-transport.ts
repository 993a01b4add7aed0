/**
 * Mesh transport over stream sockets: length-prefixed frames (`u32be length ‖ frame`: the
 * mesh handshake messages, then `payload ‖ mac ‖ sig`; docs/mesh-protocol.md) carried in
 * both directions over TCP (meant for a WireGuard network) or any other stream (the Tor
 * transport in ./tor-transport.ts reuses {@link StreamMeshTransport} with a unix-socket
 * listener and a SOCKS dialer).
 *
 * What it does:
 * - a listener accepts inbound connections (bounded count);
 * - one outgoing connection per dialled peer address, re-dialled after failures with bounded
 *   exponential backoff and jitter (timers injectable: {@link Timers} of
 *   src/adapters/tor/process.ts); the backoff resets once a connection delivers a frame;
 * - incoming bytes go through a sans-IO frame decoder (the core's `FrameDecoder`); an
 *   oversized length (or any decoder error) drops the connection at once and is reported as a
 *   `size` rejection — nothing past the length is parsed here;
 * - writes respect backpressure: when the socket buffer is full, frames wait in a bounded
 *   per-connection queue (frame count and bytes); when it overflows, the oldest *droppable*
 *   frames (heartbeats: the next one supersedes them) are discarded; if nothing is droppable
 *   the connection is closed (a peer that cannot keep up is re-dialled and re-synchronised);
 * - a connection that delivered no frame for `idleTimeoutMs` is closed (TCP keepalive is on
 *   too), so a silent or half-open peer does not hold a connection forever;
 * - a test hook, {@link StreamMeshTransport.setBlocked}, drops every frame in both directions
 *   while keeping sockets open, to simulate a network partition.
 *
 * The transport never verifies frames: the mesh node does (the connection handshake, then
 * per frame MAC first, then signature) and
 * may close a connection that sent garbage. Errors never propagate past the transport; they
 * are logged (at debug, without payload bytes) and turn into close events.
 */
import net from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { TorbalanceError } from '../../core/errors.js';
import { parseMeshAddress, type MeshAddress } from '../../core/mesh/protocol.js';
import type { Logger } from '../log/logger.js';
import type { TimerHandle, Timers } from '../system/timers.js';

/** Largest frame accepted by default (contract: frame ≤ 256 KiB). */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024;

/** A sans-IO decoder: bytes in, complete frames (without the length prefix) out; throws on an oversized length. */
export interface FrameSplitter {
  push(bytes: Uint8Array): Uint8Array[];
}

/** One open connection (inbound or outbound). */
export interface MeshConnection {
  /** Process-unique id (for logs and maps). */
  readonly id: number;
  readonly direction: 'in' | 'out';
  /** The dialled mesh address (outbound) or a description of the remote end (inbound). */
  readonly remote: string;
  /** The mesh address this connection was dialled for (outbound only). */
  readonly dialAddress: string | undefined;
  /**
   * Queue `wire` (a whole frame including its length prefix) for sending. `droppable` frames
   * may be discarded under backpressure. Returns false if the connection is closed.
   */
  send(wire: Uint8Array, opts?: { droppable?: boolean }): boolean;
  /** Close the connection (the reason is logged and passed to `onClose`). */
  close(reason: string): void;
  readonly closed: boolean;
}

/** Callbacks of a transport. They must not throw (exceptions are caught and logged). */
export interface TransportHandlers {
  onOpen(conn: MeshConnection): void;
  onFrame(conn: MeshConnection, frame: Uint8Array): void;
  onClose(conn: MeshConnection, reason: string): void;
  /** The decoder refused the stream (oversized length); the connection is being dropped. */
  onStreamError?(conn: MeshConnection, reason: 'size', detail: string): void;
}

/** Where to listen. */
export type StreamListen =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Opens a connected stream to a mesh address (may return a paused socket). */
export type StreamConnector = (address: string, timeoutMs: number, signal: AbortSignal) => Promise<net.Socket>;

/** Reconnect policy: delay = min(maxMs, initialMs · factor^(n−1)) · (1 − jitter·u), u ∈ [0,1). */
export interface DialBackoff {
  readonly initialMs?: number;
  readonly maxMs?: number;
  readonly factor?: number;
  /** Fraction of the delay removed at random (0..1). Default 0.2. */
  readonly jitter?: number;
}

/** Options of {@link StreamMeshTransport}. */
export interface StreamTransportOptions {
  readonly listen?: StreamListen;
  readonly connect: StreamConnector;
  readonly handlers: TransportHandlers;
  readonly timers: Timers;
  readonly logger: Logger;
  /** Decoder factory (one per connection, told its direction); normally the core's FrameDecoder. */
  readonly decoder: (direction: 'in' | 'out') => FrameSplitter;
  /** Random numbers in [0,1) for backoff jitter. Default: no jitter source → no jitter. */
  readonly random?: () => number;
  readonly backoff?: DialBackoff;
  /** Per-connection send queue bounds. Defaults 512 frames / 8 MiB. */
  readonly maxQueueFrames?: number;
  readonly maxQueueBytes?: number;
  /** Close a connection that delivered no frame for this long. Default 60 s. */
  readonly idleTimeoutMs?: number;
  /** Deadline of one dial. Default 10 s (use more for Tor). */
  readonly connectTimeoutMs?: number;
  /** Most simultaneous inbound connections. Default 256. */
  readonly maxInbound?: number;
}

/** Counters of a transport. */
export interface TransportStats {
  inbound: number;
  outbound: number;
  dialAttempts: number;
  dialFailures: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Droppable frames discarded under backpressure. */
  droppedFrames: number;
  /** Connections closed because their queue overflowed with nothing droppable. */
  overflowCloses: number;
  /** Connections dropped for an oversized length. */
  sizeCloses: number;
  idleCloses: number;
  /** Frames discarded by the partition test hook. */
  blockedFrames: number;
  inboundRefused: number;
}

function errText(e: unknown): string {
  if (e instanceof TorbalanceError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.message;
  return String(e);
}

let nextConnId = 1;

interface QueuedFrame {
  readonly wire: Uint8Array;
  readonly droppable: boolean;
}

class StreamConnection implements MeshConnection {
  readonly id = nextConnId++;
  readonly direction: 'in' | 'out';
  readonly remote: string;
  readonly dialAddress: string | undefined;
  lastFrameAt: number;
  gotFrame = false;
  readonly #sock: net.Socket;
  readonly #t: StreamMeshTransport;
  readonly #decoder: FrameSplitter;
  readonly #queue: QueuedFrame[] = [];
  #queueBytes = 0;
  #closed = false;

  constructor(t: StreamMeshTransport, sock: net.Socket, direction: 'in' | 'out', remote: string, dialAddress: string | undefined, decoder: FrameSplitter, now: number) {
    this.#t = t;
    this.#sock = sock;
    this.direction = direction;
    this.remote = remote;
    this.dialAddress = dialAddress;
    this.#decoder = decoder;
    this.lastFrameAt = now;
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 15_000);
    sock.on('data', (d: Buffer) => {
      this.#onData(d);
    });
    sock.on('drain', () => {
      this.#flush();
    });
    sock.on('error', (e) => {
      this.close(`socket error ${errText(e)}`);
    });
    sock.on('end', () => {
      this.close('remote closed');
    });
    sock.on('close', () => {
      this.close('socket closed');
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Start reading (after the owner registered the connection). */
  start(): void {
    this.#sock.resume();
  }

  #onData(d: Buffer): void {
    if (this.#closed) return;
    this.#t.stats.bytesIn += d.length;
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(new Uint8Array(d.buffer, d.byteOffset, d.length));
    } catch (e) {
      this.#t.stats.sizeCloses += 1;
      const detail = errText(e);
      this.#t.safe(() => this.#t.handlers.onStreamError?.(this, 'size', detail));
      this.close(`bad stream: ${detail}`);
      return;
    }
    for (const f of frames) {
      if (this.closed) return; // a handler may have closed us
      if (this.#t.blocked) {
        this.#t.stats.blockedFrames += 1;
        continue;
      }
      this.#t.stats.framesIn += 1;
      this.lastFrameAt = this.#t.timers.now();
      if (!this.gotFrame) {
        this.gotFrame = true;
        this.#t.connectionProved(this);
      }
      this.#t.safe(() => {
        this.#t.handlers.onFrame(this, f);
      });
    }
  }

  send(wire: Uint8Array, opts: { droppable?: boolean } = {}): boolean {
    if (this.#closed) return false;
    if (this.#t.blocked) {
      this.#t.stats.blockedFrames += 1;
      return true;
    }
    const droppable = opts.droppable === true;
    if (this.#queue.length === 0 && !this.#sock.writableNeedDrain) {
      this.#write(wire);
      return true;
    }
    this.#queue.push({ wire, droppable });
    this.#queueBytes += wire.length;
    while (this.#queue.length > this.#t.maxQueueFrames || this.#queueBytes > this.#t.maxQueueBytes) {
      const i = this.#queue.findIndex((q) => q.droppable);
      if (i < 0) {
        this.#t.stats.overflowCloses += 1;
        this.close('send queue overflow (peer not reading)');
        return false;
      }
      const [dropped] = this.#queue.splice(i, 1);
      this.#queueBytes -= dropped!.wire.length;
      this.#t.stats.droppedFrames += 1;
    }
    return true;
  }

  #write(wire: Uint8Array): boolean {
    this.#t.stats.framesOut += 1;
    this.#t.stats.bytesOut += wire.length;
    return this.#sock.write(wire);
  }

  #flush(): void {
    while (!this.#closed && this.#queue.length > 0 && !this.#sock.writableNeedDrain) {
      const q = this.#queue.shift()!;
      this.#queueBytes -= q.wire.length;
      this.#write(q.wire);
    }
  }

  /** Abruptly destroy the socket (test hook: a process that dies silently). */
  destroySilently(): void {
    this.#closed = true;
    this.#sock.destroy();
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#queueBytes = 0;
    this.#sock.destroy();
    this.#t.connectionClosed(this, reason);
  }
}

interface Dialer {
  readonly address: string;
  conn: StreamConnection | undefined;
  timer: TimerHandle | undefined;
  abort: AbortController | undefined;
  failures: number;
  stopped: boolean;
}

/**
 * A frame transport over stream sockets (see the module doc). `dial(address)` keeps one
 * outgoing connection to `address` open until `undial(address)`.
 */
export class StreamMeshTransport {
  readonly handlers: TransportHandlers;
  readonly timers: Timers;
  readonly stats: TransportStats = {
    inbound: 0, outbound: 0, dialAttempts: 0, dialFailures: 0, framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0,
    droppedFrames: 0, overflowCloses: 0, sizeCloses: 0, idleCloses: 0, blockedFrames: 0, inboundRefused: 0,
  };
  readonly maxQueueFrames: number;
  readonly maxQueueBytes: number;
  blocked = false;
  readonly #o: StreamTransportOptions;
  readonly #log: Logger;
  readonly #conns = new Set<StreamConnection>();
  readonly #dialers = new Map<string, Dialer>();
  readonly #idleMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxInbound: number;
  #server: net.Server | undefined;
  #sweep: TimerHandle | undefined;
  #closed = false;

  constructor(o: StreamTransportOptions) {
    this.#o = o;
    this.handlers = o.handlers;
    this.timers = o.timers;
    this.#log = o.logger;
    this.maxQueueFrames = o.maxQueueFrames ?? 512;
    this.maxQueueBytes = o.maxQueueBytes ?? 8 * 1024 * 1024;
    this.#idleMs = o.idleTimeoutMs ?? 60_000;
    this.#connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    this.#maxInbound = o.maxInbound ?? 256;
  }

  /** Run `fn`, logging (never propagating) an exception from a handler. */
  safe(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log.error({ err: e }, 'mesh transport handler threw');
    }
  }

  /** Start listening (if configured) and the idle sweep. Rejects with TB_ERR_MESH_LISTEN. */
  async start(): Promise<void> {
    this.#armSweep();
    const l = this.#o.listen;
    if (l === undefined) return;
    if (l.kind === 'unix') await removeStaleSocket(l.path);
    const server = net.createServer({ pauseOnConnect: true }, (sock) => {
      this.#accept(sock);
    });
    server.maxConnections = this.#maxInbound + 16;
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => {
        reject(new TorbalanceError('TB_ERR_MESH_LISTEN', 'config', `cannot listen on ${describeListen(l)}: ${errText(e)}`, { cause: e }));
      };
      server.once('error', onErr);
      const done = (): void => {
        server.removeListener('error', onErr);
        resolve();
      };
      if (l.kind === 'tcp') server.listen(l.port, l.host, done);
      else server.listen(l.path, done);
    });
    server.on('error', (e) => {
      this.#log.warn({ err: e }, 'mesh listener error');
    });
    if (l.kind === 'unix') await chmod(l.path, 0o600).catch(() => undefined);
    this.#server = server;
  }

  /** The bound TCP port (after start; for `port: 0`). */
  get port(): number | undefined {
    const a = this.#server?.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  #accept(sock: net.Socket): void {
    if (this.#closed) {
      sock.destroy();
      return;
    }
    let inbound = 0;
    for (const c of this.#conns) if (c.direction === 'in') inbound += 1;
    if (inbound >= this.#maxInbound) {
      this.stats.inboundRefused += 1;
      sock.destroy();
      return;
    }
    const remote = sock.remoteAddress !== undefined ? `${sock.remoteAddress}:${sock.remotePort ?? 0}` : 'unix';
    const conn = new StreamConnection(this, sock, 'in', `in:${remote}`, undefined, this.#o.decoder('in'), this.timers.now());
    this.stats.inbound += 1;
    this.#register(conn);
  }

  #register(conn: StreamConnection): void {
    this.#conns.add(conn);
    this.#log.debug({ conn: conn.id, remote: conn.remote, dir: conn.direction }, 'mesh connection open');
    this.safe(() => {
      this.handlers.onOpen(conn);
    });
    if (!conn.closed) conn.start();
  }

  /** Keep an outgoing connection to `address` (idempotent). */
  dial(address: string): void {
    if (this.#closed || this.#dialers.has(address)) return;
    const d: Dialer = { address, conn: undefined, timer: undefined, abort: undefined, failures: 0, stopped: false };
    this.#dialers.set(address, d);
    this.#attempt(d);
  }

  /** Stop dialling `address` and close its outgoing connection. */
  undial(address: string): void {
    const d = this.#dialers.get(address);
    if (d === undefined) return;
    this.#dialers.delete(address);
    d.stopped = true;
    if (d.timer !== undefined) this.timers.clearTimeout(d.timer);
    d.abort?.abort();
    d.conn?.close('no longer dialled');
  }

  /** Addresses currently dialled. */
  dialed(): string[] {
    return [...this.#dialers.keys()];
  }

  /** Open connections. */
  connections(): MeshConnection[] {
    return [...this.#conns];
  }

  #attempt(d: Dialer): void {
    if (d.stopped || this.#closed) return;
    d.timer = undefined;
    const ac = new AbortController();
    d.abort = ac;
    this.stats.dialAttempts += 1;
    this.#o.connect(d.address, this.#connectTimeoutMs, ac.signal).then(
      (sock) => {
        d.abort = undefined;
        if (d.stopped || this.#closed) {
          sock.destroy();
          return;
        }
        const conn = new StreamConnection(this, sock, 'out', d.address, d.address, this.#o.decoder('out'), this.timers.now());
        d.conn = conn;
        this.stats.outbound += 1;
        this.#register(conn);
      },
      (e: unknown) => {
        d.abort = undefined;
        if (d.stopped || this.#closed) return;
        this.stats.dialFailures += 1;
        this.#log.debug({ address: d.address, err: errText(e) }, 'mesh dial failed');
        this.#scheduleRedial(d);
      },
    );
  }

  #scheduleRedial(d: Dialer): void {
    if (d.stopped || this.#closed || d.timer !== undefined) return;
    d.failures += 1;
    const b = this.#o.backoff ?? {};
    const initial = b.initialMs ?? 250;
    const max = b.maxMs ?? 30_000;
    const factor = b.factor ?? 2;
    const jitter = Math.min(1, Math.max(0, b.jitter ?? 0.2));
    const base = Math.min(max, initial * factor ** Math.min(60, d.failures - 1));
    const u = this.#o.random?.() ?? 0;
    const delay = Math.max(1, Math.round(base * (1 - jitter * u)));
    d.timer = this.timers.setTimeout(() => {
      this.#attempt(d);
    }, delay);
  }

  /** Current redial delay count for `address` (consecutive failures; for tests/stats). */
  failuresOf(address: string): number | undefined {
    return this.#dialers.get(address)?.failures;
  }

  /** Called by a connection when its first frame arrived: the peer is reachable, reset the backoff. */
  connectionProved(conn: StreamConnection): void {
    if (conn.dialAddress === undefined) return;
    const d = this.#dialers.get(conn.dialAddress);
    if (d?.conn === conn) d.failures = 0;
  }

  /** Called by a connection once when it closes. */
  connectionClosed(conn: StreamConnection, reason: string): void {
    this.#conns.delete(conn);
    this.#log.debug({ conn: conn.id, remote: conn.remote, reason }, 'mesh connection closed');
    this.safe(() => {
      this.handlers.onClose(conn, reason);
    });
    if (conn.dialAddress !== undefined) {
      const d = this.#dialers.get(conn.dialAddress);
      if (d?.conn === conn) {
        d.conn = undefined;
        this.#scheduleRedial(d);
      }
    }
  }

  #armSweep(): void {
    if (this.#closed) return;
    const every = Math.max(50, Math.floor(this.#idleMs / 4));
    this.#sweep = this.timers.setTimeout(() => {
      this.#sweep = undefined;
      const now = this.timers.now();
      for (const c of [...this.#conns]) {
        if (now - c.lastFrameAt > this.#idleMs) {
          this.stats.idleCloses += 1;
          c.close(`idle: no frame for ${this.#idleMs} ms`);
        }
      }
      this.#armSweep();
    }, every);
  }

  /** Test hook: drop every frame in both directions (sockets stay open) while `blocked`. */
  setBlocked(blocked: boolean): void {
    this.blocked = blocked;
  }

  /**
   * Test hook: vanish like a killed process — destroy every socket and stop all timers
   * without any close handshake or callbacks. The transport is unusable afterwards.
   */
  crash(): void {
    this.#closed = true;
    if (this.#sweep !== undefined) this.timers.clearTimeout(this.#sweep);
    for (const d of this.#dialers.values()) {
      d.stopped = true;
      if (d.timer !== undefined) this.timers.clearTimeout(d.timer);
      d.abort?.abort();
    }
    this.#dialers.clear();
    for (const c of this.#conns) c.destroySilently();
    this.#conns.clear();
    this.#server?.close();
    this.#server = undefined;
  }

  /** Close the listener, every connection and every dialer. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweep !== undefined) this.timers.clearTimeout(this.#sweep);
    for (const a of [...this.#dialers.keys()]) this.undial(a);
    for (const c of [...this.#conns]) c.close('transport closed');
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) {
      await new Promise<void>((r) => server.close(() => {
        r();
      }));
    }
    const l = this.#o.listen;
    if (l?.kind === 'unix') await unlink(l.path).catch(() => undefined);
  }
}

function describeListen(l: StreamListen): string {
  return l.kind === 'tcp' ? `tcp ${l.host}:${l.port}` : `unix socket ${l.path}`;
}

/** Remove a leftover unix socket at `path` (refuse to remove anything that is not a socket). */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) {
      throw new TorbalanceError('TB_ERR_MESH_LISTEN', 'config', `${path} exists and is not a unix socket; refusing to replace it`);
    }
    await unlink(path);
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TorbalanceError('TB_ERR_MESH_LISTEN', 'config', `cannot prepare unix socket ${path}: ${errText(e)}`, { cause: e });
    }
  }
}

/** Parse a mesh address (the core's parser), throwing TB_ERR_MESH_ADDRESS if malformed. */
export function parseMeshAddressOrThrow(address: string): MeshAddress {
  const a = parseMeshAddress(address);
  if (a === undefined) {
    throw new TorbalanceError('TB_ERR_MESH_ADDRESS', 'input', `invalid mesh address ${JSON.stringify(address.slice(0, 130))}: expected tcp:<IP>:<port> (IPv6 as [addr]) or tor:<56 base32>.onion:<port>`);
  }
  return a;
}

/**
 * Never resolve: `tcp:` mesh addresses are IP literals (the parser refuses names), which node
 * connects to without a lookup; should a name ever get here, the dial fails instead of asking
 * DNS (docs/SECURITY.md, "Mesh addresses").
 */
const refuseLookup: net.LookupFunction = (_hostname, _options, callback) => {
  const e: NodeJS.ErrnoException = new Error('mesh addresses are IP literals: nothing is resolved');
  e.code = 'ENOTFOUND';
  callback(e, '', 0);
};

/** Connector for `tcp:` addresses (IP literals): a plain TCP connection with a deadline. */
export const tcpConnector: StreamConnector = (address, timeoutMs, signal) => {
  const a = parseMeshAddressOrThrow(address);
  if (a.kind !== 'tcp') return Promise.reject(new TorbalanceError('TB_ERR_MESH_ADDRESS', 'config', `${address} is not a tcp: address`));
  return new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect({ host: a.host, port: a.port, allowHalfOpen: false, lookup: refuseLookup });
    sock.pause();
    const fail = (e: unknown): void => {
      cleanup();
      sock.destroy();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const onErr = (e: Error): void => {
      fail(e);
    };
    const onAbort = (): void => {
      fail(new TorbalanceError('TB_ERR_MESH_DIAL', 'peer', `dial of ${address} aborted`));
    };
    const timer = setTimeout(() => {
      fail(new TorbalanceError('TB_ERR_MESH_DIAL', 'peer', `no connection to ${address} within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.removeListener('error', onErr);
      signal.removeEventListener('abort', onAbort);
    };
    sock.once('error', onErr);
    signal.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => {
      cleanup();
      resolve(sock);
    });
  });
};

/** Options of {@link createTcpTransport}. */
export type TcpTransportOptions = Omit<StreamTransportOptions, 'listen' | 'connect'> & {
  readonly listen?: { readonly host: string; readonly port: number };
};

/** A mesh transport over plain TCP: listens on host:port, dials `tcp:` addresses. */
export function createTcpTransport(o: TcpTransportOptions): StreamMeshTransport {
  const { listen, ...rest } = o;
  return new StreamMeshTransport({
    ...rest,
    ...(listen === undefined ? {} : { listen: { kind: 'tcp', host: listen.host, port: listen.port } }),
    connect: tcpConnector,
  });
}
