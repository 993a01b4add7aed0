/**
 * A loopback test application that believes it is the TARGET onion service: its pages,
 * redirects, cookies, CSP, Link and CORS headers all name the target address, so tests can
 * check that nothing of it reaches a visitor through the node's proxy. Shared by the
 * loopback proxy tests and the real-tor tests.
 *
 * Endpoints:
 *   /               HTML naming the target (links in several cases, subdomain, with port) +
 *                   Set-Cookie Domain, CSP, Link, ACAO, Content-Location, a custom header
 *   /page           ~10 KB of HTML with 60 absolute links naming the target + Set-Cookie Domain
 *                   (the benchmark page: rewriting nginx can do too, sub_filter/proxy_cookie_domain)
 *   /redirect       302 Location: http://<target>/dest       /redirect-rel  302 Location: /dest
 *   /refresh        200 Refresh: 0; url=http://<target>/r
 *   /echo           JSON of the request line and headers (as received; the proxy rewrites it back)
 *   /big?size=N     text/plain, N bytes (default 10 MiB) streamed with backpressure, the target
 *                   address every 1 KiB; `bigSent` counts bytes written, `bigDone` says it finished
 *   /slow           writes a first chunk naming the target, then waits for `releaseSlow()`
 *   /slow-gzip      the same, gzip-encoded (first chunk sync-flushed)
 *   /hang           never answers
 *   /gzip, /br, /deflate   text/html naming the target, compressed
 *   /zstd           text/html labelled `content-encoding: zstd` (unsupported → proxy must fail closed)
 *   /sized          text/html with an exact Content-Length and an ETag, naming `<target>:<port>`
 *   /sized-cut      declares Content-Length 1000, sends 10 bytes, then drops the connection
 *   /binary         application/octet-stream (passed through unmodified)
 *   /upload         POST: answers with the number of body bytes received
 *   /ws             WebSocket echo (RFC 6455 handshake and frames implemented here)
 * `stop()` then `start()` reuses the same port (simulates the target going down and back);
 * `killConnections()` cuts every open connection (a crash mid-response); `dropReusedOnce`
 * closes a reused keep-alive connection instead of answering (the keep-alive race).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { brotliCompressSync, constants as zlibConstants, createGzip, deflateSync, gzipSync } from 'node:zlib';

export interface TargetAppOptions {
  /** The onion address the app believes it has ("<56>.onion"). */
  readonly address: string;
  /** The virtual port it believes visitors use (appears as `<address>:<port>` in one link). */
  readonly publicPort?: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly rawHeaders: readonly string[];
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export class TargetApp {
  readonly address: string;
  readonly publicPort: number;
  readonly requests: RecordedRequest[] = [];
  bigSent = 0;
  bigDone = false;
  port = 0;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #slowWaiters: (() => void)[] = [];
  readonly #served = new WeakMap<Socket, number>();
  /**
   * When set, the next request that arrives on an already used keep-alive connection is
   * answered by closing that connection (a server whose keep-alive timeout fired as the
   * request arrived); the flag then clears itself. Counted in `dropped`.
   */
  dropReusedOnce = false;
  dropped = 0;

  constructor(opts: TargetAppOptions) {
    this.address = opts.address;
    this.publicPort = opts.publicPort ?? 80;
  }

  /** The page HTML (exported so tests can compute the expected rewritten text). */
  html(): string {
    const t = this.address;
    return [
      '<!doctype html><html><head>',
      `<link rel="stylesheet" href="http://${t}/style.css">`,
      `<script>var api = "http://${t}:${this.publicPort}/api"; var ws = "ws://${t}/ws";</script>`,
      '</head><body>',
      `<a href="http://${t}/a">a</a> <a href="HTTP://${t.toUpperCase()}/b">b</a>`,
      `<a href="http://www.${t}/c">c</a> <a href="//${t}/d">d</a>`,
      `<p>Mail: admin@${t}</p>`,
      '</body></html>',
    ].join('\n');
  }

  /** The benchmark page (`/page`): ~10 KB of HTML with 60 absolute links naming the target. */
  benchPage(): string {
    const t = this.address;
    const parts = ['<!doctype html><html><head><title>items</title></head><body>'];
    for (let i = 0; i < 60; i++) parts.push(`<p>Item ${i}: ${'lorem ipsum dolor sit amet, '.repeat(2)}<a href="http://${t}/item/${i}">item ${i}</a></p>`);
    parts.push('</body></html>');
    return parts.join('\n');
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#onRequest(req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#onUpgrade(req, socket, head);
    });
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no port');
    this.port = a.port;
    this.#server = server;
  }

  /** Stop and drop every connection (the port stays reserved in `port` for `start()`). */
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    this.releaseSlow();
    for (const sock of this.#sockets) sock.destroy();
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => { resolve(); }));
  }

  /** Destroy every open connection abruptly (responses in progress are cut, nothing is ended cleanly); keep listening. */
  killConnections(): void {
    for (const sock of this.#sockets) sock.destroy();
  }

  releaseSlow(): void {
    const w = this.#slowWaiters;
    this.#slowWaiters = [];
    for (const f of w) f();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const n = (this.#served.get(req.socket) ?? 0) + 1;
    this.#served.set(req.socket, n);
    if (this.dropReusedOnce && n > 1) {
      this.dropReusedOnce = false;
      this.dropped++;
      req.socket.destroy();
      return;
    }
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, rawHeaders: [...req.rawHeaders] });
    const t = this.address;
    const url = new URL(req.url ?? '/', 'http://x');
    switch (url.pathname) {
      case '/': {
        res.writeHead(200, [
          'Content-Type', 'text/html; charset=utf-8',
          'Set-Cookie', `sid=abc; Domain=.${t}; Path=/; HttpOnly`,
          'Set-Cookie', `pref=1; domain=www.${t.toUpperCase()}; Path=/`,
          'Content-Security-Policy', `default-src 'self' http://${t} *.${t}; img-src ${t}:* data:`,
          'Link', `<http://${t}/style.css>; rel=preload; as=style, </rel.js>; rel=preload`,
          'Access-Control-Allow-Origin', `http://${t}`,
          'Content-Location', `http://${t}/index.html`,
          'X-Custom', `served by http://${t}/`,
        ]);
        res.end(this.html());
        return;
      }
      case '/page':
        res.writeHead(200, ['Content-Type', 'text/html; charset=utf-8', 'Set-Cookie', `sid=abc; Domain=.${t}; Path=/; HttpOnly`]);
        res.end(this.benchPage());
        return;
      case '/redirect':
        res.writeHead(302, { location: `http://${t}/dest` });
        res.end();
        return;
      case '/redirect-rel':
        res.writeHead(302, { location: '/dest' });
        res.end();
        return;
      case '/refresh':
        res.writeHead(200, { refresh: `0; url=http://${t}/r`, 'content-type': 'text/plain' });
        res.end('refresh');
        return;
      case '/echo':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
        return;
      case '/big':
        this.#big(res, Number(url.searchParams.get('size') ?? 10 * 1024 * 1024));
        return;
      case '/slow':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`first http://${t}/\n`);
        this.#slowWaiters.push(() => {
          if (!res.destroyed) res.end(`last http://${t}/\n`);
        });
        return;
      case '/slow-gzip': {
        // like /slow, gzip-encoded: the first chunk is sync-flushed so it can be decoded alone
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
        const gz = createGzip();
        gz.pipe(res);
        gz.write(`first http://${t}/\n`);
        gz.flush(zlibConstants.Z_SYNC_FLUSH, () => undefined);
        this.#slowWaiters.push(() => {
          if (!res.destroyed) gz.end(`last http://${t}/\n`);
        });
        return;
      }
      case '/hang':
        return;
      case '/gzip':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
        res.end(gzipSync(this.html()));
        return;
      case '/deflate':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'deflate' });
        res.end(deflateSync(this.html()));
        return;
      case '/br':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'br' });
        res.end(brotliCompressSync(this.html()));
        return;
      case '/zstd':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'zstd' });
        res.end(Buffer.from(`not really zstd http://${t}/`));
        return;
      case '/sized': {
        // text with an exact Content-Length, naming the target with its port (rewriting shortens it)
        const b = Buffer.from(`<a href="http://${t}:${this.publicPort}/x">x</a> ${t}`);
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(b.length), etag: '"v1"' });
        res.end(b);
        return;
      }
      case '/sized-cut':
        // declares 1000 bytes, sends 10, then the connection dies
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': '1000' });
        res.write('0123456789');
        setTimeout(() => req.socket.destroy(), 20);
        return;
      case '/binary': {
        const b = Buffer.alloc(4096);
        for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 0xff;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(b.length) });
        res.end(b);
        return;
      }
      case '/upload': {
        let n = 0;
        req.on('data', (d: Buffer) => {
          n += d.length;
        });
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(String(n));
        });
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
    }
  }

  #big(res: ServerResponse, size: number): void {
    this.bigSent = 0;
    this.bigDone = false;
    res.writeHead(200, { 'content-type': 'text/plain' });
    const unit = Buffer.from(`${'x'.repeat(1024 - this.address.length - 8)} http://${this.address}\n`.slice(0, 1024));
    const chunk = Buffer.concat(Array.from({ length: 64 }, () => unit));
    const write = (): void => {
      while (this.bigSent < size) {
        const n = Math.min(chunk.length, size - this.bigSent);
        this.bigSent += n;
        const ok = res.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (!ok) {
          res.once('drain', write);
          return;
        }
      }
      this.bigDone = true;
      res.end();
    };
    write();
  }

  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, rawHeaders: [...req.rawHeaders] });
    const key = req.headers['sec-websocket-key'];
    if (req.url !== '/ws' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Served-By: http://${this.address}/\r\n\r\n`,
    );
    let buf = head;
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const f = decodeFrame(buf);
        if (f === undefined) return;
        buf = buf.subarray(f.length);
        if (f.opcode === 8) {
          socket.end(encodeFrame(8, Buffer.alloc(0), false));
          return;
        }
        if (f.opcode === 9) socket.write(encodeFrame(10, f.payload, false));
        else if (f.opcode === 1 || f.opcode === 2) socket.write(encodeFrame(f.opcode, f.payload, false));
      }
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
    if (head.length > 0) onData(Buffer.alloc(0));
  }
}

/** One RFC 6455 frame (FIN always set). */
export interface WsFrame {
  readonly opcode: number;
  readonly payload: Buffer;
  /** Bytes this frame occupied. */
  readonly length: number;
}

/** Decode one frame from the start of `buf` (masked or not), or undefined if incomplete. */
export function decodeFrame(buf: Buffer): WsFrame | undefined {
  if (buf.length < 2) return undefined;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const maskLen = masked ? 4 : 0;
  if (buf.length < off + maskLen + len) return undefined;
  const payload = Buffer.from(buf.subarray(off + maskLen, off + maskLen + len));
  if (masked) {
    const m = buf.subarray(off, off + 4);
    for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ m[i & 3]!;
  }
  return { opcode, payload, length: off + maskLen + len };
}

/** Encode one final frame; clients must mask (`mask` true). */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const head: number[] = [0x80 | opcode];
  const mbit = mask ? 0x80 : 0;
  if (len < 126) head.push(mbit | len);
  else if (len < 65536) head.push(mbit | 126, len >> 8, len & 0xff);
  else {
    head.push(mbit | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(...b);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** The Sec-WebSocket-Accept value for a key. */
export function wsAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}
