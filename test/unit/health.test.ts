/**
 * TargetHealth (src/node/health.ts) against a fake tor SocksPort on loopback with a fake
 * clock for the schedule and the probe deadline, and NodeHealth (src/node/node-health.ts)
 * with a scripted control connection and real descriptors built by the test fixtures.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../src/adapters/system/timers.js';
import { ControlReplyError } from '../../src/adapters/tor/control.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { parseStatusLine, TargetHealth, type HealthOptions, type HealthState, type ProbeResult } from '../../src/node/health.js';
import { countIntroPoints, NodeHealth, type ControlLike, type NodeHealthState } from '../../src/node/node-health.js';
import { FakeSocksServer } from '../helpers/fake-socks-server.js';
import { assembleDescriptor, identityFrom, introBlocks, NOW, randomIntroPoint, seededRandom } from '../helpers/hsdesc-fixtures.js';

const TARGET = encodeOnionAddress(new Uint8Array(32).fill(7));
const log = createLogger({ level: 'silent' });

/** A manual clock: timers fire only when the test advances time. */
class FakeTimers implements Timers {
  t = 0;
  readonly pending = new Map<object, { at: number; fn: () => void; ms: number }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const h = {};
    this.pending.set(h, { at: this.t + ms, fn, ms });
    return h;
  }
  clearTimeout(h: TimerHandle): void {
    this.pending.delete(h);
  }
  /** Delays of pending timers, sorted. */
  delays(): number[] {
    return [...this.pending.values()].map((p) => p.ms).sort((a, b) => a - b);
  }
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, p]) => p.at <= this.t).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) return;
      this.pending.delete(due[0]);
      due[1].fn();
    }
  }
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let httpStatus = 200;
let http: HttpServer;
let httpPort = 0;
const httpSeen: { url: string; host: string | undefined }[] = [];
let raw: TcpServer;
let rawPort = 0;
let rawReply = 'hello\r\n';
let socks: FakeSocksServer;
let routeTo: 'http' | 'raw' | 'none' = 'http';

beforeEach(async () => {
  httpStatus = 200;
  routeTo = 'http';
  rawReply = 'hello\r\n';
  httpSeen.length = 0;
  http = createHttpServer((req, res) => {
    httpSeen.push({ url: req.url ?? '', host: req.headers.host });
    res.writeHead(httpStatus, { 'content-type': 'text/plain', connection: 'close' });
    res.end('ok');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as { port: number }).port;
  raw = createTcpServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      s.end(rawReply);
    });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  rawPort = (raw.address() as { port: number }).port;
  socks = new FakeSocksServer({
    route: () => (routeTo === 'http' ? { host: '127.0.0.1', port: httpPort } : routeTo === 'raw' ? { host: '127.0.0.1', port: rawPort } : undefined),
  });
  await socks.start();
});

afterEach(async () => {
  await socks.stop();
  http.closeAllConnections();
  await new Promise<void>((r) => {
    http.close(() => {
      r();
    });
  });
  await new Promise<void>((r) => {
    raw.close(() => {
      r();
    });
  });
});

function make(over: Partial<HealthOptions> = {}, timers = new FakeTimers()): { h: TargetHealth; timers: FakeTimers } {
  const h = new TargetHealth({
    target: { address: TARGET, port: 80 },
    socks: socks.endpoint,
    probe: { kind: 'http', path: '/health' },
    intervalMs: 30_000,
    timeoutMs: 5_000,
    timers,
    wallClock: () => 1_700_000_000_000 + timers.t,
    logger: log,
    ...over,
  });
  return { h, timers };
}

describe('TargetHealth probes through the SOCKS port', () => {
  it('http: healthy on 200; the name goes to the SOCKS server unresolved and Host names the target', async () => {
    const { h, timers } = make();
    expect(h.state).toEqual({ healthy: false, consecutiveFailures: 0 });
    timers.t = 1234;
    const s = await h.probeOnce();
    expect(s.healthy).toBe(true);
    expect(s.consecutiveFailures).toBe(0);
    expect(s.lastError).toBeUndefined();
    expect(s.lastCheckAt).toBe(1_700_000_001_234);
    expect(s.latencyMs).toBe(0); // fake clock did not move
    expect(socks.requests).toEqual([{ atyp: 3, host: TARGET, port: 80 }]);
    expect(httpSeen).toEqual([{ url: '/health', host: TARGET }]);
    expect(timers.pending.size).toBe(0); // the probe's deadline was cleared
  });

  it('http: Host carries a non-default port', async () => {
    const { h } = make({ target: { address: TARGET, port: 8080 } });
    expect((await h.probeOnce()).healthy).toBe(true);
    expect(socks.requests[0]).toEqual({ atyp: 3, host: TARGET, port: 8080 });
    expect(httpSeen[0]!.host).toBe(`${TARGET}:8080`);
  });

  it('http: 500 is unhealthy (TB_ERR_HEALTH_STATUS) unless listed in expectStatus; 3xx is healthy by default', async () => {
    httpStatus = 500;
    const a = make().h;
    const s = await a.probeOnce();
    expect(s.healthy).toBe(false);
    expect(s.lastError).toMatch(/^TB_ERR_HEALTH_STATUS: .*HTTP 500/);
    expect(s.consecutiveFailures).toBe(1);
    expect((await a.probeOnce()).consecutiveFailures).toBe(2);
    const b = make({ probe: { kind: 'http', path: '/', expectStatus: [500] } }).h;
    expect((await b.probeOnce()).healthy).toBe(true);
    httpStatus = 302;
    expect((await make().h.probeOnce()).healthy).toBe(true);
    httpStatus = 200;
    const c = make({ probe: { kind: 'http', path: '/', expectStatus: [204] } }).h;
    expect((await c.probeOnce()).lastError).toMatch(/TB_ERR_HEALTH_STATUS/);
  });

  it('http: a non-HTTP answer or a close before the status line is TB_ERR_HEALTH_PROTOCOL', async () => {
    routeTo = 'raw';
    const { h } = make();
    expect((await h.probeOnce()).lastError).toMatch(/^TB_ERR_HEALTH_PROTOCOL: .*status line/);
    rawReply = 'HTTP/1.1 20';
    expect((await h.probeOnce()).lastError).toMatch(/^TB_ERR_HEALTH_PROTOCOL: .*closed/);
  });

  it('tcp: a completed CONNECT is healthy; a SOCKS refusal (tor 0xF0) is unhealthy with the dialer code', async () => {
    const { h } = make({ probe: { kind: 'tcp' } });
    expect((await h.probeOnce()).healthy).toBe(true);
    expect(httpSeen).toEqual([]); // nothing was sent
    socks.replyOverride = 0xf0;
    const s = await h.probeOnce();
    expect(s.healthy).toBe(false);
    expect(s.lastError).toMatch(/^TB_ERR_SOCKS_REPLY: .*descriptor not found/);
    routeTo = 'none';
    socks.replyOverride = undefined;
    expect((await h.probeOnce()).lastError).toMatch(/TB_ERR_SOCKS_REPLY: .*host unreachable/);
  });

  it('times out on the injected clock when tor never answers (TB_ERR_HEALTH_TIMEOUT)', async () => {
    socks.hang = true;
    const { h, timers } = make({ timeoutMs: 7_000 });
    const probes: ProbeResult[] = [];
    h.onProbe((r) => probes.push(r));
    const p = h.probeOnce();
    expect(timers.delays()).toEqual([7_000]);
    await until('the CONNECT request', () => (socks.requests.length > 0 ? true : undefined));
    timers.advance(6_999);
    expect(h.state.lastCheckAt).toBeUndefined();
    timers.advance(1);
    const s = await p;
    expect(s.healthy).toBe(false);
    expect(s.lastError).toMatch(/^TB_ERR_HEALTH_TIMEOUT: .*7000 ms/);
    expect(probes).toEqual([{ ok: false, durationMs: 7_000 }]); // the duration on the injected clock
  });

  it('the SOCKS port being down is TB_ERR_SOCKS_CONNECT', async () => {
    await socks.stop();
    const { h } = make();
    expect((await h.probeOnce()).lastError).toMatch(/^TB_ERR_SOCKS_CONNECT/);
  });

  it('onProbe: every finished probe, also when the result does not change (unlike onChange)', async () => {
    const { h } = make();
    const probes: ProbeResult[] = [];
    const changes: HealthState[] = [];
    const off = h.onProbe((r) => probes.push(r));
    h.onChange((c) => changes.push(c));
    h.onProbe(() => {
      throw new Error('a broken listener does not stop the others');
    });
    await h.probeOnce();
    await h.probeOnce();
    httpStatus = 500;
    await h.probeOnce();
    expect(probes.map((r) => r.ok)).toEqual([true, true, false]);
    expect(changes).toHaveLength(2);
    for (const r of probes) expect(r.durationMs).toBeGreaterThanOrEqual(0);
    off();
    await h.probeOnce();
    expect(probes).toHaveLength(3);
  });

  it('concurrent probeOnce calls share one probe', async () => {
    const { h } = make();
    const [a, b] = await Promise.all([h.probeOnce(), h.probeOnce()]);
    expect(a).toBe(b);
    expect(socks.requests).toHaveLength(1);
  });
});

describe('TargetHealth schedule', () => {
  it('probes at start, then intervalMs after each probe; onChange only on changes; stop() ends it', async () => {
    const { h, timers } = make({ intervalMs: 10_000 });
    const seen: HealthState[] = [];
    const off = h.onChange((s) => seen.push(s));
    h.start();
    h.start(); // idempotent
    await until('first probe', () => (h.state.lastCheckAt !== undefined && timers.delays().includes(10_000) ? true : undefined));
    expect(socks.requests).toHaveLength(1);
    expect(seen.map((s) => s.healthy)).toEqual([true]);
    expect(timers.delays()).toEqual([10_000]);
    timers.advance(9_999);
    expect(socks.requests).toHaveLength(1);
    timers.advance(1); // second probe (same result: no onChange)
    await until('second probe', () => (socks.requests.length === 2 && timers.delays().includes(10_000) ? true : undefined));
    expect(seen).toHaveLength(1);
    httpStatus = 503;
    timers.advance(10_000);
    await until('third probe', () => (seen.length === 2 ? true : undefined));
    expect(seen[1]!.healthy).toBe(false);
    expect(seen[1]!.lastError).toMatch(/HTTP 503/);
    await until('rescheduled', () => (timers.delays().includes(10_000) ? true : undefined));
    httpStatus = 200;
    off();
    timers.advance(10_000);
    await until('fourth probe', () => (h.state.healthy ? true : undefined));
    expect(seen).toHaveLength(2); // unsubscribed
    await until('rescheduled', () => (timers.delays().includes(10_000) ? true : undefined));
    h.stop();
    expect(timers.pending.size).toBe(0);
    timers.advance(100_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(socks.requests).toHaveLength(4);
  });

  it('unhealthyAfter: a healthy target turns unhealthy only after N consecutive failures', async () => {
    const { h } = make({ unhealthyAfter: 2 });
    expect((await h.probeOnce()).healthy).toBe(true);
    httpStatus = 500;
    const one = await h.probeOnce();
    expect(one.healthy).toBe(true);
    expect(one.consecutiveFailures).toBe(1);
    expect(one.lastError).toMatch(/HTTP 500/);
    const two = await h.probeOnce();
    expect(two.healthy).toBe(false);
    expect(two.latencyMs).toBeUndefined();
    httpStatus = 200;
    expect(await h.probeOnce()).toMatchObject({ healthy: true, consecutiveFailures: 0 });
  });

  it('stop() during a probe aborts it and keeps the previous state', async () => {
    socks.hang = true;
    const { h, timers } = make();
    h.start();
    await until('the CONNECT request', () => (socks.requests.length > 0 ? true : undefined));
    h.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(h.state).toEqual({ healthy: false, consecutiveFailures: 0 });
    expect(timers.pending.size).toBe(0);
  });

  it('a throwing listener does not break the checker', async () => {
    const { h } = make();
    h.onChange(() => {
      throw new Error('boom');
    });
    const seen: boolean[] = [];
    h.onChange((s) => seen.push(s.healthy));
    expect((await h.probeOnce()).healthy).toBe(true);
    expect(seen).toEqual([true]);
  });

  it('rejects invalid options with TB_ERR_HEALTH_CONFIG', () => {
    const bad: Partial<HealthOptions>[] = [
      { intervalMs: 0 },
      { timeoutMs: 1.5 },
      { target: { address: TARGET, port: 0 } },
      { probe: { kind: 'http', path: 'health' } },
      { probe: { kind: 'http', path: '/a b' } },
      { probe: { kind: 'http', path: '/', expectStatus: [99] } },
      { unhealthyAfter: 0 },
    ];
    for (const b of bad) {
      expect(() => make(b), JSON.stringify(b)).toThrow(expect.objectContaining({ code: 'TB_ERR_HEALTH_CONFIG' }));
    }
  });
});

describe('parseStatusLine', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  it('reads HTTP/1.0 and 1.1 status codes; undefined while incomplete', () => {
    expect(parseStatusLine(enc('HTTP/1.1 204 No Content\r\n'))).toBe(204);
    expect(parseStatusLine(enc('HTTP/1.0 503\r\n'))).toBe(503);
    expect(parseStatusLine(enc('HTTP/1.1 200 OK'))).toBeUndefined();
    expect(parseStatusLine(enc(''))).toBeUndefined();
  });
  it('rejects other first lines and over-long ones with TB_ERR_HEALTH_PROTOCOL', () => {
    for (const s of ['HTTP/2 200\r\n', 'SSH-2.0-x\r\n', 'HTTP/1.1 999 x\r\n', 'HTTP/1.1 20\r\n', '\r\n']) {
      expect(() => parseStatusLine(enc(s)), s).toThrow(expect.objectContaining({ code: 'TB_ERR_HEALTH_PROTOCOL' }));
    }
    expect(() => parseStatusLine(new Uint8Array(8192).fill(0x41))).toThrow(TorbalanceError);
  });
});

// ---------------------------------------------------------------------------------------
// NodeHealth

const identity = identityFrom('node-health');
const ADDRESS = encodeOnionAddress(identity.publicKey);
const BOOT_DONE = 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"';

function descriptorWith(n: number, who = identity): string {
  return assembleDescriptor({
    identity: who,
    nowSeconds: NOW,
    inner: (signingKey, exp) => {
      const rnd = seededRandom(`ips${n}`);
      return `create2-formats 2\n${introBlocks(Array.from({ length: n }, () => randomIntroPoint(rnd)), signingKey, exp)}`;
    },
  }).text;
}

function notFound(): ControlReplyError {
  return new ControlReplyError('GETINFO', { status: 551, lines: [{ status: 551, separator: ' ', text: 'Not found in cache' }] });
}

class ScriptedControl implements ControlLike {
  readonly answers = new Map<string, string | Error>();
  readonly asked: string[] = [];
  getInfo(key: string): Promise<string> {
    this.asked.push(key);
    const a = this.answers.get(key);
    if (a === undefined) return Promise.reject(new Error(`unexpected GETINFO ${key}`));
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  }
}

class FakeTarget {
  state: HealthState = { healthy: true, consecutiveFailures: 0, lastCheckAt: 1 };
  readonly listeners = new Set<(s: HealthState) => void>();
  onChange(l: (s: HealthState) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(s: HealthState): void {
    this.state = s;
    for (const l of this.listeners) l(s);
  }
}

function makeNode(ctl: ControlLike | undefined, target = new FakeTarget(), timers = new FakeTimers(), minIntroPoints?: number): NodeHealth {
  return new NodeHealth({
    target,
    control: () => ctl,
    serviceAddress: ADDRESS,
    intervalMs: 5_000,
    timers,
    wallClock: () => NOW * 1000,
    logger: log,
    ...(minIntroPoints === undefined ? {} : { minIntroPoints }),
  });
}

describe('NodeHealth', () => {
  const descKey = `hs/service/desc/id/${ADDRESS.replace('.onion', '')}`;

  it('counts the intro points of our own descriptor (keys from its certificate)', () => {
    for (const n of [1, 3, 7]) {
      const r = countIntroPoints(descriptorWith(n), identity.publicKey, NOW);
      expect(r.introPoints).toBe(n);
      expect(r.revisionCounter).toBe(1234n);
    }
    // without the trailing newline, as TorControl.getInfo returns it
    expect(countIntroPoints(descriptorWith(2).replace(/\n$/, ''), identity.publicKey, NOW).introPoints).toBe(2);
  });

  it('healthy when the target is healthy, tor is bootstrapped and intro points exist; asks the 56-char address', async () => {
    const ctl = new ScriptedControl();
    ctl.answers.set('status/bootstrap-phase', BOOT_DONE);
    ctl.answers.set(descKey, descriptorWith(3));
    const n = makeNode(ctl);
    expect(n.state.healthy).toBe(false);
    const s = await n.refresh();
    expect(s).toMatchObject({ healthy: true, reasons: [], tor: { progress: 100, tag: 'done' }, intro: { descriptor: 'present', introPoints: 3, revisionCounter: '1234' }, checkedAt: NOW * 1000 });
    expect(ctl.asked).toEqual(['status/bootstrap-phase', descKey]);
  });

  it('551 Not found → no descriptor yet; bootstrapping, missing control and a foreign descriptor are reasons', async () => {
    const ctl = new ScriptedControl();
    ctl.answers.set('status/bootstrap-phase', 'NOTICE BOOTSTRAP PROGRESS=45 TAG=requesting_descriptors SUMMARY="Asking"');
    ctl.answers.set(descKey, notFound());
    let s = await makeNode(ctl).refresh();
    expect(s.healthy).toBe(false);
    expect(s.intro).toEqual({ descriptor: 'none', introPoints: 0 });
    expect(s.reasons).toEqual(['tor bootstrapping (45% requesting_descriptors)', 'no descriptor yet']);

    ctl.answers.set('status/bootstrap-phase', BOOT_DONE);
    ctl.answers.set(descKey, descriptorWith(2, identityFrom('someone else')));
    s = await makeNode(ctl).refresh();
    expect(s.intro.descriptor).toBe('error');
    expect(s.intro.error).toMatch(/^TB_ERR_HSDESC_/);
    expect(s.healthy).toBe(false);

    ctl.answers.set(descKey, 'garbage');
    s = await makeNode(ctl).refresh();
    expect(s.intro.error).toMatch(/^TB_ERR_HSDESC_OUTER_PARSE/);

    s = await makeNode(undefined).refresh();
    expect(s.reasons).toEqual(['tor: tor control connection is not available', 'descriptor: tor control connection is not available']);

    ctl.answers.set(descKey, descriptorWith(2));
    s = await makeNode(ctl, new FakeTarget(), new FakeTimers(), 3).refresh();
    expect(s.reasons).toEqual(['2 intro points (need 3)']);
  });

  it('follows the target and tor over time; onChange fires on changes only; stop() ends the schedule', async () => {
    const ctl = new ScriptedControl();
    ctl.answers.set('status/bootstrap-phase', BOOT_DONE);
    ctl.answers.set(descKey, notFound());
    const target = new FakeTarget();
    const timers = new FakeTimers();
    const n = makeNode(ctl, target, timers);
    const seen: NodeHealthState[] = [];
    n.onChange((s) => seen.push(s));
    n.start();
    await until('first refresh', () => (timers.delays().includes(5_000) ? true : undefined));
    expect(seen.map((s) => s.reasons)).toEqual([['no descriptor yet']]);
    ctl.answers.set(descKey, descriptorWith(3));
    timers.advance(5_000);
    await until('healthy', () => (n.state.healthy ? true : undefined));
    expect(seen).toHaveLength(2);
    target.set({ healthy: false, consecutiveFailures: 1, lastError: 'TB_ERR_HEALTH_TIMEOUT: x' });
    expect(n.state.healthy).toBe(false);
    expect(n.state.reasons).toEqual(['target unhealthy: TB_ERR_HEALTH_TIMEOUT: x']);
    expect(seen).toHaveLength(3);
    await until('rescheduled', () => (timers.delays().includes(5_000) ? true : undefined));
    n.stop();
    expect(timers.pending.size).toBe(0);
    target.set({ healthy: true, consecutiveFailures: 0 });
    expect(seen).toHaveLength(3); // unsubscribed from the target
  });

  it('rejects a bad address or interval', () => {
    expect(() => new NodeHealth({ target: new FakeTarget(), control: () => undefined, serviceAddress: 'nope.onion', intervalMs: 1, logger: log })).toThrow(TorbalanceError);
    expect(() => new NodeHealth({ target: new FakeTarget(), control: () => undefined, serviceAddress: ADDRESS, intervalMs: 0, logger: log })).toThrow(
      expect.objectContaining({ code: 'TB_ERR_HEALTH_CONFIG' }),
    );
  });
});
