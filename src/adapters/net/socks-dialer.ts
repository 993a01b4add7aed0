/**
 * Dial a destination through the node's own tor SocksPort (SOCKS5, RFC 1928) with remote
 * name resolution: the destination hostname is always sent as ATYP 0x03 (domain name), so
 * nothing here resolves a name (no DNS). The handshake itself (greeting, RFC 1929
 * username/password for stream isolation, CONNECT, every reply code including tor's
 * onion-service codes 0xF0–0xF7) is the sans-IO codec in src/core/socks/socks5.ts; this
 * adapter only moves bytes and owns the socket, the timeout and the abort signal.
 *
 * Errors (SocksDialError, a TorbalanceError): TB_ERR_SOCKS_CONNECT (cannot reach the
 * SocksPort), TB_ERR_SOCKS_TIMEOUT, TB_ERR_SOCKS_ABORTED, TB_ERR_SOCKS_REPLY (the proxy
 * refused; `socksReply` holds the code, `kind` who is at fault), TB_ERR_SOCKS_AUTH (no
 * acceptable method or credentials), TB_ERR_SOCKS_PROTOCOL (malformed or closed SOCKS
 * answer), TB_ERR_SOCKS_DEST (invalid destination).
 */
import net from 'node:net';
import { TorbalanceError, type ErrorKind } from '../../core/errors.js';
import { Socks5ClientHandshake, SocksReplyError, type Socks5Step } from '../../core/socks/socks5.js';

export { describeSocksReply } from '../../core/socks/socks5.js';

/** Where tor's SocksPort listens. */
export interface SocksEndpoint {
  readonly host: string;
  readonly port: number;
  /**
   * SOCKS5 username for stream isolation: tor's SocksPort isolates streams by SOCKS auth
   * (IsolateSOCKSAuth, on by default), so a new value means a new circuit (for an onion
   * service: a new rendezvous through an intro point picked afresh). Not a secret.
   */
  readonly isolation?: string;
}

/** What to reach through tor (hostname sent to tor unresolved). */
export interface DialDestination {
  readonly host: string;
  readonly port: number;
}

/** A SOCKS dial failure; `socksReply` is the SOCKS5 REP code when the proxy refused. */
export class SocksDialError extends TorbalanceError {
  readonly socksReply: number | undefined;
  constructor(code: string, kind: ErrorKind, message: string, socksReply?: number, cause?: unknown) {
    super(code, kind, message, cause === undefined ? {} : { cause });
    this.name = 'SocksDialError';
    this.socksReply = socksReply;
  }
}

/**
 * Open a TCP stream to `dest` through tor. Resolves with a connected, paused socket
 * (allowHalfOpen: a FIN from the far side does not end our writing side; TCP_NODELAY set). Rejects with a SocksDialError within `timeoutMs`.
 */
export function dialThroughTor(socks: SocksEndpoint, dest: DialDestination, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  let hs: Socks5ClientHandshake;
  try {
    hs = new Socks5ClientHandshake({
      address: { type: 'domain', name: dest.host },
      port: dest.port,
      // tor isolates by username and password together; the password carries nothing.
      ...(socks.isolation === undefined ? {} : { auth: { username: socks.isolation, password: 'x' } }),
    });
  } catch (e) {
    if (e instanceof TorbalanceError) return Promise.reject(new SocksDialError(e.code, e.kind, e.message));
    throw e;
  }
  if (signal?.aborted === true) {
    return Promise.reject(new SocksDialError('TB_ERR_SOCKS_ABORTED', 'internal', 'SOCKS dial aborted'));
  }
  return new Promise<net.Socket>((resolve, reject) => {
    const sock = new net.Socket({ allowHalfOpen: true });
    let settled = false;
    const fail = (err: SocksDialError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      sock.destroy();
      reject(err);
    };
    const onAbort = (): void => {
      fail(new SocksDialError('TB_ERR_SOCKS_ABORTED', 'internal', 'SOCKS dial aborted'));
    };
    const timer = setTimeout(() => {
      fail(new SocksDialError('TB_ERR_SOCKS_TIMEOUT', 'tor', `no SOCKS connection to ${describeDest(dest)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onStep = (step: Socks5Step): void => {
      switch (step.state) {
        case 'pending':
          if (step.send.length > 0) sock.write(step.send);
          return;
        case 'failed': {
          const e = step.error;
          fail(new SocksDialError(e.code, e.kind, e.message, e instanceof SocksReplyError ? e.socksReply : undefined, e));
          return;
        }
        case 'connected':
          if (step.send.length > 0) sock.write(step.send);
          settled = true;
          cleanup();
          // Hand the caller a paused socket; stream bytes that came with the reply are
          // unshifted so nothing is lost whenever it starts reading.
          sock.pause();
          if (step.rest.length > 0) sock.unshift(Buffer.from(step.rest));
          resolve(sock);
          return;
      }
    };
    const onData = (d: Buffer): void => {
      onStep(hs.receive(d));
    };
    const onEnd = (): void => {
      onStep(hs.end());
    };
    const onClose = (): void => {
      onStep(hs.end());
    };
    const onError = (e: Error): void => {
      fail(new SocksDialError('TB_ERR_SOCKS_PROTOCOL', 'tor', `SOCKS connection to tor failed during the handshake with ${describeDest(dest)}: ${e.message}`, undefined, e));
    };
    const onConnectError = (e: Error): void => {
      fail(new SocksDialError('TB_ERR_SOCKS_CONNECT', 'tor', `cannot reach tor's SocksPort at ${socks.host}:${socks.port}: ${e.message}`, undefined, e));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.removeListener('error', onConnectError);
      sock.removeListener('error', onError);
      sock.removeListener('data', onData);
      sock.removeListener('end', onEnd);
      sock.removeListener('close', onClose);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('error', onConnectError);
    sock.connect({ host: socks.host, port: socks.port }, () => {
      if (settled) return;
      sock.removeListener('error', onConnectError);
      sock.on('error', onError);
      // Interactive traffic (SOCKS handshake, HTTP heads, small bodies): no Nagle delay.
      sock.setNoDelay(true);
      sock.on('data', onData);
      sock.on('end', onEnd);
      sock.on('close', onClose);
      sock.write(hs.start());
    });
  });
}

function describeDest(dest: DialDestination): string {
  return `${dest.host}:${dest.port}`;
}
