/**
 * Mesh connections cannot be hijacked without the cluster secret (docs/mesh-protocol.md,
 * "Handshake"; docs/SECURITY.md, "Mesh connections"), over loopback TCP:
 * (a) A's bytes to C, recorded on the wire, and whatever A sends to a stranger, replayed to C
 *     on new connections never make C route its traffic for A there: heartbeats keep flowing
 *     both ways and neither node ever sees the other suspect;
 * (b) a raw TCP client gets nothing from the mesh port — not a byte without a cluster-MACed
 *     M1, and only M2 for a replayed M1 — and is dropped at the handshake timeout.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { concatBytes, u32be } from '../../src/core/bytes.js';
import { HANDSHAKE_M2_BYTES, HANDSHAKE_NONCE_BYTES, InitiatorHandshake } from '../../src/core/mesh/index.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import type { MeshNode } from '../../src/node/mesh/index.js';
import { fullMesh, makeNode, seeded, testKey, until } from '../helpers/mesh-fixtures.js';

const running: MeshNode[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop('test over')));
  for (const s of servers.splice(0)) s.close();
});

/** A TCP relay on `port` → 127.0.0.1:`to` that records what clients send. */
async function recordingRelay(port: number, to: number): Promise<Buffer[]> {
  const sent: Buffer[] = [];
  const server = net.createServer((client) => {
    const up = net.connect(to, '127.0.0.1');
    client.on('data', (d: Buffer) => { sent.push(Buffer.from(d)); up.write(d); });
    up.on('data', (d: Buffer) => client.write(d));
    client.on('error', () => undefined);
    up.on('error', () => undefined);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => { r(); }));
  return sent;
}

/** Connect to `port`, write `bytes`, collect everything received until the node closes us. */
async function probe(port: number, bytes: Uint8Array): Promise<Buffer> {
  const s = net.connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(Buffer.from(d)));
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => { r(); }));
  if (bytes.length > 0) s.write(bytes);
  await new Promise<void>((r) => s.once('close', () => { r(); }));
  return Buffer.concat(got);
}

describe('mesh connection hijacking', () => {
  it('(a) replayed and relayed bytes of A never take over C\'s connection to A', async () => {
    const [pa, pc, relay] = (await allocatePorts(3)) as [number, number, number];
    const a = makeNode('hja', { listen: { kind: 'tcp', host: '127.0.0.1', port: pa }, advertise: `tcp:127.0.0.1:${pa}`, bootstrap: [`tcp:127.0.0.1:${relay}`], handshakeTimeoutMs: 1000 });
    const c = makeNode('hjc', { listen: { kind: 'tcp', host: '127.0.0.1', port: pc }, advertise: `tcp:127.0.0.1:${pc}`, bootstrap: [], handshakeTimeoutMs: 1000 });
    const recorded = await recordingRelay(relay, pc);
    for (const n of [c, a]) { running.push(n.node); await n.node.start(); }
    await until('mesh', () => fullMesh([a.node, c.node]));
    await until('A sent frames after its handshake', () => a.node.stats().sent >= 3);
    const fromAtoC = new Uint8Array(Buffer.concat(recorded));

    // What A sends a stranger that connects to it (today's code: a fresh signed hello and its intro points).
    const fromA = await probe(pa, fromAtoC);
    // Replay both onto new connections to C.
    const rejectedBefore = c.node.stats().rejected.handshake;
    await probe(pc, fromAtoC);
    if (fromA.length > 0) await probe(pc, new Uint8Array(fromA));
    expect(c.node.stats().rejected.handshake).toBeGreaterThan(rejectedBefore);

    // C still routes to A over the real connection, and A to C: heartbeats keep arriving.
    const hbA = a.node.stats().acceptedByType.heartbeat;
    const hbC = c.node.stats().acceptedByType.heartbeat;
    await until('heartbeats from C at A and from A at C', () => a.node.stats().acceptedByType.heartbeat >= hbA + 8 && c.node.stats().acceptedByType.heartbeat >= hbC + 8, 5000);
    expect(c.history.get(a.node.id)).toEqual(['alive']);
    expect(a.history.get(c.node.id)).toEqual(['alive']);
    expect(fromA.length).toBe(0);
  });

  it('(b) a raw client gets nothing (no hello, no intro points) and is dropped at the handshake timeout', async () => {
    const [pc, pa, relay] = (await allocatePorts(3)) as [number, number, number];
    const c = makeNode('hbc', { listen: { kind: 'tcp', host: '127.0.0.1', port: pc }, advertise: `tcp:127.0.0.1:${pc}`, bootstrap: [], handshakeTimeoutMs: 300 });
    const a = makeNode('hba', { listen: { kind: 'tcp', host: '127.0.0.1', port: pa }, advertise: `tcp:127.0.0.1:${pa}`, bootstrap: [`tcp:127.0.0.1:${relay}`] });
    const recorded = await recordingRelay(relay, pc);
    for (const n of [c, a]) { running.push(n.node); await n.node.start(); }
    await until('mesh', () => fullMesh([a.node, c.node]));

    // A port scanner that sends nothing.
    expect((await probe(pc, new Uint8Array(0))).length).toBe(0);
    // One that speaks the handshake without the cluster secret.
    const stranger = new InitiatorHandshake({ clusterSecret: seeded('not the secret'), key: testKey('scanner'), nonce: systemRandomBytes(HANDSHAKE_NONCE_BYTES) });
    const m1 = stranger.start();
    expect((await probe(pc, concatBytes(u32be(m1.length), m1))).length).toBe(0);
    // One that replays A's recorded M1: it gets M2 (C's proof for A) and nothing else.
    const first = Buffer.concat(recorded);
    const m1a = first.subarray(0, 4 + first.readUInt32BE(0));
    const got = await probe(pc, new Uint8Array(m1a));
    expect(got.length).toBe(4 + HANDSHAKE_M2_BYTES);
    expect(got.readUInt32BE(0)).toBe(HANDSHAKE_M2_BYTES);
    expect(c.node.stats().rejected.handshake).toBeGreaterThanOrEqual(3);
    expect(c.history.get(a.node.id)).toEqual(['alive']);
  });
});
