/**
 * HTTP mode of the node's reverse proxy: one node:http server fed with accepted visitor
 * sockets; every request (keep-alive included) goes to the target through tor via a
 * keep-alive TorAgent, with request headers rewritten master → target (Host, Origin,
 * Referer) and response headers and text bodies rewritten target → master (core/rewrite).
 * Bodies stream with backpressure both ways (bounded memory); compressed text
 * bodies are decoded, rewritten and re-encoded with the same coding. WebSocket (and other)
 * upgrades are passed through after rewriting the handshake heads — spliced only when the
 * target answers 101 with a protocol the visitor offered; any other answer is an ordinary
 * response (rewritten like every other) and the connection goes back to HTTP parsing. No header that reveals
 * anything (Via, X-Forwarded-For) is added. A target that cannot be reached gets the visitor
 * a 502 page within the connect timeout.
 */
import http from 'node:http';
import type net from 'node:net';
import { pipeline, type Readable, type Transform } from 'node:stream';
import type { Logger } from '../../adapters/log/logger.js';
import type { SocksEndpoint } from '../../adapters/net/socks-dialer.js';
import { TorbalanceError } from '../../core/errors.js';
import {
  headerLeaksTarget,
  isRewritableContentType,
  mayNameTarget,
  replaceAllBytes,
  rewriteRequestHeader,
  rewriteResponseHeader,
  StreamReplacer,
  type RewriteContext,
} from '../../core/rewrite/index.js';
import { filterAcceptEncoding, parseCoding, rewriteChain } from './body.js';
import { errorPage, rawErrorResponse } from './error-page.js';
import { countStatus, type MutableStats } from './stats.js';
import type { TorAgent, UpstreamTarget } from './upstream.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'http2-settings']);

export interface HttpProxyDeps {
  readonly ctx: RewriteContext;
  readonly agent: TorAgent;
  readonly socks: SocksEndpoint;
  readonly target: UpstreamTarget;
  readonly rewriteBodies: boolean;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly stats: MutableStats;
  readonly logger: Logger;
}

function connectionTokens(headers: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === 'connection') {
      for (const t of headers[i + 1]!.split(',')) out.add(t.trim().toLowerCase());
    }
  }
  return out;
}

/** Request headers for the target, as a flat [name, value, …] list (Host first). */
export function upstreamRequestHeaders(raw: readonly string[], ctx: RewriteContext, rewriteBodies: boolean, keepUpgrade: boolean): string[] {
  const conn = connectionTokens(raw);
  const out: string[] = ['Host', ctx.targetAuthority];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lname = name.toLowerCase();
    if (lname === 'host') continue;
    if (keepUpgrade && (lname === 'connection' || lname === 'upgrade')) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    if (HOP_BY_HOP.has(lname) || conn.has(lname)) continue;
    let value = rewriteRequestHeader(name, raw[i + 1]!, ctx);
    if (lname === 'accept-encoding' && rewriteBodies) value = filterAcceptEncoding(value);
    out.push(name, value);
  }
  return out;
}

/** Response headers for the visitor (rewritten, hop-by-hop and leaking ones dropped). */
export function visitorResponseHeaders(raw: readonly string[], ctx: RewriteContext, bodyRewritten: boolean, onDrop: (name: string) => void): string[] {
  const conn = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lname = name.toLowerCase();
    if (HOP_BY_HOP.has(lname) || conn.has(lname)) continue;
    if (bodyRewritten && (lname === 'content-length' || lname === 'content-md5' || lname === 'digest' || lname === 'repr-digest' || lname === 'content-digest')) continue;
    const original = raw[i + 1]!;
    if (!mayNameTarget(original, ctx) && !mayNameTarget(name, ctx)) {
      // nothing to rewrite (the common case); only the ETag of a rewritten body changes
      out.push(name, bodyRewritten && lname === 'etag' && !original.startsWith('W/') ? `W/${original}` : original);
      continue;
    }
    let value = rewriteResponseHeader(name, original, ctx);
    if (bodyRewritten && lname === 'etag' && !value.startsWith('W/')) value = `W/${value}`;
    if (headerLeaksTarget(name, value, ctx)) {
      onDrop(name);
      continue;
    }
    out.push(name, value);
  }
  return out;
}

/** Attach the request and upgrade handlers to `server`. */
export function attachHttpProxy(server: http.Server, d: HttpProxyDeps): void {
  server.on('request', (req, res) => {
    handleRequest(req, res, d, undefined);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    handleUpgrade(server, req, socket, head, d);
  });
}

/** The protocol names of an Upgrade header (RFC 9110 §7.8), lower-cased. */
function upgradeProtocols(value: string | undefined): Set<string> {
  const out = new Set<string>();
  if (value === undefined) return out;
  for (const t of value.split(',')) {
    const p = t.trim().toLowerCase();
    if (p !== '') out.add(p);
  }
  return out;
}

/**
 * True if a 101 answer may be spliced: it names at least one protocol and only protocols the
 * visitor offered (RFC 9110 §7.8: a server switches to one of the client's protocols).
 */
export function upgradeAccepted(offered: string | undefined, answered: string | undefined): boolean {
  const want = upgradeProtocols(offered);
  const got = upgradeProtocols(answered);
  if (got.size === 0) return false;
  for (const p of got) if (!want.has(p)) return false;
  return true;
}

/** A visitor connection detached from node:http by an upgrade request. */
interface UpgradeContext {
  readonly socket: net.Socket;
  /** Bytes of the request body (Content-Length) still to be read from `socket`. */
  readonly bodyLength: number;
}

function sendError(res: http.ServerResponse, status: number, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // After a failed upgrade request the connection ends (Connection: close), as before.
  if (close) res.shouldKeepAlive = false;
  const p = errorPage(status);
  res.writeHead(status, p.reason, p.headers);
  res.end(res.req.method === 'HEAD' ? undefined : p.body);
}

/** Bodies of known length up to this size are read whole before the head is sent on. */
const SMALL_BODY = 64 * 1024;

/** A Content-Length value as a number (undefined when absent or not a plain decimal). */
function declaredLength(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined;
  return Number(v);
}

/** Read a whole response body of `length` bytes; `done` is called once. */
function readSmallBody(ur: http.IncomingMessage, length: number, done: (err: Error | undefined, body?: Buffer) => void): void {
  const parts: Buffer[] = [];
  let n = 0;
  let called = false;
  const finish = (err: Error | undefined, body?: Buffer): void => {
    if (called) return;
    called = true;
    done(err, body);
  };
  ur.on('data', (c: Buffer) => {
    parts.push(c);
    n += c.length;
  });
  ur.on('end', () => {
    if (n !== length) finish(new Error('target response body length differs from its Content-Length'));
    else finish(undefined, parts.length === 1 ? parts[0]! : Buffer.concat(parts, n));
  });
  ur.on('error', (e: Error) => {
    finish(e);
  });
  ur.on('close', () => {
    if (!ur.complete) finish(new Error('target response body incomplete'));
  });
}

function rewriteSmallBody(body: Buffer, ctx: RewriteContext): Buffer {
  const out = replaceAllBytes(body, ctx.forward);
  return out === body ? body : Buffer.from(out.buffer, out.byteOffset, out.length);
}

/** Methods a request may be repeated with (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors of a connection the target (or tor) closed under us. */
const CONN_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED']);

/** True if the visitor's request carries a body (RFC 9112 §6.3: Transfer-Encoding or a Content-Length > 0). */
function requestHasBody(req: http.IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const cl = req.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

/**
 * Forward one request. Failure handling:
 * - before the target's response head, any upstream failure (dial error or timeout within
 *   connectTimeoutMs, reset, close, TLS error) gets the visitor a 502 page;
 * - a pooled connection found dead when reused (the target closed it as the request went
 *   out: "socket hang up", ECONNRESET, EPIPE) is retried once on a fresh connection when the
 *   request is idempotent and has no body, as undici does;
 * - after the head was sent on, a failure aborts the visitor's response (connection
 *   destroyed, so a truncated body is never taken for a complete one).
 */
function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, d: HttpProxyDeps, upg: UpgradeContext | undefined): void {
  d.stats.requests++;
  res.on('finish', () => {
    countStatus(d.stats, res.statusCode);
  });
  const headers = upstreamRequestHeaders(req.rawHeaders, d.ctx, d.rewriteBodies, upg !== undefined);
  const method = req.method ?? 'GET';
  const bodyless = upg === undefined ? !requestHasBody(req) : upg.bodyLength === 0;
  const retryable = bodyless && IDEMPOTENT.has(method) && upg === undefined;
  if (bodyless) req.resume();
  let current: http.ClientRequest | undefined;
  let errorSent = false;
  // Visitor gone before the response completed: stop the upstream request too.
  res.on('close', () => {
    if (!res.writableFinished) current?.destroy();
  });

  const send = (attempt: number): void => {
    const common = { host: d.target.address, port: d.target.port, method, path: req.url ?? '/', headers, setHost: false };
    // The retry goes on a connection of its own (not a possibly dead pooled one), and so does
    // an upgrade request (its connection is either spliced or closed after the response).
    const up = attempt === 0 && upg === undefined
      ? http.request({ ...common, agent: d.agent })
      : http.request({ ...common, createConnection: (o, cb) => d.agent.createConnection(o, cb) });
    current = up;
    let gotResponse = false;
    let responseDone = false;
    up.setTimeout(d.connectTimeoutMs + d.idleTimeoutMs, () => {
      up.destroy(new TorbalanceError('TB_ERR_PROXY_UPSTREAM_TIMEOUT', 'target', 'the target did not answer in time'));
    });
    const onFailure = (e: Error): void => {
      if (current !== up) return;
      const code = (e as { code?: unknown }).code;
      if (responseDone) return;
      if (gotResponse && res.headersSent) {
        // Response head already sent on: abort the visitor's response.
        d.logger.debug({ code, err: e.message }, 'upstream failed during the response');
        res.destroy();
        return;
      }
      if (errorSent || res.destroyed) return;
      if (!gotResponse && attempt === 0 && retryable && up.reusedSocket && (typeof code === 'string' && CONN_LOST.has(code))) {
        d.logger.debug({ code, err: e.message }, 'pooled connection to the target was closed; retrying on a fresh one');
        send(1);
        return;
      }
      errorSent = true;
      d.logger.debug({ code, err: e.message }, 'upstream request failed');
      sendError(res, 502, upg !== undefined);
    };
    up.on('error', onFailure);
    if (upg !== undefined) {
      up.on('upgrade', (ur: http.IncomingMessage, upSock: net.Socket, upHead: Buffer) => {
        gotResponse = true;
        responseDone = true;
        spliceUpgrade(req, res, ur, upSock, upHead, upg, d);
      });
      // The upgrade request's own connection: never pooled, gone with the response.
      res.once('finish', () => {
        up.destroy();
      });
    }
    up.on('response', (ur) => {
      gotResponse = true;
      up.setTimeout(d.idleTimeoutMs);
      const status = ur.statusCode ?? 502;
      if (status === 101) {
        // A 101 that node's parser did not take for an upgrade (no Connection: upgrade or
        // no Upgrade header): nothing to splice, and not a response a visitor may get.
        responseDone = true;
        d.logger.warn('target answered 101 without a valid upgrade; refused');
        ur.destroy();
        up.destroy();
        sendError(res, 502, upg !== undefined);
        return;
      }
      const noBody = method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
      const ctype = ur.headers['content-type'];
      const coding = parseCoding(ur.headers['content-encoding']);
      const rewrite = d.rewriteBodies && !noBody && isRewritableContentType(ctype);
      if (rewrite && coding === undefined) {
        // A text body in a coding we cannot decode could carry the target address: fail closed.
        responseDone = true;
        d.logger.warn({ encoding: ur.headers['content-encoding'] }, 'target sent a text body in an unsupported content coding');
        ur.destroy();
        sendError(res, 502, upg !== undefined);
        return;
      }
      const onDrop = (name: string): void => {
        d.logger.warn({ header: name }, 'dropped a response header that still named the target');
      };
      const length = noBody ? undefined : declaredLength(ur.headers['content-length']);
      if (length !== undefined && length <= SMALL_BODY && (!rewrite || coding === 'identity')) {
        // A small body of known length: read it whole, rewrite it in one go and send head and
        // body in one write with an exact Content-Length (no chunked framing, no terminator
        // write, and a failure while reading it is still a clean 502).
        readSmallBody(ur, length, (err, body) => {
          if (err !== undefined || body === undefined) {
            up.destroy();
            onFailure(err ?? new Error('target response body incomplete'));
            return;
          }
          responseDone = true;
          if (res.destroyed) return;
          const outBody = rewrite ? rewriteSmallBody(body, d.ctx) : body;
          const out = visitorResponseHeaders(ur.rawHeaders, d.ctx, rewrite, onDrop);
          if (rewrite) out.push('Content-Length', String(outBody.length));
          res.writeHead(status, ur.statusMessage, out);
          res.end(outBody);
        });
        return;
      }
      const out = visitorResponseHeaders(ur.rawHeaders, d.ctx, rewrite, onDrop);
      res.writeHead(status, ur.statusMessage, out);
      const relayed = (err: Error | undefined): void => {
        responseDone = true;
        if (err !== undefined) {
          d.logger.debug({ err: err.message }, 'response stream ended with an error');
          res.destroy();
        }
      };
      if (!rewrite || coding === 'identity') relayIdentity(ur, rewrite ? new StreamReplacer(d.ctx.forward) : undefined, res, relayed);
      else relay(ur, rewriteChain(coding!, d.ctx.forward), res, relayed);
    });
    if (bodyless) up.end();
    else if (upg !== undefined) pumpBody(upg.socket, upg.bodyLength, up);
    else {
      pipeline(req, up, (err) => {
        if (err) d.logger.debug({ err: err.message }, 'request body stream ended with an error');
      });
    }
  };
  send(0);
}

/**
 * Copy exactly `length` bytes of a detached visitor socket into `up` (with backpressure),
 * then end `up`; bytes past the body are put back into the socket for whoever reads next.
 */
function pumpBody(socket: net.Socket, length: number, up: http.ClientRequest): void {
  let left = length;
  const onData = (chunk: Buffer): void => {
    const part = chunk.length <= left ? chunk : chunk.subarray(0, left);
    left -= part.length;
    const more = up.write(part);
    if (left === 0) {
      socket.removeListener('data', onData);
      socket.pause();
      if (part.length < chunk.length) socket.unshift(chunk.subarray(part.length));
      up.end();
      return;
    }
    if (!more) {
      socket.pause();
      up.once('drain', () => socket.resume());
    }
  };
  socket.on('data', onData);
  socket.resume();
}

/**
 * Pipe `src` through `chain` into `res` with backpressure (`pipe`), and call `done` once:
 * without an error when `res` finished, with one when any stream failed or the visitor
 * went away first, after destroying every stream of the chain (zlib handles included).
 * What `stream.pipeline` does, without its per-call AbortController and the DOMException
 * it builds on every completion (a visible share of a small response's cost).
 */
function relay(src: Readable, chain: readonly Transform[], res: http.ServerResponse, done: (err: Error | undefined) => void): void {
  const streams: Readable[] = [src, ...chain];
  let settled = false;
  const settle = (err: Error | undefined): void => {
    if (settled) return;
    settled = true;
    if (err !== undefined) for (const s of streams) s.destroy();
    done(err);
  };
  const onError = (e: Error): void => {
    settle(e);
  };
  for (const s of streams) s.on('error', onError);
  res.once('finish', () => {
    settle(undefined);
  });
  res.once('close', () => {
    if (!res.writableFinished) settle(new Error('the visitor connection closed before the response was sent'));
  });
  let prev = src;
  for (const t of chain) prev = prev.pipe(t);
  // one writev per turn (corkPerTurn), also for what the transforms' flush and the end add
  prev.on('data', corkPerTurn(res));
  prev.pipe(res);
}

/**
 * Hold the visitor's socket corked until the end of this event-loop turn (node's own cork
 * ends at the next tick): what arrives in one read from the target — typically a whole
 * small response, then the end — leaves in one writev instead of a write for the body and
 * another for the chunked terminator. Streaming is kept: a chunk waits at most for the
 * current turn. res.end() fully uncorks. Returns the function to call before each write.
 */
function corkPerTurn(res: http.ServerResponse): () => void {
  const sock = res.socket;
  let held = false;
  const release = (): void => {
    held = false;
    if (sock !== null && sock.writableCorked > 0) sock.uncork();
  };
  return () => {
    if (held || sock === null || sock.destroyed) return;
    held = true;
    sock.cork();
    setImmediate(release);
  };
}

/**
 * {@link relay} for a body in identity coding, rewritten by `replacer` when given: the same
 * backpressure (pause on a full visitor socket, resume on 'drain'), completion and error
 * handling, with one 'data' handler instead of a Transform and two pipes per response (a
 * visible share of a small page's cost).
 */
function relayIdentity(src: http.IncomingMessage, replacer: StreamReplacer | undefined, res: http.ServerResponse, done: (err: Error | undefined) => void): void {
  let settled = false;
  const settle = (err: Error | undefined): void => {
    if (settled) return;
    settled = true;
    if (err !== undefined) src.destroy();
    done(err);
  };
  src.on('error', (e: Error) => {
    settle(e);
  });
  res.once('finish', () => {
    settle(undefined);
  });
  res.once('close', () => {
    if (!res.writableFinished) settle(new Error('the visitor connection closed before the response was sent'));
  });
  res.on('drain', () => {
    src.resume();
  });
  const beforeWrite = corkPerTurn(res);
  src.on('data', (chunk: Buffer) => {
    let out = chunk;
    if (replacer !== undefined) {
      const r = replacer.push(chunk);
      if (r.length === 0) return;
      out = Buffer.from(r.buffer, r.byteOffset, r.length);
    }
    beforeWrite();
    if (!res.write(out)) src.pause();
  });
  src.on('end', () => {
    const r = replacer?.end();
    if (r !== undefined && r.length > 0) {
      beforeWrite();
      res.end(Buffer.from(r.buffer, r.byteOffset, r.length));
    } else res.end();
  });
}

/**
 * An upgrade request (node:http hands it over with the socket detached from its parser).
 * It goes to the target with its Connection/Upgrade pair on a connection of its own. A 101
 * naming a protocol the visitor offered is spliced (spliceUpgrade); any other answer is sent
 * as an ordinary rewritten response through a ServerResponse on the same socket, and the
 * socket then goes back to the server for the visitor's next request. So a target that
 * refuses the upgrade never turns the connection into an unrewritten pipe.
 */
function handleUpgrade(server: http.Server, req: http.IncomingMessage, socket: net.Socket, head: Buffer, d: HttpProxyDeps): void {
  socket.on('error', () => undefined);
  const onIdle = (): void => {
    socket.destroy();
  };
  socket.setTimeout(d.idleTimeoutMs, onIdle);
  if (head.length > 0) socket.unshift(head);
  if (req.headers['transfer-encoding'] !== undefined) {
    // A chunked body cannot be delimited without parsing it here; no upgrade needs one.
    d.stats.requests++;
    countStatus(d.stats, 400);
    socket.end(rawErrorResponse(400));
    return;
  }
  const bodyLength = declaredLength(req.headers['content-length']) ?? 0;
  const res = new http.ServerResponse(req);
  // ServerResponse over a socket node:http no longer manages: how the server itself binds
  // a response to its connection (assignSocket) and lets go of it (detachSocket).
  res.assignSocket(socket);
  res.once('finish', () => {
    res.detachSocket(socket);
    socket.removeListener('timeout', onIdle);
    socket.setTimeout(0);
    // A response that said Connection: close (HTTP/1.0 visitor, Connection: close asked)
    // ends the connection, as node:http does after such a response.
    const last = (res as unknown as { _last?: boolean })._last === true;
    if (last || socket.destroyed) {
      socket.end();
      return;
    }
    server.emit('connection', socket);
    socket.resume();
  });
  handleRequest(req, res, d, { socket, bodyLength });
}

/** Splice visitor and target after a 101, if it switches to a protocol the visitor offered. */
function spliceUpgrade(req: http.IncomingMessage, res: http.ServerResponse, ur: http.IncomingMessage, up: net.Socket, upHead: Buffer, upg: UpgradeContext, d: HttpProxyDeps): void {
  const socket = upg.socket;
  res.detachSocket(socket);
  if (!upgradeAccepted(req.headers.upgrade, ur.headers.upgrade)) {
    d.logger.warn('target switched to a protocol the visitor did not offer; refused');
    up.destroy();
    countStatus(d.stats, 502);
    socket.end(rawErrorResponse(502));
    return;
  }
  up.on('error', () => {
    socket.destroy();
  });
  socket.on('close', () => up.destroy());
  up.on('close', () => socket.destroy());
  up.setTimeout(d.idleTimeoutMs, () => up.destroy());
  // Keep the Connection/Upgrade pair of the 101; everything else by the usual rules.
  const raw = ur.rawHeaders;
  const keep: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const l = raw[i]!.toLowerCase();
    if (l === 'connection' || l === 'upgrade') keep.push(raw[i]!, raw[i + 1]!);
  }
  const rest = visitorResponseHeaders(raw, d.ctx, false, (name) => {
    d.logger.warn({ header: name }, 'dropped an upgrade response header that still named the target');
  });
  const all = [...keep, ...rest];
  let outHead = `HTTP/1.1 101 ${(ur.statusMessage ?? '').replace(/[^\x20-\x7e]/g, '')}\r\n`;
  for (let i = 0; i < all.length; i += 2) outHead += `${all[i]!}: ${all[i + 1]!}\r\n`;
  countStatus(d.stats, 101);
  socket.write(Buffer.from(`${outHead}\r\n`, 'latin1'));
  if (upHead.length > 0) socket.write(upHead);
  up.pipe(socket);
  socket.pipe(up);
  up.resume();
}
