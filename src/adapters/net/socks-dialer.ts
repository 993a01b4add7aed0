/**
 * Dial a destination through the node's own tor SocksPort (SOCKS5, RFC 1928) with remote
 * name resolution: the destination hostname is always sent as ATYP 0x03 (domain name), so
 * nothing here resolves a name (no DNS). Uses the `socks` package for the handshake.
 *
 * tor's reply codes: RFC 1928 0x01–0x08, and with the SocksPort flag `ExtendedErrors` the
 * onion-service codes of prop304 (tor src/lib/net/socks5_status.h):
 * F0 HS_NOT_FOUND, F1 HS_IS_INVALID, F2 HS_INTRO_FAILED, F3 HS_REND_FAILED,
 * F4 HS_MISSING_CLIENT_AUTH, F5 HS_BAD_CLIENT_AUTH, F6 HS_BAD_ADDRESS, F7 HS_INTRO_TIMEDOUT.
 * The `socks` package reports a rejection only as text, so the dialer watches the first
 * bytes of the proxy's answer to recover the reply code (byte 4 of the stream: the method
 * selection reply is 2 bytes, the CONNECT reply starts VER REP).
 *
 * Errors (TorbalanceError, kind `tor` or `target`): TB_ERR_SOCKS_CONNECT (cannot reach the
 * SocksPort), TB_ERR_SOCKS_TIMEOUT, TB_ERR_SOCKS_ABORTED, TB_ERR_SOCKS_REPLY (the proxy
 * refused; `socksReply` holds the code), TB_ERR_SOCKS_PROTOCOL (malformed SOCKS answer),
 * TB_ERR_SOCKS_DEST (invalid destination).
 */
import net from 'node:net';
import { SocksClient } from 'socks';
import { TorbalanceError, type ErrorKind } from '../../core/errors.js';

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

/** Human-readable meaning of SOCKS5 reply codes, including tor's onion-service extensions. */
export const SOCKS5_REPLY_MESSAGES: Readonly<Record<number, string>> = {
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
  0xf0: 'onion service descriptor not found',
  0xf1: 'onion service descriptor is invalid',
  0xf2: 'onion service introduction failed',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service requires client authorization',
  0xf5: 'onion service client authorization was rejected',
  0xf6: 'invalid onion service address',
  0xf7: 'onion service introduction timed out',
};

/** A SOCKS dial failure; `socksReply` is the SOCKS5 REP code when the proxy refused. */
export class SocksDialError extends TorbalanceError {
  readonly socksReply: number | undefined;
  constructor(code: string, kind: ErrorKind, message: string, socksReply?: number, cause?: unknown) {
    super(code, kind, message, cause === undefined ? {} : { cause });
    this.name = 'SocksDialError';
    this.socksReply = socksReply;
  }
}

/** Message for a SOCKS5 reply code. */
export function describeSocksReply(code: number): string {
  return SOCKS5_REPLY_MESSAGES[code] ?? `unknown SOCKS5 reply 0x${code.toString(16).padStart(2, '0')}`;
}

/**
 * Open a TCP stream to `dest` through tor. Resolves with a connected, paused socket
 * (allowHalfOpen: a FIN from the far side does not end our writing side; TCP_NODELAY set). Rejects with a SocksDialError within `timeoutMs`.
 */
export function dialThroughTor(socks: SocksEndpoint, dest: DialDestination, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  if (dest.host.length === 0 || dest.host.length > 255 || !/^[\x21-\x7e]+$/.test(dest.host)) {
    return Promise.reject(new SocksDialError('TB_ERR_SOCKS_DEST', 'internal', 'destination hostname is empty, too long or not printable ASCII'));
  }
  if (!Number.isInteger(dest.port) || dest.port < 1 || dest.port > 65535) {
    return Promise.reject(new SocksDialError('TB_ERR_SOCKS_DEST', 'internal', 'destination port out of range'));
  }
  if (signal?.aborted === true) {
    return Promise.reject(new SocksDialError('TB_ERR_SOCKS_ABORTED', 'internal', 'SOCKS dial aborted'));
  }
  return new Promise<net.Socket>((resolve, reject) => {
    const sock = new net.Socket({ allowHalfOpen: true });
    let settled = false;
    const seen: number[] = [];
    const sniff = (d: Buffer): void => {
      for (const b of d) {
        if (seen.length >= 4) break;
        seen.push(b);
      }
      if (seen.length >= 4) sock.removeListener('data', sniff);
    };
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
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.removeListener('data', sniff);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const onEarlyError = (e: Error): void => {
      fail(new SocksDialError('TB_ERR_SOCKS_CONNECT', 'tor', `cannot reach tor's SocksPort at ${socks.host}:${socks.port}: ${e.message}`, undefined, e));
    };
    const swallow = (): void => undefined; // errors during the handshake surface through `fail`
    sock.on('error', swallow);
    sock.once('error', onEarlyError);
    sock.connect({ host: socks.host, port: socks.port }, () => {
      sock.removeListener('error', onEarlyError);
      // Interactive traffic (SOCKS handshake, HTTP heads, small bodies): no Nagle delay.
      sock.setNoDelay(true);
      sock.on('data', sniff);
      const client = new SocksClient({
        proxy: { host: socks.host, port: socks.port, type: 5, ...(socks.isolation === undefined ? {} : { userId: socks.isolation, password: 'x' }) },
        destination: { host: dest.host, port: dest.port },
        command: 'connect',
        timeout: timeoutMs,
      });
      client.on('error', (e: Error) => {
        const rep = seen.length >= 4 && seen[2] === 0x05 ? seen[3]! : undefined;
        if (rep !== undefined && rep !== 0) {
          const kind: ErrorKind = rep >= 0xf0 || rep === 0x04 || rep === 0x05 || rep === 0x06 ? 'target' : 'tor';
          fail(new SocksDialError('TB_ERR_SOCKS_REPLY', kind, `tor could not reach ${describeDest(dest)}: ${describeSocksReply(rep)} (SOCKS5 reply 0x${rep.toString(16).padStart(2, '0')})`, rep, e));
        } else if (/closed/i.test(e.message)) {
          fail(new SocksDialError('TB_ERR_SOCKS_PROTOCOL', 'tor', `SOCKS proxy closed the connection during the handshake with ${describeDest(dest)}`, undefined, e));
        } else {
          fail(new SocksDialError('TB_ERR_SOCKS_PROTOCOL', 'tor', `SOCKS handshake failed for ${describeDest(dest)}: ${e.message}`, undefined, e));
        }
      });
      client.on('established', (info: { socket: net.Socket }) => {
        if (settled) {
          info.socket.destroy();
          return;
        }
        // The socks package re-emits bytes that arrived with its reply and resumes the socket
        // in a setImmediate queued before this listener ran. Catch those bytes, then hand the
        // caller a paused socket with them unshifted, so nothing is lost whenever it reads.
        const early: Buffer[] = [];
        const keep = (d: Buffer): void => {
          early.push(d);
        };
        sock.on('data', keep);
        setImmediate(() => {
          sock.pause();
          sock.removeListener('data', keep);
          if (settled) {
            sock.destroy();
            return;
          }
          settled = true;
          cleanup();
          sock.removeListener('error', swallow);
          if (early.length > 0) sock.unshift(Buffer.concat(early));
          resolve(sock);
        });
      });
      client.connect(sock);
    });
  });
}

function describeDest(dest: DialDestination): string {
  return `${dest.host}:${dest.port}`;
}
