/**
 * Traffic and publish summaries over loopback TCP (src/node/mesh/mesh-node.ts): what one
 * MeshNode's local state carries reaches the other's peer view with the next heartbeats;
 * a summary that stops being sent is cleared; an invalid local summary is left out without
 * costing the heartbeat.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PublishSummary, TrafficSummary } from '../../src/core/mesh/index.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import type { LocalMeshState, MeshNode, PeerView } from '../../src/node/mesh/index.js';
import { fullMesh, makeNode, until, type TestNode } from '../helpers/mesh-fixtures.js';

const running: MeshNode[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop('test over')));
});

/** Two nodes; each one's local state is the fixture's plus `extra[i]()`. */
async function pair(labels: [string, string], extra: [() => Partial<LocalMeshState>, () => Partial<LocalMeshState>]): Promise<[TestNode, TestNode]> {
  const ports = await allocatePorts(2);
  const addr = (i: number): string => `tcp:127.0.0.1:${ports[i]!}`;
  const nodes = labels.map((l, i) => {
    const holder: { n?: TestNode } = {};
    const n = makeNode(l, {
      listen: { kind: 'tcp', host: '127.0.0.1', port: ports[i]! },
      advertise: addr(i),
      bootstrap: i === 0 ? [] : [addr(0)],
      localState: () => ({ ...holder.n!.state.get(), ...extra[i]!() }),
    });
    holder.n = n;
    return n;
  }) as [TestNode, TestNode];
  for (const n of nodes) {
    running.push(n.node);
    await n.node.start();
  }
  await until('mesh', () => fullMesh(nodes.map((n) => n.node)));
  return nodes;
}

function peer(n: MeshNode, id: string): PeerView | undefined {
  return n.view().peers.find((p) => p.id === id);
}

describe('MeshNode traffic / publish summaries', () => {
  it("one node's traffic and publish summary reach the other; updates follow; a summary no longer sent is cleared", async () => {
    let traffic: TrafficSummary = { open: 1, accepted: 5, requests: 4, bytesIn: 900, bytesOut: 12_345 };
    let publish: PublishSummary | undefined = { at: Date.now(), revisions: ['123456789012345678', '99'], accepted: [[6, 8], [7, 8]], nodes: 2 };
    const [a, b] = await pair(['sma', 'smb'], [() => ({ traffic, ...(publish === undefined ? {} : { publish }) }), () => ({})]);

    await until('traffic at b', () => peer(b.node, a.node.id)?.traffic?.requests === 4);
    const seen = peer(b.node, a.node.id)!;
    expect(seen.traffic).toEqual(traffic);
    expect(seen.publish).toEqual(publish);
    // b sends neither: a knows b without summaries
    expect(peer(a.node, b.node.id)?.traffic).toBeUndefined();
    expect(peer(a.node, b.node.id)?.publish).toBeUndefined();

    traffic = { ...traffic, requests: 40, bytesOut: 99_999 };
    await until('updated traffic at b', () => peer(b.node, a.node.id)?.traffic?.requests === 40);
    expect(peer(b.node, a.node.id)?.traffic?.bytesOut).toBe(99_999);

    publish = undefined; // a stops publishing
    await until('publish cleared at b', () => peer(b.node, a.node.id)?.publish === undefined);
    expect(peer(b.node, a.node.id)?.traffic?.requests).toBe(40);
    for (const n of [a, b]) expect(n.node.stats().rejected.schema).toBe(0);
  });

  it('an invalid local summary is left out; the heartbeat still goes and the node stays alive', async () => {
    const [a, b] = await pair(['smc', 'smd'], [() => ({ traffic: { open: -1, accepted: 0, requests: 0, bytesIn: 0, bytesOut: 0 }, publish: { at: 1, revisions: [null, null], accepted: [[1, 1], null], nodes: 1 } }), () => ({})]);
    await until('publish at d', () => peer(b.node, a.node.id)?.publish !== undefined);
    const hb = b.node.stats().acceptedByType.heartbeat;
    await until('more heartbeats', () => b.node.stats().acceptedByType.heartbeat > hb + 3);
    expect(peer(b.node, a.node.id)?.state).toBe('alive');
    expect(peer(b.node, a.node.id)?.traffic).toBeUndefined();
    expect(a.lines.some((l) => l.includes('local summary not sent: invalid'))).toBe(true);
    expect(a.lines.some((l) => l.includes('cannot encode mesh message'))).toBe(false);
  });
});
