/**
 * IntroPointWire conversions and the intro digest; selectIntroPoints fairness, bounds,
 * determinism and stability (property tests).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../../src/core/bytes.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers, LS_LEGACY_ID } from '../../../src/core/hsdesc/link-specifiers.js';
import { DecodeError } from '../../../src/core/errors.js';
import { introPointRelay, selectIntroPoints, selectIntroPointsByNode, type NodeIntroPoints } from '../../../src/core/publish/select.js';
import { introDigest, introPointToWire, introPointFromWire, type IntroPointWire } from '../../../src/core/intro/wire.js';
import { makeIntroPoint, makeIntroPoints, seededRandom } from './fakes.js';

describe('IntroPointWire', () => {
  const rnd = seededRandom(7);
  it('round-trips through IntroPointInput byte for byte', () => {
    const w = makeIntroPoint(rnd, 1);
    const input = introPointFromWire(w);
    expect(introPointToWire(input)).toEqual(w);
    expect(input.linkSpecifiers.map((l) => l.type)).toEqual([0, 2, 3]);
  });

  const bad: [string, (w: IntroPointWire) => unknown][] = [
    ['ls not base64', (w) => ({ ...w, ls: '!!!!' })],
    ['ls empty', (w) => ({ ...w, ls: '' })],
    ['ls too long', (w) => ({ ...w, ls: 'A'.repeat(2000) })],
    ['ls with trailing bytes', (w) => ({ ...w, ls: toBase64(new Uint8Array([0, 7])) })],
    ['ls with zero specifiers', (w) => ({ ...w, ls: toBase64(new Uint8Array([0])) })],
    ['ls truncated', (w) => ({ ...w, ls: toBase64(new Uint8Array([1, 0, 6, 1])) })],
    ['onionKey short', (w) => ({ ...w, onionKey: toBase64(new Uint8Array(31)) })],
    ['authKey not a string', (w) => ({ ...w, authKey: 5 })],
    ['encKey 44 chars but not base64', (w) => ({ ...w, encKey: '*'.repeat(44) })],
    ['not an object', () => null],
  ];
  for (const [name, mk] of bad) {
    it(`rejects ${name} with TB_ERR_PUBLISHER_WIRE`, () => {
      const w = mk(makeIntroPoint(rnd, 2)) as IntroPointWire;
      let err: unknown;
      try {
        introPointFromWire(w);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DecodeError);
      expect((err as DecodeError).code).toBe('TB_ERR_PUBLISHER_WIRE');
    });
  }

  it('digest ignores order and duplicates, and changes with any point', () => {
    const pts = makeIntroPoints(rnd, 5);
    const d = introDigest(pts);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(introDigest([...pts].reverse())).toBe(d);
    expect(introDigest([...pts, pts[0]!])).toBe(d);
    expect(introDigest(pts.slice(1))).not.toBe(d);
    expect(introDigest([{ ...pts[0]!, encKey: pts[1]!.encKey }, ...pts.slice(1)])).not.toBe(d);
  });
});

// ---------------------------------------------------------------------------------------

const POOL = makeIntroPoints(seededRandom(99), 120);

/** Arbitrary clusters: up to 8 nodes with 0..12 distinct points each from a shared pool. */
const clusterArb = fc
  .array(fc.nat({ max: 12 }), { minLength: 0, maxLength: 8 })
  .chain((counts) =>
    fc.shuffledSubarray(POOL.map((_, i) => i), { minLength: counts.reduce((a, b) => a + b, 0), maxLength: counts.reduce((a, b) => a + b, 0) }).map((idx) => {
      let o = 0;
      return counts.map((c, n) => {
        const pts = idx.slice(o, o + c).map((i) => POOL[i]!);
        o += c;
        return { id: `node${String(n).padStart(2, '0')}`, introPoints: pts };
      });
    }),
  );

function countBy(sel: { nodeId: string }[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of sel) m.set(s.nodeId, (m.get(s.nodeId) ?? 0) + 1);
  return m;
}

describe('selectIntroPoints', () => {
  it('takes min(max, total) points, each from its own node, no duplicates', () => {
    fc.assert(
      fc.property(clusterArb, fc.integer({ min: 1, max: 20 }), (nodes, max) => {
        const sel = selectIntroPointsByNode(nodes, max);
        const total = nodes.reduce((a, n) => a + n.introPoints.length, 0);
        expect(sel.length).toBe(Math.min(max, total));
        expect(new Set(sel.map((s) => s.point.authKey)).size).toBe(sel.length);
        for (const s of sel) expect(nodes.find((n) => n.id === s.nodeId)!.introPoints).toContain(s.point);
      }),
    );
  });

  it('is fair: every node gets min(own, ⌊max/n⌋) at least; non-exhausted nodes differ by at most one', () => {
    fc.assert(
      fc.property(clusterArb, fc.integer({ min: 1, max: 20 }), (nodes, max) => {
        const withPoints = nodes.filter((n) => n.introPoints.length > 0);
        const counts = countBy(selectIntroPointsByNode(nodes, max));
        const share = withPoints.length === 0 ? 0 : Math.floor(max / withPoints.length);
        for (const n of withPoints) expect(counts.get(n.id) ?? 0).toBeGreaterThanOrEqual(Math.min(n.introPoints.length, share));
        const notExhausted = withPoints.filter((n) => (counts.get(n.id) ?? 0) < n.introPoints.length).map((n) => counts.get(n.id) ?? 0);
        const all = withPoints.map((n) => counts.get(n.id) ?? 0);
        if (notExhausted.length > 0) expect(Math.max(...all) - Math.min(...notExhausted)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('never exceeds 20 by default even with 8 × 12 points', () => {
    const nodes = Array.from({ length: 8 }, (_, i) => ({ id: `n${i}`, introPoints: POOL.slice(i * 12, i * 12 + 12) }));
    const sel = selectIntroPoints(nodes);
    expect(sel).toHaveLength(20);
  });

  it('is deterministic and independent of node and point order', () => {
    fc.assert(
      fc.property(clusterArb, fc.integer({ min: 1, max: 20 }), fc.nat(), (nodes, max, seed) => {
        const a = selectIntroPoints(nodes, max);
        const shuffle = <T,>(xs: readonly T[], s: number): T[] => {
          const r = seededRandom(s + 1);
          const out = [...xs];
          for (let i = out.length - 1; i > 0; i--) {
            const j = r(1)[0]! % (i + 1);
            [out[i], out[j]] = [out[j]!, out[i]!];
          }
          return out;
        };
        const permuted: NodeIntroPoints[] = shuffle(nodes, seed).map((n) => ({ id: n.id, introPoints: shuffle(n.introPoints, seed + 7) }));
        expect(selectIntroPoints(permuted, max)).toEqual(a);
      }),
    );
  });

  it('is stable: replacing one point of one node changes at most one chosen point', () => {
    fc.assert(
      fc.property(clusterArb, fc.integer({ min: 1, max: 20 }), fc.nat(), fc.nat(), (nodes, max, which, pick) => {
        const nonEmpty = nodes.filter((n) => n.introPoints.length > 0);
        if (nonEmpty.length === 0) return;
        const victim = nonEmpty[which % nonEmpty.length]!;
        const used = new Set(nodes.flatMap((n) => n.introPoints.map((p) => p.authKey)));
        const fresh = POOL.find((p, i) => i >= pick % POOL.length && !used.has(p.authKey)) ?? POOL.find((p) => !used.has(p.authKey));
        if (fresh === undefined) return;
        const k = pick % victim.introPoints.length;
        const changed = nodes.map((n) =>
          n.id === victim.id ? { id: n.id, introPoints: n.introPoints.map((p, i) => (i === k ? fresh : p)) } : n,
        );
        const before = new Set(selectIntroPoints(nodes, max).map((p) => p.authKey));
        const after = new Set(selectIntroPoints(changed, max).map((p) => p.authKey));
        const removed = [...before].filter((x) => !after.has(x)).length;
        const added = [...after].filter((x) => !before.has(x)).length;
        expect(removed).toBeLessThanOrEqual(1);
        expect(added).toBeLessThanOrEqual(1);
        expect(after.size).toBe(before.size);
      }),
    );
  });

  it('leaves other nodes untouched when a node changes points but not its count', () => {
    const nodes = [
      { id: 'a', introPoints: POOL.slice(0, 10) },
      { id: 'b', introPoints: POOL.slice(10, 20) },
      { id: 'c', introPoints: POOL.slice(20, 30) },
    ];
    const before = selectIntroPointsByNode(nodes);
    const after = selectIntroPointsByNode([nodes[0]!, { id: 'b', introPoints: POOL.slice(40, 50) }, nodes[2]!]);
    const of = (s: typeof before, id: string): string[] => s.filter((x) => x.nodeId === id).map((x) => x.point.authKey);
    expect(of(after, 'a')).toEqual(of(before, 'a'));
    expect(of(after, 'c')).toEqual(of(before, 'c'));
    expect([...countBy(after).values()].sort()).toEqual([6, 7, 7]);
  });

  it('counts a point listed by two nodes once, for the lower node id', () => {
    const shared = POOL[0]!;
    const sel = selectIntroPointsByNode([
      { id: 'b', introPoints: [shared, POOL[1]!] },
      { id: 'a', introPoints: [shared] },
    ]);
    expect(sel.filter((s) => s.point.authKey === shared.authKey)).toEqual([{ nodeId: 'a', point: shared }]);
    expect(sel).toHaveLength(2);
  });

  /** `p` moved onto the relay of `on` (its legacy RSA identity link specifier replaced). */
  function onRelayOf(p: IntroPointWire, on: IntroPointWire): IntroPointWire {
    const rsa = decodeLinkSpecifiers(fromBase64(on.ls)).find((l) => l.type === LS_LEGACY_ID)!;
    const specs = decodeLinkSpecifiers(fromBase64(p.ls)).map((l) => (l.type === LS_LEGACY_ID ? rsa : l));
    return { ...p, ls: toBase64(encodeLinkSpecifiers(specs)) };
  }

  it('keys a point by its relay (legacy RSA identity), or by its auth key when the list has none or is garbage', () => {
    const [a, b] = [POOL[0]!, POOL[1]!];
    expect(introPointRelay(onRelayOf(b, a))).toBe(introPointRelay(a));
    expect(introPointRelay(b)).not.toBe(introPointRelay(a));
    expect(introPointRelay({ ...a, ls: '!!!!' })).toBe(`auth:${a.authKey}`);
    const noRsa = decodeLinkSpecifiers(fromBase64(a.ls)).filter((l) => l.type !== LS_LEGACY_ID);
    expect(introPointRelay({ ...a, ls: toBase64(encodeLinkSpecifiers(noRsa)) })).toBe(`auth:${a.authKey}`);
  });

  it('lists at most one point per relay: a node whose point shares a relay already dealt takes its next point', () => {
    // b's first (sorted) point is on a's relay; b must get its other two points instead.
    const byAuth = (x: IntroPointWire, y: IntroPointWire): number => (x.authKey < y.authKey ? -1 : 1);
    const aPts = POOL.slice(30, 32).sort(byAuth);
    const sortedB = POOL.slice(32, 35).sort(byAuth);
    const clash = onRelayOf(sortedB[0]!, aPts[0]!);
    const bPts = [clash, sortedB[1]!, sortedB[2]!];
    const sel = selectIntroPointsByNode([{ id: 'a', introPoints: aPts }, { id: 'b', introPoints: bPts }]);
    const relays = sel.map((s) => introPointRelay(s.point));
    expect(new Set(relays).size).toBe(relays.length);
    expect(sel.filter((s) => s.nodeId === 'b').map((s) => s.point.authKey).sort()).toEqual([sortedB[1]!.authKey, sortedB[2]!.authKey].sort());
    expect(sel.filter((s) => s.nodeId === 'a')).toHaveLength(2);
    expect(sel.some((s) => s.point.authKey === clash.authKey)).toBe(false);
  });

  it('never lists two points on one relay, whatever the collisions (property)', () => {
    const relaysOf = POOL.slice(0, 6);
    fc.assert(
      fc.property(clusterArb, fc.array(fc.nat({ max: 5 }), { maxLength: 120 }), fc.integer({ min: 1, max: 20 }), (nodes, where, max) => {
        // squeeze the points onto 6 relays
        let k = 0;
        const squeezed = nodes.map((n) => ({ id: n.id, introPoints: n.introPoints.map((p) => onRelayOf(p, relaysOf[where[k++ % Math.max(1, where.length)] ?? 0]!)) }));
        const sel = selectIntroPointsByNode(squeezed, max);
        const relays = sel.map((s) => introPointRelay(s.point));
        expect(new Set(relays).size).toBe(relays.length);
        const distinct = new Set(squeezed.flatMap((n) => n.introPoints.map(introPointRelay)));
        expect(sel.length).toBe(Math.min(max, distinct.size));
      }),
    );
  });

  it('rejects max outside 1..20', () => {
    for (const m of [0, 21, 1.5, -1]) expect(() => selectIntroPoints([], m)).toThrow(expect.objectContaining({ code: 'TB_ERR_PUBLISHER_ARG' }) as Error);
  });
});
