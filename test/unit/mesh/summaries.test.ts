/**
 * The heartbeat's optional `traffic` and `publish` summaries (src/core/mesh/protocol.ts):
 * accepted when well-formed (and round-tripped through encodeFrame / MessageVerifier),
 * rejected as `schema` when malformed, oversized or carrying unknown keys; heartbeats of older
 * nodes without them stay valid.
 */
import { describe, expect, it } from 'vitest';
import { concatBytes, toBase64, utf8 } from '../../../src/core/bytes.js';
import { hmacSha256 } from '../../../src/core/crypto/index.js';
import {
  MAX_PUBLISH_NODES,
  MAX_RESPONSIBLE_HSDIRS,
  MessageVerifier,
  SchemaViolation,
  encodeFrame,
  introDigest,
  meshMacKey,
  nodeKeyFromSeed,
  signWithNodeKey,
  validateHeartbeat,
  type HeartbeatBody,
  type MeshMessage,
  type PublishSummary,
  MESH_PROTOCOL_VERSION,
} from '../../../src/core/mesh/index.js';

const NOW = 1_700_000_000_000;
const secret = new Uint8Array(32).fill(9);
const A = nodeKeyFromSeed(new Uint8Array(32).fill(1));
let nonceCounter = 0;
const rb = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  nonceCounter += 1;
  out[0] = nonceCounter & 0xff;
  out[1] = (nonceCounter >> 8) & 0xff;
  return out;
};

const base: HeartbeatBody = {
  name: 'node-a',
  addr: 'tcp:10.99.0.1:7700',
  priority: 10,
  health: { healthy: true, reasons: [] },
  introDigest: introDigest([]),
  peers: [],
};
const traffic = { open: 2, accepted: 40, requests: 37, bytesIn: 12_000, bytesOut: 2 ** 40 };
const publish: PublishSummary = { at: NOW - 5000, revisions: ['18446744073709551615', null], accepted: [[6, 8], null], nodes: 3 };

/** A correctly MACed and signed heartbeat frame (no length prefix) with an arbitrary body. */
function craft(body: unknown): Uint8Array {
  const p = utf8(JSON.stringify({ v: MESH_PROTOCOL_VERSION, type: 'heartbeat', from: A.nodeId, pub: toBase64(A.publicKey), ts: NOW, nonce: toBase64(rb(16)), body }));
  return concatBytes(p, hmacSha256(meshMacKey(secret), p), signWithNodeKey(A, p));
}

function verify(body: unknown): ReturnType<MessageVerifier['verify']> {
  return new MessageVerifier({ clusterSecret: secret, transport: 'tcp' }).verify(craft(body), NOW);
}

describe('heartbeat traffic / publish summaries', () => {
  it('accepts both, exactly as sent, and round-trips them through encodeFrame and the verifier', () => {
    const body = { ...base, traffic, publish };
    expect(validateHeartbeat(body)).toEqual(body);
    const msg = { type: 'heartbeat', body } as MeshMessage;
    const frame = encodeFrame(msg, { key: A, clusterSecret: secret, nowMs: NOW, randomBytes: rb }).subarray(4);
    const r = new MessageVerifier({ clusterSecret: secret, transport: 'tcp' }).verify(frame, NOW);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.msg).toEqual(msg);
  });

  it('accepts either one alone, with a lease, and the all-null / zero publish summary', () => {
    expect(validateHeartbeat({ ...base, traffic })).toEqual({ ...base, traffic });
    const p0 = { at: 0, revisions: [null, null], accepted: [null, null], nodes: 0 };
    const withLease = { ...base, lease: { holder: A.nodeId, until: NOW }, publish: p0 };
    expect(validateHeartbeat(withLease)).toEqual(withLease);
    const max = { at: Number.MAX_SAFE_INTEGER, revisions: ['0', '1'], accepted: [[MAX_RESPONSIBLE_HSDIRS, MAX_RESPONSIBLE_HSDIRS], [0, 0]], nodes: MAX_PUBLISH_NODES };
    expect(validateHeartbeat({ ...base, publish: max }).publish).toEqual(max);
  });

  it('an old heartbeat without the fields stays valid (and has neither)', () => {
    const v = validateHeartbeat(base);
    expect(v).toEqual(base);
    expect('traffic' in v || 'publish' in v).toBe(false);
    expect(verify(base).ok).toBe(true);
  });

  const bad: [string, unknown, string][] = [
    ['traffic not an object', { ...base, traffic: [1, 2, 3, 4, 5] }, 'body.traffic'],
    ['traffic unknown key', { ...base, traffic: { ...traffic, rejected: 1 } }, 'body.traffic'],
    ['traffic missing key', { ...base, traffic: { open: 1, accepted: 1, requests: 1, bytesIn: 1 } }, 'body.traffic.bytesOut'],
    ['traffic negative', { ...base, traffic: { ...traffic, requests: -1 } }, 'body.traffic.requests'],
    ['traffic fractional', { ...base, traffic: { ...traffic, bytesIn: 1.5 } }, 'body.traffic.bytesIn'],
    ['traffic unsafe integer', { ...base, traffic: { ...traffic, bytesOut: 2 ** 53 } }, 'body.traffic.bytesOut'],
    ['traffic string number', { ...base, traffic: { ...traffic, open: '2' } }, 'body.traffic.open'],
    ['traffic null', { ...base, traffic: null }, 'body.traffic'],
    ['publish unknown key', { ...base, publish: { ...publish, hsdirs: [] } }, 'body.publish'],
    ['publish missing nodes', { ...base, publish: { at: 1, revisions: [null, null], accepted: [null, null] } }, 'body.publish.nodes'],
    ['publish negative at', { ...base, publish: { ...publish, at: -1 } }, 'body.publish.at'],
    ['publish nodes too many', { ...base, publish: { ...publish, nodes: MAX_PUBLISH_NODES + 1 } }, 'body.publish.nodes'],
    ['revisions of length 3', { ...base, publish: { ...publish, revisions: ['1', '2', '3'] } }, 'body.publish.revisions'],
    ['revisions of length 1', { ...base, publish: { ...publish, revisions: ['1'] } }, 'body.publish.revisions'],
    ['revision as a number', { ...base, publish: { ...publish, revisions: [123, null] } }, 'body.publish.revisions[0]'],
    ['revision with a sign', { ...base, publish: { ...publish, revisions: [null, '-1'] } }, 'body.publish.revisions[1]'],
    ['revision with a leading zero', { ...base, publish: { ...publish, revisions: ['01', null] } }, 'body.publish.revisions[0]'],
    ['revision empty', { ...base, publish: { ...publish, revisions: ['', null] } }, 'body.publish.revisions[0]'],
    ['revision above 2^64-1', { ...base, publish: { ...publish, revisions: ['18446744073709551616', null] } }, 'body.publish.revisions[0]'],
    ['revision too long', { ...base, publish: { ...publish, revisions: ['1'.repeat(21), null] } }, 'body.publish.revisions[0]'],
    ['accepted of length 3', { ...base, publish: { ...publish, accepted: [null, null, null] } }, 'body.publish.accepted'],
    ['accepted pair of length 3', { ...base, publish: { ...publish, accepted: [[1, 2, 3], null] } }, 'body.publish.accepted[0]'],
    ['accepted more than responsible', { ...base, publish: { ...publish, accepted: [[9, 8], null] } }, 'body.publish.accepted[0]'],
    ['responsible too many', { ...base, publish: { ...publish, accepted: [null, [0, MAX_RESPONSIBLE_HSDIRS + 1]] } }, 'body.publish.accepted[1][1]'],
    ['accepted as an object', { ...base, publish: { ...publish, accepted: [{ n: 1, m: 2 }, null] } }, 'body.publish.accepted[0]'],
    ['accepted negative', { ...base, publish: { ...publish, accepted: [[-1, 2], null] } }, 'body.publish.accepted[0][0]'],
    ['huge accepted array', { ...base, publish: { ...publish, accepted: Array.from({ length: 10_000 }, () => null) } }, 'body.publish.accepted'],
    ['publish as a string', { ...base, publish: 'x' }, 'body.publish'],
  ];
  for (const [name, body, path] of bad) {
    it(`rejects ${name} (SchemaViolation at ${path}; 'schema' in the verifier)`, () => {
      let err: unknown;
      try {
        validateHeartbeat(body);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SchemaViolation);
      expect((err as SchemaViolation).code).toBe('TB_ERR_MESH_SCHEMA');
      expect((err as SchemaViolation).path).toBe(path);
      const r = verify(body);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toBe('schema');
    });
  }

  it("a __proto__ key inside a summary is an unknown key, and nothing is polluted", () => {
    const text = JSON.stringify({ ...base, traffic }).replace('"open":2', '"open":2,"__proto__":{"polluted":true}');
    expect(() => validateHeartbeat(JSON.parse(text))).toThrow(SchemaViolation);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('encodeFrame refuses a heartbeat with an invalid summary (never sent)', () => {
    const msg = { type: 'heartbeat', body: { ...base, traffic: { ...traffic, open: -1 } } } as MeshMessage;
    expect(() => encodeFrame(msg, { key: A, clusterSecret: secret, nowMs: NOW, randomBytes: rb })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_ENCODE' }));
  });
});
