/**
 * Per-node traffic and the publisher's report over the mesh in the admin side (src/node/admin,
 * src/node/cluster.ts helpers) with fake node snapshots: `/status` lists every node's traffic
 * (self from its proxy, peers from heartbeats) and, on a member, the publisher's acceptance;
 * `/history` samples traffic per node (bounded); metrics carry per-node gauges labelled by node
 * (bounded); the dashboard script draws one traffic line per node (run against a tiny fake
 * DOM); the cluster's summary helpers (publishSummaryOf, meshPublishReport).
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { buildStatus, DASHBOARD_SERIES_COLORS, History, MAX_NODE_SERIES, MAX_TRAFFIC_NODES, NodeMetrics } from '../../src/node/admin/index.js';
import { PublishView } from '../../src/node/publisher/view.js';
import { DASHBOARD_JS } from '../../src/node/admin/dashboard.js';
import { meshPublishReport, publishSummaryOf, type ClusterPeerStatus, type ClusterStatus } from '../../src/node/cluster.js';
import type { NodeStatus } from '../../src/node/node-status.js';
import type { ClusterView, PeerView } from '../../src/node/mesh/index.js';
import type { PublishRecord } from '../../src/node/publisher/index.js';
import type { PublishSummary, TrafficSummary } from '../../src/core/mesh/index.js';
import { parsePromText, promValue } from '../helpers/prom-text.js';
import { clusterStatusFixture, nodeStatusFixture } from '../helpers/admin-fixtures.js';

const FP = (i: number): string => i.toString(16).toUpperCase().padStart(40, '0');
const T = (requests: number, bytesOut = requests * 100): TrafficSummary => ({ open: 1, accepted: requests + 1, requests, bytesIn: requests * 10, bytesOut });
const SUMMARY: PublishSummary = { at: 1_000, revisions: ['777', '778'], accepted: [[6, 8], [8, 8]], nodes: 3 };

function peer(id: string, name: string, over: Partial<ClusterPeerStatus> = {}): ClusterPeerStatus {
  return { id, name, addr: 'tcp:127.0.0.1:7001', state: 'alive', healthy: true, reasons: [], priority: 100, introPoints: 3, lastSeenAgoMs: 400, ...over };
}

function cluster(over: Partial<ClusterStatus> = {}): ClusterStatus {
  return clusterStatusFixture({
    role: 'member',
    publisher: 'bbbb2222',
    selfIsPublisher: false,
    leaseUntil: undefined,
    electionReason: 'highest priority',
    peers: [peer('bbbb2222', 'node1', { traffic: T(40) }), peer('cccc3333', 'node2')],
    publishing: [],
    publish: { active: false, introPoints: 0, introDigest: undefined, publishes: 0, retryPending: 0, verifications: 0, staleFound: 0 },
    lastPublish: { nodeId: 'bbbb2222', name: 'node1', summary: SUMMARY },
    ...over,
  });
}

function node(over: Partial<NodeStatus> = {}, requests = 9): NodeStatus {
  return nodeStatusFixture({ proxy: { open: 1, accepted: 10, rejected: 2, bytesIn: 1000, bytesOut: 5000, requests, byStatus: { '200': requests } }, cluster: cluster(), ...over });
}

describe('/status: traffic per node and the publisher report', () => {
  it('self from its own proxy, peers from heartbeats (null when none), the publisher acceptance on a member', () => {
    const s = buildStatus({ atMs: 5, node: node() }, new PublishView());
    expect(s.cluster?.nodes.map((x) => [x.name, x.traffic?.requests ?? null])).toEqual([
      ['node0', 9],
      ['node1', 40],
      ['node2', null],
    ]);
    expect(s.cluster?.nodes[0]?.traffic).toEqual({ open: 1, accepted: 10, requests: 9, bytesIn: 1000, bytesOut: 5000 });
    expect(s.cluster?.nodes[1]?.traffic).toEqual(T(40));
    expect(s.publish?.descriptors).toEqual([]);
    expect(s.publish?.publisherReport).toEqual({
      id: 'bbbb2222',
      name: 'node1',
      atMs: 1_000,
      nodes: 3,
      descriptors: [
        { descriptor: 'first', revisionCounter: '777', accepted: 6, total: 8 },
        { descriptor: 'second', revisionCounter: '778', accepted: 8, total: 8 },
      ],
    });
  });

  it('drops a descriptor the report does not know; null without a report', () => {
    const half: PublishSummary = { at: 2, revisions: ['5', null], accepted: [null, null], nodes: 1 };
    const s = buildStatus({ atMs: 5, node: node({ cluster: cluster({ lastPublish: { nodeId: 'bbbb2222', name: 'node1', summary: half } }) }) }, new PublishView());
    expect(s.publish?.publisherReport?.descriptors).toEqual([{ descriptor: 'first', revisionCounter: '5', accepted: null, total: null }]);
    const none = buildStatus({ atMs: 5, node: node({ cluster: cluster({ lastPublish: undefined }) }) }, new PublishView());
    expect(none.publish?.publisherReport).toBeNull();
  });
});

describe('/history: traffic per node', () => {
  it('every sample holds self and the peers that sent traffic, cumulative', () => {
    const h = new History(10, 5000);
    const v = new PublishView();
    for (let i = 0; i < 3; i++) {
      h.record({ atMs: i * 5000, node: node({ cluster: cluster({ peers: [peer('bbbb2222', 'node1', { traffic: T(40 + 10 * i) }), peer('cccc3333', 'node2')] }) }, 9 + i) }, v);
    }
    const s = h.samples();
    expect(s.map((x) => x.traffic.map((t) => [t.name, t.requests]))).toEqual([
      [['node0', 9], ['node1', 40]],
      [['node0', 10], ['node1', 50]],
      [['node0', 11], ['node1', 60]],
    ]);
    expect(s[2]!.traffic[1]).toEqual({ id: 'bbbb2222', name: 'node1', ...T(60) });
    expect(s[2]!.self.requests).toBe(11);
  });

  it(`keeps at most ${MAX_TRAFFIC_NODES} nodes per sample`, () => {
    const peers = Array.from({ length: 100 }, (_, i) => peer(`p${String(i).padStart(3, '0')}`, `n${i}`, { traffic: T(i) }));
    const sample = new History(1).record({ atMs: 0, node: node({ cluster: cluster({ peers }) }) }, new PublishView());
    expect(sample.traffic).toHaveLength(MAX_TRAFFIC_NODES);
    expect(sample.traffic[0]!.name).toBe('node0');
  });
});

describe('metrics: per-node traffic counters', () => {
  it('labelled by node name and id: self and peers with traffic; none for a peer without', async () => {
    const m = new NodeMetrics();
    const v = new PublishView();
    m.update({ atMs: 0, node: node() }, v);
    const p = parsePromText(await m.text());
    expect(p.types.get('torbalance_cluster_node_requests_total')).toBe('counter');
    expect(promValue(p, 'torbalance_cluster_node_requests_total', { node: 'node0', node_id: 'aaaa1111' })).toBe(9);
    expect(promValue(p, 'torbalance_cluster_node_requests_total', { node: 'node1', node_id: 'bbbb2222' })).toBe(40);
    expect(promValue(p, 'torbalance_cluster_node_sent_bytes_total', { node: 'node1' })).toBe(4000);
    expect(promValue(p, 'torbalance_cluster_node_received_bytes_total', { node: 'node0' })).toBe(1000);
    expect(promValue(p, 'torbalance_cluster_node_connections_open', { node: 'node1' })).toBe(1);
    expect(p.samples.filter((x) => x.name === 'torbalance_cluster_node_requests_total').map((x) => x.labels['node'])).toEqual(['node0', 'node1']);
    // a node that left the view loses its series
    m.update({ atMs: 1, node: node({ cluster: cluster({ peers: [] }) }) }, v);
    const q = parsePromText(await m.text());
    expect(q.samples.filter((x) => x.name === 'torbalance_cluster_node_requests_total').map((x) => x.labels['node'])).toEqual(['node0']);
  });

  it("copies a peer's counters as its heartbeats report them: a restarted peer shows a counter reset", async () => {
    const m = new NodeMetrics();
    const v = new PublishView();
    const at = (requests: number): NodeStatus => node({ cluster: cluster({ peers: [peer('bbbb2222', 'node1', { traffic: { ...T(4), requests } })] }) });
    m.update({ atMs: 0, node: at(40) }, v);
    m.update({ atMs: 1, node: at(55) }, v);
    expect(promValue(parsePromText(await m.text()), 'torbalance_cluster_node_requests_total', { node: 'node1' })).toBe(55);
    m.update({ atMs: 2, node: at(3) }, v); // node1 restarted: its counter starts again from 0
    expect(promValue(parsePromText(await m.text()), 'torbalance_cluster_node_requests_total', { node: 'node1' })).toBe(3);
  });

  it(`at most ${MAX_NODE_SERIES} nodes get per-node series`, async () => {
    const m = new NodeMetrics();
    const peers = Array.from({ length: 100 }, (_, i) => peer(`p${String(i).padStart(3, '0')}`, `n${i}`, { traffic: T(i) }));
    m.update({ atMs: 0, node: node({ cluster: cluster({ peers }) }) }, new PublishView());
    const p = parsePromText(await m.text());
    for (const name of ['torbalance_cluster_node_requests_total', 'torbalance_cluster_node_intro_points', 'torbalance_cluster_node_healthy']) {
      expect(p.samples.filter((x) => x.name === name)).toHaveLength(MAX_NODE_SERIES);
    }
    expect(promValue(p, 'torbalance_cluster_nodes', { state: 'alive' })).toBe(101);
  });
});

/** A minimal DOM for the dashboard script: elements with children, attributes and text. */
class FakeEl {
  readonly tag: string;
  readonly children: FakeEl[] = [];
  readonly attrs: Record<string, string> = {};
  textContent = '';
  className = '';
  colSpan = 1;
  tBodies: FakeEl[] = [];
  constructor(tag: string) {
    this.tag = tag;
  }
  get firstChild(): FakeEl | null {
    return this.children[0] ?? null;
  }
  appendChild(c: FakeEl): FakeEl {
    this.children.push(c);
    return c;
  }
  removeChild(c: FakeEl): void {
    this.children.splice(this.children.indexOf(c), 1);
  }
  setAttribute(k: string, v: string): void {
    this.attrs[k] = v;
  }
}

async function runDashboard(status: unknown, history: unknown): Promise<Map<string, FakeEl>> {
  const els = new Map<string, FakeEl>();
  for (const id of ['master', 'updated', 'self-name', 'publisher', 'revision', 'hsdirs', 'period', 'requests', 'map', 'health', 'traffic', 'nodes', 'publishes']) {
    const e = new FakeEl(id);
    if (id === 'nodes' || id === 'publishes') e.tBodies = [new FakeEl('tbody')];
    els.set(id, e);
  }
  const body = new FakeEl('body');
  const document = {
    body,
    getElementById: (id: string) => els.get(id) ?? null,
    createElement: (t: string) => new FakeEl(t),
    createElementNS: (_ns: string, t: string) => new FakeEl(t),
  };
  const fetch = (path: string): Promise<unknown> => Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(path === '/status' ? status : history) });
  vm.runInNewContext(DASHBOARD_JS, { document, fetch, setInterval: () => 0, Date, Math, Promise, JSON, String, Error });
  for (let i = 0; i < 20 && body.attrs['data-ready'] !== '1'; i++) await new Promise((r) => setTimeout(r, 5));
  expect(body.attrs['data-ready']).toBe('1');
  return els;
}

describe('dashboard', () => {
  it('draws one traffic line per node (peers from heartbeats) and the publisher acceptance on a member', async () => {
    const h = new History(10, 5000);
    const v = new PublishView();
    for (let i = 0; i < 4; i++) {
      h.record({ atMs: i * 5000, node: node({ cluster: cluster({ peers: [peer('bbbb2222', 'node1', { traffic: T(40 + 10 * i) }), peer('cccc3333', 'node2', { traffic: T(7) })] }) }, 9 + 2 * i) }, v);
    }
    const n = node();
    const els = await runDashboard(JSON.parse(JSON.stringify(buildStatus({ atMs: 20_000, node: n }, v))), JSON.parse(JSON.stringify(h.document(v))));
    expect(els.get('updated')!.textContent).not.toMatch(/error/);
    const lines = els.get('traffic')!.children.filter((c) => c.tag === 'polyline');
    expect(lines.map((l) => [l.attrs['data-node'], l.attrs['stroke']])).toEqual([
      ['node0', DASHBOARD_SERIES_COLORS[0]],
      ['node1', DASHBOARD_SERIES_COLORS[1]],
      ['node2', DASHBOARD_SERIES_COLORS[2]],
    ]);
    const legend = els.get('traffic')!.children.filter((c) => c.tag === 'text').map((c) => c.textContent);
    expect(legend).toContain('node0: 6 req, 0 B out');
    expect(legend).toContain('node1: 30 req, 2.9 KiB out');
    expect(legend).toContain('node2: 0 req, 0 B out');
    expect(legend).toContain('max 10 req / interval');
    expect(els.get('hsdirs')!.textContent).toBe('first 6/8, second 8/8 (node1)');
    expect(els.get('revision')!.textContent).toBe('first 777 / second 778 (node1)');
    const rows = els.get('nodes')!.tBodies[0]!.children;
    expect(rows.map((r) => [r.attrs['data-node'], r.children[5]!.textContent])).toEqual([
      ['node0', '9'],
      ['node1', '40'],
      ['node2', '–'],
    ]);
    for (const c of Object.values(DASHBOARD_SERIES_COLORS)) expect(['#f59e0b', '#3b82f6', '#9ca3af', '#16a34a', '#dc2626']).not.toContain(c);
  });
});

describe('cluster summary helpers', () => {
  it('publishSummaryOf: revisions and accepted/responsible per descriptor from the followed rounds', () => {
    const v = new PublishView();
    expect(publishSummaryOf(v)).toBeUndefined();
    const rec = (atMs: number, reason: string, results: [number, 'uploaded' | 'failed'][]): PublishRecord => ({
      atMs,
      endMs: atMs + 10,
      reason,
      introDigest: 'd',
      introPoints: 6,
      perNode: { a: 3, b: 2, c: 1 },
      descriptors: [
        { descriptor: 'first', periodNum: 100, blindedKey: 'k1', revisionCounter: '18446744073709551615', servers: [1, 2, 3, 4].map(FP), postMs: 5 },
        { descriptor: 'second', periodNum: 101, blindedKey: 'k2', revisionCounter: '12', servers: [1, 2, 3, 4].map(FP), postMs: 5 },
      ],
      hsdirs: results.map(([i, result]) => ({ descriptor: 'first' as const, fp: FP(i), result, ms: 1 })),
    });
    v.observeRecord(rec(100, 'initial', [[1, 'uploaded'], [2, 'failed']]));
    expect(publishSummaryOf(v)).toEqual({ at: 100, revisions: ['18446744073709551615', '12'], accepted: [[1, 4], [0, 4]], nodes: 3 });
    // a retry round updates the failed HSDir; the earlier success is kept
    v.observeRecord(rec(200, 'retry', [[2, 'uploaded']]));
    expect(publishSummaryOf(v)).toMatchObject({ at: 200, accepted: [[2, 4], [0, 4]] });
  });

  it('meshPublishReport: the elected publisher, else the newest live peer; dead peers and self-publishers never', () => {
    const pv = (id: string, state: PeerView['state'], publish: PublishSummary | undefined): PeerView => ({
      id, name: `n-${id}`, addr: 'tcp:1.2.3.4:5', state, healthy: true, reasons: [], priority: 1, introDigest: '', introPoints: [], introKey: undefined, rotationSafe: false, next: undefined, pow: undefined, lastSeenMs: 1, traffic: undefined, publish,
    });
    const view = (publisher: string | undefined, peers: PeerView[]): ClusterView => ({
      self: { id: 'self', name: 'self', addr: 'tcp:1.2.3.4:1', priority: 1, healthy: true, introDigest: '' }, peers, publisher, selfIsPublisher: false, leaseUntil: undefined, electionReason: '',
    });
    const s = (at: number): PublishSummary => ({ ...SUMMARY, at });
    expect(meshPublishReport(view('b', [pv('a', 'alive', s(9)), pv('b', 'alive', s(1))]))).toEqual({ nodeId: 'b', name: 'n-b', summary: s(1) });
    expect(meshPublishReport(view('x', [pv('a', 'alive', s(3)), pv('b', 'suspect', s(5)), pv('c', 'dead', s(9))]))?.nodeId).toBe('b');
    expect(meshPublishReport(view('c', [pv('c', 'dead', s(9)), pv('d', 'alive', undefined)]))).toBeUndefined();
  });
});
