/**
 * Connections from the node to the target: through tor's SocksPort (remote resolution, see
 * adapters/net/socks-dialer.ts), optionally TLS on top (the target's certificate names the
 * target's .onion), and a keep-alive http.Agent whose sockets are made that way.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { TorbalanceError } from '../../core/errors.js';
import { dialThroughTor, type SocksEndpoint } from '../../adapters/net/socks-dialer.js';

/** The target as the proxy reaches it. */
export interface UpstreamTarget {
  readonly address: string;
  readonly port: number;
  readonly tls?: { readonly servername?: string; readonly ca?: string; readonly verify: boolean };
}

/**
 * Dial the target through tor, then TLS if configured. The whole dial (SOCKS and TLS
 * handshake) is bounded by `timeoutMs`. The returned socket is paused.
 */
export async function connectUpstream(socks: SocksEndpoint, target: UpstreamTarget, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  const started = performance.now();
  const raw = await dialThroughTor(socks, { host: target.address, port: target.port }, timeoutMs, signal);
  const t = target.tls;
  if (t === undefined) return raw;
  const remaining = Math.max(1, timeoutMs - (performance.now() - started));
  return await new Promise<net.Socket>((resolve, reject) => {
    const s = tls.connect({
      socket: raw,
      host: target.address,
      servername: t.servername ?? target.address,
      rejectUnauthorized: t.verify,
      ALPNProtocols: ['http/1.1'],
      ...(t.ca === undefined ? {} : { ca: t.ca }),
    });
    const timer = setTimeout(() => {
      done(new TorbalanceError('TB_ERR_PROXY_TLS_TIMEOUT', 'target', `TLS handshake with the target did not finish within ${timeoutMs} ms`));
    }, remaining);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.removeListener('error', onError);
      s.removeListener('secureConnect', onSecure);
      if (err === undefined) {
        s.pause();
        resolve(s);
      } else {
        s.destroy();
        raw.destroy();
        reject(err);
      }
    };
    const onError = (e: Error): void => {
      done(new TorbalanceError('TB_ERR_PROXY_TLS', 'target', `TLS to the target failed: ${e.message}`, { cause: e }));
    };
    const onSecure = (): void => {
      done();
    };
    s.once('error', onError);
    s.once('secureConnect', onSecure);
  });
}

/** Options of {@link TorAgent}. */
export interface TorAgentOptions {
  readonly socks: SocksEndpoint;
  readonly target: UpstreamTarget;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxSockets: number;
}

type CreateConnectionCallback = (err: Error | null, socket: Duplex) => void;

/**
 * A keep-alive http.Agent whose connections go through tor to the one configured target.
 *
 * The dialer's sockets are allowHalfOpen (tcp mode passes half-closes on). HTTP needs no
 * half-close upstream, and a half-open socket in the free pool is a trap: when the target
 * closes it, node's agent never sees a 'close' (only an 'end' nobody listens to while the
 * socket is free), keeps it, and the next request is written into a dead stream and waits
 * for the idle timeout. So a pooled socket is destroyed as soon as the target ends it, and
 * on 'close' or 'error' the agent drops it as usual. Nagle is off (`setNoDelay`): requests
 * and small responses must not wait for the peer's delayed ACK.
 */
export class TorAgent extends http.Agent {
  readonly #opts: TorAgentOptions;

  constructor(opts: TorAgentOptions) {
    super({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: opts.maxSockets, maxFreeSockets: 64, timeout: opts.idleTimeoutMs, scheduling: 'lifo' });
    this.#opts = opts;
  }

  /** Node calls this for a new pooled connection; it accepts an asynchronous callback. */
  override createConnection(_options: unknown, callback?: CreateConnectionCallback): Duplex {
    const o = this.#opts;
    connectUpstream(o.socks, o.target, o.connectTimeoutMs).then(
      (sock) => {
        prepareHttpSocket(sock);
        callback?.(null, sock);
        // The socket is paused: http's parser attaches its 'data' listener on the next tick,
        // before this resume takes effect.
        sock.resume();
      },
      (err: unknown) => {
        callback?.(err instanceof Error ? err : new Error(String(err)), undefined as unknown as Duplex);
      },
    );
    return undefined as unknown as Duplex;
  }
}

/**
 * Make a dialed socket fit for HTTP: no Nagle, and destroyed once the target ends it (after
 * the current 'end' dispatch, so node's http client, when the socket is in use, first
 * finishes a response delimited by the close).
 */
export function prepareHttpSocket(sock: net.Socket): void {
  sock.setNoDelay(true);
  sock.once('end', () => {
    process.nextTick(() => {
      sock.destroy();
    });
  });
}
