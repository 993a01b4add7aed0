/**
 * Property tests of the mesh election over simulated clusters: real Membership and
 * electPublisher per node, messages delivered with random delays (reordering), drops during a
 * chaos phase, node clock offsets, crashes, leaves, health and intro-point flips.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { electPublisher, Membership, outranks, type ElectionResult, type IntroPointWire, type MeshMessage } from '../../src/core/mesh/index.js';

const HB = 1000;
const SUSPECT = 3 * HB;
const DEAD = 10 * HB;
const LEASE = 15_000;
const TICK = 250;
const MAX_DELAY = 300;
const DIGEST = '0'.repeat(64);
const POINT: IntroPointWire = { ls: 'AA==', onionKey: 'A'.repeat(43) + '=', authKey: 'A'.repeat(43) + '=', encKey: 'A'.repeat(43) + '=' };
/** Each node's own intro point: auth keys are per node (a key announced by two nodes belongs to the first). */
const pointOf = (id: string): IntroPointWire => ({ ...POINT, authKey: Buffer.from(id.padEnd(64, '0'), 'hex').toString('base64') });

type EventKind = 'crash' | 'leave' | 'unhealthy' | 'healthy' | 'no-intro' | 'intro';
interface SimEvent { at: number; node: number; kind: EventKind }
interface NodeSpec { priority: number; offset: number; startAt: number }

interface SimNode {
  id: string; priority: number; offset: number; startAt: number; phase: number;
  healthy: boolean; hasIntro: boolean; up: boolean; started: boolean;
  m: Membership; leaseUntil: number | undefined; last: ElectionResult | undefined; nextHb: number;
}
interface InFlight { at: number; seq: number; to: number; from: string; ts: number; msg: MeshMessage }

function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

class Sim {
  t = 0;
  readonly nodes: SimNode[];
  private q: InFlight[] = [];
  private seq = 0;
  dropP = 0;
  private readonly rnd: () => number;
  constructor(specs: readonly NodeSpec[], rnd: () => number) {
    this.rnd = rnd;
    this.nodes = specs.map((s, i) => {
      const id = (0x1000 + i * 7919).toString(16).padStart(32, 'f');
      return {
        id, priority: s.priority, offset: s.offset, startAt: s.startAt, phase: Math.floor(rnd() * HB),
        healthy: true, hasIntro: true, up: true, started: false,
        m: new Membership({ selfId: id, heartbeatMs: HB, suspectAfterMs: SUSPECT, deadAfterMs: DEAD, leaseMs: LEASE }),
        leaseUntil: undefined, last: undefined, nextHb: s.startAt,
      };
    });
  }
  private local(n: SimNode): number { return this.t + n.offset; }
  private send(from: SimNode, msg: MeshMessage): void {
    this.nodes.forEach((to, i) => {
      if (to === from || this.rnd() < this.dropP) return;
      this.q.push({ at: this.t + Math.floor(this.rnd() * MAX_DELAY), seq: this.seq++, to: i, from: from.id, ts: this.local(from), msg });
    });
  }
  apply(e: SimEvent): void {
    const n = this.nodes[e.node]!;
    if (!n.up) return;
    switch (e.kind) {
      case 'crash': n.up = false; break;
      case 'leave': this.send(n, { type: 'leave', body: { reason: 'bye' } }); n.up = false; break;
      case 'unhealthy': n.healthy = false; break;
      case 'healthy': n.healthy = true; break;
      case 'no-intro': n.hasIntro = false; break;
      case 'intro': n.hasIntro = true; break;
    }
    n.last = undefined;
  }
  step(): void {
    this.t += TICK;
    const due = this.q.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.q = this.q.filter((x) => x.at > this.t);
    for (const x of due) {
      const to = this.nodes[x.to]!;
      if (to.up && to.started) to.m.receive({ from: x.from, ts: x.ts, msg: x.msg }, this.local(to));
    }
    for (const n of this.nodes) {
      if (!n.up) { n.last = undefined; continue; }
      if (this.t < n.startAt) continue;
      n.started = true;
      const now = this.local(n);
      n.m.tick(now);
      n.last = electPublisher({
        self: { id: n.id, priority: n.priority, healthy: n.healthy, hasIntroPoints: n.hasIntro, leaseUntilMs: n.leaseUntil },
        peers: n.m.electionPeers(), nowMs: now, leaseMs: LEASE,
      });
      n.leaseUntil = n.last.leaseUntilMs;
      if (this.t >= n.nextHb) {
        n.nextHb = this.t + HB;
        const common = { name: 'n', addr: 'tcp:10.0.0.1:7700', priority: n.priority, health: { healthy: n.healthy, reasons: [] }, introDigest: DIGEST };
        this.send(n, { type: 'heartbeat', body: { ...common, peers: n.m.gossip(now), ...(n.leaseUntil !== undefined ? { lease: { holder: n.id, until: n.leaseUntil } } : {}) } });
        this.send(n, { type: 'intro-points', body: { digest: DIGEST, fetchedAt: now, points: n.hasIntro ? [pointOf(n.id)] : [] } });
      }
    }
  }
  publishers(): SimNode[] { return this.nodes.filter((n) => n.up && n.last?.selfShouldPublish === true); }
  /** The node that should win once everything settled. */
  expectedWinner(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) if (n.up && n.started && n.healthy && n.hasIntro && (best === undefined || outranks(n, best))) best = n;
    return best;
  }
}

const nodeSpec = fc.record({ priority: fc.integer({ min: 0, max: 2 }), offset: fc.integer({ min: -5000, max: 5000 }), startAt: fc.integer({ min: 0, max: 5000 }) });
const kinds: EventKind[] = ['crash', 'leave', 'unhealthy', 'healthy', 'no-intro', 'intro'];

describe('mesh election over simulated clusters', () => {
  it('after chaos: at most one publisher once leases settle, then exactly the best node, all agreeing', () => {
    fc.assert(
      fc.property(
        fc.array(nodeSpec, { minLength: 1, maxLength: 5 }),
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 30_000 }), node: fc.nat(), kind: fc.constantFrom(...kinds) }), { maxLength: 8 }),
        fc.double({ min: 0, max: 0.4, noNaN: true }),
        fc.integer(),
        (specs, rawEvents, dropP, seed) => {
          const sim = new Sim(specs, prng(seed));
          const events = rawEvents.map((e) => ({ ...e, node: e.node % specs.length })).sort((a, b) => a.at - b.at);
          const chaosEnd = Math.max(6000, ...events.map((e) => e.at));
          sim.dropP = dropP;
          let i = 0;
          while (sim.t < chaosEnd) {
            while (i < events.length && events[i]!.at <= sim.t) sim.apply(events[i++]!);
            sim.step();
          }
          while (i < events.length) sim.apply(events[i++]!);
          sim.dropP = 0;
          const settled = chaosEnd + LEASE + HB;
          const live = chaosEnd + LEASE + DEAD;
          while (sim.t < live + 10_000) {
            sim.step();
            if (sim.t >= settled) expect(sim.publishers().length).toBeLessThanOrEqual(1);
            if (sim.t >= live) {
              const w = sim.expectedWinner();
              expect(sim.publishers().map((n) => n.id)).toEqual(w ? [w.id] : []);
              const views = new Set(sim.nodes.filter((n) => n.up && n.last).map((n) => n.last!.publisher));
              expect(views.size).toBeLessThanOrEqual(1);
              if (w) expect([...views]).toEqual([w.id]);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a crashed, leaving or unhealthy publisher is replaced within the stated bounds', () => {
    // Proven bound for a crash (election.ts): hb + δ + τ + max(suspect, min(dead, lease)), ≤ lease + dead.
    const crashBound = HB + MAX_DELAY + 2 * TICK + Math.max(SUSPECT, Math.min(DEAD, LEASE));
    expect(crashBound).toBeLessThanOrEqual(LEASE + DEAD);
    fc.assert(
      fc.property(
        fc.array(nodeSpec, { minLength: 2, maxLength: 5 }),
        fc.constantFrom<EventKind>('crash', 'leave', 'unhealthy'),
        fc.integer({ min: 0, max: HB }),
        fc.integer(),
        (specs, kind, jitter, seed) => {
          const sim = new Sim(specs, prng(seed));
          while (sim.t < 25_000 + jitter) sim.step();
          const pubs = sim.publishers();
          expect(pubs).toHaveLength(1);
          const old = pubs[0]!;
          expect(old.id).toBe(sim.expectedWinner()!.id);
          sim.apply({ at: sim.t, node: sim.nodes.indexOf(old), kind });
          const t0 = sim.t;
          const bound = kind === 'crash' ? crashBound : HB + MAX_DELAY + 2 * TICK;
          let replacedAt: number | undefined;
          while (sim.t < t0 + LEASE + DEAD + 5000) {
            sim.step();
            const now = sim.publishers().filter((n) => n !== old);
            expect(now.length).toBeLessThanOrEqual(1);
            if (replacedAt === undefined && now.length === 1) {
              replacedAt = sim.t;
              expect(now[0]!.id).toBe(sim.expectedWinner()!.id);
            }
          }
          expect(replacedAt).toBeDefined();
          expect(replacedAt! - t0).toBeLessThanOrEqual(bound);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('all nodes with the same view elect the same publisher; deterministic and order-independent', () => {
    const cand = fc.record({ priority: fc.integer({ min: 0, max: 3 }), healthy: fc.boolean(), hasIntroPoints: fc.boolean() });
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 20 }), { minLength: 1, maxLength: 8 }), fc.array(cand, { minLength: 8, maxLength: 8 }), fc.integer(), (ids, cs, seed) => {
        const nodes = ids.map((x, i) => ({ id: x.toString(16).padStart(32, '0'), ...cs[i]!, state: 'alive' as const }));
        const rnd = prng(seed);
        const results = nodes.map((self) => {
          const peers = nodes.filter((n) => n !== self).sort(() => rnd() - 0.5);
          return electPublisher({ self, peers, nowMs: 1000 });
        });
        const eligible = nodes.filter((n) => n.healthy && n.hasIntroPoints);
        const expected = eligible.reduce<(typeof nodes)[number] | undefined>((b, n) => (b === undefined || outranks(n, b) ? n : b), undefined);
        for (const r of results) expect(r.publisher).toBe(expected?.id);
        expect(results.filter((r) => r.selfShouldPublish).length).toBe(expected ? 1 : 0);
        // A node alone (all peers unhealthy or gone) elects itself if it is eligible.
        for (const self of nodes) {
          const r = electPublisher({ self, peers: nodes.filter((n) => n !== self).map((n) => ({ ...n, healthy: false })), nowMs: 1000 });
          expect(r.selfShouldPublish).toBe(self.healthy && self.hasIntroPoints);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
