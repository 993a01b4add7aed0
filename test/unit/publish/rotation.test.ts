/**
 * The rotation-safe publishing policy (src/core/publish/rotation.ts): which set of a node goes
 * into which descriptor, the phases of the schedule, and when a node harvests or the publisher
 * seeds — with the test network's 4-minute periods and the live schedule.
 */
import { describe, expect, it } from 'vitest';
import { LIVE_PERIOD_PARAMS, srRunStart, testingNetworkPeriodParams } from '../../../src/core/hs/time-period.js';
import { introPointsForPeriod, nextHarvestAction, nextReconfigurationMs, rotationPhase, seedDue, type HarvestState } from '../../../src/core/publish/rotation.js';
import type { IntroPointWire } from '../../../src/core/intro/wire.js';

const pt = (n: number): IntroPointWire => ({ ls: 'AA==', onionKey: `o${n}`, authKey: `a${n}`, encKey: `e${n}` });
const TEST = testingNetworkPeriodParams(10); // 4-minute periods, 240 s runs

describe('introPointsForPeriod', () => {
  const nodes = [
    { id: 'a', introPoints: [pt(1)], currentKey: 'K1', rotationSafe: true, next: { blindedKey: 'K2', points: [pt(2)], harvestedAtMs: 500 } },
    { id: 'b', introPoints: [pt(3)], currentKey: 'K1', rotationSafe: true },
    { id: 'c', introPoints: [pt(4)] },
  ];
  it('takes desc_current for its own period, desc_next for the next, legacy nodes everywhere', () => {
    const k1 = introPointsForPeriod(nodes, 'K1');
    expect(k1.nodes.map((n) => [n.id, n.introPoints.map((p) => p.authKey)])).toEqual([['a', ['a1']], ['b', ['a3']], ['c', ['a4']]]);
    expect(k1.sources).toEqual({ a: 'current', b: 'current', c: 'fallback' });
    const k2 = introPointsForPeriod(nodes, 'K2');
    expect(k2.nodes.map((n) => n.id)).toEqual(['a', 'c']);
    expect(k2.sources).toEqual({ a: 'next', c: 'fallback' });
    expect(k2.newestHarvestMs).toBe(500);
    expect(introPointsForPeriod(nodes, 'K3').nodes.map((n) => n.id)).toEqual(['c']);
  });
  it('after the rotation desc_current (now that period) wins over the old harvest of it', () => {
    const r = introPointsForPeriod([{ id: 'a', introPoints: [pt(5)], currentKey: 'K2', rotationSafe: true, next: { blindedKey: 'K2', points: [pt(2)], harvestedAtMs: 1 } }], 'K2');
    expect(r.sources).toEqual({ a: 'current' });
    expect(r.nodes[0]!.introPoints[0]!.authKey).toBe('a5');
  });
});

describe('rotationPhase', () => {
  it('test network: rotation at the run start, the next phase from the period start (+120 s)', () => {
    const S = srRunStart(1_750_000_000, TEST);
    expect(rotationPhase(S, TEST)).toEqual({ phase: 'current', runStart: S, periodStart: S + 120, nextRotation: S + 240 });
    expect(rotationPhase(S + 119, TEST).phase).toBe('current');
    expect(rotationPhase(S + 120, TEST).phase).toBe('next');
    expect(rotationPhase(S + 239, TEST).phase).toBe('next');
    expect(rotationPhase(S + 240, TEST)).toMatchObject({ phase: 'current', runStart: S + 240 });
  });
  it('live: 00:00 UTC rotation, 12:00 UTC period start', () => {
    const midnight = Date.UTC(2026, 11, 7) / 1000;
    expect(rotationPhase(midnight + 3600, LIVE_PERIOD_PARAMS)).toEqual({ phase: 'current', runStart: midnight, periodStart: midnight + 43_200, nextRotation: midnight + 86_400 });
    expect(rotationPhase(midnight + 43_200, LIVE_PERIOD_PARAMS).phase).toBe('next');
  });
});

describe('nextHarvestAction', () => {
  const S = srRunStart(1_750_000_000, TEST);
  const base: HarvestState = {
    validAfterSeconds: S + 130,
    nowMs: (S + 131) * 1000,
    params: TEST,
    clientKey: 'K2',
    currentKey: 'K1',
    last: undefined,
    notBeforeMs: 0,
    marginMs: 30_000,
    reharvestMs: 60_000,
  };
  it('harvests in the next phase, and waits for the period start before it', () => {
    expect(nextHarvestAction(base)).toEqual({ action: 'harvest' });
    expect(nextHarvestAction({ ...base, validAfterSeconds: S + 110, nowMs: (S + 111) * 1000 })).toMatchObject({ action: 'wait', untilMs: (S + 120) * 1000 });
  });
  it('never within the margin of the rotation, nor once tor rotated', () => {
    expect(nextHarvestAction({ ...base, nowMs: (S + 211) * 1000 })).toMatchObject({ action: 'wait', untilMs: (S + 240) * 1000 });
    expect(nextHarvestAction({ ...base, currentKey: 'K2' })).toMatchObject({ action: 'wait' });
  });
  it('waits after a recent harvest of this period and during backoff; harvests again for a new period', () => {
    const last = { blindedKey: 'K2', harvestedAtMs: (S + 125) * 1000 };
    expect(nextHarvestAction({ ...base, last })).toEqual({ action: 'wait', untilMs: (S + 185) * 1000, why: 'harvested recently' });
    expect(nextHarvestAction({ ...base, last, nowMs: (S + 186) * 1000 })).toEqual({ action: 'harvest' });
    expect(nextHarvestAction({ ...base, last: { ...last, blindedKey: 'K1' } })).toEqual({ action: 'harvest' });
    expect(nextHarvestAction({ ...base, notBeforeMs: (S + 140) * 1000 })).toMatchObject({ action: 'wait', untilMs: (S + 140) * 1000 });
  });
});

describe('seedDue', () => {
  const S = srRunStart(1_750_000_000, TEST);
  it('once per run, in the current phase, after tor rotated', () => {
    const s = { validAfterSeconds: S + 10, params: TEST, clientKey: 'K2', currentKey: 'K2', seededRun: undefined };
    expect(seedDue(s)).toBe(true);
    expect(seedDue({ ...s, seededRun: S })).toBe(false);
    expect(seedDue({ ...s, seededRun: S - 240 })).toBe(true);
    expect(seedDue({ ...s, currentKey: 'K1' })).toBe(false);
    expect(seedDue({ ...s, validAfterSeconds: S + 130 })).toBe(false);
  });
});

describe('nextReconfigurationMs (when a node\'s PoW seeds are next redrawn)', () => {
  const run = 240_000;
  const at = (s: number): number => s * 1000;
  // A run start R in the test network, and its period start P (the `next` phase).
  const R = srRunStart(1_800_000_000, TEST);
  const P = rotationPhase(R, TEST).periodStart;
  const base = { params: TEST, clientKey: 'K2', currentKey: 'K1', marginMs: run / 8, reharvestMs: run / 4, seedPending: false } as const;
  it('current phase: at the period start (first harvest), unless a seed is pending (now)', () => {
    expect(nextReconfigurationMs({ ...base, validAfterSeconds: R + 5, nowMs: at(R + 6), clientKey: 'K1', last: undefined })).toBe(at(P));
    expect(nextReconfigurationMs({ ...base, validAfterSeconds: R + 5, nowMs: at(R + 6), clientKey: 'K1', last: undefined, seedPending: true })).toBe(at(R + 6));
  });
  it('next phase: now until harvested, then the reharvest, or the rotation when the reharvest would be too close to it', () => {
    const rotation = at(rotationPhase(R, TEST).nextRotation);
    expect(nextReconfigurationMs({ ...base, validAfterSeconds: P + 1, nowMs: at(P + 2), last: undefined })).toBe(at(P + 2));
    expect(nextReconfigurationMs({ ...base, validAfterSeconds: P + 1, nowMs: at(P + 3), last: { blindedKey: 'K2', harvestedAtMs: at(P + 2) } })).toBe(at(P + 2) + run / 4);
    const late = rotation - run / 4;
    expect(nextReconfigurationMs({ ...base, validAfterSeconds: P + 1, nowMs: late + 1000, last: { blindedKey: 'K2', harvestedAtMs: late } })).toBe(rotation);
    // tor rotated ahead of our consensus: nothing until the rotation.
    expect(nextReconfigurationMs({ ...base, validAfterSeconds: P + 1, nowMs: at(P + 3), currentKey: 'K2', last: undefined })).toBe(rotation);
  });
});
