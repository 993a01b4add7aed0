/**
 * Client of the admin API (docs/admin-api.md), used by `torbalance status` and the token
 * commands: one HTTP/1.1 request over the node's admin unix socket or `127.0.0.1:<port>`.
 * Over TCP with `admin.secret_file` configured it sends `Authorization: Bearer <secret>`
 * ({@link adminAuthFor}; docs/SECURITY.md, "Admin API"); the secret never reaches argv,
 * logs or error messages.
 *
 * Errors: `TB_ERR_ADMIN_UNREACHABLE` (socket absent, connection refused or reset — with a hint
 * to start the node), `TB_ERR_ADMIN_TIMEOUT`, `TB_ERR_ADMIN_RESPONSE` (response too large or a
 * JSON content type with a body that is not JSON). HTTP error statuses are returned, not thrown.
 */
import http from 'node:http';
import type { Config, ListenAddress } from '../config/schema.js';
import { TorbalanceError } from '../../core/errors.js';
import { readAdminSecret } from './secret.js';
import { describeListen } from './server.js';

/** Credentials for a TCP admin API: the bearer secret of `admin.secret_file`. */
export interface AdminAuth {
  readonly bearer: Uint8Array;
}

/**
 * The credentials to send to the admin API of `admin` (a loaded config's `[admin]`): the
 * bearer secret when it listens on TCP and `secret_file` is set, else undefined (the unix
 * socket's 0600 mode is the access control there). Throws the secret reader's errors.
 */
export async function adminAuthFor(admin: Config['admin']): Promise<AdminAuth | undefined> {
  if (admin.listen.kind !== 'tcp' || admin.secret_file === undefined) return undefined;
  return { bearer: await readAdminSecret(admin.secret_file) };
}

/** Largest response body read (history and metrics stay far below this). */
export const MAX_ADMIN_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Result of {@link adminRequest}: `json` is the parsed body for JSON responses, else undefined. */
export interface AdminClientResponse {
  readonly status: number;
  readonly json: unknown;
  readonly text: string;
}

/** Send one request to the admin API at `listen`. */
export async function adminRequest(
  listen: ListenAddress,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
  auth?: AdminAuth,
): Promise<AdminClientResponse> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const where = describeListen(listen);
  return new Promise<AdminClientResponse>((resolve, reject) => {
    let settled = false;
    const fail = (e: TorbalanceError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(e);
    };
    const headers: Record<string, string> = {
      Host: listen.kind === 'tcp' ? `127.0.0.1:${listen.port}` : 'localhost',
      Accept: 'application/json, text/plain;q=0.9, */*;q=0.1',
      Connection: 'close',
    };
    // POST always declares JSON (the server refuses POSTs without it, body or not).
    if (payload !== undefined || method === 'POST') headers['Content-Type'] = 'application/json';
    if (payload !== undefined) headers['Content-Length'] = String(payload.length);
    if (auth !== undefined && listen.kind === 'tcp') headers['Authorization'] = `Bearer ${Buffer.from(auth.bearer).toString('latin1')}`;
    const req = http.request(
      {
        method,
        path,
        headers,
        agent: false,
        ...(listen.kind === 'unix' ? { socketPath: listen.path } : { host: '127.0.0.1', port: listen.port }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ADMIN_RESPONSE_BYTES) {
            fail(new TorbalanceError('TB_ERR_ADMIN_RESPONSE', 'input', `admin response from ${where} larger than ${MAX_ADMIN_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.once('error', (e) => {
          fail(new TorbalanceError('TB_ERR_ADMIN_UNREACHABLE', 'config', `admin API at ${where}: connection lost (${e.message})`, { cause: e }));
        });
        res.once('end', () => {
          if (settled) return;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          if (/^application\/json\b/i.test(res.headers['content-type'] ?? '')) {
            try {
              json = JSON.parse(text) as unknown;
            } catch (e) {
              if (!(e instanceof SyntaxError)) throw e;
              fail(new TorbalanceError('TB_ERR_ADMIN_RESPONSE', 'input', `admin API at ${where} sent invalid JSON`));
              return;
            }
          }
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    const timer = setTimeout(() => {
      fail(new TorbalanceError('TB_ERR_ADMIN_TIMEOUT', 'config', `admin API at ${where} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      fail(
        new TorbalanceError(
          'TB_ERR_ADMIN_UNREACHABLE',
          'config',
          `cannot reach the admin API at ${where} (${code || e.message}); is the node running? (torbalance run --config …)`,
          { cause: e },
        ),
      );
    });
    req.end(payload);
  });
}
