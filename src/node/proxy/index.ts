/**
 * The node's reverse proxy: where tor's `HiddenServicePort` for the master address points.
 * It accepts visitor connections on a unix socket or TCP port, optionally reads tor's PROXY
 * v1 header (`HiddenServiceExportCircuitID haproxy`, core/proxy-protocol.ts) to learn the
 * circuit, enforces a global and a per-circuit connection limit, and forwards to the target
 * onion service through the node's own tor SocksPort (never resolving a name itself):
 * as plain TCP (tcp-proxy.ts) or as HTTP with address rewriting (http-proxy.ts), so that
 * the target address never appears in what a visitor receives.
 *
 * Limits, timeouts and `rewriteBodies` can be changed while running
 * ({@link ReverseProxy.updateSettings}, used by the daemon's SIGHUP reload): new connections
 * and new requests use the new values; open connections are never dropped (their sockets keep
 * the idle timeout they were given).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../../adapters/log/logger.js';
import { errnoCode, isErrno } from '../../adapters/system/errno.js';
import { TorbalanceError } from '../../core/errors.js';
import { parseProxyV1, type ProxyHeaderV1 } from '../../core/proxy-protocol.js';
import { createRewriteContext, type RewriteContext } from '../../core/rewrite/index.js';
import { attachHttpProxy, type HttpProxyDeps } from './http-proxy.js';
import { countRejected, newStats, type MutableStats, type ProxyStats } from './stats.js';
import { handleTcpConnection } from './tcp-proxy.js';
import { TorAgent, type TorAgentOptions } from './upstream.js';

export { REJECT_REASONS, type ProxyStats, type RejectReason } from './stats.js';

/** Where the proxy listens. */
export type ListenAddress = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** Options of {@link ReverseProxy} (docs: notes/node-contracts.md). */
export interface ProxyOptions {
  readonly listen: ListenAddress;
  readonly mode: 'tcp' | 'http';
  readonly masterAddress: string;
  readonly target: { readonly address: string; readonly port: number; readonly tls?: { readonly servername?: string; readonly ca?: string; readonly verify: boolean } };
  readonly socks: { readonly host: string; readonly port: number };
  readonly proxyProtocol: boolean;
  readonly limits: {
    readonly maxConnections: number;
    readonly maxConnectionsPerCircuit: number;
    readonly connectTimeoutMs: number;
    readonly headerTimeoutMs: number;
    readonly idleTimeoutMs: number;
  };
  readonly rewriteBodies: boolean;
  readonly logger: Logger;
}

const ONION_RE = /^[a-z2-7]{56}\.onion$/;

/** The proxy's limits and timeouts (see {@link ProxyOptions.limits}). */
export type ProxyLimits = ProxyOptions['limits'];

/** What {@link ReverseProxy.updateSettings} may change while running. */
export interface ProxySettings {
  readonly limits: ProxyLimits;
  readonly rewriteBodies: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function checkLimits(l: ProxyLimits): void {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isInteger(v) || v < 1) throw new TorbalanceError('TB_ERR_PROXY_CONFIG', 'config', `limits.${k} must be a positive integer`);
  }
}

/** The reverse proxy. */
export class ReverseProxy {
  readonly #o: ProxyOptions;
  /** Current limits (changed by updateSettings; #o.limits keeps the start values). */
  #limits: ProxyLimits;
  /** The objects handed to the HTTP handler and the agent: mutated in place by updateSettings. */
  #httpDeps: Mutable<HttpProxyDeps> | undefined;
  #agentOpts: Mutable<TorAgentOptions> | undefined;
  #rewriteBodies: boolean;
  readonly #stats: MutableStats = newStats();
  readonly #sockets = new Set<net.Socket>();
  readonly #perCircuit = new Map<number, number>();
  readonly #ctx: RewriteContext;
  #server: net.Server | undefined;
  #http: http.Server | undefined;
  #agent: TorAgent | undefined;
  #stopping = false;

  constructor(options: ProxyOptions) {
    const master = options.masterAddress.toLowerCase();
    const target = options.target.address.toLowerCase();
    if (!ONION_RE.test(master)) throw new TorbalanceError('TB_ERR_PROXY_CONFIG', 'config', 'masterAddress must be a v3 .onion address');
    if (!ONION_RE.test(target)) throw new TorbalanceError('TB_ERR_PROXY_CONFIG', 'config', 'target address must be a v3 .onion address');
    checkLimits(options.limits);
    this.#o = { ...options, masterAddress: master, target: { ...options.target, address: target } };
    this.#limits = { ...options.limits };
    this.#rewriteBodies = options.rewriteBodies;
    this.#ctx = createRewriteContext({ target, master, targetPort: options.target.port, targetTls: options.target.tls !== undefined });
  }

  /** Start listening. Rejects with TB_ERR_PROXY_LISTEN if the address cannot be bound. */
  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const o = this.#o;
    const lim = this.#limits;
    if (o.mode === 'http') {
      this.#agentOpts = { socks: o.socks, target: o.target, connectTimeoutMs: lim.connectTimeoutMs, idleTimeoutMs: lim.idleTimeoutMs, maxSockets: lim.maxConnections };
      this.#agent = new TorAgent(this.#agentOpts);
      const hs = http.createServer({
        headersTimeout: lim.headerTimeoutMs,
        requestTimeout: 0,
        keepAliveTimeout: lim.idleTimeoutMs,
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(lim.headerTimeoutMs / 2))),
      });
      hs.timeout = lim.idleTimeoutMs;
      hs.on('clientError', (_err, socket: net.Socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        else socket.destroy();
      });
      this.#httpDeps = {
        ctx: this.#ctx,
        agent: this.#agent,
        socks: o.socks,
        target: o.target,
        rewriteBodies: this.#rewriteBodies,
        connectTimeoutMs: lim.connectTimeoutMs,
        idleTimeoutMs: lim.idleTimeoutMs,
        stats: this.#stats,
        logger: o.logger,
      };
      attachHttpProxy(hs, this.#httpDeps);
      this.#http = hs;
    }
    const server = net.createServer({ allowHalfOpen: o.mode === 'tcp', pauseOnConnect: true, noDelay: true }, (sock) => {
      this.#onConnection(sock);
    });
    if (o.listen.kind === 'unix') removeStaleSocket(o.listen.path);
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => {
        reject(new TorbalanceError('TB_ERR_PROXY_LISTEN', 'config', `cannot listen on ${describeListen(o.listen)}: ${e.message}`, { cause: e }));
      };
      server.once('error', onErr);
      const done = (): void => {
        server.removeListener('error', onErr);
        resolve();
      };
      if (o.listen.kind === 'unix') server.listen(o.listen.path, done);
      else server.listen(o.listen.port, o.listen.host, done);
    });
    server.on('error', (e) => {
      o.logger.error({ err: e.message }, 'proxy listener error');
    });
    this.#server = server;
    o.logger.info({ listen: describeListen(o.listen), mode: o.mode }, 'reverse proxy listening');
  }

  /** The bound address (TCP port when listening on port 0), or undefined before start. */
  address(): net.AddressInfo | string | undefined {
    return this.#server?.address() ?? undefined;
  }

  /** Stop accepting; wait up to drainMs for open connections, then destroy them. */
  async stop(drainMs: number): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => {
      resolve();
    }));
    this.#http?.closeIdleConnections();
    const deadline = Date.now() + Math.max(0, drainMs);
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      this.#http?.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 20));
    }
    const closing = [...this.#sockets].map((s) => new Promise<void>((resolve) => {
      if (s.closed) resolve();
      else s.once('close', () => {
        resolve();
      });
      s.destroy();
    }));
    this.#http?.closeAllConnections();
    await Promise.all(closing);
    this.#agent?.destroy();
    await closed;
    this.#server = undefined;
    this.#http = undefined;
    this.#agent = undefined;
    this.#httpDeps = undefined;
    this.#agentOpts = undefined;
    this.#stopping = false;
  }

  /** The limits and body rewriting in effect now. */
  settings(): ProxySettings {
    return { limits: { ...this.#limits }, rewriteBodies: this.#rewriteBodies };
  }

  /**
   * Change limits, timeouts and body rewriting while running (SIGHUP reload). New
   * connections and requests use the new values; open connections stay open (a lower
   * `maxConnections` only refuses new ones). Throws TB_ERR_PROXY_CONFIG (nothing changed)
   * for a non-positive or non-integer limit.
   */
  updateSettings(next: Partial<ProxySettings>): void {
    const limits = next.limits === undefined ? this.#limits : { ...next.limits };
    checkLimits(limits);
    this.#limits = limits;
    if (next.rewriteBodies !== undefined) this.#rewriteBodies = next.rewriteBodies;
    if (this.#http !== undefined) {
      this.#http.headersTimeout = limits.headerTimeoutMs;
      this.#http.keepAliveTimeout = limits.idleTimeoutMs;
      this.#http.timeout = limits.idleTimeoutMs;
    }
    if (this.#httpDeps !== undefined) {
      this.#httpDeps.rewriteBodies = this.#rewriteBodies;
      this.#httpDeps.connectTimeoutMs = limits.connectTimeoutMs;
      this.#httpDeps.idleTimeoutMs = limits.idleTimeoutMs;
    }
    if (this.#agentOpts !== undefined && this.#agent !== undefined) {
      this.#agentOpts.connectTimeoutMs = limits.connectTimeoutMs;
      this.#agentOpts.idleTimeoutMs = limits.idleTimeoutMs;
      this.#agentOpts.maxSockets = limits.maxConnections;
      this.#agent.maxSockets = limits.maxConnections;
    }
  }

  /** Counters since construction. */
  stats(): ProxyStats {
    const s = this.#stats;
    let bytesIn = s.bytesIn;
    let bytesOut = s.bytesOut;
    for (const sock of this.#sockets) {
      bytesIn += sock.bytesRead;
      bytesOut += sock.bytesWritten;
    }
    return { open: this.#sockets.size, accepted: s.accepted, rejected: s.rejected, rejectedBy: { ...s.rejectedBy }, bytesIn, bytesOut, requests: s.requests, byStatus: { ...s.byStatus } };
  }

  #onConnection(sock: net.Socket): void {
    const o = this.#o;
    sock.on('error', (e) => {
      o.logger.debug({ err: e.message }, 'visitor socket error');
    });
    if (this.#stopping || this.#sockets.size >= this.#limits.maxConnections) {
      countRejected(this.#stats, this.#stopping ? 'stopping' : 'limit');
      sock.destroy();
      return;
    }
    this.#stats.accepted++;
    this.#sockets.add(sock);
    sock.once('close', () => {
      this.#sockets.delete(sock);
      this.#stats.bytesIn += sock.bytesRead;
      this.#stats.bytesOut += sock.bytesWritten;
    });
    if (!o.proxyProtocol) {
      this.#dispatch(sock);
      return;
    }
    readProxyHeader(sock, this.#limits.headerTimeoutMs).then(
      (h) => {
        if (h.circuitId === undefined) {
          o.logger.warn('PROXY header without a tor circuit id; closing');
          countRejected(this.#stats, 'proxy-header');
          sock.destroy();
          return;
        }
        const id = h.circuitId;
        const n = this.#perCircuit.get(id) ?? 0;
        if (n >= this.#limits.maxConnectionsPerCircuit) {
          o.logger.debug({ circuit: id }, 'per-circuit connection limit reached; closing');
          countRejected(this.#stats, 'per-circuit');
          sock.destroy();
          return;
        }
        this.#perCircuit.set(id, n + 1);
        sock.once('close', () => {
          const m = (this.#perCircuit.get(id) ?? 1) - 1;
          if (m <= 0) this.#perCircuit.delete(id);
          else this.#perCircuit.set(id, m);
        });
        this.#dispatch(sock);
      },
      (e: unknown) => {
        o.logger.debug({ code: e instanceof TorbalanceError ? e.code : undefined }, 'bad or missing PROXY header; closing');
        countRejected(this.#stats, 'proxy-header');
        sock.destroy();
      },
    );
  }

  #dispatch(sock: net.Socket): void {
    if (sock.destroyed) return;
    const o = this.#o;
    if (o.mode === 'tcp') {
      handleTcpConnection(sock, { socks: o.socks, target: o.target, connectTimeoutMs: this.#limits.connectTimeoutMs, idleTimeoutMs: this.#limits.idleTimeoutMs, logger: o.logger });
      return;
    }
    this.#http!.emit('connection', sock);
    sock.resume();
  }
}

/**
 * Read and strip a PROXY v1 header (bounded by PROXY_V1_MAX_LENGTH and `timeoutMs`); bytes
 * after it are unshifted back into the socket. Rejects with a DecodeError or
 * TB_ERR_PROXY_HEADER_TIMEOUT.
 */
export function readProxyHeader(sock: net.Socket, timeoutMs: number): Promise<ProxyHeaderV1> {
  return new Promise((resolve, reject) => {
    let acc: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, h?: ProxyHeaderV1): void => {
      clearTimeout(timer);
      sock.removeListener('readable', onReadable);
      sock.removeListener('close', onClose);
      if (h !== undefined) {
        const left = acc.subarray(h.length);
        if (left.length > 0) sock.unshift(left);
        resolve(h);
      } else reject(err ?? new Error('PROXY header not read'));
    };
    const timer = setTimeout(() => {
      finish(new TorbalanceError('TB_ERR_PROXY_HEADER_TIMEOUT', 'input', `no PROXY header within ${timeoutMs} ms`));
    }, timeoutMs);
    const onClose = (): void => {
      finish(new TorbalanceError('TB_ERR_PROXY_HEADER_TIMEOUT', 'input', 'connection closed before the PROXY header'));
    };
    const onReadable = (): void => {
      for (;;) {
        const c = sock.read() as Buffer | null;
        if (c === null) return;
        acc = acc.length === 0 ? c : Buffer.concat([acc, c]);
        let h: ProxyHeaderV1 | undefined;
        try {
          h = parseProxyV1(acc);
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (h !== undefined) {
          finish(undefined, h);
          return;
        }
      }
    };
    sock.on('readable', onReadable);
    sock.once('close', onClose);
  });
}

function describeListen(l: ListenAddress): string {
  return l.kind === 'unix' ? `unix:${l.path}` : `${l.host}:${l.port}`;
}

function removeStaleSocket(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return; // absent: nothing to remove
    throw new TorbalanceError('TB_ERR_PROXY_LISTEN', 'config', `cannot listen on unix:${path}: cannot remove the stale socket (${errnoCode(e) ?? String(e)})`, { cause: e });
  }
}
