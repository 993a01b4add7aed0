/**
 * Mesh addresses on the wire (docs/SECURITY.md, "Mesh addresses"): `tcp:` only with IP
 * literals (never a host name: nothing from a peer is resolved), and only addresses of the
 * cluster's transport, in hello `addr`, heartbeat `addr` and every gossiped peer. A holder of
 * the cluster secret who sends `tcp:` addresses to a tor cluster must not make any node
 * connect outside tor; the verifier refuses such frames as `schema`.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, toBase64, utf8 } from '../../../src/core/bytes.js';
import { hmacSha256 } from '../../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../../src/core/hs/address.js';
import { isIPv4Literal, isIPv6Literal } from '../../../src/core/ip.js';
import {
  MessageVerifier,
  encodeFrame,
  introDigest,
  meshMacKey,
  nodeKeyFromSeed,
  parseMeshAddress,
  signWithNodeKey,
  validateHeartbeat,
  validateHello,
  type MeshMessage,
  type MeshTransportKind,
  MESH_PROTOCOL_VERSION,
} from '../../../src/core/mesh/index.js';
import { parseClusterAddress } from '../../../src/adapters/config/schema.js';

const NOW = 1_700_000_000_000;
const secret = new Uint8Array(32).fill(9);
const A = nodeKeyFromSeed(new Uint8Array(32).fill(1));
const ONION = encodeOnionAddress(new Uint8Array(32).fill(5));
const TOR = `tor:${ONION}:7700`;
const TCP = 'tcp:10.99.0.1:7700';
let nonce = 0;

function helloBody(addr: string): Record<string, unknown> {
  return { name: 'a', addr, priority: 1, health: { healthy: true, reasons: [] }, introDigest: introDigest([]) };
}
function heartbeatBody(addr: string, gossip: readonly string[]): Record<string, unknown> {
  return { ...helloBody(addr), peers: gossip.map((g, i) => ({ id: i.toString(16).padStart(32, '0'), addr: g, lastSeenAgoMs: 0 })) };
}
/** A frame with a valid MAC and signature around any body (what a hostile member can send). */
function craft(type: 'hello' | 'heartbeat', body: unknown): Uint8Array {
  const n = new Uint8Array(16);
  n.set(utf8(String(++nonce).padStart(16, '0')));
  const p = utf8(JSON.stringify({ v: MESH_PROTOCOL_VERSION, type, from: A.nodeId, pub: toBase64(A.publicKey), ts: NOW, nonce: toBase64(n), body }));
  return concatBytes(p, hmacSha256(meshMacKey(secret), p), signWithNodeKey(A, p));
}
function verifier(transport: MeshTransportKind): MessageVerifier {
  return new MessageVerifier({ clusterSecret: secret, transport });
}

describe('parseMeshAddress: IP literals only for tcp', () => {
  it('accepts IPv4, bracketed IPv6 (also with an embedded IPv4) and onions', () => {
    for (const ok of ['tcp:10.99.0.1:7700', 'tcp:0.0.0.0:1', 'tcp:255.255.255.255:65535', 'tcp:[fd00::1]:7700', 'tcp:[::]:1', 'tcp:[::ffff:10.0.0.1]:7700', 'tcp:[1:2:3:4:5:6:7:8]:9', TOR]) {
      expect(parseMeshAddress(ok), ok).toBeDefined();
    }
  });

  it('refuses host names and every non-canonical numeric form a resolver would accept', () => {
    for (const bad of [
      'tcp:localhost:7700',
      'tcp:evil.example:7700',
      'tcp:node-2:7700',
      'tcp:10.0.0.1.nip.io:7700',
      'tcp:127.1:7700', // inet_aton short form
      'tcp:0x7f.0.0.1:7700',
      'tcp:2130706433:7700',
      'tcp:010.0.0.1:7700',
      'tcp:256.0.0.1:7700',
      'tcp:[fe80::1%eth0]:7700',
      'tcp:[evil.example]:7700',
      'tcp:[1::2::3]:7700',
      'tcp:fd00::1:7700',
      `tcp:${ONION}:7700`,
    ]) {
      expect(parseMeshAddress(bad), bad).toBeUndefined();
    }
  });

  it('agrees with node:net isIP on random hosts, and with the config parser (property)', () => {
    const host = fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), fc.domain(), fc.string({ maxLength: 20 }), fc.stringMatching(/^[0-9a-f:.]{1,40}$/));
    fc.assert(
      fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
        const v6 = h.includes(':');
        const s = `tcp:${v6 ? `[${h}]` : h}:${port}`;
        const want = v6 ? isIP(h) === 6 && !h.includes('%') : isIP(h) === 4;
        expect(parseMeshAddress(s) !== undefined, s).toBe(want);
        expect(isIPv4Literal(h) || isIPv6Literal(h)).toBe(isIP(h) !== 0 && !h.includes('%'));
        expect(parseClusterAddress(s) !== undefined, s).toBe(want);
      }),
      { numRuns: 20_000, seed: 77 },
    );
  });
});

describe('the verifier accepts addresses of the cluster transport only', () => {
  const cases: { what: string; type: 'hello' | 'heartbeat'; body: Record<string, unknown>; path: string }[] = [
    { what: 'hello addr tcp: (IP)', type: 'hello', body: helloBody('tcp:127.0.0.1:7700'), path: 'body.addr' },
    { what: 'hello addr tcp: (name)', type: 'hello', body: helloBody('tcp:attacker.example:443'), path: 'body.addr' },
    { what: 'heartbeat addr tcp:', type: 'heartbeat', body: heartbeatBody('tcp:10.0.0.2:7700', []), path: 'body.addr' },
    { what: 'gossiped tcp: (IP)', type: 'heartbeat', body: heartbeatBody(TOR, [TOR, 'tcp:203.0.113.5:7700']), path: 'body.peers[1].addr' },
    { what: 'gossiped tcp: (name)', type: 'heartbeat', body: heartbeatBody(TOR, ['tcp:attacker.example:7700']), path: 'body.peers[0].addr' },
    { what: 'gossiped tcp: (IPv6)', type: 'heartbeat', body: heartbeatBody(TOR, ['tcp:[2001:db8::1]:7700']), path: 'body.peers[0].addr' },
  ];
  for (const c of cases) {
    it(`tor transport: ${c.what} → 'schema' naming ${c.path}, not the value`, () => {
      const r = verifier('tor').verify(craft(c.type, c.body), NOW);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe('schema');
        expect(r.detail.startsWith(`${c.path}:`), r.detail).toBe(true);
        expect(r.detail).not.toMatch(/attacker|127\.0\.0\.1|203\.0|2001/);
      }
    });
  }

  it('tor transport: all-onion hello and heartbeat pass', () => {
    const v = verifier('tor');
    expect(v.verify(craft('hello', helloBody(TOR)), NOW).ok).toBe(true);
    expect(v.verify(craft('heartbeat', heartbeatBody(TOR, [TOR, `tor:${encodeOnionAddress(new Uint8Array(32).fill(6))}:7700`])), NOW).ok).toBe(true);
  });

  it('tcp transport: tor: addresses and host names are refused, IP literals pass', () => {
    const v = verifier('tcp');
    expect(v.verify(craft('hello', helloBody(TOR)), NOW)).toMatchObject({ ok: false, reason: 'schema' });
    expect(v.verify(craft('heartbeat', heartbeatBody(TCP, [TOR])), NOW)).toMatchObject({ ok: false, reason: 'schema' });
    expect(v.verify(craft('heartbeat', heartbeatBody(TCP, ['tcp:node-2.wg:7700'])), NOW)).toMatchObject({ ok: false, reason: 'schema' });
    expect(v.verify(craft('heartbeat', heartbeatBody(TCP, ['tcp:10.99.0.2:7700', 'tcp:[fd00::2]:7700'])), NOW).ok).toBe(true);
  });

  it('the validators take the transport; without one they still refuse names', () => {
    expect(() => validateHello(helloBody(TCP), 'body', 'tor')).toThrow(/body\.addr: not a tor: address/);
    expect(() => validateHeartbeat(heartbeatBody(TOR, [TCP]), 'body', 'tor')).toThrow(/body\.peers\[0\]\.addr/);
    expect(validateHello(helloBody(TCP)).addr).toBe(TCP);
    expect(() => validateHello(helloBody('tcp:evil.example:1'))).toThrow(/not a mesh address/);
  });

  it('encodeFrame told the transport refuses to send an address of the other kind', () => {
    const msg = { type: 'hello', body: helloBody(TCP) } as unknown as MeshMessage;
    const rb = (n: number): Uint8Array => new Uint8Array(n).fill(3);
    expect(() => encodeFrame(msg, { key: A, clusterSecret: secret, nowMs: NOW, randomBytes: rb, transport: 'tor' })).toThrow(expect.objectContaining({ code: 'TB_ERR_MESH_ENCODE' }));
    expect(encodeFrame(msg, { key: A, clusterSecret: secret, nowMs: NOW, randomBytes: rb, transport: 'tcp' }).length).toBeGreaterThan(100);
  });
});
