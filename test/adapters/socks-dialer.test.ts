import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialThroughTor, SocksDialError } from '../../src/adapters/net/socks-dialer.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { FakeSocksServer } from '../helpers/fake-socks-server.js';

const T = encodeOnionAddress(new Uint8Array(32).fill(5));
let echo: Server;
let echoPort = 0;
let socks: FakeSocksServer;

beforeAll(async () => {
  echo = createServer((s) => {
    s.on('error', () => undefined);
    s.write('hello-first\n'); // server speaks first: must not be lost by the dialer
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
  socks = new FakeSocksServer({ route: (host, port) => (host === T && port === 80 ? { host: '127.0.0.1', port: echoPort } : undefined) });
  await socks.start();
});
afterAll(async () => {
  await socks.stop();
  await new Promise<void>((r) => echo.close(() => { r(); }));
});

async function expectDialError(p: Promise<unknown>, code: string): Promise<SocksDialError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SocksDialError);
    expect((e as SocksDialError).code).toBe(code);
    return e as SocksDialError;
  }
  throw new Error('expected a dial error');
}

describe('dialThroughTor', () => {
  it('sends the onion name as ATYP domain and returns a working stream without losing early bytes', async () => {
    const before = socks.requests.length;
    const s = await dialThroughTor(socks.endpoint, { host: T, port: 80 }, 5000);
    // Read only after a delay: bytes the server sent first must still be there.
    await new Promise((r) => setTimeout(r, 50));
    s.write('ping\n');
    const got = await new Promise<string>((resolve) => {
      let acc = '';
      s.on('data', (d: Buffer) => {
        acc += d.toString();
        if (acc.includes('ping\n')) resolve(acc);
      });
      s.resume();
    });
    expect(got).toBe('hello-first\nping\n');
    s.destroy();
    expect(socks.requests.slice(before)).toEqual([{ atyp: 3, host: T, port: 80 }]);
  });

  it('sends the isolation key as the SOCKS username (a new circuit per key in tor), and none without it', async () => {
    const before = socks.requests.length;
    const a = await dialThroughTor({ ...socks.endpoint, isolation: 'visit-1' }, { host: T, port: 80 }, 5000);
    a.destroy();
    const b = await dialThroughTor(socks.endpoint, { host: T, port: 80 }, 5000);
    b.destroy();
    expect(socks.requests.slice(before)).toEqual([
      { atyp: 3, host: T, port: 80, username: 'visit-1' },
      { atyp: 3, host: T, port: 80 },
    ]);
  });

  it.each([
    [0xf0, 'descriptor not found', 'target'],
    [0xf2, 'introduction failed', 'target'],
    [0xf4, 'requires client authorization', 'config'],
    [0xf6, 'invalid onion service address', 'config'],
    [0xf7, 'introduction timed out', 'target'],
    [0x05, 'connection refused', 'target'],
    [0x01, 'general SOCKS server failure', 'tor'],
  ])('maps SOCKS5 reply %i to TB_ERR_SOCKS_REPLY, with and without an isolation key', async (code, text, kind) => {
    socks.replyOverride = code;
    try {
      for (const endpoint of [socks.endpoint, { ...socks.endpoint, isolation: 'visit-7' }]) {
        const e = await expectDialError(dialThroughTor(endpoint, { host: T, port: 80 }, 5000), 'TB_ERR_SOCKS_REPLY');
        expect(e.socksReply).toBe(code);
        expect(e.message).toContain(text);
        expect(e.kind).toBe(kind);
      }
    } finally {
      socks.replyOverride = undefined;
    }
  });

  it('unroutable destination → reply 0x04 host unreachable', async () => {
    const e = await expectDialError(dialThroughTor(socks.endpoint, { host: T, port: 81 }, 5000), 'TB_ERR_SOCKS_REPLY');
    expect(e.socksReply).toBe(4);
  });

  it('times out when the proxy never answers', async () => {
    socks.hang = true;
    try {
      await expectDialError(dialThroughTor(socks.endpoint, { host: T, port: 80 }, 300), 'TB_ERR_SOCKS_TIMEOUT');
    } finally {
      socks.hang = false;
    }
  });

  it('honours an AbortSignal (already aborted and during the dial)', async () => {
    await expectDialError(dialThroughTor(socks.endpoint, { host: T, port: 80 }, 5000, AbortSignal.abort()), 'TB_ERR_SOCKS_ABORTED');
    socks.hang = true;
    try {
      const ac = new AbortController();
      const p = dialThroughTor(socks.endpoint, { host: T, port: 80 }, 5000, ac.signal);
      setTimeout(() => { ac.abort(); }, 50);
      await expectDialError(p, 'TB_ERR_SOCKS_ABORTED');
    } finally {
      socks.hang = false;
    }
  });

  it('SocksPort not listening → TB_ERR_SOCKS_CONNECT', async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const port = (tmp.address() as { port: number }).port;
    await new Promise<void>((r) => tmp.close(() => { r(); }));
    await expectDialError(dialThroughTor({ host: '127.0.0.1', port }, { host: T, port: 80 }, 2000), 'TB_ERR_SOCKS_CONNECT');
  });

  it('a proxy that is not SOCKS5 → TB_ERR_SOCKS_PROTOCOL', async () => {
    const bad = createServer((s) => {
      s.on('error', () => undefined);
      s.end('HTTP/1.0 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    try {
      await expectDialError(dialThroughTor({ host: '127.0.0.1', port: (bad.address() as { port: number }).port }, { host: T, port: 80 }, 2000), 'TB_ERR_SOCKS_PROTOCOL');
    } finally {
      bad.close();
    }
  });

  it('rejects invalid destinations without dialing', async () => {
    await expectDialError(dialThroughTor(socks.endpoint, { host: '', port: 80 }, 1000), 'TB_ERR_SOCKS_DEST');
    await expectDialError(dialThroughTor(socks.endpoint, { host: T, port: 0 }, 1000), 'TB_ERR_SOCKS_DEST');
    await expectDialError(dialThroughTor(socks.endpoint, { host: 'a b', port: 80 }, 1000), 'TB_ERR_SOCKS_DEST');
  });
});
