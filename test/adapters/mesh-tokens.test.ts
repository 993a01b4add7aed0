/**
 * The mesh `tokens` message over loopback TCP: a join-token ledger set on one
 * MeshNode reaches the others (on change, and to a peer that connects later, after its
 * hello); a malformed `tokens` body is rejected as `schema` and counted in MeshStats.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { concatBytes, toBase64, u32be, utf8 } from '../../src/core/bytes.js';
import { hmacSha256 } from '../../src/core/crypto/index.js';
import type { LedgerEntry } from '../../src/core/join/index.js';
import { MESH_PROTOCOL_VERSION, signWithNodeKey } from '../../src/core/mesh/index.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import type { MeshNode } from '../../src/node/mesh/index.js';
import { fullMesh, handshakeClient, makeNode, testKey, until, type TestNode } from '../helpers/mesh-fixtures.js';

const running: MeshNode[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop('test over')));
});

async function mesh(labels: readonly string[], start = labels.length): Promise<{ nodes: TestNode[]; addr: (i: number) => string }> {
  const ports = await allocatePorts(labels.length);
  const addr = (i: number): string => `tcp:127.0.0.1:${ports[i]!}`;
  const nodes = labels.map((l, i) =>
    makeNode(l, { listen: { kind: 'tcp', host: '127.0.0.1', port: ports[i]! }, advertise: addr(i), bootstrap: i === 0 ? [] : [addr(0)] }),
  );
  for (const n of nodes.slice(0, start)) {
    running.push(n.node);
    await n.node.start();
  }
  return { nodes, addr };
}

function entry(id: string, state: LedgerEntry['state'], by: string): LedgerEntry {
  return { id: id.repeat(32).slice(0, 32), state, expiresAt: Math.floor(Date.now() / 1000) + 3600, at: Math.floor(Date.now() / 1000), by };
}

/** A correctly MACed and signed frame with an arbitrary (possibly invalid) body. */
function rawFrame(type: string, body: unknown, macKey: Uint8Array): Uint8Array {
  const key = testKey('tokens-intruder');
  const payload = utf8(JSON.stringify({ v: MESH_PROTOCOL_VERSION, type, from: key.nodeId, pub: toBase64(key.publicKey), ts: Date.now(), nonce: toBase64(systemRandomBytes(16)), body }));
  const mac = hmacSha256(macKey, payload);
  return concatBytes(u32be(payload.length + 96), payload, mac, signWithNodeKey(key, payload));
}

describe('MeshNode token ledger gossip', () => {
  it('a ledger set on one node reaches the others, and a later joiner gets it after hello', async () => {
    const { nodes } = await mesh(['tka', 'tkb', 'tkc'], 2);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    const got = new Map<string, { entries: readonly LedgerEntry[]; from: string }>();
    for (const n of [b, c]) n.node.onTokenLedger((entries, from) => got.set(n.node.id, { entries, from }));
    await until('mesh a-b', () => fullMesh([a.node, b.node]));

    const ledger1 = [entry('1', 'issued', a.node.id)];
    a.node.setTokenLedger(ledger1);
    await until('ledger at b', () => got.get(b.node.id)?.entries.length === 1);
    expect(got.get(b.node.id)).toEqual({ entries: ledger1, from: a.node.id });

    // Changed ledger → sent again.
    const ledger2 = [entry('1', 'used', a.node.id), entry('2', 'issued', a.node.id)];
    a.node.setTokenLedger(ledger2);
    await until('ledger 2 at b', () => got.get(b.node.id)?.entries.length === 2);
    expect(got.get(b.node.id)!.entries).toEqual(ledger2);

    // c starts later: it receives a's ledger after hello, without any change on a.
    running.push(c.node);
    await c.node.start();
    await until('ledger at c', () => got.get(c.node.id)?.from === a.node.id && got.get(c.node.id)?.entries.length === 2);
    expect(got.get(c.node.id)!.entries).toEqual(ledger2);
    expect(a.node.stats().acceptedByType.tokens).toBe(0);
    expect(b.node.stats().acceptedByType.tokens).toBeGreaterThanOrEqual(2);
    for (const n of [a, b, c]) expect(n.node.stats().rejected.schema).toBe(0);
  });

  it('setTokenLedger with the same ledger sends nothing new', async () => {
    const { nodes } = await mesh(['tsa', 'tsb']);
    const [a, b] = nodes as [TestNode, TestNode];
    let count = 0;
    b.node.onTokenLedger(() => {
      count += 1;
    });
    await until('mesh', () => fullMesh([a.node, b.node]));
    const l = [entry('3', 'revoked', a.node.id)];
    a.node.setTokenLedger(l);
    await until('first', () => count >= 1);
    // (a peer may get it once per connection, after each hello; let connections settle)
    const acc0 = b.node.stats().accepted;
    await until('settled', () => b.node.stats().accepted > acc0 + 3);
    const settled = count;
    a.node.setTokenLedger(l.map((e) => ({ ...e })));
    const acc = b.node.stats().accepted;
    await until('some heartbeats later', () => b.node.stats().accepted > acc + 3);
    expect(count).toBe(settled);
    a.node.setTokenLedger([...l, entry('6', 'issued', a.node.id)]);
    await until('changed ledger delivered', () => count > settled);
  });

  it('rejects invalid ledgers locally (setTokenLedger throws TB_ERR_JOIN_LEDGER)', async () => {
    const { nodes } = await mesh(['tla']);
    const a = nodes[0]!;
    expect(() => {
      a.node.setTokenLedger([{ ...entry('4', 'issued', a.node.id), id: 'nothex' }]);
    }).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_LEDGER' }));
    expect(() => {
      a.node.setTokenLedger(Array.from({ length: 257 }, (_, i) => entry(i.toString(16).padStart(32, '0'), 'issued', a.node.id)));
    }).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_LEDGER' }));
  });

  it('a malformed tokens body is rejected as schema, counted, and the connection dropped', async () => {
    const { nodes } = await mesh(['tma']);
    const a = nodes[0]!;
    let delivered = 0;
    a.node.onTokenLedger(() => {
      delivered += 1;
    });
    const port = a.node.transport.port!;
    // Each frame on its own connection, after the handshake (as a cluster member).
    const send = async (frame: (macKey: Uint8Array) => Uint8Array): Promise<boolean> => {
      const c = await handshakeClient(port, testKey('tokens-intruder'));
      const s = c.sock;
      s.write(frame(c.nextKey()));
      const closed = await new Promise<boolean>((r) => {
        const t = setTimeout(() => { r(false); }, 1500);
        s.once('close', () => { clearTimeout(t); r(true); });
      });
      s.destroy();
      return closed;
    };
    const good = entry('5', 'issued', testKey('x').nodeId);
    const bad: unknown[] = [
      { entries: [{ ...good, state: 'stolen' }] },
      { entries: [{ ...good, extra: 1 }] },
      { entries: [{ ...good, expiresAt: -1 }] },
      { entries: [{ ...good, by: 'NOT-HEX' }] },
      { entries: Array.from({ length: 257 }, () => good) },
      { entries: 'no' },
      { entries: [], more: true },
    ];
    const before = a.node.stats().rejected.schema;
    for (const body of bad) expect(await send((k) => rawFrame('tokens', body, k))).toBe(true);
    expect(a.node.stats().rejected.schema - before).toBe(bad.length);
    expect(delivered).toBe(0);
    // A well-formed tokens frame from a cluster member is delivered.
    await send((k) => rawFrame('tokens', { entries: [good] }, k));
    await until('delivered', () => delivered === 1);
    expect(a.lines.some((l) => l.includes('mesh frame rejected') && l.includes('"reason":"schema"'))).toBe(true);
  });
});
