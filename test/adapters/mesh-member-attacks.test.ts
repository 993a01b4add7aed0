/**
 * What one cluster member (cluster secret + a node key of its own) can no longer do to the
 * others (docs/SECURITY.md "One member"), mounted over loopback TCP against real MeshNodes:
 * (a) flood frames stamped ahead in time so that a shared replay watermark makes an honest
 *     node's frames fail as `replay`;
 * (b) copy an honest node's intro-point auth key with bogus link specifiers, under a lower
 *     node id, so that the publisher's selection lists the copy instead of the real point;
 * (c) claim priority 1000 to win the election over nodes configured with `max_priority` 100;
 * (d) with the node allowlist (src/node/members.ts): a holder of the cluster secret mints fresh
 *     node ids to join an enforced cluster, and a removed node reconnects.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64 } from '../../src/core/bytes.js';
import { encodeLinkSpecifiers } from '../../src/core/hsdesc/link-specifiers.js';
import { encodeFrame, introDigest, type IntroPointWire, type MeshMessage, type NodeKey } from '../../src/core/mesh/index.js';
import { selectIntroPointsByNode } from '../../src/core/publish/select.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import type { MeshNode } from '../../src/node/mesh/index.js';
import { MembersService } from '../../src/node/members.js';
import { captureLogger, fakeIntroPoint, fullMesh, handshakeClient, makeNode, seeded, stateOf, testKey, until, type HandshakenClient } from '../helpers/mesh-fixtures.js';

const running: MeshNode[] = [];
const clients: HandshakenClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.sock.destroy();
  await Promise.all(running.splice(0).map((n) => n.stop('test over')));
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Send `msg` as `key` on the attacker's authenticated connection, stamped `ts`. */
function send(c: HandshakenClient, key: NodeKey, msg: MeshMessage, ts = Date.now()): void {
  c.sock.write(encodeFrame(msg, { key, macKey: c.nextKey(), nowMs: ts, randomBytes: systemRandomBytes, transport: 'tcp' }));
}

function hello(addr: string, points: readonly IntroPointWire[], priority = 100): MeshMessage {
  return { type: 'hello', body: { name: 'mallory', addr, priority, health: { healthy: true, reasons: [] }, introDigest: introDigest(points) } };
}

function introPoints(points: IntroPointWire[]): MeshMessage {
  return { type: 'intro-points', body: { digest: introDigest(points), fetchedAt: Date.now(), points } };
}

/** A node key whose id sorts below `id` (the attacker grinds one: ids are hashes of keys). */
function keyBelow(id: string): NodeKey {
  for (let i = 0; ; i++) {
    const k = testKey(`mallory ${i}`);
    if (k.nodeId < id) return k;
  }
}

describe('one member against the others', () => {
  it("(a) a member's flood of future-stamped frames does not make an honest node's frames fail as replay", async () => {
    const [pa, pc, dead] = (await allocatePorts(3)) as [number, number, number];
    const a = makeNode('rpa', { listen: { kind: 'tcp', host: '127.0.0.1', port: pa }, advertise: `tcp:127.0.0.1:${pa}`, bootstrap: [`tcp:127.0.0.1:${pc}`] });
    const c = makeNode('rpc', { listen: { kind: 'tcp', host: '127.0.0.1', port: pc }, advertise: `tcp:127.0.0.1:${pc}`, bootstrap: [], replayCacheSize: 64 });
    for (const n of [c, a]) { running.push(n.node); await n.node.start(); }
    await until('mesh', () => fullMesh([a.node, c.node]));

    const mKey = testKey('replay flooder');
    const m = await handshakeClient(pc, mKey);
    clients.push(m);
    const acceptedBefore = c.node.stats().accepted;
    // 200 frames (more than the cache holds) stamped just inside the skew window ahead of now.
    const ahead = Date.now() + 29_000;
    send(m, mKey, hello(`tcp:127.0.0.1:${dead}`, []));
    for (let i = 0; i < 200; i++) send(m, mKey, { type: 'lease', body: { until: ahead + i } }, ahead + i);
    await until('the flood accepted at C', () => c.node.stats().accepted >= acceptedBefore + 201);

    // A's heartbeats (stamped now) keep being accepted at C, and none fails as replay.
    const hbA = c.node.stats().acceptedByType.heartbeat;
    await until('heartbeats from A at C after the flood', () => c.node.stats().acceptedByType.heartbeat >= hbA + 8, 5000);
    expect(c.node.stats().rejected.replay).toBe(0);
    expect(c.history.get(a.node.id)).toEqual(['alive']);
  });

  it("(b) an auth key copied by a lower-id member does not displace the owner's intro point", async () => {
    const [pa, pc, dead] = (await allocatePorts(3)) as [number, number, number];
    const a = makeNode('ipa', { listen: { kind: 'tcp', host: '127.0.0.1', port: pa }, advertise: `tcp:127.0.0.1:${pa}`, bootstrap: [`tcp:127.0.0.1:${pc}`] });
    const c = makeNode('ipc', { listen: { kind: 'tcp', host: '127.0.0.1', port: pc }, advertise: `tcp:127.0.0.1:${pc}`, bootstrap: [] });
    for (const n of [c, a]) { running.push(n.node); await n.node.start(); }
    await until('mesh', () => fullMesh([a.node, c.node]));
    await until("A's intro points at C", () => c.node.view().peers.find((p) => p.id === a.node.id)?.introPoints.length === 2);

    // Mallory copies A's first point and C's own first point with its own (bogus) relay.
    const bogus = toBase64(encodeLinkSpecifiers([{ type: 2, data: seeded('mallory relay', 20) }]));
    const stolenA = { ...a.state.points[0]!, ls: bogus };
    const stolenC = { ...c.state.points[0]!, ls: bogus };
    const own = fakeIntroPoint('mallory-own');
    const mKey = keyBelow([a.node.id, c.node.id].sort()[0]!);
    const m = await handshakeClient(pc, mKey);
    clients.push(m);
    send(m, mKey, hello(`tcp:127.0.0.1:${dead}`, [stolenA, stolenC, own]));
    await until('mallory alive at C', () => stateOf(c.node, mKey.nodeId) === 'alive');
    send(m, mKey, introPoints([stolenA, stolenC, own]));
    await until("mallory's intro-points processed", () => (c.node.view().peers.find((p) => p.id === mKey.nodeId)?.introPoints.length ?? 0) > 0);

    // The publisher's input as the cluster builds it: self and every live peer.
    const v = c.node.view();
    const nodes = [{ id: v.self.id, introPoints: c.state.points }, ...v.peers.map((p) => ({ id: p.id, introPoints: p.introPoints }))];
    const chosen = selectIntroPointsByNode(nodes);
    const byKey = new Map(chosen.map((x) => [x.point.authKey, x]));
    expect(byKey.get(stolenA.authKey)).toEqual({ nodeId: a.node.id, point: a.state.points[0] });
    expect(byKey.get(stolenC.authKey)).toEqual({ nodeId: c.node.id, point: c.state.points[0] });
    // Mallory keeps only the point that is its own.
    expect(v.peers.find((p) => p.id === mKey.nodeId)?.introPoints).toEqual([own]);
    expect(chosen.some((x) => x.point.ls === bogus)).toBe(false);
  });

  it('(c) a member claiming priority 1000 is credited with max_priority and does not win the election', async () => {
    const [pa, pc, dead] = (await allocatePorts(3)) as [number, number, number];
    const a = makeNode('pra', { listen: { kind: 'tcp', host: '127.0.0.1', port: pa }, advertise: `tcp:127.0.0.1:${pa}`, bootstrap: [`tcp:127.0.0.1:${pc}`], maxPriority: 100 });
    const c = makeNode('prc', { listen: { kind: 'tcp', host: '127.0.0.1', port: pc }, advertise: `tcp:127.0.0.1:${pc}`, bootstrap: [], maxPriority: 100 });
    for (const n of [c, a]) { running.push(n.node); await n.node.start(); }
    await until('mesh', () => fullMesh([a.node, c.node]));
    const honest = [a.node.id, c.node.id].sort()[0]!;
    await until('an honest publisher at C', () => c.node.view().publisher === honest);

    // Mallory's id sorts above both (no grinding needed to show the cap): only priority could make it win.
    let mKey = testKey('priority 0');
    for (let i = 1; mKey.nodeId < a.node.id || mKey.nodeId < c.node.id; i++) mKey = testKey(`priority ${i}`);
    const m = await handshakeClient(pc, mKey);
    clients.push(m);
    const own = [fakeIntroPoint('mallory-p1')];
    send(m, mKey, hello(`tcp:127.0.0.1:${dead}`, own, 1000));
    send(m, mKey, introPoints(own));
    const hb = (): MeshMessage => ({ type: 'heartbeat', body: { ...(hello(`tcp:127.0.0.1:${dead}`, own, 1000).body as object), peers: [] } as never });
    send(m, mKey, hb());
    await until('mallory eligible at C', () => {
      const p = c.node.view().peers.find((x) => x.id === mKey.nodeId);
      return p?.state === 'alive' && p.introPoints.length === 1 && p.priority === 1000;
    });
    // The election runs on C's current view (view() elects synchronously).
    expect(c.node.view().publisher).toBe(honest);
  });

  it('(d) an enforced allowlist refuses minted node ids, and a removed node is refused by every node', async () => {
    const ports = (await allocatePorts(3)) as [number, number, number];
    const addr = (p: number): string => `tcp:127.0.0.1:${p}`;
    const nodes = ['ala', 'alb', 'alc'].map((label, i) =>
      makeNode(label, { listen: { kind: 'tcp', host: '127.0.0.1', port: ports[i]! }, advertise: addr(ports[i]!), bootstrap: i === 0 ? [] : [addr(ports[0])] }),
    );
    const lists: MembersService[] = [];
    for (const n of nodes) {
      const dir = await mkdtemp(join(tmpdir(), 'tbm-'));
      dirs.push(dir);
      const svc = new MembersService({ dataDir: dir, nodeId: n.node.id, logger: captureLogger().logger });
      await svc.start(n.node); // as the cluster service does, before the mesh starts
      lists.push(svc);
      running.push(n.node);
      await n.node.start();
    }
    const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
    const [la, lb, lc] = lists as [MembersService, MembersService, MembersService];
    await until('mesh', () => fullMesh(nodes.map((n) => n.node)));
    // An upgraded cluster (no allowlist yet) sends no new message: older nodes would refuse it.
    expect(nodes.map((n) => n.node.stats().acceptedByType.members)).toEqual([0, 0, 0]);

    // The operator enforces on A; the list (A, B, C) reaches every node.
    await la.enforce();
    await until('enforced everywhere', () => [lb, lc].every((l) => l.ledger().enforced && l.ledger().entries.length === 3));

    // A holder of the cluster secret mints node ids: each handshake is refused, nothing is sent.
    const identityBefore = a.node.stats().rejected.identity;
    for (let i = 0; i < 3; i++) {
      const k = testKey(`minted ${i}`);
      const m = await handshakeClient(ports[0], k);
      clients.push(m);
      await m.closed;
      expect(stateOf(a.node, k.nodeId)).toBeUndefined();
    }
    expect(a.node.stats().rejected.identity).toBe(identityBefore + 3);

    // `torbalance node remove C` on A: B learns it by gossip; both drop C and refuse its redials.
    await la.remove(c.node.id);
    await until('removal at B', () => !lb.ledger().entries.every((e) => e.state === 'member'));
    const refusedA = a.node.stats().rejected.identity;
    const refusedB = b.node.stats().rejected.identity;
    await until("C's redials refused at A and B", () => a.node.stats().rejected.identity > refusedA && b.node.stats().rejected.identity > refusedB);
    expect(stateOf(a.node, c.node.id)).toBeUndefined();
    expect(stateOf(b.node, c.node.id)).toBeUndefined();
    expect(stateOf(a.node, b.node.id)).toBe('alive');
    // Persisted before it was gossiped: a restart keeps refusing C.
    const onDisk = JSON.parse(await readFile(lb.path, 'utf8')) as { enforced: boolean; entries: { id: string; state: string }[] };
    expect(onDisk.enforced).toBe(true);
    expect(onDisk.entries.find((e) => e.id === c.node.id)?.state).toBe('removed');
    // C itself cannot get back in even though it still holds the secret: A and B stay out of its view.
    await until('A and B no longer alive at C', () => stateOf(c.node, a.node.id) !== 'alive' && stateOf(c.node, b.node.id) !== 'alive', 10_000);
  });
});
