/**
 * The admin API against a live 3-node cluster on the shared private network ("done
 * when": `torbalance status` lists all three nodes with their roles; the dashboard renders in
 * headless Chromium with real data). One cluster start; every check in one test:
 * - every node's `/status` (admin on 127.0.0.1:<port>, from the config) lists the same three
 *   nodes and exactly one publisher; the publisher reports both descriptors with HSDirs that
 *   accepted them; `/healthz` answers 200 once healthy;
 * - visitor requests through a client tor; `/metrics` parses (strict parser) on every node,
 *   with non-zero 2xx request counters over the cluster and non-zero publish/upload counters
 *   on the publisher, the real target probes in the probe-duration histogram, the build info,
 *   and names that pass the promtool-style lint (test/helpers/prom-lint.ts);
 * - over the mesh: a member's `/status` lists non-zero requests for another node (from that
 *   node's heartbeats) and the publisher's acceptance (HSDirs n/m per descriptor), and its
 *   `torbalance status` prints them;
 * - the spawned `torbalance status --config …` (built binary) prints the table with three node
 *   rows and exactly one publisher row, and exits 0 (healthy);
 * - headless Chromium: `--dump-dom` shows all three node names (map and table) and the
 *   publisher's name; `--screenshot` PNG (decoded with test/helpers/png.ts) is not blank and
 *   shows the publisher and member colours of the cluster map.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { httpGetThroughTor } from '../../src/adapters/net/onion-http.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/adapters/admin/client.js';
import { torbalanceVersion } from '../../src/adapters/system/version.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { DASHBOARD_COLORS, type StatusDocument } from '../../src/node/admin/index.js';
import { TestCluster } from '../helpers/cluster-harness.js';
import { startTargetBehindOnion, type TargetBehindOnion } from '../helpers/node-harness.js';
import { countColor, decodePng } from '../helpers/png.js';
import { lintExposition } from '../helpers/prom-lint.js';
import { parsePromText, promValue } from '../helpers/prom-text.js';
import { sharedTestnet } from '../helpers/testnet.js';
import { cleanupTors, secs, waitUntil } from '../helpers/tor-integration.js';

const net = sharedTestnet();
const BIN = resolve('bin/torbalance.js');
let target: TargetBehindOnion;
let cluster: TestCluster;
let ports: number[];
let tmp: string | undefined;

function log(msg: string): void {
  console.log(`[admin] ${msg}`);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tbadmin-'));
  target = await startTargetBehindOnion(net);
  ports = await allocatePorts(3);
  cluster = await TestCluster.start({ net, target: target.onion, extraToml: (i) => `[admin]\nlisten = "127.0.0.1:${ports[i]!}"\ntcp_open_reads = true` });
}, 180_000);

afterAll(async () => {
  await (cluster as TestCluster | undefined)?.close();
  await (target as TargetBehindOnion | undefined)?.stop();
  await cleanupTors();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
}, 120_000);

const admin = (i: number): { kind: 'tcp'; host: string; port: number } => ({ kind: 'tcp', host: '127.0.0.1', port: ports[i]! });

async function status(i: number): Promise<StatusDocument> {
  const r = await adminRequest(admin(i), 'GET', '/status');
  if (r.status !== 200) throw new Error(`node${i} /status: ${r.status}`);
  return r.json as StatusDocument;
}

async function getPage(tag: string): Promise<number> {
  const r = await httpGetThroughTor({ host: '127.0.0.1', port: net.clients[0]!.socksPort, isolation: tag }, { host: cluster.masterAddress, port: 80, path: '/' }, { timeoutMs: 45_000 });
  return r.status;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
  });
}

function chromium(url: string, profile: string, extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(
    '/usr/bin/chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run', `--user-data-dir=${join(tmp!, profile)}`, '--virtual-time-budget=15000', '--window-size=1280,1000', '--hide-scrollbars', ...extra, url],
    180_000,
  );
}

describe('admin API on a live cluster', () => {
  it('status, metrics, torbalance status and the dashboard show the three nodes and one publisher', async () => {
    const t0 = Date.now();
    // every node sees three nodes and the same single publisher, which has published both descriptors
    const settled = await waitUntil(
      'a settled cluster view on every node with a published descriptor',
      async () => {
        const all = await Promise.all([0, 1, 2].map(status));
        for (const s of all) {
          if (s.cluster?.nodes.length !== 3) return undefined;
          if (s.cluster.nodes.filter((n) => n.role === 'publisher').length !== 1) return undefined;
          if (!s.cluster.nodes.every((n) => n.healthy && (n.self || n.state === 'alive'))) return undefined;
        }
        const pubIds = new Set(all.map((s) => s.cluster!.publisher?.id));
        if (pubIds.size !== 1) return undefined;
        const pubIndex = all.findIndex((s) => s.cluster!.role === 'publisher');
        if (pubIndex < 0) return undefined;
        const d = all[pubIndex]!.publish?.descriptors ?? [];
        if (d.length !== 2 || d.some((x) => x.accepted === 0)) return undefined;
        return { all, pubIndex };
      },
      { timeoutMs: 420_000, intervalMs: 2000 },
    );
    const pub = settled.all[settled.pubIndex]!;
    const pubName = pub.node.name;
    log(`settled after ${secs(Date.now() - t0)}: publisher ${pubName}; HSDirs ${pub.publish!.descriptors.map((d) => `${d.descriptor} ${d.accepted}/${d.total} rev ${d.revisionCounter}`).join(', ')}`);
    expect(new Set(settled.all.flatMap((s) => s.cluster!.nodes.map((n) => n.name)))).toEqual(new Set(['node0', 'node1', 'node2']));
    expect(pub.publish!.descriptors.map((d) => d.descriptor)).toEqual(['first', 'second']);
    for (const d of pub.publish!.descriptors) expect(d.revisionCounter).toMatch(/^\d+$/);
    expect(JSON.stringify(settled.all)).not.toMatch(/secret|seed|private/i);

    // healthz
    for (let i = 0; i < 3; i++) {
      await waitUntil(`node${i} /healthz 200`, async () => ((await adminRequest(admin(i), 'GET', '/healthz')).status === 200 ? true : undefined), { timeoutMs: 120_000, intervalMs: 1000 });
    }

    // visitors
    let ok = 0;
    await waitUntil(
      'six successful visitor requests',
      async () => {
        const code = await getPage(`admin-${ok}-${Date.now()}`).catch(() => 0);
        if (code === 200) ok++;
        return ok >= 6 ? true : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 500 },
    );
    log(`visitor requests ok after ${secs(Date.now() - t0)}`);

    // traffic and the publisher's acceptance over the mesh: a node X that served requests, seen
    // from a member M ≠ X through X's heartbeats; M also reports the publisher's HSDir acceptance
    const own = await Promise.all([0, 1, 2].map(status));
    const busy = own.findIndex((s) => s.proxy.requests > 0);
    expect(busy).toBeGreaterThanOrEqual(0);
    const m = [0, 1, 2].find((i) => i !== busy && i !== settled.pubIndex)!;
    const busyName = own[busy]!.node.name;
    const seen = await waitUntil(
      `node${m} /status lists ${busyName}'s requests and the publisher's acceptance`,
      async () => {
        const s = await status(m);
        const x = s.cluster?.nodes.find((n) => n.name === busyName && !n.self);
        const rep = s.publish?.publisherReport;
        if (x?.traffic === undefined || x.traffic === null || x.traffic.requests === 0) return undefined;
        if (rep === undefined || rep === null || rep.descriptors.length !== 2) return undefined;
        return { s, x, rep };
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    log(`node${m} sees ${busyName}: ${seen.x.traffic!.requests} requests; publisher report ${seen.rep.descriptors.map((d) => `${d.descriptor} ${String(d.accepted)}/${String(d.total)}`).join(', ')} from ${seen.rep.name}`);
    expect(seen.s.cluster!.role).toBe('member');
    // a heartbeat reports the sender's counters as they were then: never more than it has now
    expect(seen.x.traffic!.requests).toBeLessThanOrEqual((await status(busy)).proxy.requests);
    expect(seen.rep.name).toBe(pubName);
    expect(seen.rep.descriptors.map((d) => d.descriptor)).toEqual(['first', 'second']);
    for (const d of seen.rep.descriptors) {
      expect(d.revisionCounter).toMatch(/^\d+$/);
      expect(d.accepted).toBeGreaterThan(0);
      expect(d.total).toBeGreaterThanOrEqual(d.accepted!);
    }

    // metrics on every node
    let requests2xx = 0;
    for (let i = 0; i < 3; i++) {
      const r = await adminRequest(admin(i), 'GET', '/metrics');
      expect(r.status).toBe(200);
      const p = parsePromText(r.text);
      expect(lintExposition(r.text, (n) => n.startsWith('torbalance_'))).toEqual([]);
      expect(p.types.get('torbalance_target_probe_duration_seconds')).toBe('histogram');
      expect(promValue(p, 'torbalance_target_probe_duration_seconds_count', { result: 'success' })).toBeGreaterThan(0);
      expect(promValue(p, 'torbalance_build_info', { version: torbalanceVersion() })).toBe(1);
      expect(promValue(p, 'torbalance_tor_bootstrap_ratio')).toBe(1);
      expect(p.types.get('process_resident_memory_bytes')).toBe('gauge');
      requests2xx += promValue(p, 'torbalance_http_requests_total', { status_class: '2xx' });
      expect(promValue(p, 'torbalance_cluster_node_healthy')).toBe(3);
      expect(p.types.get('torbalance_mesh_messages_accepted_total')).toBe('counter');
      expect(promValue(p, 'torbalance_mesh_messages_accepted_total')).toBeGreaterThan(0);
      if (i === settled.pubIndex) {
        expect(promValue(p, 'torbalance_is_publisher')).toBe(1);
        expect(promValue(p, 'torbalance_publishes_total')).toBeGreaterThan(0);
        expect(promValue(p, 'torbalance_publish_uploads_total', { result: 'uploaded' })).toBeGreaterThan(0);
        expect(p.samples.filter((s) => s.name === 'torbalance_publish_hsdir_last_result').length).toBeGreaterThan(0);
      } else {
        expect(promValue(p, 'torbalance_is_publisher')).toBe(0);
      }
    }
    expect(requests2xx).toBeGreaterThanOrEqual(6);

    // torbalance status (the built binary) from a member's and the publisher's config
    for (const i of [m, settled.pubIndex]) {
      const st = await run(process.execPath, [BIN, 'status', '--config', cluster.nodes[i]!.configPath], 60_000);
      expect(st.stderr).toBe('');
      expect(st.code).toBe(0);
      const rows = st.stdout.split('\n').filter((l) => /^node[012]\b/.test(l));
      expect(rows).toHaveLength(3);
      expect(rows.filter((l) => /\spublisher\s/.test(l))).toHaveLength(1);
      expect(rows.filter((l) => /\smember\s/.test(l))).toHaveLength(2);
      expect(st.stdout).toContain(`publisher:          ${pubName} `);
      // on the member: the publisher's acceptance as its heartbeats report it
      expect(st.stdout).toMatch(/HSDirs accepted: {4}first \d+\/\d+, second \d+\/\d+/);
      expect(st.stdout).toMatch(/^NODE\s+ID\s+ROLE\s+STATE\s+HEALTH\s+INTRO\s+REQUESTS\s+LAST SEEN$/m);
      if (i === m) {
        expect(st.stdout).toContain(`(reported by ${pubName}, published `);
        // NODE ID ROLE STATE HEALTH INTRO REQUESTS …: the busy node's requests from its heartbeats
        const row = rows.find((l) => l.startsWith(`${busyName} `))!;
        expect(Number(row.split(/\s+/)[6])).toBeGreaterThan(0);
      }
      log(`torbalance status (node${i}):\n${st.stdout}`);
    }

    // the dashboard in headless Chromium, from a member (the map is the same everywhere)
    const member = [0, 1, 2].find((i) => i !== settled.pubIndex)!;
    const url = `http://127.0.0.1:${ports[member]!}/`;
    const dom = await chromium(url, 'p1', ['--dump-dom']);
    expect(dom.code).toBe(0);
    expect(dom.stdout).toContain('data-ready="1"');
    for (const n of ['node0', 'node1', 'node2']) {
      expect(dom.stdout).toContain(`data-name="${n}"`);
      expect(dom.stdout).toContain(`<tr data-node="${n}">`);
    }
    expect(dom.stdout).toMatch(new RegExp(`<g class="node" data-name="${pubName}" data-role="publisher">`));
    expect(dom.stdout).toContain(`id="publisher">${pubName}<`);
    const shot = join(tmp!, 'dashboard.png');
    const sc = await chromium(url, 'p2', [`--screenshot=${shot}`]);
    expect(sc.code).toBe(0);
    const img = decodePng(new Uint8Array(await readFile(shot)));
    expect(img.width).toBe(1280);
    const bg = countColor(img, DASHBOARD_COLORS.background, 2) + countColor(img, '#ffffff', 2);
    const total = img.width * img.height;
    const publisherPx = countColor(img, DASHBOARD_COLORS.publisher);
    const memberPx = countColor(img, DASHBOARD_COLORS.member);
    const healthyPx = countColor(img, DASHBOARD_COLORS.healthy);
    log(`screenshot ${img.width}x${img.height}: non-background ${total - bg}, publisher ${publisherPx}, member ${memberPx}, healthy ${healthyPx}`);
    expect(total - bg).toBeGreaterThan(total * 0.05);
    expect(publisherPx).toBeGreaterThan(1500); // one filled node circle (r = 38 in a 480-wide viewBox)
    expect(memberPx).toBeGreaterThan(3000); // two
    expect(healthyPx).toBeGreaterThan(3000); // health rings and the health-over-time strips
  });
});
