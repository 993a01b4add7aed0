/**
 * The admin API server (docs/admin-api.md; decisions in docs/SECURITY.md, "Admin API"): a
 * small HTTP/1.1 server (node:http) on a unix socket or on `127.0.0.1:<port>`, never
 * reachable through tor.
 *
 * Who may use what:
 * - unix socket: created under umask 0177 and chmod'ed to 0600 after listen, so only the
 *   node's user can connect; whoever can, may use every route (a stale socket file is removed
 *   only if it is a socket and nothing answers on it; anything else at the path is an error);
 * - TCP (IPv4 loopback only): every local process, of any user, can connect, so nothing is
 *   served on trust. A request carrying `Authorization: Bearer <secret>` with the secret of
 *   `admin.secret_file` (compared in constant time) may use every route; without it, read-only
 *   routes are served only if `admin.tcp_open_reads` is set and privileged routes never are
 *   (403 `TB_ERR_ADMIN_FORBIDDEN`); a missing or wrong secret when one is configured is 401
 *   `TB_ERR_ADMIN_AUTH`;
 * - privileged routes: every POST (state-changing: tokens, revocation, whatever comes later)
 *   and GET routes registered with `privileged: true`;
 * - browsers: the `Host` header must be `127.0.0.1:<port>` / `localhost:<port>` on TCP and
 *   name `localhost` / `127.0.0.1` on the socket (a forwarded socket is a TCP port on some
 *   workstation): DNS-rebinding defence. A request with an `Origin` header is refused on
 *   privileged routes (403 `TB_ERR_ADMIN_ORIGIN`: the CLI and curl send none, a browser's
 *   cross-site POST always does), and on read routes unless it is the server's own origin.
 *   POST requires `Content-Type: application/json` even without a body (415), so no HTML form
 *   or CORS-simple request reaches a handler; no CORS headers are ever sent;
 * - request bodies: JSON only, at most {@link MAX_ADMIN_BODY_BYTES} (413 / 400 with a typed
 *   error otherwise); header size, header and request timeouts; at most
 *   {@link MAX_ADMIN_CONNECTIONS} concurrent connections (node's `server.maxConnections`
 *   closes the rest);
 * - every response: `Cache-Control: no-store`, `X-Content-Type-Options: nosniff`,
 *   `Referrer-Policy: no-referrer`, and a strict Content-Security-Policy (no inline script:
 *   pages load their script and style from separate same-origin routes);
 * - unknown paths → 404, known path with another method → 405 (with `Allow`), both as JSON
 *   `{ "error": { "code", "message" } }`.
 *
 * The bearer secret is never logged or echoed (error messages name the header, never its value).
 *
 * Handlers return {@link AdminResponse}; a handler that throws a {@link TorbalanceError} of kind
 * `input` yields 400 with its code, any other error 500 (`TB_ERR_ADMIN_INTERNAL` for errors
 * that are not TorbalanceErrors, with a generic message: internal messages are not shown).
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { ListenAddress } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { errnoCode, isErrno } from '../system/errno.js';
import { utf8 } from '../../core/bytes.js';
import { secretsEqual } from '../../core/crypto/index.js';
import { TorbalanceError } from '../../core/errors.js';

/** A parsed request as handlers see it. */
export interface AdminRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Parsed JSON (≤ 64 KiB) or undefined when the request had no body. */
  readonly body: unknown;
}

/** What a handler returns: `json` (serialised) or `body` with `contentType`. */
export interface AdminResponse {
  readonly status: number;
  readonly json?: unknown;
  readonly body?: string | Uint8Array;
  readonly contentType?: string;
}

/** A route handler. */
export type AdminHandler = (req: AdminRequest) => Promise<AdminResponse> | AdminResponse;

/** One route (exact path match). */
export interface AdminRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly handler: AdminHandler;
  /**
   * Served over TCP only with the bearer secret (see the module doc). Every POST route is
   * privileged whatever this says; set it on GET routes that reveal more than status.
   */
  readonly privileged?: boolean;
}

/** Access over a TCP listen address (ignored on a unix socket). */
export interface AdminTcpAccess {
  /** The bearer secret (`admin.secret_file`); without it no privileged route is served over TCP. */
  readonly bearerSecret?: Uint8Array;
  /** Serve read-only routes without the secret (`admin.tcp_open_reads`). Default false. */
  readonly openReads?: boolean;
}

/** Largest accepted request body. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;
/** Concurrent connections served; more are closed at once. */
export const MAX_ADMIN_CONNECTIONS = 32;
/** The Content-Security-Policy sent with every response. */
export const ADMIN_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Limits of {@link AdminServer} (defaults for production; tests shorten them). */
export interface AdminLimits {
  readonly maxBodyBytes?: number;
  readonly maxConnections?: number;
  /** Whole header block must arrive within this. Default 10 000. */
  readonly headersTimeoutMs?: number;
  /** Whole request (headers + body) within this. Default 30 000. */
  readonly requestTimeoutMs?: number;
  /** A handler must answer within this (else 503). Default 30 000. */
  readonly handlerTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this. Default 5 000. */
  readonly keepAliveTimeoutMs?: number;
}

/** Options of {@link AdminServer}. */
export interface AdminServerOptions {
  readonly listen: ListenAddress;
  readonly logger?: Logger;
  readonly routes?: readonly AdminRoute[];
  readonly limits?: AdminLimits;
  readonly tcpAccess?: AdminTcpAccess;
}

function adminError(code: string, kind: 'config' | 'input' | 'internal', message: string, cause?: unknown): TorbalanceError {
  return new TorbalanceError(code, kind, message, cause === undefined ? {} : { cause });
}

/** Thrown by the body reader; mapped to a status. */
class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function errorJson(code: string, message: string): unknown {
  return { error: { code, message } };
}

/** Is something answering on the unix socket `path`? */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => {
      done(true);
    });
    s.once('error', () => {
      done(false);
    });
    s.setTimeout(2000, () => {
      done(true);
    });
  });
}

/** The admin HTTP server; see the module doc. */
export class AdminServer {
  readonly #o: AdminServerOptions;
  readonly #routes = new Map<string, Map<string, { readonly handler: AdminHandler; readonly privileged: boolean }>>();
  readonly #limits: Required<AdminLimits>;
  #server: http.Server | undefined;
  #port = 0;

  constructor(opts: AdminServerOptions) {
    this.#o = opts;
    const l = opts.limits ?? {};
    this.#limits = {
      maxBodyBytes: l.maxBodyBytes ?? MAX_ADMIN_BODY_BYTES,
      maxConnections: l.maxConnections ?? MAX_ADMIN_CONNECTIONS,
      headersTimeoutMs: l.headersTimeoutMs ?? 10_000,
      requestTimeoutMs: l.requestTimeoutMs ?? 30_000,
      handlerTimeoutMs: l.handlerTimeoutMs ?? 30_000,
      keepAliveTimeoutMs: l.keepAliveTimeoutMs ?? 5000,
    };
    if (opts.listen.kind === 'tcp' && opts.listen.host !== '127.0.0.1') {
      throw adminError('TB_ERR_ADMIN_LISTEN', 'config', `the admin API listens on a unix socket or 127.0.0.1 only, not ${opts.listen.host}`);
    }
    for (const r of opts.routes ?? []) this.addRoute(r);
  }

  /** Add a route (before or after start). A second route for the same method and path replaces the first. */
  addRoute(route: AdminRoute): void {
    if (!route.path.startsWith('/')) throw adminError('TB_ERR_ADMIN_ROUTE', 'internal', `route path must start with "/": ${route.path}`);
    let m = this.#routes.get(route.path);
    if (m === undefined) {
      m = new Map();
      this.#routes.set(route.path, m);
    }
    m.set(route.method, { handler: route.handler, privileged: route.method === 'POST' || route.privileged === true });
  }

  /** The bound TCP port (after start; 0 for unix sockets). */
  get port(): number {
    return this.#port;
  }

  /** Listen. Rejects with TB_ERR_ADMIN_IN_USE / TB_ERR_ADMIN_LISTEN. */
  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const lim = this.#limits;
    const server = http.createServer(
      {
        headersTimeout: lim.headersTimeoutMs,
        requestTimeout: lim.requestTimeoutMs,
        keepAliveTimeout: lim.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(lim.headersTimeoutMs / 4))),
        maxHeaderSize: 16 * 1024,
      },
      (req, res) => {
        this.#handle(req, res).catch((e: unknown) => {
          this.#o.logger?.warn({ err: e instanceof Error ? e.message : String(e) }, 'admin request failed');
          if (!res.headersSent) this.#send(res, 500, errorJson('TB_ERR_ADMIN_INTERNAL', 'internal error'));
          else res.destroy();
        });
      },
    );
    server.maxConnections = lim.maxConnections;
    server.maxRequestsPerSocket = 100;
    server.on('clientError', (e: NodeJS.ErrnoException, sock) => {
      const timeout = e.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (sock.writable) sock.end(`HTTP/1.1 ${timeout ? '408 Request Timeout' : '400 Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else sock.destroy();
    });
    const listen = this.#o.listen;
    if (listen.kind === 'unix') await this.#clearStaleSocket(listen.path);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(
          e.code === 'EADDRINUSE'
            ? adminError('TB_ERR_ADMIN_IN_USE', 'config', `the admin address ${describeListen(listen)} is in use (another node running?)`, e)
            : adminError('TB_ERR_ADMIN_LISTEN', 'config', `cannot listen on ${describeListen(listen)}: ${e.code ?? e.message}`, e),
        );
      };
      server.once('error', onError);
      const ready = (): void => {
        server.off('error', onError);
        resolve();
      };
      if (listen.kind === 'unix') {
        // The socket file is created by bind() inside listen(), synchronously: umask covers it.
        const old = process.umask(0o177);
        try {
          server.listen(listen.path, ready);
        } finally {
          process.umask(old);
        }
      } else {
        server.listen(listen.port, '127.0.0.1', ready);
      }
    });
    if (listen.kind === 'unix') {
      try {
        chmodSync(listen.path, 0o600);
      } catch (e) {
        server.close();
        throw adminError('TB_ERR_ADMIN_LISTEN', 'config', `cannot chmod the admin socket ${listen.path}`, e);
      }
    } else {
      const a = server.address();
      this.#port = typeof a === 'object' && a !== null ? a.port : listen.port;
    }
    server.on('error', (e) => {
      this.#o.logger?.warn({ err: e.message }, 'admin server error');
    });
    this.#server = server;
    this.#o.logger?.info({ listen: describeListen(listen, this.#port) }, 'admin API listening');
  }

  /** Stop listening, close all connections and remove the socket file. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    const closed = new Promise<void>((r) => {
      server.close(() => {
        r();
      });
    });
    server.closeAllConnections();
    await closed;
    const listen = this.#o.listen;
    if (listen.kind === 'unix') {
      try {
        if (lstatSync(listen.path).isSocket()) unlinkSync(listen.path);
      } catch (_ignored) {
        // best-effort cleanup on stop: already gone, or a stale socket the next start removes
      }
    }
  }

  async #clearStaleSocket(path: string): Promise<void> {
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw adminError('TB_ERR_ADMIN_LISTEN', 'config', `cannot inspect ${path}: ${errnoCode(e) ?? String(e)}`, e);
      return;
    }
    if (!st.isSocket()) throw adminError('TB_ERR_ADMIN_LISTEN', 'config', `${path} exists and is not a socket; not removing it`);
    if (await socketAnswers(path)) throw adminError('TB_ERR_ADMIN_IN_USE', 'config', `something answers on the admin socket ${path} (another node running?)`);
    try {
      unlinkSync(path);
    } catch (e) {
      throw adminError('TB_ERR_ADMIN_LISTEN', 'config', `cannot remove the stale admin socket ${path}`, e);
    }
  }

  #hostAllowed(host: string | undefined): boolean {
    if (this.#o.listen.kind === 'unix') {
      // HTTP/1.0 clients may omit Host; browsers never do. A forwarded socket is reached as
      // http://localhost:<any port>/, never under another name.
      if (host === undefined) return true;
      const name = host.toLowerCase().replace(/:[0-9]{1,5}$/, '');
      return name === 'localhost' || name === '127.0.0.1';
    }
    if (host === undefined) return false;
    const h = host.toLowerCase();
    return h === `127.0.0.1:${this.#port}` || h === `localhost:${this.#port}`;
  }

  /** The request's own origin (what a same-origin page of this server sends as Origin). */
  #originAllowed(origin: string, host: string | undefined): boolean {
    const o = origin.toLowerCase();
    if (this.#o.listen.kind === 'tcp') return o === `http://127.0.0.1:${this.#port}` || o === `http://localhost:${this.#port}`;
    return host !== undefined && o === `http://${host.toLowerCase()}`;
  }

  /**
   * Over TCP: undefined if the request may use the route, else the refusal. The secret is
   * compared in constant time ({@link secretsEqual}) and never echoed.
   */
  #tcpRefusal(req: http.IncomingMessage, privileged: boolean): { status: number; code: string; message: string } | undefined {
    if (this.#o.listen.kind === 'unix') return undefined;
    const access = this.#o.tcpAccess ?? {};
    const header = req.headers.authorization;
    if (access.bearerSecret !== undefined) {
      const m = header === undefined ? null : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
      if (m !== null && secretsEqual(utf8(m[1]!), access.bearerSecret)) return undefined;
      if (header !== undefined || privileged || access.openReads !== true) {
        return { status: 401, code: 'TB_ERR_ADMIN_AUTH', message: 'this route needs "Authorization: Bearer <the secret in admin.secret_file>" over TCP (or use the unix socket)' };
      }
      return undefined;
    }
    if (privileged) {
      return { status: 403, code: 'TB_ERR_ADMIN_FORBIDDEN', message: 'state-changing admin routes are served on the unix socket only, or over TCP with admin.secret_file set' };
    }
    if (access.openReads !== true) {
      return { status: 403, code: 'TB_ERR_ADMIN_FORBIDDEN', message: 'read routes over TCP need admin.tcp_open_reads = true or admin.secret_file (or use the unix socket)' };
    }
    return undefined;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.#hostAllowed(req.headers.host)) {
      req.resume();
      this.#send(res, 403, errorJson('TB_ERR_ADMIN_HOST', 'Host header not allowed (use 127.0.0.1:<port> or localhost:<port>; on the socket, localhost)'), true);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin.invalid');
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      req.resume();
      this.#send(res, 400, errorJson('TB_ERR_ADMIN_BAD_REQUEST', 'bad request target'), true);
      return;
    }
    const methods = this.#routes.get(url.pathname);
    const method = req.method ?? 'GET';
    if (methods === undefined) {
      req.resume();
      this.#send(res, 404, errorJson('TB_ERR_ADMIN_NOT_FOUND', `no such path: ${url.pathname.slice(0, 200)}`));
      return;
    }
    const route = methods.get(method);
    if (route === undefined) {
      req.resume();
      this.#send(res, 405, errorJson('TB_ERR_ADMIN_METHOD', `method ${method.slice(0, 20)} not allowed on ${url.pathname}`), false, { Allow: [...methods.keys()].join(', ') });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && (route.privileged || !this.#originAllowed(origin, req.headers.host))) {
      req.resume();
      this.#send(res, 403, errorJson('TB_ERR_ADMIN_ORIGIN', route.privileged ? 'state-changing admin requests from a web page are refused (Origin header present)' : 'cross-origin request refused'), true);
      return;
    }
    const refusal = this.#tcpRefusal(req, route.privileged);
    if (refusal !== undefined) {
      req.resume();
      this.#send(res, refusal.status, errorJson(refusal.code, refusal.message), true, refusal.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="torbalance-admin"' } : {});
      return;
    }
    if (method === 'POST' && !isJsonContentType(req.headers['content-type'])) {
      req.resume();
      this.#send(res, 415, errorJson('TB_ERR_ADMIN_BAD_REQUEST', 'POST requests must be Content-Type: application/json'), true);
      return;
    }
    let body: unknown;
    try {
      body = await this.#readBody(req);
    } catch (e) {
      if (e instanceof HttpProblem) {
        this.#send(res, e.status, errorJson(e.code, e.message), true);
        return;
      }
      throw e;
    }
    let out: AdminResponse;
    try {
      out = await this.#withDeadline(route.handler({ method, path: url.pathname, query: url.searchParams, body }));
    } catch (e) {
      if (e instanceof TorbalanceError) {
        const status = e.code === 'TB_ERR_ADMIN_HANDLER_TIMEOUT' ? 503 : e.kind === 'input' ? 400 : 500;
        this.#send(res, status, errorJson(e.code, e.message));
      } else {
        this.#o.logger?.warn({ err: e instanceof Error ? e.message : String(e), path: url.pathname }, 'admin handler failed');
        this.#send(res, 500, errorJson('TB_ERR_ADMIN_INTERNAL', 'internal error'));
      }
      return;
    }
    if (out.json !== undefined || out.body === undefined) {
      this.#send(res, out.status, out.json ?? null);
    } else {
      this.#sendRaw(res, out.status, out.body, out.contentType ?? 'application/octet-stream');
    }
  }

  #withDeadline<T>(p: Promise<T> | T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        reject(adminError('TB_ERR_ADMIN_HANDLER_TIMEOUT', 'internal', 'the request took too long'));
      }, this.#limits.handlerTimeoutMs);
      Promise.resolve(p).then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  #readBody(req: http.IncomingMessage): Promise<unknown> {
    const max = this.#limits.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) {
      return Promise.reject(new HttpProblem(413, 'TB_ERR_ADMIN_BODY_TOO_LARGE', `request body larger than ${max} bytes`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > max) {
          failed = true;
          chunks.length = 0;
          reject(new HttpProblem(413, 'TB_ERR_ADMIN_BODY_TOO_LARGE', `request body larger than ${max} bytes`));
          return;
        }
        chunks.push(c);
      });
      req.once('error', (e) => {
        if (!failed) {
          failed = true;
          reject(new HttpProblem(400, 'TB_ERR_ADMIN_BAD_REQUEST', `request aborted: ${e.message}`));
        }
      });
      req.once('end', () => {
        if (failed) return;
        if (size === 0) {
          resolve(undefined);
          return;
        }
        if (!isJsonContentType(req.headers['content-type'])) {
          reject(new HttpProblem(415, 'TB_ERR_ADMIN_BAD_REQUEST', 'request bodies must be application/json'));
          return;
        }
        try {
          resolve(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))) as unknown);
        } catch (e) {
          // the fatal decoder throws TypeError on bad UTF-8, JSON.parse SyntaxError on bad JSON;
          // anything else is a bug, rejected as it is (a 500) rather than thrown out of the event
          reject(e instanceof TypeError || e instanceof SyntaxError ? new HttpProblem(400, 'TB_ERR_ADMIN_BAD_REQUEST', 'request body is not valid UTF-8 JSON') : (e as Error));
        }
      });
    });
  }

  #headers(res: http.ServerResponse, status: number, contentType: string, length: number, close: boolean, extra: Record<string, string> = {}): void {
    res.writeHead(status, {
      'Content-Type': contentType,
      'Content-Length': String(length),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'Content-Security-Policy': ADMIN_CSP,
      ...(close ? { Connection: 'close' } : {}),
      ...extra,
    });
  }

  #send(res: http.ServerResponse, status: number, json: unknown, close = false, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const buf = Buffer.from(`${text}\n`, 'utf8');
    this.#headers(res, status, 'application/json; charset=utf-8', buf.length, close, extra);
    res.end(buf);
  }

  #sendRaw(res: http.ServerResponse, status: number, body: string | Uint8Array, contentType: string): void {
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    this.#headers(res, status, contentType, buf.length, false);
    res.end(buf);
  }
}

/** `Content-Type: application/json` (parameters such as charset allowed). */
function isJsonContentType(v: string | undefined): boolean {
  return (v ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/** `unix:<path>` or `127.0.0.1:<port>`. */
export function describeListen(l: ListenAddress, port?: number): string {
  return l.kind === 'unix' ? `unix:${l.path}` : `${l.host}:${port !== undefined && port !== 0 ? port : l.port}`;
}
