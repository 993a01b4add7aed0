/**
 * Who publishes the master address (src/core/publish/publish-mode.ts): clustered vs alone, the
 * alone grace, and whose sets the publisher gets — tables for the named cases, properties for
 * the rest.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INITIAL_PUBLISH_MODE, stepPublishMode, type PublishModeInput, type PublishModePeer, type PublishModeState } from '../../../src/core/publish/publish-mode.js';
import type { IntroPointWire } from '../../../src/core/intro/wire.js';

const pt = (n: number): IntroPointWire => ({ ls: 'AA==', onionKey: `o${n}`, authKey: `a${n}`, encKey: `e${n}` });
const self = { id: 'self', healthy: true, introPoints: [pt(0)] };
const peer = (id: string, state: PublishModePeer['state'], healthy = true, points = 1): PublishModePeer => ({ id, state, healthy, introPoints: Array.from({ length: points }, (_, i) => pt(i + 10)) });
const input = (peers: PublishModePeer[], o: Partial<PublishModeInput> = {}): PublishModeInput => ({ nowMs: 1000, graceMs: 2000, self, peers, selfIsPublisher: true, forceMode: false, ...o });
const CLUSTERED: PublishModeState = { clustered: true, aloneSinceMs: undefined };

describe('stepPublishMode', () => {
  it('a live peer makes the node clustered; the publisher publishes healthy nodes with sets, self first', () => {
    const s = stepPublishMode(INITIAL_PUBLISH_MODE, input([peer('b', 'alive'), peer('c', 'suspect'), peer('d', 'alive', false), peer('e', 'alive', true, 0), peer('f', 'dead')]));
    expect(s).toMatchObject({ kind: 'apply', state: CLUSTERED, setClustered: true });
    expect(s.kind === 'apply' && s.publish?.map((n) => n.id)).toEqual(['self', 'b', 'c']);
  });
  it('a member (not the publisher) is clustered but publishes nothing; unchanged mode is not set again unless forced', () => {
    const s = stepPublishMode(CLUSTERED, input([peer('b', 'alive')], { selfIsPublisher: false }));
    expect(s).toEqual({ kind: 'apply', state: CLUSTERED, setClustered: undefined, publish: null });
    expect(stepPublishMode(CLUSTERED, input([peer('b', 'alive')], { forceMode: true }))).toMatchObject({ setClustered: true });
  });
  it('alone grace: holds everything for graceMs after the last live peer went, then hands publishing back to tor', () => {
    const dead = [peer('b', 'dead')];
    const h1 = stepPublishMode(CLUSTERED, input(dead, { nowMs: 5000 }));
    expect(h1).toEqual({ kind: 'hold', state: { clustered: true, aloneSinceMs: 5000 }, recheckAtMs: 7000 });
    const h2 = stepPublishMode(h1.state, input(dead, { nowMs: 6999 }));
    expect(h2).toEqual({ kind: 'hold', state: { clustered: true, aloneSinceMs: 5000 }, recheckAtMs: 7000 });
    expect(stepPublishMode(h2.state, input(dead, { nowMs: 7000 }))).toEqual({ kind: 'apply', state: { clustered: false, aloneSinceMs: undefined }, setClustered: false, publish: null });
    // A peer back inside the grace: clustered again, and the grace starts afresh next time.
    const back = stepPublishMode(h2.state, input([peer('b', 'alive')], { nowMs: 6000 }));
    expect(back).toMatchObject({ kind: 'apply', state: CLUSTERED, setClustered: undefined });
  });
  it('no grace when every peer left (mesh leave) or was never seen', () => {
    expect(stepPublishMode(CLUSTERED, input([peer('b', 'left'), peer('c', 'known')]))).toMatchObject({ kind: 'apply', state: { clustered: false }, setClustered: false, publish: null });
    expect(stepPublishMode(CLUSTERED, input([]))).toMatchObject({ kind: 'apply', setClustered: false });
  });
  it('alone from the start: tor publishes; nothing to hold', () => {
    expect(stepPublishMode(INITIAL_PUBLISH_MODE, input([peer('b', 'dead')], { forceMode: true }))).toEqual({ kind: 'apply', state: INITIAL_PUBLISH_MODE, setClustered: false, publish: null });
  });
});

const states = fc.constantFrom<PublishModePeer['state']>('known', 'alive', 'suspect', 'dead', 'left');
const peersArb = fc.array(fc.record({ state: states, healthy: fc.boolean(), points: fc.integer({ min: 0, max: 3 }) }), { maxLength: 6 });

describe('stepPublishMode (properties)', () => {
  it('never publishes while alone, never lists an unhealthy or dead node, holds at most graceMs', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ peers: peersArb, dt: fc.integer({ min: 0, max: 3000 }), pub: fc.boolean(), force: fc.boolean() }), { minLength: 1, maxLength: 20 }), (steps) => {
        let st = INITIAL_PUBLISH_MODE;
        let now = 0;
        let holdStart: number | undefined;
        for (const x of steps) {
          now += x.dt;
          const peers = x.peers.map((p, i) => peer(`p${i}`, p.state, p.healthy, p.points));
          const r = stepPublishMode(st, input(peers, { nowMs: now, selfIsPublisher: x.pub, forceMode: x.force }));
          const live = peers.filter((p) => p.state === 'alive' || p.state === 'suspect');
          if (r.kind === 'hold') {
            expect(live).toHaveLength(0);
            expect(st.clustered).toBe(true);
            holdStart ??= now;
            expect(now - holdStart).toBeLessThan(2000);
            expect(r.recheckAtMs).toBeGreaterThan(now);
          } else {
            holdStart = undefined;
            expect(r.state.clustered).toBe(live.length > 0);
            if (r.publish !== null) {
              expect(x.pub && r.state.clustered).toBe(true);
              for (const n of r.publish) {
                const p = peers.find((q) => q.id === n.id);
                if (p !== undefined) expect(p.healthy && (p.state === 'alive' || p.state === 'suspect')).toBe(true);
              }
            }
            if (r.setClustered === undefined) expect(r.state.clustered).toBe(st.clustered);
          }
          st = r.state;
        }
      }),
      { numRuns: 500 },
    );
  });
});
