import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, toBase64, utf8 } from '../../../src/core/bytes.js';
import { hmacSha256 } from '../../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../../src/core/hs/address.js';
import {
  MAX_FRAME_BYTES,
  MessageVerifier,
  encodeFrame,
  introDigest,
  meshMacKey,
  nodeKeyFromSeed,
  parseMeshAddress,
  signWithNodeKey,
  type MeshMessage,
  type NodeKey,
  type RejectReason,
  MESH_PROTOCOL_VERSION,
} from '../../../src/core/mesh/index.js';

/** Every mesh address a message carries (hello/heartbeat `addr`, gossiped peers). */
function addressesOf(m: MeshMessage): string[] {
  if (m.type === 'hello') return [m.body.addr];
  if (m.type === 'heartbeat') return [m.body.addr, ...m.body.peers.map((p) => p.addr)];
  return [];
}

function isTcpIpLiteral(a: string): boolean {
  const p = parseMeshAddress(a);
  return p?.kind === 'tcp' && isIP(p.host) !== 0;
}

/** Addresses a hostile member might send: IPs, names, numeric tricks, onions, junk. */
const meshAddr = fc.oneof(
  fc.ipV4().map((h) => `tcp:${h}:7700`),
  fc.ipV4Extended().map((h) => `tcp:${h}:7700`),
  fc.ipV6().map((h) => `tcp:[${h}]:7700`),
  fc.domain().map((h) => `tcp:${h}:7700`),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((k) => `tor:${encodeOnionAddress(k)}:7700`),
  fc.string({ maxLength: 30 }),
);

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

const NOW = 1_700_000_000_000;
const secret = new Uint8Array(32).fill(9);
const A = nodeKeyFromSeed(new Uint8Array(32).fill(1));
const B = nodeKeyFromSeed(new Uint8Array(32).fill(2));
const rb = seeded(42);

function hello(): MeshMessage {
  return { type: 'hello', body: { name: 'a', addr: 'tcp:10.0.0.1:7700', priority: 1, health: { healthy: true, reasons: [] }, introDigest: introDigest([]) } };
}

function envelope(over: Record<string, unknown> = {}, body: unknown = hello().body, key: NodeKey = A): Record<string, unknown> {
  return { v: MESH_PROTOCOL_VERSION, type: 'hello', from: key.nodeId, pub: toBase64(key.publicKey), ts: NOW, nonce: toBase64(rb(16)), body, ...over };
}

/** A frame (no length prefix) with a valid cluster MAC over `payload`, signed by `signer`. */
function craft(payload: string | Record<string, unknown>, signer: NodeKey = A, macSecret: Uint8Array = secret): Uint8Array {
  const p = utf8(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return concatBytes(p, hmacSha256(meshMacKey(macSecret), p), signWithNodeKey(signer, p));
}

function expectReject(r: ReturnType<MessageVerifier['verify']>, reason: RejectReason): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.reason).toBe(reason);
}

function frameOf(msg: MeshMessage, key: NodeKey = A, nowMs = NOW, clusterSecret = secret): Uint8Array {
  return encodeFrame(msg, { key, clusterSecret, nowMs, randomBytes: rb }).subarray(4);
}

describe('MessageVerifier', () => {
  it('accepts a genuine frame', () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    expect(v.verify(frameOf(hello()), NOW)).toMatchObject({ ok: true, from: A.nodeId, ts: NOW });
    expect(v.verify(craft(envelope()), NOW).ok).toBe(true);
  });

  it("rejects a frame MACed with the wrong cluster secret as 'mac'", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    expectReject(v.verify(frameOf(hello(), A, NOW, new Uint8Array(32).fill(8)), NOW), 'mac');
  });

  it("rejects a tampered payload, MAC or signature byte", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    const f = frameOf(hello());
    const payloadFlip = f.slice();
    payloadFlip[10] = payloadFlip[10]! ^ 1;
    expectReject(v.verify(payloadFlip, NOW), 'mac');
    const macFlip = f.slice();
    macFlip[f.length - 96] = macFlip[f.length - 96]! ^ 1;
    expectReject(v.verify(macFlip, NOW), 'mac');
    const sigFlip = f.slice();
    sigFlip[f.length - 1] = sigFlip[f.length - 1]! ^ 1;
    expectReject(v.verify(sigFlip, NOW), 'signature');
  });

  it("rejects a member speaking for another: pub of A with from=B → 'identity'", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    expectReject(v.verify(craft(envelope({ from: B.nodeId })), NOW), 'identity');
  });

  it("rejects B's pub and from with A's signature → 'signature'", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    expectReject(v.verify(craft(envelope({}, hello().body, B), A), NOW), 'signature');
  });

  it("rejects a replayed frame → 'replay', and forgets it only once skew would reject it", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', maxSkewMs: 30_000 });
    const f = frameOf(hello());
    expect(v.verify(f, NOW).ok).toBe(true);
    expectReject(v.verify(f, NOW), 'replay');
    expectReject(v.verify(f, NOW + 30_000), 'replay');
    expectReject(v.verify(f, NOW + 30_001), 'skew');
    expectReject(v.verify(f, NOW + 60_001), 'skew');
    // After expiry, a local clock jumping back cannot readmit it (watermark).
    expectReject(v.verify(f, NOW), 'replay');
  });

  it('keeps the replay cache bounded and fails closed when it overflows', () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', replayCacheSize: 8 });
    const frames = Array.from({ length: 20 }, (_, i) => frameOf(hello(), A, NOW + i));
    for (const f of frames) expect(v.verify(f, NOW).ok).toBe(true);
    expect(v.replayCacheEntries).toBe(8);
    for (const f of frames) expectReject(v.verify(f, NOW), 'replay');
  });

  it("one sender's flood does not make another sender's frames fail as 'replay' (per-sender state)", () => {
    // The attack: a member fills the cache with its own frames stamped now + maxSkew; with one
    // global cache the evictions raised one watermark and every honest frame up to then failed.
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', maxSkewMs: 30_000, replayCacheSize: 8 });
    for (let i = 0; i < 50; i++) expect(v.verify(frameOf(hello(), B, NOW + 29_950 + i), NOW).ok).toBe(true);
    for (let i = 0; i < 5; i++) expect(v.verify(frameOf(hello(), A, NOW + i), NOW).ok).toBe(true);
    // The flooder only hurt itself: its own older frames are now refused.
    expectReject(v.verify(frameOf(hello(), B, NOW), NOW), 'replay');
    expect(v.replayCacheEntries).toBe(8 + 5);
  });

  it('bounds the senders and keeps refusing the frames of a forgotten sender', () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', replayCacheSize: 4, maxSenders: 1 });
    const fromA = frameOf(hello(), A, NOW);
    expect(v.verify(fromA, NOW).ok).toBe(true);
    expect(v.verify(frameOf(hello(), B, NOW - 5), NOW).ok).toBe(true); // evicts A's state
    expect(v.replaySenders).toBe(1);
    expectReject(v.verify(fromA, NOW), 'replay');
  });

  it("rejects oversize and undersize frames → 'size'", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    expectReject(v.verify(new Uint8Array(MAX_FRAME_BYTES + 1), NOW), 'size');
    expectReject(v.verify(new Uint8Array(97), NOW), 'size');
    const small = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', maxFrameBytes: 300 });
    expectReject(small.verify(craft(envelope({}, { ...hello().body, name: 'x'.repeat(60) })), NOW), 'size');
  });

  it("rejects clock skew in both directions → 'skew'", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', maxSkewMs: 30_000 });
    expectReject(v.verify(frameOf(hello(), A, NOW - 30_001), NOW), 'skew');
    expectReject(v.verify(frameOf(hello(), A, NOW + 30_001), NOW), 'skew');
    expect(v.verify(frameOf(hello(), A, NOW - 30_000), NOW).ok).toBe(true);
    expect(v.verify(frameOf(hello(), A, NOW + 30_000), NOW).ok).toBe(true);
  });

  it("rejects another protocol version → 'version'", () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    expectReject(v.verify(craft(envelope({ v: 3, type: 'future', body: { anything: [1] } })), NOW), 'version');
  });

  const schemaCases: [string, unknown][] = [
    ['not JSON', 'hello'],
    ['JSON array', '[1,2]'],
    ['missing from', (() => { const e = envelope(); delete e['from']; return e; })()],
    ['missing body field', envelope({}, { name: 'a', addr: 'tcp:10.0.0.1:7700', priority: 1, health: { healthy: true, reasons: [] } })],
    ['unknown type', envelope({ type: 'gossip' })],
    ['wrong type of ts', envelope({ ts: String(NOW) })],
    ['fractional ts', envelope({ ts: NOW + 0.5 })],
    ['priority out of range', envelope({}, { ...hello().body, priority: 1e9 })],
    ['priority NaN-ish', '{"v":1,"type":"hello","from":"' + A.nodeId + '","pub":"' + toBase64(A.publicKey) + '","ts":1e400,"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","body":{}}'],
    ['nonce too short', envelope({ nonce: toBase64(new Uint8Array(15)) })],
    ['nonce unpadded', envelope({ nonce: toBase64(new Uint8Array(16)).replace(/=+$/, '') })],
    ['pub wrong length', envelope({ pub: toBase64(new Uint8Array(33)) })],
    ['from uppercase', envelope({ from: A.nodeId.toUpperCase() })],
    ['huge peers array', envelope({ type: 'heartbeat' }, { ...hello().body, peers: Array.from({ length: 65 }, () => ({ id: 'ab'.repeat(16), addr: 'tcp:1.2.3.4:1', lastSeenAgoMs: 0 })) })],
    ['huge reasons array', envelope({}, { ...hello().body, health: { healthy: false, reasons: Array.from({ length: 17 }, () => 'x') } })],
    ['too many intro points', envelope({ type: 'intro-points' }, { digest: introDigest([]), fetchedAt: 1, points: Array.from({ length: 21 }, () => ({ ls: 'AA==', onionKey: toBase64(new Uint8Array(32)), authKey: toBase64(new Uint8Array(32)), encKey: toBase64(new Uint8Array(32)) })) })],
    ['intro key wrong length', envelope({ type: 'intro-points' }, { digest: introDigest([]), fetchedAt: 1, points: [{ ls: 'AA==', onionKey: toBase64(new Uint8Array(31)), authKey: toBase64(new Uint8Array(32)), encKey: toBase64(new Uint8Array(32)) }] })],
    ['long name', envelope({}, { ...hello().body, name: 'n'.repeat(65) })],
    ['control char in reason', envelope({ type: 'leave' }, { reason: 'a\nb' })],
    ['bad addr', envelope({}, { ...hello().body, addr: 'http://x' })],
    ['__proto__ key in body', '{"v":2,"type":"leave","from":"' + A.nodeId + '","pub":"' + toBase64(A.publicKey) + '","ts":' + String(NOW) + ',"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","body":{"reason":"x","__proto__":{"polluted":true}}}'],
    ['__proto__ key in envelope', '{"__proto__":{"v":1},"v":1,"type":"leave","from":"' + A.nodeId + '","pub":"' + toBase64(A.publicKey) + '","ts":' + String(NOW) + ',"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","body":{"reason":"x"}}'],
    ['constructor key', envelope({ type: 'lease' }, { until: 5, constructor: { prototype: {} } })],
    ['extra envelope key', envelope({ extra: 1 })],
    ['deep nesting', envelope({ type: 'leave' }, { reason: 'x', deep: JSON.parse('['.repeat(50) + ']'.repeat(50)) })],
    ['very deep nesting', '{"v":1,"body":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}'],
    ['lease holder not an id', envelope({ type: 'heartbeat' }, { ...hello().body, peers: [], lease: { holder: 'me', until: 1 } })],
    ['invalid UTF-8', '\u0000'],
  ];
  for (const [name, payload] of schemaCases) {
    it(`rejects a schema violation (${name}) → 'schema'`, () => {
      const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
      let frame: Uint8Array;
      if (name === 'invalid UTF-8') {
        const p = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
        frame = concatBytes(p, hmacSha256(meshMacKey(secret), p), signWithNodeKey(A, p));
      } else frame = craft(payload as string | Record<string, unknown>);
      const r = v.verify(frame, NOW);
      expectReject(r, 'schema');
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    });
  }

  it('details never contain the cluster secret, seeds or attacker-chosen strings', () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' });
    const marker = 'MARKERxyz';
    const r = v.verify(craft(envelope({}, { ...hello().body, name: marker + '!' })), NOW);
    expectReject(r, 'schema');
    if (!r.ok) {
      expect(r.detail).not.toContain(marker);
      expect(r.detail).not.toContain(toBase64(secret));
      expect(r.detail.length).toBeLessThan(120);
    }
  });

  it('survives 100 000 random and mutated frames without throwing', () => {
    const v = new MessageVerifier({ clusterSecret: secret, transport: 'tcp', replayCacheSize: 1000 });
    const good = [
      frameOf(hello()),
      frameOf({ type: 'heartbeat', body: { ...hello().body, peers: [{ id: B.nodeId, addr: 'tcp:1.2.3.4:5', lastSeenAgoMs: 1 }], lease: { holder: A.nodeId, until: NOW + 1 } } } as MeshMessage),
      frameOf({ type: 'leave', body: { reason: 'bye' } }),
    ];
    const counts: Record<string, number> = {};
    let ok = 0;
    const arb = fc.oneof(
      // raw random bytes
      fc.uint8Array({ minLength: 0, maxLength: 400 }),
      // mutations of genuine frames (byte flips, truncation, extension)
      fc.tuple(fc.constantFrom(...good), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }), fc.nat(), fc.uint8Array({ maxLength: 8 }))
        .map(([g, flips, cut, ext]) => {
          const f = g.slice();
          for (const [pos, x] of flips) f[pos % f.length] = f[pos % f.length]! ^ x;
          return concatBytes(f.subarray(0, f.length - (cut % 4 === 0 ? cut % 50 : 0)), ext);
        }),
      // random JSON with a valid MAC and signature (exercises the schema layer)
      fc.tuple(fc.jsonValue({ maxDepth: 4 }), fc.boolean()).map(([j, wrap]) => craft(JSON.stringify(wrap ? envelope({}, j) : j))),
      // mutated envelopes with valid MAC and signature
      fc.tuple(fc.constantFrom('v', 'type', 'from', 'pub', 'ts', 'nonce', 'body'), fc.jsonValue({ maxDepth: 2 })).map(([k, val]) => craft(envelope({ [k]: val }))),
      // hello/heartbeat from a holder of the secret with addresses of any kind (docs/SECURITY.md, "Mesh addresses")
      fc.tuple(meshAddr, fc.array(meshAddr, { maxLength: 3 }), fc.boolean()).map(([a, gossip, beat]) =>
        craft(beat
          ? envelope({ type: 'heartbeat' }, { ...hello().body, addr: a, peers: gossip.map((g, i) => ({ id: String(i).padStart(32, 'a'), addr: g, lastSeenAgoMs: 0 })) })
          : envelope({}, { ...hello().body, addr: a })),
      ),
    );
    const vTor = new MessageVerifier({ clusterSecret: secret, transport: 'tor', replayCacheSize: 1000 });
    let torOk = 0;
    fc.assert(
      fc.property(arb, fc.integer({ min: -100_000, max: 100_000 }), (frame, dt) => {
        const r = v.verify(frame, NOW + dt);
        if (r.ok) ok++;
        else counts[r.reason] = (counts[r.reason] ?? 0) + 1;
        // Whatever passes carries only addresses of the verifier's transport, and no host name.
        if (r.ok && !addressesOf(r.msg).every(isTcpIpLiteral)) return false;
        const rt = vTor.verify(frame, NOW + dt);
        if (rt.ok) {
          torOk++;
          if (!addressesOf(rt.msg).every((a) => parseMeshAddress(a)?.kind === 'tor')) return false;
        }
        return r.ok || (typeof r.detail === 'string' && r.detail !== 'internal verification fault');
      }),
      { numRuns: 100_000, seed: 1234 },
    );
    expect(Object.values(counts).reduce((a, b) => a + b, 0) + ok).toBe(100_000);
    // The generator reaches the deep layers, not just the MAC check.
    for (const reason of ['mac', 'schema', 'size'] as const) expect(counts[reason] ?? 0).toBeGreaterThan(0);
    // The address generator reaches acceptance on both transports (the invariant is not vacuous).
    expect(ok).toBeGreaterThan(0);
    expect(torOk).toBeGreaterThan(0);
  });
});
