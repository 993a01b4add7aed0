/**
 * Unit tests of the node's admin side (src/node/admin) with fake node snapshots: the /status
 * document, the publish view (per-HSDir last result bounded to the responsible set), metrics
 * (own registry, counters from cumulative values, election changes), the history ring, the
 * routes (/healthz, /metrics, /history, dashboard assets) and the time-period clock.
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { AdminRoutes, buildStatus, History, NodeMetrics, observePublish, parseControlIsoTime, PeriodClock, periodInfoAt, STATUS_VERSION, type AdminSnapshot } from '../../src/node/admin/index.js';
import { PublishView } from '../../src/node/publisher/view.js';
import { DASHBOARD_HTML, DASHBOARD_JS } from '../../src/node/admin/dashboard.js';
import type { NodeStatus } from '../../src/node/node-status.js';
import type { ClusterStatus } from '../../src/node/cluster.js';
import type { PublishRecord } from '../../src/node/publisher/index.js';
import { testingNetworkPeriodParams, timePeriodStart } from '../../src/core/hs/time-period.js';
import { parsePromText, promValue } from '../helpers/prom-text.js';
import { clusterStatusFixture, nodeStatusFixture } from '../helpers/admin-fixtures.js';
import { torbalanceVersion } from '../../src/adapters/system/version.js';

const FP = (i: number): string => i.toString(16).toUpperCase().padStart(40, '0');

function record(atMs: number, reason: string, servers: number[], results: ['uploaded' | 'failed' | 'timeout', number][], rev = '1000'): PublishRecord {
  return {
    atMs,
    endMs: atMs + 10,
    reason,
    introDigest: 'd',
    introPoints: 6,
    perNode: { a: 3, b: 3 },
    descriptors: [
      { descriptor: 'first', periodNum: 100, blindedKey: 'k1', revisionCounter: rev, servers: servers.map(FP), postMs: 5 },
      { descriptor: 'second', periodNum: 101, blindedKey: 'k2', revisionCounter: rev, servers: servers.map(FP), postMs: 5 },
    ],
    hsdirs: results.flatMap(([result, i]) => (['first', 'second'] as const).map((descriptor) => ({ descriptor, fp: FP(i), result, ms: 3, ...(result === 'failed' ? { reason: 'UPLOAD_REJECTED' } : {}) }))),
  };
}

const cluster = clusterStatusFixture;
const node = nodeStatusFixture;

function publishStatus(rec: PublishRecord, publishes = 1): NonNullable<ClusterStatus['publish']> {
  return { active: true, introPoints: 6, introDigest: 'd', publishes, lastPublish: rec, retryPending: 0, verifications: 0, staleFound: 0 };
}

describe('buildStatus', () => {
  it('lists every node with its role, state, health, intro points and last contact; names the publisher', () => {
    const view = new PublishView();
    const n = node();
    observePublish(view, n);
    const s = buildStatus({ atMs: 5, node: n, period: { secondsToNext: 60, lengthMinutes: 10, nextStartAt: 100, periodNum: 7 } }, view);
    expect(s.version).toBe(STATUS_VERSION);
    expect(s.cluster?.nodes.map((x) => [x.name, x.role, x.state, x.healthy, x.introPoints, x.lastSeenAgoMs])).toEqual([
      ['node0', 'publisher', 'self', true, 3, 0],
      ['node1', 'member', 'alive', true, 3, 400],
      ['node2', 'member', 'dead', false, 0, 9000],
    ]);
    expect(s.cluster?.publisher).toEqual({ id: 'aaaa1111', name: 'node0' });
    expect(s.timePeriod?.secondsToNext).toBe(60);
    expect(s.publish).toBeNull();
  });

  it('marks everyone alone when not clustered', () => {
    const s = buildStatus({ atMs: 0, node: node({ cluster: cluster({ clustered: false, role: 'alone', publisher: undefined }) }) }, new PublishView());
    expect(new Set(s.cluster?.nodes.map((x) => x.role))).toEqual(new Set(['alone']));
    expect(s.cluster?.publisher).toBeNull();
  });

  it('has no secret-looking fields', () => {
    const text = JSON.stringify(buildStatus({ atMs: 0, node: node() }, new PublishView()));
    expect(text).not.toMatch(/secret|seed|private|expanded/i);
  });
});

describe('PublishView', () => {
  it('keeps the last result per HSDir of the current responsible set; retries update, a new set drops old HSDirs', () => {
    const v = new PublishView();
    const pub = (rec: PublishRecord, k: number): NodeStatus => node({ cluster: cluster({ publish: publishStatus(rec, k) }) });
    observePublish(v, pub(record(1000, 'initial', [1, 2, 3], [['uploaded', 1], ['failed', 2], ['timeout', 3]], '10'), 1));
    let d = v.descriptors();
    expect(d.map((x) => [x.descriptor, x.accepted, x.total, x.revisionCounter])).toEqual([
      ['first', 1, 3, '10'],
      ['second', 1, 3, '10'],
    ]);
    // the same record again: nothing counted twice
    observePublish(v, pub(record(1000, 'initial', [1, 2, 3], [['uploaded', 1], ['failed', 2], ['timeout', 3]], '10'), 1));
    expect(v.records).toBe(1);
    observePublish(v, pub(record(2000, 'retry', [2, 3], [['uploaded', 2], ['uploaded', 3]], '11'), 2));
    d = v.descriptors();
    expect(d[0]!.accepted).toBe(3);
    expect(d[0]!.total).toBe(3);
    expect(d[0]!.revisionCounter).toBe('11');
    observePublish(v, pub(record(3000, 'plan', [4, 5], [['uploaded', 4]], '12'), 3));
    d = v.descriptors();
    expect(d[0]!.hsdirs.map((h) => h.fp)).toEqual([FP(4)]);
    expect(d[0]!.total).toBe(2);
    expect(v.uploads().get('first|uploaded')).toBe(4);
    expect(v.uploads().get('first|failed')).toBe(1);
    expect(v.uploads().get('first|timeout')).toBe(1);
    expect(v.events().map((e) => [e.reason, e.uploaded, e.failed])).toEqual([
      ['initial', 2, 4],
      ['retry', 4, 0],
      ['plan', 2, 0],
    ]);
  });
});

describe('NodeMetrics', () => {
  it('uses its own registry and exposes torbalance_* metrics from the snapshot', async () => {
    const a = new NodeMetrics();
    const b = new NodeMetrics(); // a second node in the same process: no duplicate-registration error
    const v = new PublishView();
    const n = node({ cluster: cluster({ publish: publishStatus(record(1000, 'initial', [1, 2], [['uploaded', 1], ['failed', 2]], '77')), mesh: { accepted: 5, acceptedByType: { hello: 2, heartbeat: 3 } as never, rejected: { mac: 1, replay: 0 } as never, sent: 7, connections: 2, transport: {} as never } }) });
    observePublish(v, n);
    a.update({ atMs: 0, node: n, period: { secondsToNext: 123, lengthMinutes: 1440, nextStartAt: 0, periodNum: 1 } }, v);
    b.update({ atMs: 0, node: node() }, new PublishView());
    const p = parsePromText(await a.text());
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(promValue(p, 'torbalance_proxy_connections_open')).toBe(1);
    expect(promValue(p, 'torbalance_proxy_connections_total')).toBe(10);
    expect(promValue(p, 'torbalance_proxy_connections_rejected_total')).toBe(2);
    // every reason the proxy counts has a series (0 until it happens); no catch-all reason
    expect(p.samples.filter((s) => s.name === 'torbalance_proxy_connections_rejected_total').map((s) => [s.labels['reason'], s.value])).toEqual([
      ['limit', 1],
      ['per-circuit', 0],
      ['proxy-header', 1],
      ['stopping', 0],
    ]);
    expect(promValue(p, 'torbalance_tor_bootstrap_ratio')).toBe(1);
    expect(p.samples.filter((s) => s.name === 'torbalance_build_info')).toEqual([{ name: 'torbalance_build_info', labels: { version: torbalanceVersion() }, value: 1 }]);
    // prom-client's default process and runtime metrics, in this node's registry
    expect(p.types.get('process_cpu_seconds_total')).toBe('counter');
    expect(p.types.get('process_start_time_seconds')).toBe('gauge');
    expect(p.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(promValue(p, 'torbalance_proxy_visitor_sent_bytes_total')).toBe(5000);
    expect(promValue(p, 'torbalance_proxy_visitor_received_bytes_total')).toBe(1000);
    expect(promValue(p, 'torbalance_http_requests_total', { status_class: '2xx' })).toBe(7);
    expect(promValue(p, 'torbalance_http_requests_total', { status_class: '5xx' })).toBe(1);
    expect(promValue(p, 'torbalance_cluster_node_intro_points', { node: 'node1' })).toBe(3);
    expect(promValue(p, 'torbalance_is_publisher')).toBe(1);
    expect(promValue(p, 'torbalance_publish_uploads_total', { descriptor: 'first', result: 'uploaded' })).toBe(1);
    expect(promValue(p, 'torbalance_publish_hsdir_last_result', { descriptor: 'second', hsdir: FP(2), result: 'failed' })).toBe(1);
    expect(promValue(p, 'torbalance_descriptor_revision', { descriptor: 'first' })).toBe(77);
    expect(promValue(p, 'torbalance_mesh_messages_accepted_total', { type: 'heartbeat' })).toBe(3);
    expect(promValue(p, 'torbalance_mesh_messages_rejected_total', { reason: 'mac' })).toBe(1);
    expect(promValue(p, 'torbalance_time_period_remaining_seconds')).toBe(123);
    expect(p.types.get('torbalance_proxy_connections_total')).toBe('counter');
    expect(p.types.get('torbalance_proxy_connections_open')).toBe('gauge');
    expect(promValue(parsePromText(await b.text()), 'torbalance_proxy_connections_total')).toBe(10);
  });

  it('tor bootstrap progress as a 0-1 ratio; every target probe in the duration histogram, by result', async () => {
    const m = new NodeMetrics();
    const base = node();
    m.update({ atMs: 0, node: { ...base, health: { ...base.health, tor: { ...base.health.tor, progress: 45 } } } }, new PublishView());
    m.observeProbe(0.3, true);
    m.observeProbe(0.7, true);
    m.observeProbe(10, false);
    m.observeProbe(Number.NaN, true); // ignored
    const p = parsePromText(await m.text());
    expect(promValue(p, 'torbalance_tor_bootstrap_ratio')).toBeCloseTo(0.45);
    expect(p.types.get('torbalance_target_probe_duration_seconds')).toBe('histogram');
    expect(promValue(p, 'torbalance_target_probe_duration_seconds_count', { result: 'success' })).toBe(2);
    expect(promValue(p, 'torbalance_target_probe_duration_seconds_sum', { result: 'success' })).toBeCloseTo(1);
    expect(promValue(p, 'torbalance_target_probe_duration_seconds_bucket', { result: 'success', le: '0.5' })).toBe(1);
    expect(promValue(p, 'torbalance_target_probe_duration_seconds_bucket', { result: 'success', le: '1' })).toBe(2);
    expect(promValue(p, 'torbalance_target_probe_duration_seconds_bucket', { result: 'failure', le: '5' })).toBe(0);
    expect(promValue(p, 'torbalance_target_probe_duration_seconds_bucket', { result: 'failure', le: '10' })).toBe(1);
  });

  it('every publish round in the round, HSPOST and HSDir-answer histograms', async () => {
    const m = new NodeMetrics();
    const d = (descriptor: 'first' | 'second', postMs: number, revisionCounter = '5'): PublishRecord['descriptors'][number] => ({ descriptor, periodNum: 1, blindedKey: 'k', revisionCounter, servers: [], postMs });
    m.observePublish({
      atMs: 1000,
      endMs: 1250,
      reason: 'initial',
      introDigest: '',
      introPoints: 3,
      perNode: {},
      descriptors: [d('first', 20), d('second', 40), d('second', 0, '')],
      hsdirs: [
        { descriptor: 'first', fp: 'A', result: 'uploaded', ms: 180 },
        { descriptor: 'first', fp: 'B', result: 'timeout', ms: 20_000 },
      ],
    });
    m.observePublish({ atMs: 5, endMs: 4, reason: 'retry', introDigest: '', introPoints: 0, perNode: {}, descriptors: [], hsdirs: [] }); // negative: ignored
    const p = parsePromText(await m.text());
    expect(p.types.get('torbalance_publish_round_duration_seconds')).toBe('histogram');
    expect(promValue(p, 'torbalance_publish_round_duration_seconds_count')).toBe(1);
    expect(promValue(p, 'torbalance_publish_round_duration_seconds_bucket', { le: '0.3' })).toBe(1);
    expect(promValue(p, 'torbalance_publish_round_duration_seconds_bucket', { le: '0.2' })).toBe(0);
    expect(promValue(p, 'torbalance_hspost_duration_seconds_count', { descriptor: 'second' })).toBe(1); // the unposted one is not counted
    expect(promValue(p, 'torbalance_hspost_duration_seconds_sum', { descriptor: 'first' })).toBeCloseTo(0.02);
    expect(promValue(p, 'torbalance_publish_hsdir_answer_duration_seconds_bucket', { result: 'uploaded', le: '0.2' })).toBe(1);
    expect(promValue(p, 'torbalance_publish_hsdir_answer_duration_seconds_bucket', { result: 'timeout', le: '10' })).toBe(0);
    expect(promValue(p, 'torbalance_publish_hsdir_answer_duration_seconds_count', { result: 'timeout' })).toBe(1);
  });

  it('copies cumulative values, counts publisher changes, drops nodes that left', async () => {
    const m = new NodeMetrics();
    const v = new PublishView();
    m.update({ atMs: 0, node: node() }, v);
    m.update({ atMs: 1, node: node({ proxy: { ...node().proxy, accepted: 15 }, cluster: cluster({ publisher: 'bbbb2222', role: 'member', peers: cluster().peers.slice(0, 1) }) }) }, v);
    m.update({ atMs: 2, node: node({ proxy: { ...node().proxy, accepted: 15 }, cluster: cluster({ publisher: 'bbbb2222', role: 'member' }) }) }, v);
    m.update({ atMs: 3, node: node({ proxy: { ...node().proxy, accepted: 16 }, cluster: cluster() }) }, v);
    const p = parsePromText(await m.text());
    expect(promValue(p, 'torbalance_proxy_connections_total')).toBe(16);
    expect(promValue(p, 'torbalance_election_changes_total')).toBe(2);
    expect(promValue(p, 'torbalance_is_publisher')).toBe(1);
    m.update({ atMs: 4, node: node({ cluster: cluster({ peers: [] }) }) }, v);
    const q = parsePromText(await m.text());
    expect(q.samples.filter((s) => s.name === 'torbalance_cluster_node_healthy').map((s) => s.labels['node'])).toEqual(['node0']);
  });
});

describe('History', () => {
  it('is a bounded ring, oldest first, with every node and own counters per sample', () => {
    const h = new History(3, 5000);
    const v = new PublishView();
    for (let i = 0; i < 5; i++) h.record({ atMs: i * 5000, node: node({ proxy: { ...node().proxy, requests: i } }) }, v);
    expect(h.length).toBe(3);
    const s = h.samples();
    expect(s.map((x) => x.t)).toEqual([10_000, 15_000, 20_000]);
    expect(s[0]!.self.requests).toBe(2);
    expect(s[0]!.self.errors5xx).toBe(1);
    expect(s[0]!.nodes.map((n) => [n.name, n.role, n.healthy])).toEqual([
      ['node0', 'publisher', true],
      ['node1', 'member', true],
      ['node2', 'member', false],
    ]);
    expect(h.samples(15_000).map((x) => x.t)).toEqual([20_000]);
    expect(() => new History(0)).toThrow(RangeError);
  });
});

describe('AdminRoutes', () => {
  it('serves /healthz, /status, /metrics, /history and the dashboard assets', async () => {
    let n = node();
    const r = new AdminRoutes({ snapshot: () => n, now: () => 1234 });
    const get = async (path: string, q = ''): Promise<{ status: number; json?: unknown; body?: string | Uint8Array; contentType?: string }> => {
      const route = r.routes().find((x) => x.path === path && x.method === 'GET')!;
      return route.handler({ method: 'GET', path, query: new URLSearchParams(q), body: undefined });
    };
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    n = node({ health: { ...node().health, healthy: false, reasons: ['target: refused'] } });
    expect(await get('/healthz')).toEqual({ status: 503, json: { status: 'unhealthy', reasons: ['target: refused'] } });
    n = node({ state: 'stopping' });
    expect((await get('/healthz')).status).toBe(503);
    n = node();
    const st = await get('/status');
    expect(st.json).toMatchObject({ version: 1, generatedAt: 1234, node: { name: 'node0' } });
    const met = await get('/metrics');
    expect(promValue(parsePromText(String(met.body)), 'torbalance_node_healthy')).toBe(1);
    await r.sample();
    await r.sample();
    const hist = await get('/history');
    expect((hist.json as { samples: unknown[] }).samples).toHaveLength(2);
    expect(((await get('/history', 'since=1234')).json as { samples: unknown[] }).samples).toHaveLength(0);
    const html = await get('/');
    expect(html.contentType).toMatch(/^text\/html/);
    expect(String(html.body)).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i);
    expect(String(html.body)).toContain('<script src="/dashboard.js" defer></script>');
    expect((await get('/dashboard.js')).contentType).toMatch(/^text\/javascript/);
    expect((await get('/dashboard.css')).contentType).toMatch(/^text\/css/);
  });

  it('the dashboard script never writes HTML from data (names come from peers)', () => {
    expect(DASHBOARD_JS).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(DASHBOARD_HTML).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    // the script parses (compiled, not run)
    expect(() => new vm.Script(DASHBOARD_JS)).not.toThrow();
  });
});

describe('time period', () => {
  it('parses control-port ISOTime and rejects garbage', () => {
    expect(parseControlIsoTime('2024-05-01 12:00:00')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(parseControlIsoTime('"2024-05-01 12:00:00"')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    for (const bad of ['', '2024-13-01 00:00:00', 'yesterday', '2024-05-01']) expect(parseControlIsoTime(bad)).toBeUndefined();
  });

  it('counts down to the next period start (testing network: 24 voting intervals)', () => {
    const params = testingNetworkPeriodParams(20); // 8-minute periods
    const start = timePeriodStart(1_000_000, params);
    expect(periodInfoAt(start + 100, params)).toEqual({ secondsToNext: 480 - 100, lengthMinutes: 8, nextStartAt: start + 480, periodNum: 1_000_000 });
  });

  it('PeriodClock reads valid-after/fresh-until from tor and caches them', async () => {
    const asked: string[] = [];
    const clock = new PeriodClock({
      testingTorNetwork: true,
      now: () => 1_700_000_000_000,
      control: () => ({
        getInfo: (key: string) => {
          asked.push(key);
          return Promise.resolve(key === 'consensus/valid-after' ? '2023-11-14 22:13:00' : '2023-11-14 22:13:20');
        },
      }),
    });
    const a = await clock.info();
    const b = await clock.info();
    expect(a?.lengthMinutes).toBe(8);
    expect(b).toEqual(a);
    expect(asked).toEqual(['consensus/valid-after', 'consensus/fresh-until']);
    const none = new PeriodClock({ testingTorNetwork: false, control: () => undefined });
    expect(await none.info()).toBeUndefined();
  });
});

describe('snapshot typing', () => {
  it('AdminSnapshot accepts a node without a cluster', () => {
    const { cluster: _c, ...bare } = node();
    const s: AdminSnapshot = { atMs: 0, node: bare };
    const doc = buildStatus(s, new PublishView());
    expect(doc.cluster).toBeNull();
    expect(doc.node.id).toBeNull();
  });
});
