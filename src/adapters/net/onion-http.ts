/**
 * A minimal HTTP/1.1 GET through tor's SocksPort (the hostname goes to tor unresolved), for the
 * demo's visitor loop and operator checks. One request per connection, bounded body.
 */
import { request } from 'node:http';
import { TorbalanceError } from '../../core/errors.js';
import { dialThroughTor, type SocksEndpoint } from './socks-dialer.js';

export interface OnionHttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  readonly elapsedMs: number;
}

export interface OnionGetOptions {
  readonly timeoutMs: number;
  /** Default 1 MiB; longer bodies fail with TB_ERR_HTTP_BODY_TOO_LARGE. */
  readonly maxBodyBytes?: number;
  readonly signal?: AbortSignal;
}

/** GET `http://<host>:<port><path>` through tor. Throws SocksDialError or TorbalanceError. */
export async function httpGetThroughTor(
  socks: SocksEndpoint,
  target: { readonly host: string; readonly port: number; readonly path: string },
  options: OnionGetOptions,
): Promise<OnionHttpResponse> {
  const started = performance.now();
  const socket = await dialThroughTor(socks, { host: target.host, port: target.port }, options.timeoutMs, options.signal);
  const max = options.maxBodyBytes ?? 1 << 20;
  return new Promise<OnionHttpResponse>((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy(new TorbalanceError('TB_ERR_HTTP_TIMEOUT', 'target', `no complete response within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: target.path,
        method: 'GET',
        headers: { host: target.port === 80 ? target.host : `${target.host}:${target.port}`, connection: 'close' },
        createConnection: () => socket,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) {
            req.destroy(new TorbalanceError('TB_ERR_HTTP_BODY_TOO_LARGE', 'target', `response body over ${max} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            elapsedMs: performance.now() - started,
          });
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
    req.end();
    // dialThroughTor hands over a paused socket; the peer sends nothing before our request,
    // so resuming after the request has taken the socket loses no bytes.
    socket.resume();
  });
}
