/**
 * TCP mode of the node's reverse proxy: each visitor connection becomes one stream to the
 * target through tor; bytes flow both ways with backpressure (`pipe`), half-close is passed
 * on (both sockets allowHalfOpen: an end from one side ends only that direction), and an
 * idle timeout closes both.
 */
import type net from 'node:net';
import type { Logger } from '../../adapters/log/logger.js';
import type { SocksEndpoint } from '../../adapters/net/socks-dialer.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

export interface TcpProxyDeps {
  readonly socks: SocksEndpoint;
  readonly target: UpstreamTarget;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly logger: Logger;
}

/** Splice `visitor` (allowHalfOpen, paused) to a new stream to the target. */
export function handleTcpConnection(visitor: net.Socket, d: TcpProxyDeps): void {
  visitor.pause();
  const ac = new AbortController();
  const onEarlyClose = (): void => {
    ac.abort();
  };
  visitor.once('close', onEarlyClose);
  connectUpstream(d.socks, d.target, d.connectTimeoutMs, ac.signal).then(
    (up) => {
      visitor.removeListener('close', onEarlyClose);
      if (visitor.destroyed) {
        up.destroy();
        return;
      }
      splice(visitor, up, d);
    },
    (e: unknown) => {
      d.logger.debug({ err: e instanceof Error ? e.message : String(e) }, 'tcp: cannot reach target');
      visitor.destroy();
    },
  );
}

function splice(visitor: net.Socket, up: net.Socket, d: TcpProxyDeps): void {
  let closed = false;
  const closeBoth = (): void => {
    if (closed) return;
    closed = true;
    visitor.destroy();
    up.destroy();
  };
  up.on('error', closeBoth);
  visitor.on('error', closeBoth);
  // Full close once both directions are done.
  let ends = 0;
  const onDirectionDone = (): void => {
    if (++ends === 2) closeBoth();
  };
  visitor.on('end', () => {
    up.end();
  });
  up.on('end', () => {
    visitor.end();
  });
  visitor.on('finish', onDirectionDone);
  up.on('finish', onDirectionDone);
  visitor.on('close', closeBoth);
  up.on('close', closeBoth);
  visitor.setTimeout(d.idleTimeoutMs, closeBoth);
  up.setTimeout(d.idleTimeoutMs, closeBoth);
  visitor.pipe(up, { end: false });
  up.pipe(visitor, { end: false });
}
