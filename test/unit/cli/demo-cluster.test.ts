/**
 * Pure parts of the demo cluster (src/cli/commands/demo-cluster.ts): which node served a
 * request (request counters), when the cluster has formed, what a failover looked like (in
 * whatever order the snapshots show it), and the operator's output lines.
 */
import { describe, expect, it } from 'vitest';
import { testingNetworkPeriodParams } from '../../../src/core/hs/time-period.js';
import { scheduleEvents,
  attributeServed,
  cachedDescriptorAge,
  clusterConverged,
  FailoverWatch,
  formatNodeList,
  formatPublish,
  formatVisit,
  nodeNames,
  proxyRequestsOf,
  summarisePublish,
  type StatusSnapshot,
} from '../../../src/cli/commands/demo-cluster.js';
import type { PublishRecord } from '../../../src/node/publisher/publisher.js';

const FP = (c: string): string => c.repeat(40);

function record(perNode: Record<string, number>, revisions: [string, string] = ['100', '200']): PublishRecord {
  return {
    atMs: 1,
    endMs: 2,
    reason: 'initial',
    introDigest: 'x',
    introPoints: Object.values(perNode).reduce((a, b) => a + b, 0),
    perNode,
    descriptors: [
      { descriptor: 'first', periodNum: 1, blindedKey: 'a', revisionCounter: revisions[0], servers: [FP('A'), FP('B')], postMs: 3 },
      { descriptor: 'second', periodNum: 2, blindedKey: 'b', revisionCounter: revisions[1], servers: [FP('B'), FP('C')], postMs: 3 },
    ],
    hsdirs: [
      { descriptor: 'first', fp: FP('A'), result: 'uploaded', ms: 5 },
      { descriptor: 'first', fp: FP('B'), result: 'failed', reason: 'UPLOAD_REJECTED', ms: 5 },
      { descriptor: 'second', fp: FP('B'), result: 'uploaded', ms: 5 },
      { descriptor: 'second', fp: FP('C'), result: 'timeout', ms: 5 },
    ],
  };
}

function snap(id: string, name: string, publisher: string | undefined, rec?: PublishRecord, peers: [string, string, string][] = []): StatusSnapshot {
  return {
    pid: 1,
    atMs: 1,
    proxy: { requests: 0 },
    cluster: {
      nodeId: id,
      name,
      publisher,
      peers: peers.map(([pid, pname, state]) => ({ id: pid, name: pname, state })),
      publish: rec === undefined ? undefined : { lastPublish: rec },
    },
  } as unknown as StatusSnapshot;
}

describe('attributeServed', () => {
  it('names the node whose counter grew', () => {
    expect(attributeServed([3, 5, 0], [3, 6, 0])).toEqual([1]);
  });
  it('counts a node seen for the first time from zero', () => {
    expect(attributeServed([undefined, 2], [1, 2])).toEqual([0]);
    expect(attributeServed([undefined, 2], [0, 2])).toEqual([]);
  });
  it('ignores nodes without a reading and reports several when several grew', () => {
    expect(attributeServed([1, 1, 1], [undefined, 2, 3])).toEqual([1, 2]);
  });
  it('nothing grew → nobody', () => {
    expect(attributeServed([4, 4], [4, 4])).toEqual([]);
  });
});

describe('output lines', () => {
  it('lists nodes in prose', () => {
    expect(formatNodeList([])).toBe('an unknown node');
    expect(formatNodeList(['node-2'])).toBe('node-2');
    expect(formatNodeList(['node-1', 'node-3'])).toBe('node-1 and node-3');
    expect(formatNodeList(['node-1', 'node-2', 'node-3'])).toBe('node-1, node-2 and node-3');
  });

  it('a visit: status, latency, serving node, address checks, note', () => {
    expect(formatVisit({ n: 12, status: 200, ms: 139.6, servedBy: ['node-2'], namesMaster: true, leaksTarget: false })).toBe(
      '  #12 200 in 140 ms — served by node-2 (links name the master address)',
    );
    expect(formatVisit({ n: 3, status: 200, ms: 900, servedBy: ['node-3'], namesMaster: true, leaksTarget: false, note: 'the cluster recovered in 23.0 s' })).toBe(
      '  #3 200 in 900 ms — served by node-3 (links name the master address) — the cluster recovered in 23.0 s',
    );
    expect(formatVisit({ n: 1, status: 502, ms: 10, servedBy: [], namesMaster: false, leaksTarget: true })).toContain('served by an unknown node (TARGET ADDRESS VISIBLE (bug))');
  });

  it('a publish: revisions, distinct HSDirs that accepted, nodes by name', () => {
    const names = new Map([
      ['id-b', 'node-2'],
      ['id-c', 'node-3'],
    ]);
    const s = summarisePublish(record({ 'id-c': 3, 'id-b': 2 }), names);
    expect(s).toEqual({ revisions: ['100', '200'], accepted: 2, tried: 3, nodes: [{ name: 'node-2', introPoints: 2 }, { name: 'node-3', introPoints: 3 }] });
    expect(formatPublish(s)).toBe('revisions 100 and 200, 2/3 HSDirs accepted, nodes node-2, node-3');
    expect(formatPublish(summarisePublish(record({ 'id-b': 3, 'unknown-id-0123': 1 }, ['7', '7']), names), true)).toBe(
      'revision 7, 2/3 HSDirs accepted, nodes node-2 (3 intro points), unknown- (1 intro points)',
    );
  });
});

describe('cachedDescriptorAge (the visitor tor\'s cached descriptor against the newest publish)', () => {
  const rec = record({ n1: 3 }, ['100', '200']);
  it.each([
    ['older revision for the same blinded key', { blindedKey: 'a', revisionCounter: 99n, introPoints: 2 }, 'stale'],
    ['the same revision', { blindedKey: 'a', revisionCounter: 100n, introPoints: 3 }, 'current'],
    ['a newer one (another publisher posted since)', { blindedKey: 'b', revisionCounter: 201n, introPoints: 3 }, 'current'],
    ['a blinded key not in the publish', { blindedKey: 'z', revisionCounter: 1n, introPoints: 3 }, 'unknown'],
  ] as const)('%s → %s', (_name, cached, want) => {
    expect(cachedDescriptorAge(cached, rec)).toBe(want);
  });
  it('nothing cached or nothing published → unknown; a descriptor that failed to build is not compared', () => {
    expect(cachedDescriptorAge(undefined, rec)).toBe('unknown');
    expect(cachedDescriptorAge({ blindedKey: 'a', revisionCounter: 1n, introPoints: 1 }, undefined)).toBe('unknown');
    const failed = { ...rec, descriptors: [{ ...rec.descriptors[0]!, revisionCounter: '' }] };
    expect(cachedDescriptorAge({ blindedKey: 'a', revisionCounter: 1n, introPoints: 1 }, failed)).toBe('unknown');
  });
});

describe('clusterConverged', () => {
  const full = record({ a: 3, b: 3, c: 3 });
  it('formed: all agree on the publisher, whose last publish has every node', () => {
    const st = [snap('a', 'node-1', 'b'), snap('b', 'node-2', 'b', full), snap('c', 'node-3', 'b')];
    expect(clusterConverged(st, 3)).toEqual({ publisher: 1, record: full });
  });
  it('not formed: a node without a snapshot, disagreement, no publisher, or a partial descriptor', () => {
    expect(clusterConverged([snap('a', 'node-1', 'a', full), undefined, snap('c', 'node-3', 'a')], 3)).toBeUndefined();
    expect(clusterConverged([snap('a', 'node-1', 'a', full), snap('b', 'node-2', 'b', full), snap('c', 'node-3', 'a')], 3)).toBeUndefined();
    expect(clusterConverged([snap('a', 'node-1', undefined), snap('b', 'node-2', undefined)], 2)).toBeUndefined();
    expect(clusterConverged([snap('a', 'node-1', 'a', record({ a: 3, b: 3 })), snap('b', 'node-2', 'a'), snap('c', 'node-3', 'a')], 3)).toBeUndefined();
    expect(clusterConverged([snap('a', 'node-1', 'x'), snap('b', 'node-2', 'x')], 2)).toBeUndefined();
    expect(clusterConverged([], 0)).toBeUndefined();
  });
});

describe('nodeNames', () => {
  it('maps ids to names from own statuses and peers', () => {
    const m = nodeNames([snap('a', 'node-1', 'a', undefined, [['c', 'node-3', 'dead']]), undefined, snap('b', 'node-2', 'a')]);
    expect([...m.entries()].sort()).toEqual([
      ['a', 'node-1'],
      ['b', 'node-2'],
      ['c', 'node-3'],
    ]);
  });
});

describe('proxyRequestsOf (admin API /status)', () => {
  it('reads proxy.requests and refuses anything else', () => {
    expect(proxyRequestsOf({ version: 1, proxy: { requests: 7 } })).toBe(7);
    for (const bad of [undefined, null, 3, {}, { proxy: null }, { proxy: { requests: '7' } }, { proxy: { requests: -1 } }, { proxy: { requests: 1.5 } }]) {
      expect(proxyRequestsOf(bad)).toBeUndefined();
    }
  });
});

describe('FailoverWatch (node-2 killed; node-1 and node-3 survive)', () => {
  const KILLED_AT = 1000;
  const after = record({ a: 3, c: 3 });
  const republish = { ...after, atMs: KILLED_AT + 6000 };
  /** node `id`'s snapshot: its view of node-2 (`b`), the publisher it sees, and its own publishing. */
  function survivor(id: string, name: string, b: string | undefined, publisher: string, own?: { publishes: number; rec: PublishRecord }): StatusSnapshot {
    return {
      pid: 1,
      atMs: 1,
      proxy: { requests: 0 },
      cluster: {
        nodeId: id,
        name,
        publisher,
        selfIsPublisher: publisher === id,
        peers: [...(b === undefined ? [] : [{ id: 'b', name: 'node-2', state: b }]), { id: id === 'a' ? 'c' : 'a', name: id === 'a' ? 'node-3' : 'node-1', state: 'alive' }],
        publish: own === undefined ? undefined : { publishes: own.publishes, lastPublish: own.rec },
      },
    } as unknown as StatusSnapshot;
  }
  const watch = (): FailoverWatch =>
    new FailoverWatch({
      victimId: 'b',
      victimName: 'node-2',
      survivors: [
        { index: 0, name: 'node-1', publishesBefore: 0 },
        { index: 2, name: 'node-3', publishesBefore: 4 },
      ],
      killedAtWallMs: KILLED_AT,
    });

  it('in order: silent, dead, elected, republished', () => {
    const w = watch();
    expect(w.observe([survivor('a', 'node-1', 'alive', 'b'), undefined, survivor('c', 'node-3', 'alive', 'b')], 500)).toEqual([]);
    expect(w.observe([survivor('a', 'node-1', 'suspect', 'b'), undefined, survivor('c', 'node-3', 'alive', 'b')], 2000)).toEqual(['  node-1 noticed node-2 went silent (2.0 s after the kill)']);
    expect(w.observe([survivor('a', 'node-1', 'dead', 'b'), undefined, survivor('c', 'node-3', 'dead', 'b')], 5500)).toEqual(['  node-1 and node-3 declared node-2 dead (5.5 s after the kill)']);
    expect(w.complete).toBe(false);
    expect(w.observe([survivor('a', 'node-1', 'dead', 'c'), undefined, survivor('c', 'node-3', 'dead', 'c', { publishes: 5, rec: republish })], 6500)).toEqual([
      '  node-3 is now the publisher (elected 6.5 s after the kill)',
      '  descriptor republished by node-3 6.5 s after the kill: revisions 100 and 200, 2/3 HSDirs accepted, nodes node-1, node-3',
    ]);
    expect(w.complete).toBe(true);
    expect(w.times).toEqual({ silent: 2000, dead: 5500, elected: 6500, republished: 6500 });
    expect(w.missing(7000)).toEqual([]);
  });

  it('the republish seen before every survivor shows node-2 dead: the death is still reported, when seen', () => {
    const w = watch();
    // node-3 declared node-2 dead, took over and republished; node-1's snapshot still says suspect.
    const first = w.observe([survivor('a', 'node-1', 'suspect', 'b'), undefined, survivor('c', 'node-3', 'dead', 'c', { publishes: 5, rec: republish })], 6200);
    expect(first).toEqual([
      '  node-1 noticed node-2 went silent (6.2 s after the kill)',
      '  descriptor republished by node-3 6.2 s after the kill: revisions 100 and 200, 2/3 HSDirs accepted, nodes node-1, node-3',
    ]);
    expect(w.complete).toBe(false);
    // node-1 had no snapshot this round: its last view (suspect) stands, nothing is concluded.
    expect(w.observe([undefined, undefined, survivor('c', 'node-3', 'dead', 'c', { publishes: 5, rec: republish })], 6400)).toEqual([]);
    const later = w.observe([survivor('a', 'node-1', 'dead', 'c'), undefined, survivor('c', 'node-3', 'dead', 'c', { publishes: 5, rec: republish })], 7100);
    expect(later).toEqual([
      '  node-1 and node-3 declared node-2 dead (7.1 s after the kill; the descriptor republished above had already left it out)',
      '  node-3 is now the publisher (elected 7.1 s after the kill)',
    ]);
    expect(w.complete).toBe(true);
  });

  it('a survivor that dropped node-2 from its peers counts as having declared it dead', () => {
    const w = watch();
    w.observe([survivor('a', 'node-1', undefined, 'c'), undefined, survivor('c', 'node-3', 'dead', 'c')], 6000);
    expect(w.times.dead).toBe(6000);
  });

  it('not a republish: a publish from before the kill, with node-2, or not by the publisher', () => {
    const w = watch();
    const st = (own: { publishes: number; rec: PublishRecord }, publisher = 'c'): (StatusSnapshot | undefined)[] => [survivor('a', 'node-1', 'dead', publisher), undefined, survivor('c', 'node-3', 'dead', publisher, own)];
    w.observe(st({ publishes: 4, rec: republish }), 6000); // no publish since the kill
    w.observe(st({ publishes: 5, rec: { ...after, atMs: KILLED_AT - 1 } }), 6100);
    w.observe(st({ publishes: 5, rec: { ...record({ a: 3, b: 3, c: 3 }), atMs: KILLED_AT + 1 } }), 6200);
    w.observe(st({ publishes: 5, rec: republish }, 'a'), 6300); // node-3 is not the publisher
    expect(w.times.republished).toBeUndefined();
  });

  it('steps never seen are stated plainly', () => {
    const w = watch();
    w.observe([survivor('a', 'node-1', 'suspect', 'b'), undefined, survivor('c', 'node-3', 'dead', 'c', { publishes: 5, rec: republish })], 6000);
    expect(w.missing(180_500)).toEqual([
      '  node-2 was not declared dead by every survivor within 180.5 s of the kill (node-1: suspect, node-3: dead)',
      '  the survivors did not agree on a new publisher within 180.5 s of the kill',
    ]);
    const none = watch();
    expect(none.missing(180_000)).toEqual([
      '  no survivor noticed node-2 went silent within 180.0 s of the kill (node-1: no status, node-3: no status)',
      '  node-2 was not declared dead by every survivor within 180.0 s of the kill (node-1: no status, node-3: no status)',
      '  the survivors did not agree on a new publisher within 180.0 s of the kill',
      '  no survivor republished the descriptor without node-2 within 180.0 s of the kill',
    ]);
  });
});

describe('scheduleEvents', () => {
  const tp = testingNetworkPeriodParams(10); // runs of 240 s, period starts 120 s into a run
  const S = 1_750_000_080 - (1_750_000_080 % 240);
  it('names a rotation and a period start between two visits, and nothing otherwise', () => {
    expect(scheduleEvents(S + 10, S + 12, tp)).toBeUndefined();
    expect(scheduleEvents(S - 1, S + 1, tp)).toMatch(/rotated its descriptors/);
    expect(scheduleEvents(S - 1, S + 1, tp)).not.toMatch(/time period/);
    expect(scheduleEvents(S + 119, S + 121, tp)).toMatch(/new time period began/);
    expect(scheduleEvents(S + 119, S + 121, tp)).not.toMatch(/rotated/);
    expect(scheduleEvents(S + 100, S + 250, tp)).toMatch(/rotated.*; a new time period/);
  });
});
