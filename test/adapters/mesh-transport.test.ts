/**
 * StreamMeshTransport details: frames both ways, oversized length drops the connection,
 * bounded send queue drops oldest droppable frames, redial with backoff, a unix-socket
 * listener plus `tor:` dials through a (fake) SOCKS server, address parsing.
 */
import dns from 'node:dns';
import net from 'node:net';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { u32be, concatBytes } from '../../src/core/bytes.js';
import { FrameDecoder } from '../../src/core/mesh/index.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { realTimers } from '../../src/adapters/system/timers.js';
import {
  StreamMeshTransport,
  createTcpTransport,
  parseMeshAddressOrThrow,
  type MeshConnection,
  type TransportHandlers,
} from '../../src/adapters/mesh/tcp-transport.js';
import { createTorTransport, meshConnector } from '../../src/adapters/mesh/tor-transport.js';
import { hasCode } from '../../src/core/errors.js';
import { FakeSocksServer } from '../helpers/fake-socks-server.js';
import { captureLogger, until } from '../helpers/mesh-fixtures.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function framed(payload: Uint8Array): Uint8Array {
  return concatBytes(u32be(payload.length), payload);
}
/** A payload of n bytes (≥ 98, the smallest length the decoder accepts). */
function payload(n: number, fill = 1): Uint8Array {
  return new Uint8Array(Math.max(98, n)).fill(fill);
}

interface Recorder extends TransportHandlers {
  frames: { conn: MeshConnection; frame: Uint8Array }[];
  opened: MeshConnection[];
  closed: { conn: MeshConnection; reason: string }[];
  streamErrors: string[];
}
function recorder(): Recorder {
  const r: Recorder = {
    frames: [], opened: [], closed: [], streamErrors: [],
    onOpen: (c) => r.opened.push(c),
    onFrame: (c, f) => r.frames.push({ conn: c, frame: f }),
    onClose: (c, reason) => r.closed.push({ conn: c, reason }),
    onStreamError: (_c, reason) => r.streamErrors.push(reason),
  };
  return r;
}

function tcp(h: Recorder, o: { listen?: boolean; maxQueueFrames?: number; idleTimeoutMs?: number } = {}): StreamMeshTransport {
  const t = createTcpTransport({
    ...(o.listen === false ? {} : { listen: { host: '127.0.0.1', port: 0 } }),
    handlers: h,
    timers: realTimers,
    logger: captureLogger().logger,
    decoder: () => new FrameDecoder(),
    backoff: { initialMs: 20, maxMs: 100 },
    ...(o.maxQueueFrames === undefined ? {} : { maxQueueFrames: o.maxQueueFrames }),
    ...(o.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: o.idleTimeoutMs }),
  });
  closers.push(() => t.close());
  return t;
}

describe('StreamMeshTransport over TCP', () => {
  it('carries frames in both directions on one dialled connection', async () => {
    const hs = recorder();
    const hc = recorder();
    const server = tcp(hs);
    await server.start();
    const client = tcp(hc, { listen: false });
    await client.start();
    client.dial(`tcp:127.0.0.1:${server.port!}`);
    await until('open', () => hc.opened.length === 1 && hs.opened.length === 1);
    expect(hc.opened[0]!.direction).toBe('out');
    expect(hs.opened[0]!.direction).toBe('in');
    hc.opened[0]!.send(framed(payload(100, 7)));
    hs.opened[0]!.send(framed(payload(200, 9)));
    await until('frames', () => hs.frames.length === 1 && hc.frames.length === 1);
    expect(hs.frames[0]!.frame).toEqual(payload(100, 7));
    expect(hc.frames[0]!.frame).toEqual(payload(200, 9));
  });

  it('drops a connection that announces an oversized frame, and redials with backoff', async () => {
    const hc = recorder();
    const client = tcp(hc, { listen: false });
    await client.start();
    let accepted = 0;
    const evil = net.createServer((s) => {
      accepted += 1;
      s.on('error', () => undefined);
      s.write(u32be(300 * 1024)); // > 256 KiB
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => evil.close(() => { r(); })));
    const addr = `tcp:127.0.0.1:${(evil.address() as net.AddressInfo).port}`;
    client.dial(addr);
    await until('two connections (redialled)', () => accepted >= 2 && hc.closed.length >= 2);
    expect(hc.streamErrors[0]).toBe('size');
    expect(hc.closed[0]!.reason).toMatch(/TB_ERR_MESH_SIZE/);
    expect(client.stats.sizeCloses).toBeGreaterThanOrEqual(2);
    client.undial(addr);
    expect(client.dialed()).toEqual([]);
  });

  it('bounds the send queue: a peer that does not read loses the oldest droppable frames, then the connection', async () => {
    const hc = recorder();
    const client = tcp(hc, { listen: false, maxQueueFrames: 8 });
    await client.start();
    const sockets: net.Socket[] = [];
    const sink = net.createServer((s) => {
      s.pause(); // never read
      sockets.push(s);
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => sink.close(() => { r(); }));
    });
    client.dial(`tcp:127.0.0.1:${(sink.address() as net.AddressInfo).port}`);
    await until('open', () => hc.opened.length === 1);
    const c = hc.opened[0]!;
    const big = framed(payload(200 * 1024));
    // Fill the kernel and stream buffers until frames start to queue, then keep sending heartbeats.
    for (let i = 0; i < 400 && c.send(big, { droppable: true }); i++) {
      if (client.stats.droppedFrames > 0) break;
    }
    expect(client.stats.droppedFrames).toBeGreaterThan(0);
    expect(c.closed).toBe(false);
    // Non-droppable frames beyond the bound: the connection is closed instead of growing.
    for (let i = 0; i < 20 && !c.closed; i++) c.send(big, { droppable: false });
    expect(c.closed).toBe(true);
    expect(client.stats.overflowCloses).toBe(1);
  });

  it('closes a connection that delivers no frame within the idle timeout', async () => {
    const hs = recorder();
    const server = tcp(hs, { idleTimeoutMs: 150 });
    await server.start();
    const s = net.connect(server.port!, '127.0.0.1');
    s.on('error', () => undefined);
    closers.push(() => { s.destroy(); return Promise.resolve(); });
    await until('idle close', () => hs.closed.length === 1, 3000);
    expect(hs.closed[0]!.reason).toMatch(/idle/);
  });

  it('parses mesh addresses strictly', () => {
    expect(parseMeshAddressOrThrow('tcp:10.99.0.1:7700')).toEqual({ kind: 'tcp', host: '10.99.0.1', port: 7700 });
    const onion = encodeOnionAddress(new Uint8Array(32).fill(3));
    expect(parseMeshAddressOrThrow(`tor:${onion}:7700`)).toEqual({ kind: 'tor', onion, port: 7700 });
    for (const bad of ['', 'tcp:1.2.3.4', 'udp:1.2.3.4:5', 'tcp:1.2.3.4:0', 'tcp:1.2.3.4:70000', 'tor:abc.onion:7700', 'tcp:a b:1']) {
      let code = '';
      try {
        parseMeshAddressOrThrow(bad);
      } catch (e) {
        code = hasCode(e, 'TB_ERR_MESH_ADDRESS') ? 'ok' : String(e);
      }
      expect(code, bad).toBe('ok');
    }
  });
});

describe('Tor transport (unix-socket listener, SOCKS dials)', () => {
  it('accepts on a 0600 unix socket and dials tor: addresses through the SocksPort with the onion name unresolved', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tb-mesh-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const sock = join(dir, 'mesh.sock');
    const hs = recorder();
    const server = createTorTransport({
      socketPath: sock,
      socks: { host: '127.0.0.1', port: 1 },
      handlers: hs,
      timers: realTimers,
      logger: captureLogger().logger,
      decoder: () => new FrameDecoder(),
    });
    closers.push(() => server.close());
    await server.start();
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    const onion = encodeOnionAddress(new Uint8Array(32).fill(9));
    // The fake SOCKS server stands in for tor: it maps the onion name to our unix socket via a TCP relay.
    const relay = net.createServer((s) => {
      const u = net.connect(sock);
      s.pipe(u).pipe(s);
      s.on('error', () => undefined);
      u.on('error', () => undefined);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => relay.close(() => { r(); })));
    const socks = new FakeSocksServer({ route: (host, port) => (host === onion && port === 7700 ? { host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port } : undefined) });
    await socks.start();
    closers.push(() => socks.stop());
    const hc = recorder();
    const client = createTorTransport({
      socks: socks.endpoint,
      handlers: hc,
      timers: realTimers,
      logger: captureLogger().logger,
      decoder: () => new FrameDecoder(),
      backoff: { initialMs: 20, maxMs: 100 },
    });
    closers.push(() => client.close());
    await client.start();
    client.dial(`tor:${onion}:7700`);
    await until('open both ends', () => hc.opened.length === 1 && hs.opened.length === 1);
    hc.opened[0]!.send(framed(payload(120, 4)));
    hs.opened[0]!.send(framed(payload(130, 5)));
    await until('frames', () => hs.frames.length === 1 && hc.frames.length === 1);
    expect(hs.frames[0]!.frame).toEqual(payload(120, 4));
    expect(hc.frames[0]!.frame).toEqual(payload(130, 5));
    expect(socks.requests).toEqual([{ atyp: 3, host: onion, port: 7700 }]);
  });

  it('in tor mode refuses tcp: addresses (IP or name) without a connect or a DNS lookup; in tcp mode refuses tor: ones', async () => {
    const socks = new FakeSocksServer({ route: () => undefined });
    await socks.start();
    closers.push(() => socks.stop());
    const connects = vi.spyOn(net.Socket.prototype, 'connect');
    const lookups = vi.spyOn(dns, 'lookup');
    try {
      const tor = meshConnector({ transport: 'tor', socks: socks.endpoint });
      for (const a of ['tcp:127.0.0.1:9', 'tcp:[::1]:9', 'tcp:attacker.example:7700', 'udp:1.2.3.4:5']) {
        await expect(tor(a, 1000, new AbortController().signal), a).rejects.toMatchObject({ code: 'TB_ERR_MESH_ADDRESS' });
      }
      const tcp = meshConnector({ transport: 'tcp' });
      await expect(tcp(`tor:${encodeOnionAddress(new Uint8Array(32).fill(9))}:7700`, 1000, new AbortController().signal)).rejects.toMatchObject({ code: 'TB_ERR_MESH_ADDRESS' });
      await expect(tcp('tcp:attacker.example:7700', 1000, new AbortController().signal)).rejects.toMatchObject({ code: 'TB_ERR_MESH_ADDRESS' });
      expect(connects).not.toHaveBeenCalled();
      expect(lookups).not.toHaveBeenCalled();
      expect(socks.requests).toEqual([]);
    } finally {
      connects.mockRestore();
      lookups.mockRestore();
    }
  });

  it('refuses tor: dials without a SOCKS port', async () => {
    const c = meshConnector({ transport: 'tor' });
    const onion = encodeOnionAddress(new Uint8Array(32).fill(9));
    await expect(c(`tor:${onion}:7700`, 1000, new AbortController().signal)).rejects.toMatchObject({ code: 'TB_ERR_MESH_NO_SOCKS' });
  });
});
