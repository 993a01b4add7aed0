import { describe, expect, it } from 'vitest';
import { introDigest, Membership, type HeartbeatBody, type MeshMessage } from '../../../src/core/mesh/index.js';

const SELF = '0'.repeat(32);
const P = 'a'.repeat(32);
const Q = 'b'.repeat(32);
const HB = 1000;

function id(n: number): string {
  return n.toString(16).padStart(32, '0');
}

function heartbeat(over: Partial<HeartbeatBody> = {}): MeshMessage {
  return {
    type: 'heartbeat',
    body: { name: 'p', addr: 'tcp:10.0.0.2:7700', priority: 1, health: { healthy: true, reasons: [] }, introDigest: introDigest([]), peers: [], ...over },
  };
}

function mk(): Membership {
  return new Membership({ selfId: SELF, heartbeatMs: HB });
}

describe('Membership', () => {
  it('defaults: suspect after 3 heartbeats, dead after 10', () => {
    const m = mk();
    expect([m.suspectAfterMs, m.deadAfterMs]).toEqual([3000, 10_000]);
  });

  it('alive → suspect → alive again on a heartbeat (no flapping through dead)', () => {
    const m = mk();
    expect(m.receive({ from: P, ts: 1, msg: heartbeat() }, 0)).toEqual([{ type: 'alive', id: P }]);
    expect(m.tick(2999)).toEqual([]);
    expect(m.tick(3000)).toEqual([{ type: 'suspect', id: P }]);
    expect(m.tick(3500)).toEqual([]);
    expect(m.receive({ from: P, ts: 2, msg: heartbeat() }, 3600)).toEqual([{ type: 'alive', id: P }]);
    expect(m.tick(6599)).toEqual([]);
    expect(m.peer(P)!.state).toBe('alive');
  });

  it('stays alive with regular heartbeats and emits nothing when nothing changes', () => {
    const m = mk();
    m.receive({ from: P, ts: 0, msg: heartbeat() }, 0);
    for (let t = 1000; t < 60_000; t += 1000) {
      expect(m.receive({ from: P, ts: t, msg: heartbeat() }, t)).toEqual([]);
      expect(m.tick(t + 500)).toEqual([]);
    }
  });

  it('alive → suspect → dead; a dead peer returns only with a fresh heartbeat', () => {
    const m = mk();
    m.receive({ from: P, ts: 100, msg: heartbeat() }, 0);
    expect(m.tick(3000)).toEqual([{ type: 'suspect', id: P }]);
    expect(m.electionPeers().map((p) => [p.id, p.state])).toEqual([[P, 'suspect']]);
    expect(m.tick(10_000)).toEqual([{ type: 'dead', id: P }]);
    expect(m.electionPeers()).toEqual([]); // a dead peer never reaches the election
    // A stale (reordered) heartbeat does not revive it; neither do intro-points or lease messages.
    expect(m.receive({ from: P, ts: 100, msg: heartbeat() }, 11_000)).toEqual([]);
    expect(m.receive({ from: P, ts: 50, msg: heartbeat() }, 11_000)).toEqual([]);
    m.receive({ from: P, ts: 200, msg: { type: 'lease', body: { until: 9999 } } }, 11_000);
    expect(m.peer(P)!.state).toBe('dead');
    expect(m.receive({ from: P, ts: 300, msg: heartbeat() }, 11_000)).toEqual([{ type: 'alive', id: P }]);
  });

  it('a silent peer goes straight to dead if ticks are sparse', () => {
    const m = mk();
    m.receive({ from: P, ts: 1, msg: heartbeat() }, 0);
    expect(m.tick(20_000)).toEqual([{ type: 'dead', id: P }]);
  });

  it('leave → left immediately; an older heartbeat does not resurrect it, a newer hello does', () => {
    const m = mk();
    m.receive({ from: P, ts: 10, msg: heartbeat({ lease: { holder: P, until: 10_000 } }) }, 0);
    expect(m.peer(P)!.leaseUntilMs).toBe(9990);
    expect(m.receive({ from: P, ts: 20, msg: { type: 'leave', body: { reason: 'shutdown' } } }, 5)).toEqual([{ type: 'left', id: P }]);
    expect(m.peer(P)).toMatchObject({ state: 'left', leaseUntilMs: undefined, leaveReason: 'shutdown' });
    expect(m.electionPeers()).toEqual([]);
    expect(m.receive({ from: P, ts: 15, msg: heartbeat() }, 6)).toEqual([]);
    expect(m.tick(100_000_000).some((e) => e.type === 'forgotten')).toBe(true);
    expect(m.peer(P)).toBeUndefined();
  });

  it('a left peer comes back with a fresh hello', () => {
    const m = mk();
    m.receive({ from: P, ts: 10, msg: heartbeat() }, 0);
    m.receive({ from: P, ts: 20, msg: { type: 'leave', body: { reason: '' } } }, 1);
    const { peers: _p, lease: _l, ...hello } = (heartbeat().body as HeartbeatBody);
    expect(m.receive({ from: P, ts: 30, msg: { type: 'hello', body: hello } }, 2)).toEqual([{ type: 'alive', id: P }]);
  });

  it('ignores a peer that claims to be us, including in gossip', () => {
    const m = mk();
    expect(m.receive({ from: SELF, ts: 1, msg: heartbeat() }, 0)).toEqual([]);
    expect(m.ignoredSelf).toBe(1);
    m.receive({ from: P, ts: 1, msg: heartbeat({ peers: [{ id: SELF, addr: 'tcp:6.6.6.6:1', lastSeenAgoMs: 0 }] }) }, 0);
    expect(m.peer(SELF)).toBeUndefined();
  });

  it('gossip introduces known peers to dial; hearing from one directly makes it alive', () => {
    const m = mk();
    expect(m.receive({ from: P, ts: 1, msg: heartbeat({ peers: [{ id: Q, addr: 'tcp:10.0.0.3:7700', lastSeenAgoMs: 500 }] }) }, 0)).toEqual([
      { type: 'alive', id: P },
      { type: 'known', id: Q },
    ]);
    expect(m.peer(Q)).toMatchObject({ state: 'known', addr: 'tcp:10.0.0.3:7700', learnedFrom: P });
    expect(m.dialTargets().map((d) => d.id)).toEqual([P, Q]);
    // Known peers are not candidates and do not turn suspect.
    expect(m.electionPeers().map((p) => p.id)).toEqual([P]);
    expect(m.tick(2000)).toEqual([]);
    expect(m.receive({ from: Q, ts: 5, msg: heartbeat({ addr: 'tcp:10.0.0.33:7700' }) }, 2500)).toEqual([{ type: 'alive', id: Q }]);
    expect(m.peer(Q)).toMatchObject({ state: 'alive', addr: 'tcp:10.0.0.33:7700', learnedFrom: undefined });
  });

  it('gossip never rewrites a peer we already have, and ignores stale entries', () => {
    const m = mk();
    m.receive({ from: Q, ts: 1, msg: heartbeat({ addr: 'tcp:10.0.0.3:7700' }) }, 0);
    m.receive({ from: P, ts: 1, msg: heartbeat({ peers: [{ id: Q, addr: 'tcp:6.6.6.6:1', lastSeenAgoMs: 0 }, { id: id(5), addr: 'tcp:6.6.6.6:2', lastSeenAgoMs: 3000 }] }) }, 0);
    expect(m.peer(Q)!.addr).toBe('tcp:10.0.0.3:7700');
    expect(m.peer(id(5))).toBeUndefined();
  });

  it('bounds gossip: at most maxKnown unverified addresses, at most maxPeers entries', () => {
    const m = new Membership({ selfId: SELF, heartbeatMs: HB, maxKnown: 10, maxPeers: 20 });
    let ts = 1;
    for (let round = 0; round < 5; round++) {
      const peers = Array.from({ length: 64 }, (_, i) => ({ id: id(1000 + round * 64 + i), addr: `tcp:10.1.${round}.${i}:7700`, lastSeenAgoMs: 0 }));
      m.receive({ from: P, ts: ts++, msg: heartbeat({ peers }) }, 0);
    }
    expect(m.peers().filter((p) => p.state === 'known')).toHaveLength(10);
    expect(m.dialTargets().length).toBeLessThanOrEqual(11);
    expect(m.droppedGossip).toBeGreaterThan(300);
    // Directly heard peers still get in, evicting known ones when the table is full.
    for (let i = 0; i < 30; i++) m.receive({ from: id(5000 + i), ts: 1, msg: heartbeat() }, 0);
    expect(m.peers().length).toBeLessThanOrEqual(20);
    // Known peers never contacted are forgotten after knownTtlMs.
    const m2 = new Membership({ selfId: SELF, heartbeatMs: HB });
    m2.receive({ from: P, ts: 1, msg: heartbeat({ peers: [{ id: Q, addr: 'tcp:10.0.0.3:7700', lastSeenAgoMs: 0 }] }) }, 0);
    expect(m2.tick(m2.knownTtlMs).filter((e) => e.type === 'forgotten').map((e) => e.id)).toEqual([Q]);
  });

  it('records leases in our clock, capped at leaseMs, only for the sender itself', () => {
    const m = mk();
    // Sender clock 1 h ahead: lease still lasts until - ts from our receipt.
    const ahead = 3_600_000;
    m.receive({ from: P, ts: ahead, msg: heartbeat({ lease: { holder: P, until: ahead + 10_000 } }) }, 0);
    expect(m.peer(P)!.leaseUntilMs).toBe(10_000);
    // A claim longer than leaseMs is capped.
    m.receive({ from: P, ts: ahead + 1, msg: heartbeat({ lease: { holder: P, until: ahead + 10_000_000 } }) }, 1);
    expect(m.peer(P)!.leaseUntilMs).toBe(1 + m.leaseMs);
    // A lease naming someone else is ignored; a heartbeat without a lease releases it.
    m.receive({ from: Q, ts: 5, msg: heartbeat({ lease: { holder: P, until: 10_000 } }) }, 2);
    expect(m.peer(Q)!.leaseUntilMs).toBeUndefined();
    expect(m.receive({ from: P, ts: ahead + 2, msg: heartbeat() }, 3)).toEqual([{ type: 'changed', id: P }]);
    expect(m.peer(P)!.leaseUntilMs).toBeUndefined();
    // A lease message claims and releases.
    m.receive({ from: P, ts: ahead + 3, msg: { type: 'lease', body: { until: ahead + 5003 } } }, 4);
    expect(m.peer(P)!.leaseUntilMs).toBe(5004);
    m.receive({ from: P, ts: ahead + 4, msg: { type: 'lease', body: { until: ahead + 4 } } }, 5);
    expect(m.peer(P)!.leaseUntilMs).toBeUndefined();
    // Expiry is reported by tick; a dead peer loses its lease.
    m.receive({ from: P, ts: ahead + 5, msg: heartbeat({ lease: { holder: P, until: ahead + 2005 } }) }, 6);
    expect(m.tick(2006)).toEqual([{ type: 'changed', id: P }]);
  });

  it('stores intro points and exposes eligibility to the election', () => {
    const m = mk();
    m.receive({ from: P, ts: 1, msg: heartbeat({ priority: 7 }) }, 0);
    expect(m.electionPeers()).toEqual([{ id: P, priority: 7, healthy: true, hasIntroPoints: false, state: 'alive', leaseUntilMs: undefined }]);
    const points = [{ ls: 'AA==', onionKey: 'A'.repeat(43) + '=', authKey: 'A'.repeat(43) + '=', encKey: 'A'.repeat(43) + '=' }];
    expect(m.receive({ from: P, ts: 2, msg: { type: 'intro-points', body: { digest: introDigest(points), fetchedAt: 1, points } } }, 1)).toEqual([{ type: 'changed', id: P }]);
    expect(m.electionPeers()[0]!.hasIntroPoints).toBe(true);
    // An older intro-points message does not overwrite a newer one.
    expect(m.receive({ from: P, ts: 1, msg: { type: 'intro-points', body: { digest: introDigest([]), fetchedAt: 0, points: [] } } }, 2)).toEqual([]);
    expect(m.electionPeers()[0]!.hasIntroPoints).toBe(true);
    // Health change is reported.
    expect(m.receive({ from: P, ts: 3, msg: heartbeat({ priority: 7, health: { healthy: false, reasons: ['tor'] } }) }, 3)).toEqual([{ type: 'changed', id: P }]);
    expect(m.electionPeers()[0]!.healthy).toBe(false);
  });

  it('an intro-point auth key belongs to the first node that announced it, until it stops listing it', () => {
    const pt = (k: string, ls = 'AA=='): { ls: string; onionKey: string; authKey: string; encKey: string } => ({ ls, onionKey: 'A'.repeat(43) + '=', authKey: k.repeat(43) + '=', encKey: 'A'.repeat(43) + '=' });
    const ip = (points: ReturnType<typeof pt>[], next?: ReturnType<typeof pt>[]): MeshMessage => ({
      type: 'intro-points',
      body: { digest: introDigest(points), fetchedAt: 1, points, ...(next === undefined ? {} : { next: { key: 'B'.repeat(42) + 'A', harvestedAt: 1, points: next } }) },
    });
    const m = new Membership({ selfId: SELF, heartbeatMs: HB, ownAuthKeys: () => [pt('S').authKey] });
    const low = id(1); // sorts below P: the selection would prefer it
    for (const who of [P, low]) m.receive({ from: who, ts: 1, msg: heartbeat() }, 0);
    m.receive({ from: P, ts: 2, msg: ip([pt('X'), pt('Y')]) }, 1);
    // The copier keeps neither P's keys nor ours, in points or next.
    m.receive({ from: low, ts: 2, msg: ip([pt('X', 'AQ=='), pt('S'), pt('Z')], [pt('Y', 'AQ==')]) }, 2);
    expect(m.peer(low)!.introPoints!.points.map((x) => x.authKey)).toEqual([pt('Z').authKey]);
    expect(m.peer(low)!.introPoints!.next!.points).toEqual([]);
    expect(m.introPointOwner(pt('X').authKey)).toBe(P);
    expect(m.droppedIntroClaims).toBe(3);
    // P stops listing X: it is released and the next claimant gets it.
    m.receive({ from: P, ts: 3, msg: ip([pt('Y')]) }, 3);
    m.receive({ from: low, ts: 3, msg: ip([pt('X', 'AQ=='), pt('Z')]) }, 4);
    expect(m.peer(low)!.introPoints!.points.map((x) => x.authKey)).toEqual([pt('X').authKey, pt('Z').authKey]);
    // A forgotten owner releases its keys.
    expect(m.introPointOwner(pt('Y').authKey)).toBe(P);
    m.tick(100_000); // dead
    m.tick(200_000); // forgotten
    expect(m.peer(P)).toBeUndefined();
    expect(m.introPointOwner(pt('Y').authKey)).toBeUndefined();
  });

  it('gossips alive peers only, most recent first', () => {
    const m = mk();
    m.receive({ from: P, ts: 1, msg: heartbeat() }, 0);
    m.receive({ from: Q, ts: 1, msg: heartbeat({ addr: 'tcp:10.0.0.3:7700' }) }, 500);
    expect(m.gossip(1000)).toEqual([
      { id: Q, addr: 'tcp:10.0.0.3:7700', lastSeenAgoMs: 500 },
      { id: P, addr: 'tcp:10.0.0.2:7700', lastSeenAgoMs: 1000 },
    ]);
    m.tick(3200);
    expect(m.gossip(3200).map((g) => g.id)).toEqual([Q]);
  });
});
