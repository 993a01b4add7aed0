/**
 * MeshNode over loopback TCP (real sockets, real timers with short intervals): gossip forms
 * a full mesh from one bootstrap node, intro points propagate, leave / silent death / cuts are
 * told apart, and forged, replayed, oversized and skewed frames are rejected by reason.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64, toHex, u32be } from '../../src/core/bytes.js';
import { encodeFrame, introDigest, meshMacKey, type MeshMessage } from '../../src/core/mesh/index.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import type { MeshNode } from '../../src/node/mesh/index.js';
import { CLUSTER_SECRET, fakeIntroPoint, fullMesh, handshakeClient, makeNode, seeded, stateOf, testKey, until, type TestNode } from '../helpers/mesh-fixtures.js';

const running: MeshNode[] = [];

/** A peer's state history after it was first heard from directly (drops a leading gossip-only `known`). */
function direct(h: readonly string[] | undefined): string[] {
  const out = [...(h ?? [])];
  if (out[0] === 'known') out.shift();
  return out;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop('test over')));
});

async function mesh(labels: readonly string[], bootstrapIndex = 0): Promise<TestNode[]> {
  const ports = await allocatePorts(labels.length);
  const addr = (i: number): string => `tcp:127.0.0.1:${ports[i]!}`;
  const nodes = labels.map((l, i) =>
    makeNode(l, {
      listen: { kind: 'tcp', host: '127.0.0.1', port: ports[i]! },
      advertise: addr(i),
      bootstrap: i === bootstrapIndex ? [] : [addr(bootstrapIndex)],
    }),
  );
  for (const n of nodes) {
    running.push(n.node);
    await n.node.start();
  }
  return nodes;
}

describe('MeshNode over TCP', () => {
  it('forms a full mesh when everyone bootstraps through one node, and intro points propagate', async () => {
    const [a, b, c] = await mesh(['tcpa', 'tcpb', 'tcpc']);
    const t0 = Date.now();
    await until('full mesh', () => fullMesh([a!.node, b!.node, c!.node]));
    console.log(`[mesh-tcp] 3-node mesh formed in ${Date.now() - t0} ms`);
    // b and c only knew a: they must have connected to each other through gossip.
    const bSeesC = b!.node.view().peers.find((p) => p.id === c!.node.id)!;
    expect(bSeesC.addr).toBe(c!.node.view().self.addr);
    await until('intro points at b', () => b!.node.view().peers.find((p) => p.id === a!.node.id)?.introPoints.length === 2);
    expect(b!.node.view().peers.find((p) => p.id === a!.node.id)!.introPoints).toEqual(a!.state.points);
    // a changes its intro points: peers get the new set.
    a!.state.points = [fakeIntroPoint('new-1'), fakeIntroPoint('new-2'), fakeIntroPoint('new-3')];
    a!.node.broadcastIntroPoints();
    const want = introDigest(a!.state.points);
    await until('new intro points at c', () => {
      const p = c!.node.view().peers.find((x) => x.id === a!.node.id);
      return p !== undefined && p.introDigest === want && introDigest(p.introPoints) === want;
    });
    // Exactly one publisher, agreed by all.
    await until('one agreed publisher', () => {
      const vs = [a!, b!, c!].map((n) => n.node.view());
      return vs.filter((v) => v.selfIsPublisher).length === 1 && new Set(vs.map((v) => v.publisher)).size === 1;
    });
    expect(a!.node.stats().rejected).toEqual({ mac: 0, signature: 0, replay: 0, skew: 0, size: 0, schema: 0, version: 0, identity: 0, handshake: 0 });
  });

  it('a node that stops says leave and is marked left at once (never suspect)', async () => {
    const [a, b, c] = await mesh(['lva', 'lvb', 'lvc']);
    await until('full mesh', () => fullMesh([a!.node, b!.node, c!.node]));
    await c!.node.stop('maintenance');
    running.splice(running.indexOf(c!.node), 1);
    await until('left at a and b', () => stateOf(a!.node, c!.node.id) === 'left' && stateOf(b!.node, c!.node.id) === 'left', 2000);
    // (a peer learned by gossip first shows up as `known`)
    expect(direct(a!.history.get(c!.node.id))).toEqual(['alive', 'left']);
    expect(direct(b!.history.get(c!.node.id))).toEqual(['alive', 'left']);
    expect(a!.lines.some((l) => l.includes('maintenance'))).toBe(true);
  });

  it('a node that dies silently becomes suspect, then dead', async () => {
    const [a, b] = await mesh(['dsa', 'dsb']);
    await until('mesh', () => fullMesh([a!.node, b!.node]));
    b!.node.crash();
    running.splice(running.indexOf(b!.node), 1);
    await until('dead at a', () => stateOf(a!.node, b!.node.id) === 'dead', 8000);
    expect(direct(a!.history.get(b!.node.id))).toEqual(['alive', 'suspect', 'dead']);
  });

  it('a short cut makes a peer suspect and back alive without flapping; a long cut kills it and the mesh heals', async () => {
    const [a, b, c] = await mesh(['cta', 'ctb', 'ctc']);
    await until('full mesh', () => fullMesh([a!.node, b!.node, c!.node]));
    c!.node.transport.setBlocked(true);
    await until('suspect at a', () => stateOf(a!.node, c!.node.id) === 'suspect', 3000);
    c!.node.transport.setBlocked(false);
    await until('alive again at a and b', () => fullMesh([a!.node, b!.node, c!.node]), 3000);
    expect(direct(a!.history.get(c!.node.id))).toEqual(['alive', 'suspect', 'alive']);
    // Long cut: longer than deadAfterMs.
    c!.node.transport.setBlocked(true);
    await until('dead at a and b', () => stateOf(a!.node, c!.node.id) === 'dead' && stateOf(b!.node, c!.node.id) === 'dead', 8000);
    await until('c sees a and b dead', () => stateOf(c!.node, a!.node.id) === 'dead' && stateOf(c!.node, b!.node.id) === 'dead', 8000);
    c!.node.transport.setBlocked(false);
    await until('healed', () => fullMesh([a!.node, b!.node, c!.node]), 10_000);
    expect(direct(a!.history.get(c!.node.id))).toEqual(['alive', 'suspect', 'alive', 'suspect', 'dead', 'alive']);
  });

  it('rejects forged, replayed, oversized and clock-skewed frames by reason and keeps running', async () => {
    const [a, b] = await mesh(['rja', 'rjb']);
    await until('mesh', () => fullMesh([a!.node, b!.node]));
    const port = a!.node.transport.port!;
    const intruder = testKey('intruder');
    const hello: MeshMessage = {
      type: 'hello',
      body: { name: 'intruder', addr: 'tcp:127.0.0.1:1', priority: 0, health: { healthy: false, reasons: ['test'] }, introDigest: introDigest([]) },
    };
    const frame = (o: { macKey: Uint8Array; nowMs?: number; nonce?: Uint8Array }): Uint8Array =>
      encodeFrame(hello, { key: intruder, macKey: o.macKey, nowMs: o.nowMs ?? Date.now(), randomBytes: o.nonce === undefined ? systemRandomBytes : () => o.nonce!.slice() });
    const closedSoon = (c: { closed: Promise<void> }): Promise<boolean> =>
      new Promise<boolean>((r) => {
        const t = setTimeout(() => { r(false); }, 400);
        void c.closed.then(() => { clearTimeout(t); r(true); });
      });
    const raw = async (chunks: readonly Uint8Array[]): Promise<{ closedByPeer: boolean }> => {
      const s = net.connect(port, '127.0.0.1');
      s.on('data', () => undefined);
      const closed = new Promise<void>((r) => s.once('close', () => { r(); }));
      await new Promise<void>((r) => s.once('connect', () => { r(); }));
      for (const c of chunks) s.write(c);
      const closedByPeer = await closedSoon({ closed });
      s.destroy();
      return { closedByPeer };
    };
    const before = a!.node.stats();

    // Forged: a handshake with the wrong cluster secret → handshake, connection dropped.
    await expect(handshakeClient(port, intruder, seeded('wrong secret'))).rejects.toThrow();
    // Unbound: a frame MACed with the cluster key instead of the connection's key → mac, dropped.
    const c1 = await handshakeClient(port, intruder);
    c1.sock.write(frame({ macKey: meshMacKey(CLUSTER_SECRET) }));
    expect(await closedSoon(c1)).toBe(true);
    // Replayed: the same message (same nonce) twice on one connection.
    const c2 = await handshakeClient(port, intruder);
    const nonce = systemRandomBytes(16);
    c2.sock.write(frame({ macKey: c2.nextKey(), nonce }));
    c2.sock.write(frame({ macKey: c2.nextKey(), nonce }));
    // Clock skew: ten minutes in the past.
    c2.sock.write(frame({ macKey: c2.nextKey(), nowMs: Date.now() - 600_000 }));
    await until('replay and skew counted', () => a!.node.stats().rejected.skew > before.rejected.skew);
    c2.sock.destroy();
    // Oversized: a length prefix above the pre-handshake bound → size, connection dropped.
    expect((await raw([u32be(10 * 1024 * 1024), new Uint8Array(64)])).closedByPeer).toBe(true);

    const after = a!.node.stats();
    expect(after.rejected.handshake - before.rejected.handshake).toBe(1);
    expect(after.rejected.mac - before.rejected.mac).toBe(1);
    expect(after.rejected.replay - before.rejected.replay).toBe(1);
    expect(after.rejected.size - before.rejected.size).toBe(1);
    expect(after.rejected.skew - before.rejected.skew).toBe(1);
    const rejLines = a!.lines.filter((l) => l.includes('mesh frame rejected'));
    for (const reason of ['handshake', 'mac', 'replay', 'size', 'skew']) expect(rejLines.some((l) => l.includes(`"reason":"${reason}"`))).toBe(true);
    // Logs never carry the cluster secret.
    for (const l of a!.lines) {
      expect(l).not.toContain(toHex(CLUSTER_SECRET));
      expect(l).not.toContain(toBase64(CLUSTER_SECRET));
    }
    // Still running: b keeps being heard.
    const accepted = a!.node.stats().accepted;
    await until('more heartbeats from b', () => a!.node.stats().accepted > accepted + 3);
    expect(stateOf(a!.node, b!.node.id)).toBe('alive');
  });
});
