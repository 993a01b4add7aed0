/**
 * `torbalance status`: the table from a /status document, and the spawned binary against a
 * loopback admin server serving a canned document (unix socket from the config's
 * `admin.listen`), `--json`, the unreachable error when no node runs, and the exit code:
 * 0 for a healthy cluster, 1 (after printing) for an unhealthy one.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../../src/adapters/admin/server.js';
import { asStatusDocument, fetchStatus, formatDuration, formatStatus, statusProblems } from '../../src/cli/commands/status.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import type { StatusDocument } from '../../src/node/admin/status.js';
import { requireBuilt } from '../helpers/built.js';

const BIN = resolve('bin/torbalance.js');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function doc(): StatusDocument {
  const node = (name: string, id: string, role: 'publisher' | 'member', self: boolean, healthy = true): StatusDocument['cluster'] extends infer C ? (C extends { nodes: readonly (infer N)[] } ? N : never) : never => ({
    id,
    name,
    self,
    role,
    state: self ? 'self' : 'alive',
    healthy,
    reasons: healthy ? [] : ['no intro points'],
    introPoints: healthy ? 3 : 0,
    lastSeenAgoMs: self ? 0 : 800,
    addr: null,
    priority: 100,
  });
  return {
    version: 1,
    generatedAt: 0,
    node: { id: 'a'.repeat(64), name: 'node0', masterAddress: 'm'.repeat(56) + '.onion', targetAddress: TARGET, state: 'running' },
    tor: { state: 'ready', pid: 1, restarts: 0, bootstrap: 100, warning: null },
    health: { healthy: true, reasons: [], target: { healthy: true, latencyMs: 5, lastCheckAt: 1, consecutiveFailures: 0, lastError: null }, introPoints: 3, descriptor: 'present' },
    proxy: { open: 0, accepted: 0, rejected: 0, bytesIn: 0, bytesOut: 0, requests: 5, byStatus: {} },
    cluster: {
      nodeId: 'a'.repeat(64),
      role: 'publisher',
      clustered: true,
      transport: 'tcp',
      publisher: { id: 'a'.repeat(64), name: 'node0' },
      electionReason: '',
      nodes: [node('node0', 'a'.repeat(64), 'publisher', true), { ...node('node1', 'b'.repeat(64), 'member', false), traffic: { open: 0, accepted: 20, requests: 17, bytesIn: 1, bytesOut: 2 } }, node('node2\u001b[31m', 'c'.repeat(64), 'member', false, false)],
      mesh: null,
      failClosed: false,
    },
    publish: {
      active: true,
      publishes: 2,
      lastPublishAt: 1,
      lastReason: 'initial',
      introPoints: 6,
      lastError: null,
      descriptors: [
        { descriptor: 'first', periodNum: 10, revisionCounter: '123456', accepted: 6, total: 8, hsdirs: [] },
        { descriptor: 'second', periodNum: 11, revisionCounter: '123457', accepted: 8, total: 8, hsdirs: [] },
      ],
      verification: null,
    },
    timePeriod: { secondsToNext: 3725, lengthMinutes: 1440, nextStartAt: 0, periodNum: 10 },
  };
}

/** {@link doc} with every node alive and healthy. */
function healthyDoc(): StatusDocument {
  const d = doc();
  return { ...d, cluster: { ...d.cluster!, nodes: d.cluster!.nodes.map((n) => ({ ...n, healthy: true, reasons: [], introPoints: 3 })) } };
}

function withNode(d: StatusDocument, name: string, patch: Partial<NonNullable<StatusDocument['cluster']>['nodes'][number]>): StatusDocument {
  return { ...d, cluster: { ...d.cluster!, nodes: d.cluster!.nodes.map((n) => (n.name === name ? { ...n, ...patch } : n)) } };
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => {
      res({ code, stdout, stderr });
    });
  });
}

async function configWithAdmin(): Promise<{ file: string; sock: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tbst-'));
  dirs.push(dir);
  const sock = join(dir, 'a.sock');
  const file = join(dir, 'torbalance.toml');
  await writeFile(file, `[node]\nname = "node0"\ndata_dir = "data"\n\n[master]\nkey_dir = "master"\n\n[target]\naddress = "${TARGET}"\nport = 80\n\n[admin]\nlisten = "unix:${sock}"\n`, { mode: 0o600 });
  return { file, sock };
}

describe('formatStatus', () => {
  it('prints one row per node with role, state, health, intro points, requests and last seen, then the publish summary', () => {
    const text = formatStatus(doc());
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('NODE'));
    expect(lines[header]).toMatch(/^NODE\s+ID\s+ROLE\s+STATE\s+HEALTH\s+INTRO\s+REQUESTS\s+LAST SEEN$/);
    // self: its own proxy counter (the document's node has no traffic field); node1: from its heartbeats; node2: sent none
    expect(lines[header + 2]).toMatch(/^node0 \*\s+aaaaaaaaaaaa\s+publisher\s+alive\s+healthy\s+3\s+5\s+self$/);
    expect(lines[header + 3]).toMatch(/^node1\s+bbbbbbbbbbbb\s+member\s+alive\s+healthy\s+3\s+17\s+now$/);
    // control characters from a peer's name are neutralised
    expect(lines[header + 4]).toMatch(/^node2\?\[31m\s+cccccccccccc\s+member\s+alive\s+UNHEALTHY \(no intro points\)\s+0\s+-\s+now$/);
    expect(text).not.toContain('\u001b');
    expect(text).toContain('publisher:          node0 (aaaaaaaaaaaa)');
    expect(text).toContain('descriptor revision: first 123456 (period 10), second 123457 (period 11)');
    expect(text).toContain('HSDirs accepted:    first 6/8, second 8/8');
    expect(text).toContain('next time period:   in 1h 02m 05s');
    expect(text).toContain('health:             UNHEALTHY: node2?[31m unhealthy (no intro points)\n');
    expect(formatStatus(healthyDoc())).toContain('health:             healthy\n');
  });

  it('on a member: points at the publisher for the descriptor facts', () => {
    const d = doc();
    const m: StatusDocument = { ...d, cluster: { ...d.cluster!, role: 'member', publisher: { id: 'b'.repeat(64), name: 'node1' } }, publish: { ...d.publish!, active: false, descriptors: [] }, timePeriod: null };
    const text = formatStatus(m);
    expect(text).toContain('descriptor revision: not published by this node (ask the publisher, node1)');
    expect(text).toContain('next time period:   unknown');
  });

  it("on a member: shows the publisher's acceptance (n/m) from the mesh instead of asking the publisher", () => {
    const d = doc();
    const report = { id: 'b'.repeat(64), name: 'node1', atMs: -7000, nodes: 3, descriptors: [{ descriptor: 'first' as const, revisionCounter: '99', accepted: 5, total: 8 }, { descriptor: 'second' as const, revisionCounter: null, accepted: null, total: null }] };
    const m: StatusDocument = { ...d, cluster: { ...d.cluster!, role: 'member', publisher: { id: 'b'.repeat(64), name: 'node1' } }, publish: { ...d.publish!, active: false, publisherReport: report } };
    // (this node published earlier: its own records are stale; the publisher's report wins)
    const text = formatStatus(m);
    expect(text).toContain('descriptor revision: first 99, second ?  (reported by node1, published 7s ago)');
    expect(text).toContain('HSDirs accepted:    first 5/8, second ?');
    expect(text).not.toContain('ask the publisher');
    expect(text).not.toContain('123456');
  });

  it('rejects documents of another shape or version', () => {
    expect(() => asStatusDocument({ hello: 1 })).toThrow(/status document/);
    expect(() => asStatusDocument({ ...doc(), version: 2 })).toThrow(/version 2/);
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(61)).toBe('1m 01s');
  });
});

describe('statusProblems (the exit code of status)', () => {
  it('is empty for a running, healthy node whose cluster nodes are all alive and healthy, and for a single node', () => {
    expect(statusProblems(healthyDoc())).toEqual([]);
    expect(statusProblems({ ...healthyDoc(), cluster: null, publish: null })).toEqual([]);
  });

  it('names the answering node when it is not running or not healthy (once, not again as the self row)', () => {
    const d = healthyDoc();
    expect(statusProblems({ ...d, node: { ...d.node, state: 'starting' } })).toEqual(['node0 is starting, not running']);
    const sick = withNode({ ...d, health: { ...d.health, healthy: false, reasons: ['target down', 'tor bootstrap 40%'] } }, 'node0', { healthy: false, reasons: ['target down'] });
    expect(statusProblems(sick)).toEqual(['node0 unhealthy (target down; tor bootstrap 40%)']);
    // the cluster's view of this node can be unhealthy on its own (e.g. no intro points in the cluster)
    expect(statusProblems(withNode(d, 'node0', { healthy: false, reasons: ['no intro points'] }))).toEqual(['node0 unhealthy (no intro points)']);
  });

  it('names peers that are unhealthy, never heard from, suspect or dead; ignores peers that left', () => {
    const d = healthyDoc();
    expect(statusProblems(withNode(d, 'node1', { healthy: false, reasons: ['target down'] }))).toEqual(['node1 unhealthy (target down)']);
    expect(statusProblems(withNode(d, 'node1', { state: 'dead' }))).toEqual(['node1 dead']);
    expect(statusProblems(withNode(d, 'node1', { state: 'suspect' }))).toEqual(['node1 suspect']);
    expect(statusProblems(withNode(d, 'node1', { state: 'known', lastSeenAgoMs: null }))).toEqual(['node1 never heard from']);
    expect(statusProblems(withNode(d, 'node1', { state: 'left', healthy: false }))).toEqual([]);
  });

  it('is unhealthy when peers are live and no publisher is elected (not when the node is alone)', () => {
    const d = healthyDoc();
    expect(statusProblems({ ...d, cluster: { ...d.cluster!, publisher: null } })).toEqual(['no publisher elected']);
    expect(statusProblems({ ...d, cluster: { ...d.cluster!, publisher: null, clustered: false, nodes: d.cluster!.nodes.slice(0, 1) } })).toEqual([]);
  });
});

describe('torbalance status (spawned)', () => {
  it('reads admin.listen from the config, prints the table and --json; unreachable when no node runs', async () => {
    requireBuilt('dist/src/cli/main.js', 'dist/src/cli/commands/status.js');
    const { file, sock } = await configWithAdmin();
    const down = await run(['status', '--config', file]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('TB_ERR_ADMIN_UNREACHABLE');
    expect(down.stderr).toContain('is the node running?');
    let served = healthyDoc();
    const server = new AdminServer({ listen: { kind: 'unix', path: sock }, routes: [{ method: 'GET', path: '/status', handler: () => ({ status: 200, json: served }) }] });
    await server.start();
    try {
      expect((await fetchStatus(file)).cluster?.nodes).toHaveLength(3);
      const r = await run(['status', '--config', file]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('HSDirs accepted:    first 6/8, second 8/8');
      expect(r.stdout).toContain('health:             healthy');
      expect(r.stdout.match(/ publisher /g)).toHaveLength(1);
      const j = await run(['status', '--config', file, '--json']);
      expect(j.code).toBe(0);
      expect(JSON.parse(j.stdout)).toEqual(JSON.parse(JSON.stringify(healthyDoc())));

      // one peer unhealthy: the table is still printed, then exit 1 with the reasons
      served = doc();
      const u = await run(['status', '--config', file]);
      expect(u.code).toBe(1);
      expect(u.stdout).toMatch(/^node2\?\[31m\s+cccccccccccc\s+member\s+alive\s+UNHEALTHY/m);
      expect(u.stderr).toBe('torbalance: error TB_ERR_STATUS_UNHEALTHY: unhealthy: node2?[31m unhealthy (no intro points)\n');
      const uj = await run(['status', '--config', file, '--json']);
      expect(uj.code).toBe(1);
      expect(JSON.parse(uj.stdout)).toEqual(JSON.parse(JSON.stringify(doc())));
      expect(uj.stderr).toContain('TB_ERR_STATUS_UNHEALTHY');
    } finally {
      await server.stop();
    }
  });
});
