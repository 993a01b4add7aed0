import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, u32be } from '../../../src/core/bytes.js';
import { hasCode } from '../../../src/core/errors.js';
import {
  FrameDecoder,
  MAX_FRAME_BYTES,
  MessageVerifier,
  encodeFrame,
  introDigest,
  introPointFromWire,
  introPointToWire,
  nodeIdOf,
  nodeKeyFromSeed,
  parseMeshAddress,
  validateIntroPoints,
  type MeshMessage,
} from '../../../src/core/mesh/index.js';
import { ipv4LinkSpecifier } from '../../../src/core/hsdesc/link-specifiers.js';

function seeded(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
}

const key = nodeKeyFromSeed(new Uint8Array(32).fill(3));
const secret = new Uint8Array(32).fill(9);
const hb: MeshMessage = {
  type: 'heartbeat',
  body: {
    name: 'node-a',
    addr: 'tcp:10.99.0.1:7700',
    priority: 10,
    health: { healthy: true, reasons: [] },
    introDigest: introDigest([]),
    lease: { holder: key.nodeId, until: 1_000_015_000 },
    peers: [{ id: 'ab'.repeat(16), addr: 'tcp:10.99.0.2:7700', lastSeenAgoMs: 5 }],
  },
};

describe('mesh identity', () => {
  it('nodeId is 32 lowercase hex chars, self-certifying, and stable', () => {
    expect(key.nodeId).toMatch(/^[0-9a-f]{32}$/);
    expect(nodeIdOf(key.publicKey)).toBe(key.nodeId);
    expect(nodeKeyFromSeed(new Uint8Array(32).fill(3)).nodeId).toBe(key.nodeId);
    expect(nodeKeyFromSeed(new Uint8Array(32).fill(4)).nodeId).not.toBe(key.nodeId);
  });
  it('rejects a seed of the wrong length with a typed error', () => {
    expect(() => nodeKeyFromSeed(new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_NODE_KEY' }));
  });
});

describe('encodeFrame / FrameDecoder', () => {
  it('round-trips every message type through the decoder and verifier', () => {
    const points = [
      introPointToWire({ linkSpecifiers: [ipv4LinkSpecifier('10.0.0.1', 9001)], onionKey: new Uint8Array(32).fill(1), authKey: new Uint8Array(32).fill(2), encKey: new Uint8Array(32).fill(3) }),
    ];
    const msgs: MeshMessage[] = [
      { type: 'hello', body: { name: 'a', addr: 'tcp:[fd00::1]:7700', priority: 0, health: { healthy: false, reasons: ['tor down'] }, introDigest: introDigest(points) } },
      hb,
      { type: 'intro-points', body: { digest: introDigest(points), fetchedAt: 123, points } },
      {
        type: 'intro-points',
        body: { digest: introDigest(points), fetchedAt: 124, points, key: 'A'.repeat(42) + 'w', rotationSafe: true, next: { key: 'B'.repeat(42) + 'A', harvestedAt: 120, points } },
      },
      { type: 'leave', body: { reason: 'shutdown' } },
      { type: 'lease', body: { until: 1_000_015_000 } },
    ];
    const verifier = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    const dec = new FrameDecoder();
    const rb = seeded(1);
    msgs.forEach((msg, i) => {
      const frame = encodeFrame(msg, { key, clusterSecret: secret, nowMs: 1_000_000_000 + i, randomBytes: rb });
      const frames = dec.push(frame);
      expect(frames).toHaveLength(1);
      const r = verifier.verify(frames[0]!, 1_000_000_000);
      expect(r).toMatchObject({ ok: true, from: key.nodeId, ts: 1_000_000_000 + i, msg });
    });
    expect(introPointFromWire(points[0]!).onionKey).toEqual(new Uint8Array(32).fill(1));
  });

  it('introDigest is order-independent and distinguishes sets', () => {
    const mk = (b: number) => introPointToWire({ linkSpecifiers: [ipv4LinkSpecifier(`10.0.0.${b}`, 9001)], onionKey: new Uint8Array(32).fill(b), authKey: new Uint8Array(32).fill(b + 1), encKey: new Uint8Array(32).fill(b + 2) });
    const a = mk(1);
    const b = mk(2);
    expect(introDigest([a, b])).toBe(introDigest([b, a]));
    expect(introDigest([a])).not.toBe(introDigest([a, b]));
    expect(introDigest([])).toMatch(/^[0-9a-f]{64}$/);
  });

  it('parses mesh addresses strictly', () => {
    expect(parseMeshAddress('tcp:10.99.0.1:7700')).toEqual({ kind: 'tcp', host: '10.99.0.1', port: 7700 });
    expect(parseMeshAddress('tcp:[fd00::1]:7700')).toEqual({ kind: 'tcp', host: 'fd00::1', port: 7700 });
    expect(parseMeshAddress('tor:' + 'b'.repeat(56) + '.onion:7700')).toEqual({ kind: 'tor', onion: 'b'.repeat(56) + '.onion', port: 7700 });
    for (const bad of ['tcp:host:0', 'tcp:host:70000', 'udp:h:1', 'tor:abc.onion:1', 'tcp:a b:1', 'tcp:host', '']) expect(parseMeshAddress(bad)).toBeUndefined();
  });

  it('refuses to encode an invalid message (typed error, never sent)', () => {
    const bad = { type: 'hello', body: { name: '', addr: 'x', priority: -1, health: { healthy: true, reasons: [] }, introDigest: '' } } as MeshMessage;
    expect(() => encodeFrame(bad, { key, clusterSecret: secret, nowMs: 1, randomBytes: seeded(2) })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_ENCODE' }));
    expect(() => encodeFrame(hb, { key, clusterSecret: secret, nowMs: 1.5, randomBytes: seeded(2) })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_ENCODE' }));
    expect(() => encodeFrame(hb, { key, clusterSecret: secret, nowMs: 1, randomBytes: seeded(2), maxFrameBytes: 200 })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_SIZE' }));
  });

  it('any split of a stream of frames yields the same frames (property)', () => {
    const rb = seeded(7);
    const frames = Array.from({ length: 6 }, (_, i) =>
      encodeFrame(i % 2 ? hb : { type: 'leave', body: { reason: 'x'.repeat(i * 30) } }, { key, clusterSecret: secret, nowMs: 1000 + i, randomBytes: rb }),
    );
    const stream = concatBytes(...frames);
    const expected = frames.map((f) => f.subarray(4));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const dec = new FrameDecoder();
        const got: Uint8Array[] = [];
        for (let i = 1; i < points.length; i++) got.push(...dec.push(stream.subarray(points[i - 1], points[i])));
        expect(got).toEqual(expected);
        expect(dec.bufferedBytes).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('byte-at-a-time feeding of a maximum-size frame works and stays linear', () => {
    const body = new Uint8Array(MAX_FRAME_BYTES).fill(0x41);
    const stream = concatBytes(u32be(MAX_FRAME_BYTES), body);
    const dec = new FrameDecoder();
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...dec.push(stream.subarray(i, i + 1)));
    expect(got).toHaveLength(1);
    expect(got[0]!.length).toBe(MAX_FRAME_BYTES);
  });

  it('rejects an oversize length prefix before buffering its body, then stays failed', () => {
    const dec = new FrameDecoder({ maxFrameBytes: 1000 });
    let err: unknown;
    try {
      dec.push(u32be(1001));
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'TB_ERR_MESH_SIZE')).toBe(true);
    expect(dec.bufferedBytes).toBe(0);
    expect(() => dec.push(new Uint8Array(10))).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_SIZE' }));
    const dec2 = new FrameDecoder();
    expect(() => dec2.push(u32be(0xffffffff))).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_SIZE' }));
    expect(() => new FrameDecoder().push(u32be(5))).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_SIZE' }));
  });

  it('holds a partial frame without emitting it', () => {
    const frame = encodeFrame(hb, { key, clusterSecret: secret, nowMs: 1, randomBytes: seeded(3) });
    const dec = new FrameDecoder();
    expect(dec.push(frame.subarray(0, 3))).toEqual([]);
    expect(dec.push(frame.subarray(3, frame.length - 1))).toEqual([]);
    expect(dec.push(frame.subarray(frame.length - 1))).toEqual([frame.subarray(4)]);
  });
});

describe('intro-points body (rotation-safe fields)', () => {
  const points = [{ ls: 'AA==', onionKey: 'A'.repeat(43) + '=', authKey: 'B'.repeat(43) + '=', encKey: 'C'.repeat(43) + '=' }];
  const body = { digest: introDigest([]), fetchedAt: 1, points: [] };
  it('accepts the optional key, rotationSafe and next', () => {
    expect(validateIntroPoints({ ...body, key: 'A'.repeat(42) + 'Q', rotationSafe: false, next: { key: 'A'.repeat(43), harvestedAt: 5, points: [] } })).toEqual({
      ...body,
      key: 'A'.repeat(42) + 'Q',
      rotationSafe: false,
      next: { key: 'A'.repeat(43), harvestedAt: 5, points: [] },
    });
  });
  it('accepts the optional pow (the sender tor\'s pow-params)', () => {
    const pow = { seed: 'A'.repeat(43) + '=', effort: 4294967295, expires: 1_800_000_000 };
    expect(validateIntroPoints({ ...body, pow })).toEqual({ ...body, pow });
  });
  it.each([
    ['pow with a short seed', { pow: { seed: 'A'.repeat(42) + '==', effort: 0, expires: 1 } }, 'body.pow.seed'],
    ['pow with a non-base64 seed', { pow: { seed: '*'.repeat(43) + '=', effort: 0, expires: 1 } }, 'body.pow.seed'],
    ['pow with effort above 2^32-1', { pow: { seed: 'A'.repeat(43) + '=', effort: 2 ** 32, expires: 1 } }, 'body.pow.effort'],
    ['pow with a fractional effort', { pow: { seed: 'A'.repeat(43) + '=', effort: 1.5, expires: 1 } }, 'body.pow.effort'],
    ['pow without expires', { pow: { seed: 'A'.repeat(43) + '=', effort: 1 } }, 'body.pow.expires'],
    ['pow with an unknown key', { pow: { seed: 'A'.repeat(43) + '=', effort: 1, expires: 1, x: 1 } }, 'body.pow'],
    ['pow not an object', { pow: 'x' }, 'body.pow'],
  ])('rejects %s', (_name, extra, path) => {
    expect(() => validateIntroPoints({ ...body, ...extra })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_SCHEMA', path }));
  });
  it.each([
    ['a non-canonical key (stray low bits)', { key: 'A'.repeat(42) + 'B' }, 'body.key'],
    ['a padded key', { key: 'A'.repeat(42) + '=' }, 'body.key'],
    ['a 44-char key', { key: 'A'.repeat(44) }, 'body.key'],
    ['rotationSafe not a boolean', { rotationSafe: 1 }, 'body.rotationSafe'],
    ['next without points', { next: { key: 'A'.repeat(43), harvestedAt: 1 } }, 'body.next.points'],
    ['next with an unknown key', { next: { key: 'A'.repeat(43), harvestedAt: 1, points: [], x: 1 } }, 'body.next'],
    ['next with 21 points', { next: { key: 'A'.repeat(43), harvestedAt: 1, points: Array.from({ length: 21 }, () => points[0]) } }, 'body.next.points'],
    ['a negative harvestedAt', { next: { key: 'A'.repeat(43), harvestedAt: -1, points: [] } }, 'body.next.harvestedAt'],
  ])('rejects %s', (_name, extra, path) => {
    expect(() => validateIntroPoints({ ...body, ...extra })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_SCHEMA', path }));
  });
});
