/**
 * The node's `/metrics` exposition passes promtool-style lint rules (test/helpers/prom-lint.ts:
 * help text, snake_case, counters end in `_total`, base units as the suffix, no `_percent`),
 * with every torbalance metric populated, so a new or renamed metric cannot regress the
 * names; and docs/admin-api.md lists exactly the metrics the code exports, with their types
 * and the `reason` values the proxy emits. prom-client's default process/runtime metrics are
 * exported under their standard names (which dashboards expect; some, like the
 * `nodejs_active_handles_total` gauge, predate the rules) and are not linted here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeMetrics, observePublish } from '../../src/node/admin/index.js';
import { PublishView } from '../../src/node/publisher/view.js';
import type { ClusterStatus } from '../../src/node/cluster.js';
import type { PublishRecord } from '../../src/node/publisher/index.js';
import { REJECT_REASONS } from '../../src/node/proxy/index.js';
import { clusterStatusFixture, nodeStatusFixture } from '../helpers/admin-fixtures.js';
import { expositionFamilies, lintExposition } from '../helpers/prom-lint.js';

const ROOT = join(import.meta.dirname, '..', '..');
const FP = (i: number): string => i.toString(16).toUpperCase().padStart(40, '0');
const ours = (name: string): boolean => name.startsWith('torbalance_');

function record(): PublishRecord {
  return {
    atMs: 1000,
    endMs: 1010,
    reason: 'initial',
    introDigest: 'd',
    introPoints: 6,
    perNode: { a: 3, b: 3 },
    descriptors: (['first', 'second'] as const).map((descriptor, i) => ({ descriptor, periodNum: 100 + i, blindedKey: `k${i}`, revisionCounter: '77', servers: [FP(1), FP(2)], postMs: 5 })),
    hsdirs: (['first', 'second'] as const).flatMap((descriptor) => [
      { descriptor, fp: FP(1), result: 'uploaded' as const, ms: 3 },
      { descriptor, fp: FP(2), result: 'failed' as const, ms: 3, reason: 'UPLOAD_REJECTED' },
    ]),
  };
}

/** A node with every metric fed: cluster peers with traffic, mesh, publishing, fail-closed, a period, probes. */
async function populatedExposition(): Promise<string> {
  const publish: NonNullable<ClusterStatus['publish']> = { active: true, introPoints: 6, introDigest: 'd', publishes: 2, lastPublish: record(), retryPending: 0, verifications: 0, staleFound: 0 };
  const base = clusterStatusFixture();
  const cluster = clusterStatusFixture({
    publish,
    failClosed: { active: true, pauses: 4 },
    peers: base.peers.map((p) => ({ ...p, traffic: { open: 1, accepted: 5, requests: 4, bytesIn: 40, bytesOut: 400 } })),
    mesh: { accepted: 5, acceptedByType: { hello: 2, heartbeat: 3 } as never, rejected: { mac: 1, replay: 0 } as never, sent: 7, connections: 2, transport: {} as never },
  });
  const node = nodeStatusFixture({ cluster });
  const m = new NodeMetrics();
  const view = new PublishView();
  observePublish(view, node);
  m.update({ atMs: 0, node, period: { secondsToNext: 123, lengthMinutes: 1440, nextStartAt: 0, periodNum: 1 } }, view);
  m.observeProbe(0.4, true);
  m.observeProbe(10, false);
  m.observePublish(record());
  return m.text();
}

/** The `/metrics` table of docs/admin-api.md: metric name → type (`gauge (1)` is a gauge) and its labels cell. */
function documentedMetrics(): Map<string, { type: string; labels: string }> {
  const doc = readFileSync(join(ROOT, 'docs', 'admin-api.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## `/metrics`'));
  const out = new Map<string, { type: string; labels: string }>();
  for (const row of section.split('\n').filter((l) => l.startsWith('| `torbalance_'))) {
    const [names, type, labels] = row.split(' | ').map((c) => c.replace(/^\| |\|$/g, '').trim());
    for (const n of names!.matchAll(/`(torbalance_[a-z0-9_]+)`/g)) out.set(n[1]!, { type: type!.replace(/ \(1\)$/, ''), labels: labels ?? '' });
  }
  return out;
}

describe('/metrics naming (promtool-style lint)', () => {
  it('every torbalance metric is populated and passes the lint', async () => {
    const text = await populatedExposition();
    const families = [...expositionFamilies(text)].filter(([n]) => ours(n));
    expect(families.length).toBeGreaterThan(30);
    expect(families.filter(([, f]) => f.samples.length === 0).map(([n]) => n)).toEqual([]);
    expect(lintExposition(text, ours)).toEqual([]);
    // the default metrics are there too (their lint is prom-client's business)
    expect(expositionFamilies(text).get('process_cpu_seconds_total')?.type).toBe('counter');
  });

  it('docs/admin-api.md lists exactly the exported metrics, with their types and the rejection reasons', async () => {
    const text = await populatedExposition();
    const exported = new Map([...expositionFamilies(text)].filter(([n]) => ours(n)).map(([n, f]) => [n, f.type]));
    const documented = documentedMetrics();
    expect([...documented.keys()].sort()).toEqual([...exported.keys()].sort());
    for (const [n, d] of documented) expect(`${n}: ${d.type}`).toBe(`${n}: ${exported.get(n)!}`);
    const reasons = documented.get('torbalance_proxy_connections_rejected_total')!.labels;
    for (const r of REJECT_REASONS) expect(reasons).toContain(`\`${r}\``);
    expect(reasons).not.toContain('`any`');
  });

  it('the lint catches each rule (so the test above can fail)', () => {
    const bad = [
      '# HELP torbalance_tor_bootstrap_percent tor bootstrap progress',
      '# TYPE torbalance_tor_bootstrap_percent gauge',
      'torbalance_tor_bootstrap_percent 100',
      '# HELP torbalance_time_period_seconds_remaining Seconds to the next period',
      '# TYPE torbalance_time_period_seconds_remaining gauge',
      'torbalance_time_period_seconds_remaining 5',
      '# HELP torbalance_cluster_node_requests Requests',
      '# TYPE torbalance_cluster_node_requests counter',
      'torbalance_cluster_node_requests{node="a"} 3',
      '# HELP torbalance_open_total Open now',
      '# TYPE torbalance_open_total gauge',
      'torbalance_open_total 1',
      '# TYPE torbalance_no_help gauge',
      'torbalance_no_help 1',
      '# HELP torbalance_probeLatency x',
      '# TYPE torbalance_probeLatency gauge',
      'torbalance_probeLatency{nodeName="a"} 1',
      '# HELP torbalance_probe_latency_ms x',
      '# TYPE torbalance_probe_latency_ms gauge',
      'torbalance_probe_latency_ms 12',
      '# HELP torbalance_wait_milliseconds x',
      '# TYPE torbalance_wait_milliseconds gauge',
      'torbalance_wait_milliseconds 12',
      '# HELP torbalance_build_info x',
      '# TYPE torbalance_build_info gauge',
      'torbalance_build_info{version="1"} 2',
      '# HELP torbalance_queue_gauge x',
      '# TYPE torbalance_queue_gauge gauge',
      'torbalance_queue_gauge{le="1"} 2',
      '# HELP torbalance_upload_duration_seconds x',
      '# TYPE torbalance_upload_duration_seconds histogram',
      'torbalance_upload_duration_seconds_bucket{le="+Inf"} 1',
      'torbalance_upload_duration_seconds_sum 0.5',
      'torbalance_upload_duration_seconds_count 1',
      '',
    ].join('\n');
    expect(lintExposition(bad)).toEqual([
      'torbalance_tor_bootstrap_percent: no "_percent": use a 0-1 "_ratio"',
      'torbalance_time_period_seconds_remaining: the unit "seconds" must be the suffix',
      'torbalance_cluster_node_requests: counter metrics should have "_total" suffix',
      'torbalance_open_total: non-counter metrics should not have "_total" suffix',
      'torbalance_no_help: no help text',
      'torbalance_probeLatency: name is not snake_case',
      'torbalance_probeLatency: label name "nodeName" is not snake_case',
      'torbalance_probe_latency_ms: metric names should not contain abbreviated units ("ms")',
      'torbalance_probe_latency_ms: a duration must name its unit ("_seconds")',
      'torbalance_wait_milliseconds: use base unit "seconds" instead of "milliseconds"',
      'torbalance_build_info: an _info metric must have the value 1',
      'torbalance_queue_gauge: metric name should not include type "gauge"',
      'torbalance_queue_gauge: label "le" is reserved for histograms and summaries',
    ]);
  });
});
