import { describe, expect, it } from 'vitest';
import { electPublisher, outranks, type PeerCandidate } from '../../../src/core/mesh/index.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
const NOW = 1_000_000;

function peer(id: string, over: Partial<PeerCandidate> = {}): PeerCandidate {
  return { id, priority: 1, healthy: true, hasIntroPoints: true, state: 'alive', ...over };
}
const me = (id: string, over: Partial<PeerCandidate> = {}) => ({ id, priority: 1, healthy: true, hasIntroPoints: true, ...over });

describe('electPublisher', () => {
  it('a healthy node with no healthy peers elects itself and claims a lease', () => {
    expect(electPublisher({ self: me(B), peers: [], nowMs: NOW })).toMatchObject({ publisher: B, selfShouldPublish: true, leaseUntilMs: NOW + 15_000, reason: 'elected' });
    const r = electPublisher({ self: me(B), peers: [peer(A, { healthy: false }), peer(C, { state: 'suspect' }), peer('0'.repeat(32), { hasIntroPoints: false })], nowMs: NOW, leaseMs: 5000 });
    expect(r).toMatchObject({ publisher: B, selfShouldPublish: true, leaseUntilMs: NOW + 5000 });
  });

  it('max priority wins, then the lowest nodeId (deterministic tie-break)', () => {
    expect(electPublisher({ self: me(B), peers: [peer(A), peer(C)], nowMs: NOW }).publisher).toBe(A);
    expect(electPublisher({ self: me(B), peers: [peer(A), peer(C, { priority: 2 })], nowMs: NOW }).publisher).toBe(C);
    expect(outranks({ id: A, priority: 1 }, { id: B, priority: 1 })).toBe(true);
    expect(outranks({ id: B, priority: 2 }, { id: A, priority: 1 })).toBe(true);
    expect(outranks({ id: A, priority: 1 }, { id: A, priority: 1 })).toBe(false);
  });

  it('suspect peers are not candidates but their leases are respected', () => {
    const r = electPublisher({ self: me(B), peers: [peer(A, { state: 'suspect', leaseUntilMs: NOW + 1 })], nowMs: NOW });
    expect(r).toMatchObject({ publisher: B, selfShouldPublish: false, reason: 'waiting-for-lease', blockingLease: { holder: A, untilMs: NOW + 1 } });
    expect(electPublisher({ self: me(B), peers: [peer(A, { state: 'suspect', leaseUntilMs: NOW })], nowMs: NOW }).selfShouldPublish).toBe(true);
  });

  it('ignores leases of unhealthy holders (dead and left peers never reach the election: membership.test.ts)', () => {
    for (const over of [{ healthy: false }, { healthy: false, state: 'suspect' as const }]) {
      expect(electPublisher({ self: me(B), peers: [peer(A, { ...over, leaseUntilMs: NOW + 10_000 })], nowMs: NOW }).selfShouldPublish).toBe(true);
    }
  });

  it('a non-winner releases its lease; an unhealthy node never publishes', () => {
    expect(electPublisher({ self: { ...me(B), leaseUntilMs: NOW + 5000 }, peers: [peer(A)], nowMs: NOW })).toMatchObject({ selfShouldPublish: false, leaseUntilMs: undefined, reason: 'other-winner' });
    expect(electPublisher({ self: { ...me(A, { healthy: false }), leaseUntilMs: NOW + 5000 }, peers: [], nowMs: NOW })).toMatchObject({ publisher: undefined, selfShouldPublish: false, reason: 'no-candidates' });
    expect(electPublisher({ self: me(A, { hasIntroPoints: false }), peers: [peer(B)], nowMs: NOW })).toMatchObject({ publisher: B, reason: 'self-ineligible' });
  });

  it('conflicting leases: the higher-ranked incumbent keeps it, the lower-ranked steps down', () => {
    // A and B both hold leases (e.g. after a partition healed).
    const a = electPublisher({ self: { ...me(A), leaseUntilMs: NOW + 1000 }, peers: [peer(B, { leaseUntilMs: NOW + 1000 })], nowMs: NOW });
    expect(a).toMatchObject({ selfShouldPublish: true, reason: 'renewed' });
    // B does not see A as eligible (no intro points yet) but sees A's lease: A outranks B → B steps down.
    const b = electPublisher({ self: { ...me(B), leaseUntilMs: NOW + 1000 }, peers: [peer(A, { hasIntroPoints: false, leaseUntilMs: NOW + 1000 })], nowMs: NOW });
    expect(b).toMatchObject({ publisher: B, selfShouldPublish: false, reason: 'waiting-for-lease', leaseUntilMs: undefined });
  });

  it('handover to a better node: incumbent steps down, newcomer waits for the lease to vanish', () => {
    // C (priority 1) publishes; A (priority 1, lower id) joins.
    const c = electPublisher({ self: { ...me(C), leaseUntilMs: NOW + 1000 }, peers: [peer(A)], nowMs: NOW });
    expect(c).toMatchObject({ selfShouldPublish: false, leaseUntilMs: undefined });
    const a1 = electPublisher({ self: me(A), peers: [peer(C, { leaseUntilMs: NOW + 1000 })], nowMs: NOW });
    expect(a1).toMatchObject({ selfShouldPublish: false, reason: 'waiting-for-lease' });
    const a2 = electPublisher({ self: me(A), peers: [peer(C)], nowMs: NOW + 100 });
    expect(a2).toMatchObject({ selfShouldPublish: true, reason: 'elected' });
  });

  it('every node of the same view elects the same publisher', () => {
    const nodes = [peer(A, { priority: 3 }), peer(B, { priority: 5, healthy: false }), peer(C, { priority: 3 })];
    const winners = nodes.map((n) => electPublisher({ self: n, peers: nodes.filter((x) => x !== n), nowMs: NOW }).publisher);
    expect(new Set(winners)).toEqual(new Set([A]));
  });
});
