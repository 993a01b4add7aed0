/**
 * ReverseProxy end to end on loopback: visitor → proxy → fake tor SocksPort → target app.
 * Every byte a visitor receives is recorded and scanned for the target address.
 */
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/adapters/log/logger.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { formatTorProxyHeader } from '../../src/core/proxy-protocol.js';
import { ReverseProxy, type ProxyOptions } from '../../src/node/proxy/index.js';
import { FakeSocksServer } from '../helpers/fake-socks-server.js';
import { decodeFrame, encodeFrame, TargetApp, wsAccept } from '../helpers/target-app.js';

const T = encodeOnionAddress(new Uint8Array(32).fill(11));
const M = encodeOnionAddress(new Uint8Array(32).fill(12));
const LABEL = T.slice(0, 56);
const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => { cb(); } }) });

let app: TargetApp;
let socks: FakeSocksServer;
let half: net.Server;
let halfPort = 0;
/** A target that answers Upgrade requests like ordinary ones (200 + Location naming it) and keeps the connection, or switches to `refuserSwitchTo`. */
let refuser: http.Server;
let refuserPort = 0;
/** The Host header of every request the refusing target got, in order. */
let refuserHosts: string[] = [];
/** When set, the refusing target answers every request with a bare 101 naming this protocol. */
let refuserSwitchTo: string | undefined;
const proxies: ReverseProxy[] = [];
/** Every byte any visitor socket received in the current test. */
let received: Buffer[] = [];

/** The page as visitors must get it: `<target>:80` → master, every other target spelling → master. */
function expectedHtml(): string {
  return app.html().split(`${T}:80`).join(M).split(T).join(M).split(T.toUpperCase()).join(M);
}

function noTargetIn(b: Buffer | string): void {
  const s = (typeof b === 'string' ? b : b.toString('latin1')).toLowerCase();
  expect(s.includes(LABEL)).toBe(false);
}

beforeAll(async () => {
  app = new TargetApp({ address: T });
  await app.start();
  // A TCP service for half-close tests: reads to EOF, then answers with the byte count.
  half = net.createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`got ${n}`));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => half.listen(0, '127.0.0.1', r));
  halfPort = (half.address() as net.AddressInfo).port;
  refuser = http.createServer((req, res) => {
    refuserHosts.push(req.headers.host ?? '');
    const body = Buffer.from(`<a href="http://${T}/next">moved</a>`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { Location: `http://${T}/next`, 'Content-Type': 'text/html', 'Content-Length': String(body.length) });
      res.end(body);
    });
  });
  refuser.on('upgrade', (req: http.IncomingMessage, s: net.Socket) => {
    refuserHosts.push(req.headers.host ?? '');
    if (refuserSwitchTo !== undefined) {
      s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${refuserSwitchTo}\r\nLocation: http://${T}/x\r\n\r\nraw ${T}`);
      return;
    }
    // Refuse: answer as an ordinary request, body naming the target, and keep reading.
    const body = `<a href="http://${T}/next">moved</a>`;
    s.write(`HTTP/1.1 200 OK\r\nLocation: http://${T}/next\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    refuser.emit('connection', s);
    s.resume();
  });
  await new Promise<void>((r) => refuser.listen(0, '127.0.0.1', r));
  refuserPort = (refuser.address() as net.AddressInfo).port;
  socks = new FakeSocksServer({
    route: (host, port) => (host !== T ? undefined : port === 80 ? { host: '127.0.0.1', port: app.port } : port === 7 ? { host: '127.0.0.1', port: halfPort } : port === 81 ? { host: '127.0.0.1', port: refuserPort } : undefined),
  });
  await socks.start();
});

afterEach(async () => {
  for (const b of received) noTargetIn(b);
  received = [];
  while (proxies.length > 0) await proxies.pop()!.stop(100);
  socks.hang = false;
  socks.replyOverride = undefined;
  refuserHosts = [];
  refuserSwitchTo = undefined;
});

afterAll(async () => {
  await socks.stop();
  await app.stop();
  half.close();
  refuser.closeAllConnections();
  refuser.close();
});

async function startProxy(over: Partial<ProxyOptions> = {}, limits: Partial<ProxyOptions['limits']> = {}): Promise<number> {
  const p = new ReverseProxy({
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    mode: 'http',
    masterAddress: M,
    target: { address: T, port: 80 },
    socks: socks.endpoint,
    proxyProtocol: false,
    rewriteBodies: true,
    logger,
    ...over,
    limits: { maxConnections: 50, maxConnectionsPerCircuit: 10, connectTimeoutMs: 2000, headerTimeoutMs: 2000, idleTimeoutMs: 5000, ...limits },
  });
  await p.start();
  proxies.push(p);
  return (p.address() as net.AddressInfo).port;
}

/** Connect to the proxy, recording every received byte; optional PROXY header first. */
function visitorSocket(port: number, circuit?: number): net.Socket {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('data', (d: Buffer) => received.push(d));
  s.on('error', () => undefined);
  if (circuit !== undefined) s.write(formatTorProxyHeader(circuit, 80));
  return s;
}

/** Raw HTTP/1.1 responses (Content-Length framed) read one by one from a visitor socket. */
function rawResponses(sock: net.Socket): () => Promise<{ head: string; body: string }> {
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let closed = false;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  sock.on('close', () => {
    closed = true;
    wake?.();
  });
  return async () => {
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        const n = m === null ? 0 : Number(m[1]);
        if (buf.length >= end + 4 + n) {
          const body = buf.subarray(end + 4, end + 4 + n).toString('latin1');
          buf = buf.subarray(end + 4 + n);
          return { head, body };
        }
      }
      if (closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(buf.toString('latin1'))}`);
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  };
}

function recordingAgent(port: number, circuit?: number): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => net.Socket }).createConnection = () => visitorSocket(port, circuit);
  return agent;
}

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  raw: string[];
  body: Buffer;
}

function get(port: number, path: string, opts: { agent?: http.Agent; headers?: Record<string, string>; method?: string; body?: Buffer } = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? recordingAgent(port), headers: { host: M, ...opts.headers } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => { resolve({ status: res.statusCode!, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(parts) }); });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('ReverseProxy http mode', () => {
  it('rewrites response headers and the HTML body; the target sees its own Host', async () => {
    const port = await startProxy();
    const n0 = app.requests.length;
    const r = await get(port, '/');
    expect(r.status).toBe(200);
    const body = r.body.toString();
    expect(body).toBe(expectedHtml());
    expect(r.headers['set-cookie']).toEqual([`sid=abc; Domain=.${M}; Path=/; HttpOnly`, `pref=1; domain=www.${M}; Path=/`]);
    expect(r.headers['content-security-policy']).toBe(`default-src 'self' http://${M} *.${M}; img-src ${M}:* data:`);
    expect(r.headers['link']).toBe(`<http://${M}/style.css>; rel=preload; as=style, </rel.js>; rel=preload`);
    expect(r.headers['access-control-allow-origin']).toBe(`http://${M}`);
    expect(r.headers['content-location']).toBe(`http://${M}/index.html`);
    expect(r.headers['x-custom']).toBe(`served by http://${M}/`);
    expect(r.headers['content-length']).toBeUndefined();
    for (const h of ['via', 'x-forwarded-for', 'forwarded']) expect(r.headers[h]).toBeUndefined();
    const seen = app.requests.slice(n0);
    expect(seen.map((q) => q.headers['host'])).toEqual([T]);
    // The proxy never resolved a name: tor got the onion name as ATYP domain.
    expect(socks.requests.length).toBeGreaterThan(0);
    for (const q of socks.requests) expect(q).toMatchObject({ atyp: 3, host: T });
  });

  it('keep-alive: several requests on one visitor connection are each rewritten', async () => {
    const port = await startProxy();
    const agent = recordingAgent(port);
    const p = proxies[proxies.length - 1]!;
    const accepted0 = p.stats().accepted;
    const n0 = app.requests.length;
    for (const path of ['/redirect', '/', '/refresh', '/redirect-rel']) {
      const r = await get(port, path, { agent });
      if (path === '/redirect') expect(r.headers['location']).toBe(`http://${M}/dest`);
      if (path === '/redirect-rel') expect(r.headers['location']).toBe('/dest');
      if (path === '/refresh') expect(r.headers['refresh']).toBe(`0; url=http://${M}/r`);
    }
    agent.destroy();
    expect(p.stats().accepted - accepted0).toBe(1);
    expect(p.stats().requests).toBe(4);
    expect(p.stats().byStatus).toMatchObject({ '302': 2, '200': 2 });
    expect(app.requests.slice(n0).every((q) => q.headers['host'] === T)).toBe(true);
  });

  it('rewrites Origin and Referer master → target; strips hop-by-hop headers', async () => {
    const port = await startProxy();
    const n0 = app.requests.length;
    await get(port, '/echo', { headers: { origin: `http://${M}`, referer: `http://${M}/page?x=1`, 'x-keep': 'yes', connection: 'keep-alive, x-drop', 'x-drop': '1', 'accept-encoding': 'zstd, br;q=0.9, gzip' } });
    const q = app.requests[n0]!;
    expect(q.headers['origin']).toBe(`http://${T}`);
    expect(q.headers['referer']).toBe(`http://${T}/page?x=1`);
    expect(q.headers['x-keep']).toBe('yes');
    expect(q.headers['x-drop']).toBeUndefined();
    expect(q.headers['accept-encoding']).toBe('br;q=0.9, gzip');
  });

  it('streams 10 MiB with every address rewritten', async () => {
    const port = await startProxy();
    const r = await get(port, '/big');
    expect(r.body.length).toBe(10 * 1024 * 1024);
    const s = r.body.toString('latin1');
    expect(s.split(M).length - 1).toBe(10 * 1024);
    noTargetIn(s);
  });

  it('does not buffer: the first chunk arrives before the target finishes', async () => {
    const port = await startProxy();
    const firstChunk = await new Promise<{ text: string; res: http.IncomingMessage }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: recordingAgent(port), headers: { host: M } }, (res) => {
        res.once('data', (d: Buffer) => { resolve({ text: d.toString(), res }); });
      });
      req.on('error', reject);
    });
    expect(firstChunk.text).toContain(`first http://${M}/`);
    const rest = new Promise<string>((resolve) => {
      let acc = '';
      firstChunk.res.on('data', (d: Buffer) => (acc += d.toString()));
      firstChunk.res.on('end', () => { resolve(acc); });
    });
    app.releaseSlow();
    expect(await rest).toContain(`last http://${M}/`);
  });

  it('does not buffer compressed text either: the re-encoded first chunk decodes before the target finishes', async () => {
    const port = await startProxy();
    const { res, first } = await new Promise<{ res: http.IncomingMessage; first: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow-gzip', agent: recordingAgent(port), headers: { host: M, 'accept-encoding': 'gzip' } }, (r) => {
        expect(r.headers['content-encoding']).toBe('gzip');
        const gunzip = zlib.createGunzip();
        r.pipe(gunzip);
        gunzip.once('data', (d: Buffer) => {
          resolve({ res: r, first: d.toString() });
        });
      });
      req.on('error', reject);
    });
    expect(first).toContain(`first http://${M}/`);
    const done = new Promise<void>((resolve) => res.on('end', () => { resolve(); }));
    app.releaseSlow();
    await done;
  });

  it('propagates backpressure: a visitor that stops reading stops the target', async () => {
    const port = await startProxy();
    const size = 1024 * 1024 * 1024;
    const sock = visitorSocket(port);
    sock.write(`GET /big?size=${size} HTTP/1.1\r\nHost: ${M}\r\n\r\n`);
    let got = 0;
    await new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got > 1024 * 1024) {
          sock.pause();
          resolve();
        }
      });
    });
    // Wait until the target's writes come to rest (buffers full); on a loaded machine that can
    // take longer than any fixed pause, so poll: unchanged over 300 ms, or give up after 30 s.
    let prev = -1;
    for (const end = Date.now() + 30_000; app.bigSent !== prev && Date.now() < end; ) {
      prev = app.bigSent;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(app.bigSent).toBe(prev); // stalled, not streaming into memory
    expect(app.bigSent).toBeLessThan(size / 4);
    expect(app.bigDone).toBe(false);
    received = received.slice(0, 4); // the scan covers what was read
    sock.destroy();
  });

  it.each(['gzip', 'br', 'deflate'] as const)('rewrites %s bodies and re-encodes them', async (coding) => {
    const port = await startProxy();
    const r = await get(port, `/${coding}`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(r.headers['content-encoding']).toBe(coding);
    const plain = coding === 'gzip' ? zlib.gunzipSync(r.body) : coding === 'br' ? zlib.brotliDecompressSync(r.body) : zlib.inflateSync(r.body);
    expect(plain.toString()).toBe(expectedHtml());
    noTargetIn(plain);
  });

  it('a small text body of known length is rewritten whole and sent with its new exact Content-Length', async () => {
    const port = await startProxy();
    const r = await get(port, '/sized');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(`<a href="http://${M}/x">x</a> ${M}`);
    expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(r.headers['etag']).toBe('W/"v1"');
  });

  it('a small body cut short by the target before the head was sent on gets a clean 502', async () => {
    const port = await startProxy();
    const r = await get(port, '/sized-cut');
    expect(r.status).toBe(502);
    expect((await get(port, '/sized')).status).toBe(200);
  });

  it('fails closed (502) on a text body in an unsupported coding', async () => {
    const port = await startProxy();
    const r = await get(port, '/zstd');
    expect(r.status).toBe(502);
  });

  it('passes binary bodies through unchanged (Content-Length kept) and forwards request bodies', async () => {
    const port = await startProxy();
    const r = await get(port, '/binary');
    expect(r.body.length).toBe(4096);
    expect(r.headers['content-length']).toBe('4096');
    expect(r.body[7]).toBe(49);
    const up = await get(port, '/upload', { method: 'POST', body: Buffer.alloc(3 * 1024 * 1024, 0x61) });
    expect(up.body.toString()).toBe(String(3 * 1024 * 1024));
  });

  it('passes a WebSocket upgrade through and echoes frames', async () => {
    const port = await startProxy();
    const n0 = app.requests.length;
    const sock = visitorSocket(port);
    const key = Buffer.from('0123456789abcdef').toString('base64');
    sock.write(`GET /ws HTTP/1.1\r\nHost: ${M}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://${M}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    const head = await new Promise<string>((resolve) => {
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        const i = buf.indexOf('\r\n\r\n');
        if (i >= 0) {
          sock.removeListener('data', onData);
          const h = buf.subarray(0, i).toString();
          buf = buf.subarray(i + 4);
          resolve(h);
        }
      };
      sock.on('data', onData);
    });
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toContain(`Sec-WebSocket-Accept: ${wsAccept(key)}`);
    expect(head).toContain(`X-Served-By: http://${M}/`);
    expect(app.requests[n0]!.headers['host']).toBe(T);
    expect(app.requests[n0]!.headers['origin']).toBe(`http://${T}`);
    sock.write(encodeFrame(1, Buffer.from('hello through tor'), true));
    const frame = await new Promise<{ opcode: number; payload: Buffer }>((resolve) => {
      const check = (): void => {
        const f = decodeFrame(buf);
        if (f !== undefined) resolve(f);
      };
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        check();
      });
      check();
    });
    expect(frame.opcode).toBe(1);
    expect(frame.payload.toString()).toBe('hello through tor');
    sock.destroy();
  });

  it('a down target gets a 502 page quickly; served again when back', async () => {
    const port = await startProxy();
    await app.stop();
    try {
      const r = await get(port, '/');
      expect(r.status).toBe(502);
      expect(r.headers['content-type']).toContain('text/html');
      expect(r.body.toString()).toContain('502');
    } finally {
      await app.start();
    }
    const ok = await get(port, '/');
    expect(ok.status).toBe(200);
  });

  it('a target that goes down after serving (pooled keep-alive connection) gets a 502 within the connect timeout; served again when back', async () => {
    const port = await startProxy({}, { connectTimeoutMs: 1500, idleTimeoutMs: 300_000 });
    const agent = recordingAgent(port);
    expect((await get(port, '/', { agent })).status).toBe(200);
    await app.stop(); // closes the server and destroys its sockets (the proxy's pooled one too)
    try {
      await new Promise((r) => setTimeout(r, 100)); // let the FIN reach the proxy's pool
      const t0 = performance.now();
      const r = await Promise.race([
        get(port, '/', { agent }),
        new Promise<never>((_r, reject) => setTimeout(() => { reject(new Error('no answer within 10 s: the request hung')); }, 10_000)),
      ]);
      expect(r.status).toBe(502);
      expect(r.body.toString()).toContain('502');
      // not asserted as a timing: a bound that only a hang (idle timeout, 300 s) would break
      expect(performance.now() - t0).toBeLessThan(10_000);
    } finally {
      await app.start();
    }
    expect((await get(port, '/', { agent })).status).toBe(200);
    agent.destroy();
  });

  it('a pooled connection the target closes as a request arrives: idempotent bodyless requests are retried once on a fresh connection', async () => {
    const port = await startProxy();
    const agent = recordingAgent(port);
    expect((await get(port, '/', { agent })).status).toBe(200);
    const dialed = socks.requests.length;
    app.dropReusedOnce = true;
    const r = await get(port, '/redirect', { agent });
    expect(app.dropped).toBe(1);
    expect(r.status).toBe(302);
    expect(r.headers['location']).toBe(`http://${M}/dest`);
    expect(socks.requests.length).toBe(dialed + 1); // the retry dialed a new stream
    // A request with a body is not repeated: the visitor gets a 502.
    expect((await get(port, '/', { agent })).status).toBe(200);
    app.dropReusedOnce = true;
    const post = await get(port, '/upload', { agent, method: 'POST', body: Buffer.from('abc') });
    expect(app.dropped).toBe(2);
    expect(post.status).toBe(502);
    expect((await get(port, '/upload', { agent, method: 'POST', body: Buffer.from('abc') })).body.toString()).toBe('3');
    agent.destroy();
  });

  it('a target that dies mid-response aborts the visitor response (no clean end)', async () => {
    const port = await startProxy();
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: recordingAgent(port), headers: { host: M } }, (res) => {
        res.once('data', () => {
          app.killConnections();
        });
        res.on('data', () => undefined);
        res.on('end', () => { resolve(res.complete ? 'complete' : 'incomplete'); });
        res.on('error', () => { resolve('aborted'); });
        res.on('aborted', () => { resolve('aborted'); });
      });
      req.on('error', () => { resolve('aborted'); });
    });
    expect(outcome).not.toBe('complete');
  });

  it('a target that never connects gets a 502 within connectTimeoutMs (not a hang)', async () => {
    const port = await startProxy({}, { connectTimeoutMs: 400 });
    socks.hang = true;
    const t0 = performance.now();
    const r = await get(port, '/');
    expect(r.status).toBe(502);
    expect(performance.now() - t0).toBeLessThan(5000);
    socks.hang = false;
    expect((await get(port, '/')).status).toBe(200);
  });

  it('a target that refuses an upgrade (200 + Location) gets its response rewritten, and the connection stays HTTP', async () => {
    const port = await startProxy({ target: { address: T, port: 81 } });
    const sock = visitorSocket(port);
    const next = rawResponses(sock);
    sock.write(`GET /first HTTP/1.1\r\nHost: ${M}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const first = await next();
    expect(first.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(first.head).toContain(`Location: http://${M}/next`);
    expect(first.body).toBe(`<a href="http://${M}/next">moved</a>`);
    // A second request on the same connection is parsed and rewritten like any other.
    sock.write(`GET /second HTTP/1.1\r\nHost: ${M}\r\n\r\n`);
    const second = await next();
    expect(second.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(second.head).toContain(`Location: http://${M}/next`);
    expect(second.body).toBe(`<a href="http://${M}/next">moved</a>`);
    expect(refuserHosts).toEqual([`${T}:81`, `${T}:81`]);
    sock.destroy();
  });

  it('a request pipelined behind a refused upgrade (and an upgrade request body) is not passed on raw', async () => {
    const port = await startProxy({ target: { address: T, port: 81 } });
    const sock = visitorSocket(port);
    const next = rawResponses(sock);
    sock.write(`POST /first HTTP/1.1\r\nHost: ${M}\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\nHost: ${M}\r\n\r\n`);
    for (let i = 0; i < 2; i++) {
      const r = await next();
      expect(r.head).toMatch(/^HTTP\/1\.1 200 /);
      expect(r.head).toContain(`Location: http://${M}/next`);
    }
    expect(refuserHosts).toEqual([`${T}:81`, `${T}:81`]);
    sock.destroy();
  });

  it('a 101 to a protocol the visitor did not offer is refused with a 502, not spliced', async () => {
    const port = await startProxy({ target: { address: T, port: 81 } });
    refuserSwitchTo = 'h2c';
    const sock = visitorSocket(port);
    sock.write(`GET /ws HTTP/1.1\r\nHost: ${M}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const text = await new Promise<string>((resolve) => {
      let acc = '';
      sock.on('data', (d: Buffer) => (acc += d.toString()));
      sock.on('close', () => { resolve(acc); });
    });
    expect(text).toMatch(/^HTTP\/1\.1 502 /);
    expect(text).not.toContain('101');
  });

  it('an upgrade to a down target gets a 502', async () => {
    const port = await startProxy();
    socks.replyOverride = 0xf0;
    const sock = visitorSocket(port);
    sock.write(`GET /ws HTTP/1.1\r\nHost: ${M}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const text = await new Promise<string>((resolve) => {
      let acc = '';
      sock.on('data', (d: Buffer) => (acc += d.toString()));
      sock.on('close', () => { resolve(acc); });
    });
    expect(text).toMatch(/^HTTP\/1\.1 502 /);
  });

  it('enforces the connection limit', async () => {
    const port = await startProxy({}, { maxConnections: 2 });
    const p = proxies[proxies.length - 1]!;
    const a = visitorSocket(port);
    const b = visitorSocket(port);
    await new Promise((r) => setTimeout(r, 100));
    const c = visitorSocket(port);
    await new Promise<void>((resolve) => c.on('close', () => { resolve(); }));
    expect(p.stats().rejected).toBe(1);
    expect(p.stats().rejectedBy).toEqual({ limit: 1 });
    expect(p.stats().open).toBe(2);
    a.destroy();
    b.destroy();
  });

  it('reads the PROXY header and enforces the per-circuit limit', async () => {
    const port = await startProxy({ proxyProtocol: true }, { maxConnectionsPerCircuit: 1, headerTimeoutMs: 500 });
    const p = proxies[proxies.length - 1]!;
    const a1 = recordingAgent(port, 1001);
    const r1 = await get(port, '/', { agent: a1 });
    expect(r1.status).toBe(200);
    // Second connection on the same circuit while the first is open: closed.
    const dup = visitorSocket(port, 1001);
    dup.write(`GET / HTTP/1.1\r\nHost: ${M}\r\n\r\n`);
    await new Promise<void>((resolve) => dup.on('close', () => { resolve(); }));
    // Another circuit is fine.
    const r2 = await get(port, '/redirect', { agent: recordingAgent(port, 2002) });
    expect(r2.headers['location']).toBe(`http://${M}/dest`);
    // No header / silence: closed.
    const bare = visitorSocket(port);
    bare.write(`GET / HTTP/1.1\r\nHost: ${M}\r\n\r\n`);
    await new Promise<void>((resolve) => bare.on('close', () => { resolve(); }));
    const silent = visitorSocket(port);
    await new Promise<void>((resolve) => silent.on('close', () => { resolve(); }));
    expect(p.stats().rejected).toBe(3);
    expect(p.stats().rejectedBy).toEqual({ 'per-circuit': 1, 'proxy-header': 2 });
    a1.destroy();
  });

  it('stop() drains and closes', async () => {
    const port = await startProxy();
    const agent = recordingAgent(port);
    await get(port, '/', { agent });
    const p = proxies.pop()!;
    await p.stop(200);
    expect(p.stats().open).toBe(0);
    await expect(get(port, '/', { agent: recordingAgent(port) })).rejects.toThrow();
  });
});

describe('ReverseProxy tcp mode', () => {
  it('pipes bytes both ways with half-close', async () => {
    const port = await startProxy({ mode: 'tcp', target: { address: T, port: 7 } });
    const s = visitorSocket(port);
    s.write(Buffer.alloc(100_000, 1));
    s.end(); // half-close: we can still read the answer
    const text = await new Promise<string>((resolve) => {
      let acc = '';
      s.on('data', (d: Buffer) => (acc += d.toString()));
      s.on('end', () => { resolve(acc); });
    });
    expect(text).toBe('got 100000');
  });

  it('closes the visitor when the target cannot be reached', async () => {
    const port = await startProxy({ mode: 'tcp', target: { address: T, port: 9 } });
    const s = visitorSocket(port);
    await new Promise<void>((resolve) => s.on('close', () => { resolve(); }));
  });

  it('supports PROXY headers in tcp mode', async () => {
    const port = await startProxy({ mode: 'tcp', target: { address: T, port: 7 }, proxyProtocol: true });
    const s = visitorSocket(port, 77);
    s.end('abc');
    const text = await new Promise<string>((resolve) => {
      let acc = '';
      s.on('data', (d: Buffer) => (acc += d.toString()));
      s.on('end', () => { resolve(acc); });
    });
    expect(text).toBe('got 3');
  });
});

describe('ReverseProxy with TLS to the target', () => {
  it('speaks TLS (certificate for the target .onion, verified) and downgrades https://target to http://master', async () => {
    const cp = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const join = (...p: string[]): string => path.join(...p);
    const https = await import('node:https');
    const dir = mkdtempSync(join(os.tmpdir(), 'tb-tls-'));
    try {
      cp.execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
        '-subj', `/CN=${T}`, '-addext', `subjectAltName=DNS:${T}`, '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
      const key = readFileSync(join(dir, 'k.pem'));
      const cert = readFileSync(join(dir, 'c.pem'));
      const srv = https.createServer({ key, cert }, (req, res) => {
        res.writeHead(302, { location: `https://${T}/secure`, 'content-type': 'text/html', 'x-host': req.headers.host === T ? 'ok' : 'bad' });
        res.end(`<a href="https://${T}/x">x</a> <a href="https://${T}:443/y">y</a>`);
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const tlsPort = (srv.address() as net.AddressInfo).port;
      const tlsSocks = new FakeSocksServer({ route: (host, port) => (host === T && port === 443 ? { host: '127.0.0.1', port: tlsPort } : undefined) });
      await tlsSocks.start();
      try {
        const port = await startProxy({ socks: tlsSocks.endpoint, target: { address: T, port: 443, tls: { verify: true, ca: cert.toString() } } });
        const r = await get(port, '/');
        expect(r.status).toBe(302);
        expect(r.headers['location']).toBe(`http://${M}/secure`);
        expect(r.headers['x-host']).toBe('ok');
        expect(r.body.toString()).toBe(`<a href="http://${M}/x">x</a> <a href="http://${M}/y">y</a>`);
        // Verification is real: a proxy trusting another CA gets a 502.
        const port2 = await startProxy({ socks: tlsSocks.endpoint, target: { address: T, port: 443, tls: { verify: true } } });
        expect((await get(port2, '/')).status).toBe(502);
      } finally {
        await tlsSocks.stop();
        srv.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
