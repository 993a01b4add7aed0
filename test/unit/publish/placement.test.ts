/**
 * Which HSDir gets which descriptor (src/core/publish/placement.ts): merged, spread past 20
 * intro points, and per-node with each node's own pow-params — as properties over random
 * clusters and rings, plus the mode switch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planPlacement, placementMode, POW_EXPIRY_MARGIN_SECONDS, type PlacementNode } from '../../../src/core/publish/placement.js';
import type { IntroPointWire } from '../../../src/core/intro/wire.js';
import { toBase64 } from '../../../src/core/bytes.js';
import { encodeLinkSpecifiers, legacyIdLinkSpecifier } from '../../../src/core/hsdesc/link-specifiers.js';

const pt = (node: string, n: number): IntroPointWire => ({ ls: 'AA==', onionKey: `o${node}${n}`, authKey: `${node}:${n}`, encKey: `e${node}${n}` });
const NOW = 1_800_000_000;
const seed = (id: string): string => id.padEnd(43, 'A') + '=';
const node = (id: string, count: number, effort?: number, expires = NOW + 7200): PlacementNode => ({
  id,
  introPoints: Array.from({ length: count }, (_, i) => pt(id, i)),
  ...(effort === undefined ? {} : { pow: { seed: seed(id), effort, expires } }),
});
const hsdirs = (n: number): string[] => Array.from({ length: n }, (_, i) => `H${i}`);
const ownerOf = (p: IntroPointWire): string => p.authKey.split(':')[0]!;

describe('placementMode', () => {
  const base = { max: 20, setting: 'auto' as const, powEnabled: true, nowSeconds: NOW };
  it('auto: per-node once a node suggests effort > 0 (PoW published), spread past max, else merged', () => {
    expect(placementMode({ ...base, nodes: [node('a', 3, 0), node('b', 3, 0)] })).toBe('merged');
    expect(placementMode({ ...base, nodes: [node('a', 3, 0), node('b', 3, 12)] })).toBe('per-node');
    expect(placementMode({ ...base, powEnabled: false, nodes: [node('a', 3, 0), node('b', 3, 12)] })).toBe('merged');
    expect(placementMode({ ...base, nodes: [node('a', 8), node('b', 8), node('c', 8)] })).toBe('spread');
    // An effort whose pow-params are about to expire does not count.
    expect(placementMode({ ...base, nodes: [node('a', 3, 50, NOW + POW_EXPIRY_MARGIN_SECONDS)] })).toBe('merged');
  });
  it('a forced setting wins', () => {
    expect(placementMode({ ...base, setting: 'merged', nodes: [node('a', 3, 50), node('b', 30)] })).toBe('merged');
    expect(placementMode({ ...base, setting: 'per-node', nodes: [node('a', 3)] })).toBe('per-node');
  });
});

const cluster = fc.record({
  counts: fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 9 }),
  efforts: fc.array(fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), { minLength: 9, maxLength: 9 }),
  nHsdirs: fc.integer({ min: 1, max: 8 }),
  nFetch: fc.integer({ min: 1, max: 6 }),
  periodNum: fc.integer({ min: 0, max: 100_000 }),
  setting: fc.constantFrom('auto' as const, 'merged' as const, 'per-node' as const),
  max: fc.integer({ min: 3, max: 20 }),
});

describe('planPlacement (properties)', () => {
  it('every HSDir gets exactly one variant of ≤ max points; per-node variants hold one node with its own pow-params', () => {
    fc.assert(
      fc.property(cluster, (c) => {
        const nodes = c.counts.map((n, i) => node(`n${i}`, n, c.efforts[i]));
        const hs = hsdirs(c.nHsdirs);
        const fetch = new Set(hs.slice(0, Math.min(c.nFetch, hs.length)));
        const p = planPlacement({ hsdirs: hs, fetchHsdirs: fetch, nodes, max: c.max, setting: c.setting, powEnabled: true, periodNum: c.periodNum, nowSeconds: NOW });
        const withPoints = nodes.filter((n) => n.introPoints.length > 0);
        if (withPoints.length === 0) {
          expect(p.groups).toEqual([]);
          return;
        }
        expect(p.groups.flatMap((g) => g.servers).sort()).toEqual([...hs].sort());
        for (const g of p.groups) {
          expect(g.chosen.length).toBeGreaterThan(0);
          expect(g.chosen.length).toBeLessThanOrEqual(c.max);
          expect(new Set(g.chosen.map((x) => x.point.authKey)).size).toBe(g.chosen.length);
          for (const x of g.chosen) expect(ownerOf(x.point)).toBe(x.nodeId);
        }
        if (p.mode === 'per-node') {
          for (const g of p.groups) {
            const owners = new Set(g.chosen.map((x) => x.nodeId));
            expect(owners.size).toBe(1);
            const id = [...owners][0]!;
            const n = nodes.find((x) => x.id === id)!;
            if (g.pow !== undefined) {
              expect(g.pow.nodeId).toBe(id);
              expect(g.pow.params).toEqual(n.pow);
            } else expect(n.pow).toBeUndefined();
          }
          // Fetch HSDirs reach as many nodes as there are fetch HSDirs (or all nodes).
          const reached = new Set(p.groups.filter((g) => g.servers.some((s) => fetch.has(s))).map((g) => g.chosen[0]!.nodeId));
          expect(reached.size).toBe(Math.min(withPoints.length, fetch.size));
          expect(p.unplaced.length).toBe(withPoints.length - reached.size);
        } else {
          for (const g of p.groups) expect(g.pow).toBeUndefined();
        }
        if (p.mode === 'merged') expect(p.groups).toHaveLength(1);
        if (p.mode === 'spread') {
          // Every node that fits in one descriptor is in every variant.
          if (withPoints.length <= c.max) for (const g of p.groups) expect(new Set(g.chosen.map((x) => x.nodeId)).size).toBe(withPoints.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('spread lists more than max in total: 8 nodes × 3 on 8 HSDirs, all 24 points', () => {
    const nodes = Array.from({ length: 8 }, (_, i) => node(`n${i}`, 3));
    const p = planPlacement({ hsdirs: hsdirs(8), fetchHsdirs: new Set(hsdirs(6)), nodes, max: 20, setting: 'auto', powEnabled: false, periodNum: 7, nowSeconds: NOW });
    expect(p.mode).toBe('spread');
    const all = new Set(p.groups.flatMap((g) => g.chosen.map((x) => x.point.authKey)));
    expect(all.size).toBe(24);
    // …and so does what clients can fetch (the 6 fetch HSDirs).
    const fetched = new Set(p.groups.filter((g) => g.servers.some((s) => Number(s.slice(1)) < 6)).flatMap((g) => g.chosen.map((x) => x.point.authKey)));
    expect(fetched.size).toBe(24);
  });

  it('per-node: 3 nodes on 6 fetch + 2 store-only HSDirs get two fetch HSDirs each; expiring pow-params are left out', () => {
    const nodes = [node('a', 3, 10), node('b', 3, 0), node('c', 3, 0, NOW + 30)];
    const p = planPlacement({ hsdirs: hsdirs(8), fetchHsdirs: new Set(hsdirs(6)), nodes, max: 20, setting: 'auto', powEnabled: true, periodNum: 0, nowSeconds: NOW });
    expect(p.mode).toBe('per-node');
    const byNode = Object.fromEntries(p.groups.map((g) => [g.chosen[0]!.nodeId, g]));
    for (const id of ['a', 'b', 'c']) expect(byNode[id]!.servers.filter((s) => Number(s.slice(1)) < 6)).toHaveLength(2);
    expect(byNode['a']!.pow?.params.effort).toBe(10);
    expect(byNode['b']!.pow?.params.effort).toBe(0);
    expect(byNode['c']!.pow).toBeUndefined();
    // powEnabled false: per-node by setting, but never pow-params.
    const q = planPlacement({ hsdirs: hsdirs(8), fetchHsdirs: new Set(hsdirs(6)), nodes, max: 20, setting: 'per-node', powEnabled: false, periodNum: 0, nowSeconds: NOW });
    expect(q.groups.every((g) => g.pow === undefined)).toBe(true);
  });

  it('more nodes than fetch HSDirs: a different subset waits each period, and the key names the change', () => {
    const nodes = Array.from({ length: 8 }, (_, i) => node(`n${i}`, 2, 5));
    const plan = (periodNum: number): ReturnType<typeof planPlacement> =>
      planPlacement({ hsdirs: hsdirs(8), fetchHsdirs: new Set(hsdirs(6)), nodes, max: 20, setting: 'auto', powEnabled: true, periodNum, nowSeconds: NOW });
    expect(plan(0).unplaced).toEqual(['n6', 'n7']);
    expect(plan(1).unplaced).toEqual(['n0', 'n7']);
    expect(plan(0).key).not.toBe(plan(1).key);
    expect(plan(0).key).toBe(plan(8).key);
  });
});

describe('spread on a small network (one intro point per relay per descriptor)', () => {
  it('3 nodes × 7 intro points on 8 relays: each variant ≤ 8 points from all 3 nodes, the fetch HSDirs together list all 21', () => {
    const relay = (r: number): string => toBase64(encodeLinkSpecifiers([legacyIdLinkSpecifier(new Uint8Array(20).fill(r + 1))]));
    // node k's point i sits on relay (i + k) mod 8, as tor spreads each node's points over distinct relays.
    const nodes: PlacementNode[] = ['a', 'b', 'c'].map((id, k) => ({
      id,
      introPoints: Array.from({ length: 7 }, (_, i) => ({ ...pt(id, i), ls: relay((i + k) % 8) })),
    }));
    const p = planPlacement({ hsdirs: hsdirs(8), fetchHsdirs: new Set(hsdirs(6)), nodes, max: 20, setting: 'auto', powEnabled: false, periodNum: 3, nowSeconds: NOW });
    expect(p.mode).toBe('spread');
    for (const g of p.groups) {
      expect(g.chosen.length).toBeLessThanOrEqual(8);
      expect(new Set(g.chosen.map((x) => x.point.ls)).size).toBe(g.chosen.length);
      expect(new Set(g.chosen.map((x) => x.nodeId)).size).toBe(3);
    }
    const fetched = new Set(p.groups.filter((g) => g.servers.some((s) => Number(s.slice(1)) < 6)).flatMap((g) => g.chosen.map((x) => x.point.authKey)));
    expect(fetched.size).toBe(21);
  });
});
