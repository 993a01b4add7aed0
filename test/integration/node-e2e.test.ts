/**
 * A torbalance node end to end in the shared private Tor network:
 * the test app (test/helpers/target-app.ts) runs behind its own onion service (the TARGET);
 * `torbalance init` makes a master key and config; `torbalance run` starts the node (its own
 * tor publishing the MASTER address, the reverse proxy, health checks) as a separate process.
 * The shared client tor then fetches pages from the master address through its SocksPort and
 * must see the target's content with every mention of the target replaced by the master:
 * links, redirects, cookies, CSP/Link/CORS headers, a 10 MiB streamed body (size unchanged:
 * both addresses are 56 characters), gzip and br bodies, a WebSocket echo. Every byte the
 * visitor received is scanned for the target address. The target going down gives a 502
 * within the configured connect timeout; back up, it is served again.
 */
import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpViaSocks,
  nodeSocksPort,
  pollUntil,
  received,
  since,
  socksExchange,
  startNodeProcess,
  startTargetBehindOnion,
  type NodeProcess,
  type ParsedResponse,
  type TargetBehindOnion,
} from '../helpers/node-harness.js';
import { decodeFrame, encodeFrame, wsAccept } from '../helpers/target-app.js';
import { sharedTestnet } from '../helpers/testnet.js';

const net = sharedTestnet();
const client = net.clients[0]!;
const CONNECT_TIMEOUT_MS = 20_000;

let target: TargetBehindOnion | undefined;
let node: NodeProcess | undefined;
let T = '';
let M = '';
/** The rewritten page as served without content-encoding (for the gzip/br comparison). */
let pageBody = '';

beforeAll(async () => {
  const t0 = Date.now();
  target = await startTargetBehindOnion(net);
  T = target.onion;
  console.log(`[e2e] target app on 127.0.0.1:${target.app.port} behind ${T} (${since(t0)})`);
  node = await startNodeProcess({
    target: T,
    extraToml: [
      '[proxy]',
      'rewrite_bodies = true',
      '[proxy.limits]',
      `connect_timeout_ms = ${CONNECT_TIMEOUT_MS}`,
      '[health]',
      'kind = "http"',
      'path = "/"',
      'interval_ms = 3000',
      'timeout_ms = 20000',
      '[log]',
      'level = "debug"',
      'format = "json"',
      '[drain]',
      'timeout_ms = 1000',
    ].join('\n'),
  });
  M = node.masterAddress;
  console.log(`[e2e] node pid ${node.pid}, master ${M}, dir ${node.dir}`);
  // The master is reachable once the node's tor published its descriptor and the target can be
  // reached through the node's tor: poll the real thing.
  const r = await pollUntil(
    'the master address to serve the target page',
    async () => {
      if (node!.proc.exitCode !== null) throw new Error(`node exited ${node!.proc.exitCode}: ${node!.log().slice(-3000)}`);
      const res = await httpViaSocks(client.socksPort, M, '/', '', 30_000);
      return res.status === 200 ? res : undefined;
    },
    240_000,
    1500,
  ).catch((e: unknown) => {
    console.log(`[e2e] node log tail:\n${node!.log().slice(-4000)}`);
    throw e;
  });
  console.log(`[e2e] first page through the master after ${since(t0)} (status ${r.status})`);
}, 400_000);

afterAll(async () => {
  const t0 = Date.now();
  if (node !== undefined && process.env['TB_E2E_KEEP_LOG'] === '1') console.log(node.log());
  await node?.stop();
  await target?.stop();
  console.log(`[e2e] cleaned up in ${since(t0)}`);
});

function header(r: ParsedResponse, name: string): string[] {
  return [...(r.headers.get(name) ?? [])];
}

function noTarget(text: string): void {
  const lower = text.toLowerCase();
  expect(lower).not.toContain(T.toLowerCase());
  expect(lower).not.toContain(T.slice(0, 56).toLowerCase());
}

describe('a torbalance node in the private network', () => {
  it('serves the target page with links, cookies and headers naming the master', async () => {
    const t0 = Date.now();
    const r = await httpViaSocks(client.socksPort, M, '/');
    console.log(`[e2e] GET / ${r.status} in ${since(t0)}`);
    expect(r.status).toBe(200);
    const body = r.body.toString('utf8');
    noTarget(r.head + body);
    expect(body).toContain(`<a href="http://${M}/a">`);
    expect(body).toContain(`//${M}/d`);
    expect(body).toContain(`http://www.${M}/c`);
    expect(body).toContain(`admin@${M}`);
    expect(body.toLowerCase()).toContain(`http://${M}/b`);
    expect(body).toMatch(new RegExp(`http://${M.replace('.', '\\.')}(:80)?/api`));
    pageBody = body;
    const cookies = header(r, 'set-cookie').join('\n');
    expect(cookies).toContain(`Domain=.${M}`);
    expect(cookies.toLowerCase()).toContain(`domain=www.${M}`);
    expect(header(r, 'content-security-policy')[0]).toContain(`http://${M}`);
    expect(header(r, 'link')[0]).toContain(`<http://${M}/style.css>`);
    expect(header(r, 'access-control-allow-origin')).toEqual([`http://${M}`]);
    expect(header(r, 'content-location')).toEqual([`http://${M}/index.html`]);
    expect(header(r, 'x-custom')).toEqual([`served by http://${M}/`]);
    // the target saw its own name in Host (the proxy rewrote the visitor's request)
    const seen = target!.app.requests.filter((q) => q.url === '/').at(-1);
    expect(seen?.headers['host']).toBe(T);
  });

  it('rewrites redirects and Refresh to the master', async () => {
    const r = await httpViaSocks(client.socksPort, M, '/redirect');
    expect(r.status).toBe(302);
    expect(header(r, 'location')).toEqual([`http://${M}/dest`]);
    const rel = await httpViaSocks(client.socksPort, M, '/redirect-rel');
    expect(header(rel, 'location')).toEqual(['/dest']);
    const f = await httpViaSocks(client.socksPort, M, '/refresh');
    expect(header(f, 'refresh')).toEqual([`0; url=http://${M}/r`]);
  });

  it('a request naming the master reaches the target naming the target (and the echo comes back as the master)', async () => {
    const r = await httpViaSocks(client.socksPort, M, '/echo', `Referer: http://${M}/page\r\nOrigin: http://${M}\r\n`);
    expect(r.status).toBe(200);
    const echoed = JSON.parse(r.body.toString('utf8')) as { headers: Record<string, string> };
    expect(echoed.headers['host']).toBe(M);
    const seen = target!.app.requests.filter((q) => q.url === '/echo').at(-1);
    expect(seen?.headers['referer']).toBe(`http://${T}/page`);
    expect(seen?.headers['origin']).toBe(`http://${T}`);
  });

  it('streams a 10 MiB body unchanged in size, every target mention replaced', async () => {
    const t0 = Date.now();
    const r = await httpViaSocks(client.socksPort, M, '/big', '', 300_000);
    const secs = (Date.now() - t0) / 1000;
    console.log(`[e2e] 10 MiB through tor + node in ${secs.toFixed(1)}s (${(r.body.length / 1e6 / secs).toFixed(2)} MB/s)`);
    expect(r.status).toBe(200);
    expect(target!.app.bigDone).toBe(true);
    expect(r.body.length).toBe(10 * 1024 * 1024);
    const text = r.body.toString('latin1');
    noTarget(text);
    const mentions = text.split(`http://${M}`).length - 1;
    expect(mentions).toBe(10 * 1024);
  });

  it('gzip and br bodies are decoded, rewritten and stay valid', async () => {
    for (const [path, decode] of [
      ['/gzip', gunzipSync],
      ['/br', brotliDecompressSync],
    ] as const) {
      const r = await httpViaSocks(client.socksPort, M, path, 'Accept-Encoding: gzip, br\r\n');
      expect(r.status, path).toBe(200);
      const enc = header(r, 'content-encoding')[0];
      const plain = enc === undefined || enc === 'identity' ? r.body : decode(r.body);
      const text = plain.toString('utf8');
      console.log(`[e2e] ${path}: content-encoding ${enc ?? 'none'}, ${r.body.length} bytes on the wire`);
      // the same page compressed: after decoding, the same rewritten text as the plain one
      expect(pageBody).not.toBe('');
      expect(text).toBe(pageBody);
      expect(text).toContain(`<a href="http://${M}/a">`);
      noTarget(text);
    }
  });

  it('a WebSocket echo works through the master', async () => {
    const key = createHash('sha256').update('e2e').digest().subarray(0, 16).toString('base64');
    const msg = Buffer.from(`hello ${M} websocket`);
    const req = Buffer.concat([
      Buffer.from(`GET /ws HTTP/1.1\r\nHost: ${M}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      encodeFrame(1, msg, true),
      encodeFrame(8, Buffer.alloc(0), true),
    ]);
    const raw = await socksExchange(client.socksPort, M, 80, req, 60_000);
    const split = raw.indexOf('\r\n\r\n');
    const head = raw.subarray(0, split).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toContain(`Sec-WebSocket-Accept: ${wsAccept(key)}`);
    expect(head).toContain(`http://${M}/`); // X-Served-By rewritten
    noTarget(head);
    const frame = decodeFrame(raw.subarray(split + 4));
    expect(frame?.opcode).toBe(1);
    expect(frame?.payload.toString()).toBe(msg.toString());
  });

  it('target down → 502 within the configured timeout; target back → served again', async () => {
    await target!.app.stop();
    const t0 = Date.now();
    const r = await httpViaSocks(client.socksPort, M, '/', '', CONNECT_TIMEOUT_MS + 60_000);
    const ms = Date.now() - t0;
    console.log(`[e2e] target down: HTTP ${r.status} after ${ms} ms (connect timeout ${CONNECT_TIMEOUT_MS} ms)`);
    expect(r.status).toBe(502);
    noTarget(r.head + r.body.toString('latin1'));
    // bound: the configured connect timeout plus the visitor's own circuit to the master
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS + 15_000);
    await target!.app.start();
    const t1 = Date.now();
    const back = await pollUntil(
      'the target to be served again',
      async () => {
        const x = await httpViaSocks(client.socksPort, M, '/');
        return x.status === 200 ? x : undefined;
      },
      120_000,
      1000,
    );
    console.log(`[e2e] target back: served again after ${since(t1)}`);
    expect(back.body.toString('utf8')).toContain(`http://${M}/a`);
  });

  it('the node reports health: target healthy, tor bootstrapped, intro points published', () => {
    const log = node!.log();
    const lines = log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const healthy = lines.find((l) => l['msg'] === 'node healthy' && l['healthy'] === true);
    expect(healthy, log.slice(-3000)).toBeDefined();
    expect(Number(healthy!['introPoints'])).toBeGreaterThanOrEqual(1);
    expect(nodeSocksPort(node!)).toBeGreaterThan(0);
  });

  it('the target address never appears in any byte a visitor received', () => {
    const all = Buffer.concat(received).toString('latin1').toLowerCase();
    console.log(`[e2e] scanned ${all.length} bytes received by the visitor`);
    expect(all.length).toBeGreaterThan(10 * 1024 * 1024);
    expect(all.includes(T.slice(0, 56).toLowerCase())).toBe(false);
    expect(all.includes(M.slice(0, 56).toLowerCase())).toBe(true);
  });
});
