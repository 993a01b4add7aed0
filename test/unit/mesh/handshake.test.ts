/**
 * The mesh connection handshake state machine (src/core/mesh/handshake.ts;
 * docs/mesh-protocol.md "Handshake"): the known-answer vectors printed in the doc, the happy
 * path, and rejection of tampered, replayed, reflected, wrongly addressed and wrong-secret
 * messages (tables and fast-check).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/core/bytes.js';
import { hmacSha256 } from '../../../src/core/crypto/index.js';
import {
  FrameDecoder,
  HANDSHAKE_M1_BYTES,
  HANDSHAKE_M2_BYTES,
  HANDSHAKE_M3_BYTES,
  InitiatorHandshake,
  ResponderHandshake,
  handshakeKey,
  linkFrameKey,
  nodeKeyFromSeed,
  signWithNodeKey,
  type HandshakeStep,
  type MeshLink,
  type NodeKey,
} from '../../../src/core/mesh/index.js';

const SECRET = new Uint8Array(32).fill(0x11);
const I_KEY = nodeKeyFromSeed(new Uint8Array(32).fill(0xa1));
const R_KEY = nodeKeyFromSeed(new Uint8Array(32).fill(0xb2));
const X_KEY = nodeKeyFromSeed(new Uint8Array(32).fill(0xc3));
const N_I = new Uint8Array(32).fill(0x01);
const N_R = new Uint8Array(32).fill(0x02);

function init(o: { secret?: Uint8Array; key?: NodeKey; nonce?: Uint8Array } = {}): InitiatorHandshake {
  return new InitiatorHandshake({ clusterSecret: o.secret ?? SECRET, key: o.key ?? I_KEY, nonce: o.nonce ?? N_I });
}
function resp(o: { secret?: Uint8Array; key?: NodeKey; nonce?: Uint8Array } = {}): ResponderHandshake {
  return new ResponderHandshake({ clusterSecret: o.secret ?? SECRET, key: o.key ?? R_KEY, nonce: o.nonce ?? N_R });
}
function ok(s: HandshakeStep): { send?: Uint8Array; link?: MeshLink } {
  if (!s.ok) throw new Error(`handshake failed: ${s.detail}`);
  return s;
}

/** A full exchange; returns the messages and both links. */
function run(): { m1: Uint8Array; m2: Uint8Array; m3: Uint8Array; li: MeshLink; lr: MeshLink } {
  const i = init();
  const r = resp();
  const m1 = i.start();
  const m2 = ok(r.receive(m1)).send!;
  const s3 = ok(i.receive(m2));
  const lr = ok(r.receive(s3.send!)).link!;
  return { m1, m2, m3: s3.send!, li: s3.link!, lr };
}

describe('handshake vectors in docs/mesh-protocol.md', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'mesh-protocol.md'), 'utf8');
  const vec = (name: string): string => {
    const m = new RegExp(`^${name}\\s*=\\s*([0-9a-f]+)$`, 'm').exec(doc);
    if (m === null) throw new Error(`vector ${name} missing from docs/mesh-protocol.md`);
    return m[1]!;
  };
  const { m1, m2, m3, li } = run();
  const cases: [string, string][] = [
    ['M1', toHex(m1)],
    ['M2', toHex(m2)],
    ['M3', toHex(m3)],
    ['K_i2r', toHex(li.sendKey)],
    ['K_r2i', toHex(li.recvKey)],
    ['K_seq0_i2r', toHex(linkFrameKey(li.sendKey, 0))],
  ];
  it.each(cases)('%s matches the doc', (name, hex) => {
    expect(vec(name)).toBe(hex);
  });
});

describe('handshake', () => {
  it('completes with matching link keys, each side proving the other', () => {
    const { m1, m2, m3, li, lr } = run();
    expect([m1.length, m2.length, m3.length]).toEqual([HANDSHAKE_M1_BYTES, HANDSHAKE_M2_BYTES, HANDSHAKE_M3_BYTES]);
    expect(li.peerId).toBe(R_KEY.nodeId);
    expect(lr.peerId).toBe(I_KEY.nodeId);
    expect(toHex(li.sendKey)).toBe(toHex(lr.recvKey));
    expect(toHex(li.recvKey)).toBe(toHex(lr.sendKey));
    expect(toHex(li.sendKey)).not.toBe(toHex(li.recvKey));
  });

  it('fresh nonces give different link keys (a frame of one connection fails on another)', () => {
    const a = run().li;
    const i = init({ nonce: new Uint8Array(32).fill(7) });
    const r = resp({ nonce: new Uint8Array(32).fill(8) });
    const s3 = ok(i.receive(ok(r.receive(i.start())).send!));
    expect(toHex(s3.link!.sendKey)).not.toBe(toHex(a.sendKey));
  });

  const table: [string, () => HandshakeStep, string][] = [
    ['wrong secret at the responder: M1 refused, nothing sent', () => resp({ secret: new Uint8Array(32).fill(9) }).receive(init().start()), 'bad cluster MAC on handshake message 1'],
    ['wrong secret at the initiator: M2 refused', () => {
      const i = init({ secret: new Uint8Array(32).fill(9) });
      const m1 = init().start();
      i.start();
      return i.receive(ok(resp().receive(m1)).send!);
    }, 'bad cluster MAC on handshake message 2'],
    ['M2 made for another initiator (wrong recipient id)', () => {
      const other = init({ key: X_KEY });
      const m2 = ok(resp().receive(other.start())).send!;
      const i = init();
      i.start();
      return i.receive(m2);
    }, 'bad cluster MAC on handshake message 2'],
    ['M3 replayed onto a new connection (fresh responder nonce)', () => {
      const { m1, m3 } = run();
      const r = resp({ nonce: new Uint8Array(32).fill(0x33) });
      ok(r.receive(m1));
      return r.receive(m3);
    }, 'bad cluster MAC on handshake message 3'],
    ['M3 with a right cluster MAC but signed by another member (X posing as I)', () => {
      const r = resp();
      const m2 = ok(r.receive(init().start())).send!;
      const nR = m2.subarray(8, 40);
      const t3 = concatBytes(utf8('torbalance mesh v2 m3'), N_I, nR, I_KEY.publicKey, R_KEY.publicKey, fromHex(R_KEY.nodeId));
      const sig = signWithNodeKey(X_KEY, t3);
      return r.receive(concatBytes(m2.subarray(0, 7), Uint8Array.of(3), sig, hmacSha256(handshakeKey(SECRET), t3, sig)));
    }, 'bad node signature on handshake message 3'],
    ['M1 reflected back to its sender (own key)', () => resp({ key: I_KEY }).receive(init().start()), 'initiator uses our own node key'],
    ['M2 reflected as M1', () => resp().receive(run().m2), 'expected handshake message 1, got 2'],
    ['M1 sent where M2 is due', () => {
      const i = init();
      const m1 = i.start();
      return i.receive(m1);
    }, 'expected handshake message 2, got 1'],
    ['a v1 peer\'s JSON frame', () => resp().receive(new TextEncoder().encode('{"v":1,"type":"hello"}')), 'peer speaks mesh protocol 1 (JSON frames without a handshake); this node speaks 2: upgrade every node'],
    ['another handshake version', () => {
      const m1 = init().start();
      m1[6] = 3;
      return resp().receive(m1);
    }, 'peer speaks mesh protocol 3 (want 2)'],
    ['truncated M1', () => resp().receive(init().start().subarray(0, 100)), 'handshake message 1 of 100 bytes (want 104)'],
    ['a message after completion', () => {
      const i = init();
      const r = resp();
      const m1 = i.start();
      const m2 = ok(r.receive(m1)).send!;
      ok(r.receive(ok(i.receive(m2)).send!));
      return r.receive(m1);
    }, 'unexpected handshake message'],
  ];
  it.each(table)('rejects: %s', (_name, step, detail) => {
    const s = step();
    expect(s.ok).toBe(false);
    if (!s.ok) expect(s.detail).toBe(detail);
  });

  it('a v1 peer is a version failure, a reflected M1 reports its nonce', () => {
    const v1 = resp().receive(new TextEncoder().encode('{"v":1}'));
    expect(!v1.ok && v1.reason).toBe('version');
    const self = resp({ key: I_KEY }).receive(init().start());
    expect(!self.ok && self.selfNonce !== undefined && toHex(self.selfNonce)).toBe(toHex(N_I));
  });

  it('fast-check: any single flipped byte in M1, M2 or M3 is rejected and never throws', () => {
    const { m1, m2, m3 } = run();
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, pos, x) => {
        const msg = [m1, m2, m3][which]!.slice();
        msg[pos % msg.length]! ^= x;
        let s: HandshakeStep;
        if (which === 0) s = resp().receive(msg);
        else if (which === 1) {
          const i = init();
          i.start();
          s = i.receive(msg);
        } else {
          const r = resp();
          ok(r.receive(m1));
          s = r.receive(msg);
        }
        return !s.ok;
      }),
      { numRuns: 300 },
    );
  });

  it('fast-check: arbitrary bytes are rejected at every step, never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const i = init();
        i.start();
        const r3 = resp();
        ok(r3.receive(init().start()));
        return !resp().receive(bytes).ok && !i.receive(bytes).ok && !r3.receive(bytes).ok;
      }),
      { numRuns: 300 },
    );
  });

  it('fast-check: a message recorded with one nonce pair fails with any other responder nonce', () => {
    const { m1, m3 } = run();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (nR) => {
        fc.pre(toHex(nR) !== toHex(N_R));
        const r = resp({ nonce: nR });
        ok(r.receive(m1));
        return !r.receive(m3).ok;
      }),
      { numRuns: 100 },
    );
  });
});

describe('FrameDecoder first-frames bound', () => {
  it('refuses a large first frame but passes the same size later', () => {
    const frame = (n: number): Uint8Array => {
      const b = new Uint8Array(4 + n);
      new DataView(b.buffer).setUint32(0, n, false);
      return b;
    };
    const d = new FrameDecoder({ firstFrames: { count: 1, maxBytes: 200 } });
    expect(() => d.push(frame(201))).toThrow(/exceeds 200/);
    const e = new FrameDecoder({ firstFrames: { count: 1, maxBytes: 200 } });
    expect(e.push(new Uint8Array([...frame(150), ...frame(5000)])).map((f) => f.length)).toEqual([150, 5000]);
  });
});
