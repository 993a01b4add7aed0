/**
 * NextHarvestScheduler (src/node/publisher/next-schedule.ts) with a fake harvester, a fake
 * network (test-network schedule: 240 s SR runs, period start 120 s in) and a fake clock:
 * harvests only in the next phase, jittered, once per period (again after run/4), retries a
 * lost race quickly; the publisher seeds once per run after its tor rotated and reasserts;
 * idle while not clustered.
 */
import { describe, expect, it } from 'vitest';
import { toBase64NoPad } from '../../../src/core/bytes.js';
import { TorbalanceError } from '../../../src/core/errors.js';
import { blindPublicKey } from '../../../src/core/hs/blinding.js';
import { HsIdentityKeypair } from '../../../src/core/hs/keys.js';
import { srRunStart, testingNetworkPeriodParams, timePeriodNum } from '../../../src/core/hs/time-period.js';
import type { HarvestedNextSet } from '../../../src/node/publisher/next-harvest.js';
import { NextHarvestScheduler } from '../../../src/node/publisher/next-schedule.js';
import { FakeClock, FakeNetwork, makeRelays, seededRandom, silentLogger } from './fakes.js';

const TP = testingNetworkPeriodParams(10);
const identity = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3));
const S = srRunStart(1_796_640_000, TP); // a run start (every node rotates)
const keyAt = (unixS: number): string => toBase64NoPad(blindPublicKey(identity.publicKey, timePeriodNum(unixS, TP), TP.lengthMinutes));

function rig(o: { startS: number; publisher?: boolean; active?: boolean; harvest?: () => Promise<HarvestedNextSet> }) {
  const clock = new FakeClock(o.startS * 1000);
  const rnd = seededRandom(1);
  const network = new FakeNetwork(o.startS, makeRelays(rnd, 8), rnd(32), rnd(32));
  const calls = { harvest: [] as number[], seed: [] as number[], seeded: [] as number[], harvested: [] as HarvestedNextSet[] };
  let currentKey: string | undefined = keyAt(o.startS < S + 120 ? o.startS : o.startS - 120);
  const state = { active: o.active ?? true, publisher: o.publisher ?? false };
  const sch = new NextHarvestScheduler({
    harvester: {
      harvest: async () => {
        calls.harvest.push(clock.wallMs);
        if (o.harvest !== undefined) return o.harvest();
        return { blindedKey: keyAt(network.consensus.validAfter), points: [], digest: '', revisionCounter: '1', hsdir: 'X', harvestedAtMs: clock.wallMs, tookMs: 1 };
      },
      seed: () => {
        calls.seed.push(clock.wallMs);
        return Promise.resolve({ uploadedAtMs: clock.wallMs, nextKey: 'k', hsdirs: ['X'] });
      },
    },
    network,
    identityPublicKey: identity.publicKey,
    testingTorNetwork: true,
    now: () => clock.wallMs,
    timers: clock,
    random: () => 0.5,
    logger: silentLogger,
    active: () => state.active,
    isPublisher: () => state.publisher,
    currentKey: () => currentKey,
    onHarvest: (s) => calls.harvested.push(s),
    onSeeded: (ms) => calls.seeded.push(ms),
  });
  const advanceTo = async (unixS: number): Promise<void> => {
    while (clock.wallMs < unixS * 1000) {
      const step = Math.min(1000, unixS * 1000 - clock.wallMs);
      await clock.advance(step);
      // The consensus arrives 2 s after each 10 s voting interval.
      const va = Math.floor((clock.wallMs / 1000 - 2) / 10) * 10;
      if (va > network.consensus.validAfter) network.setValidAfter(va);
    }
  };
  return { clock, network, calls, sch, state, advanceTo, setCurrentKey: (k: string | undefined) => (currentKey = k) };
}

describe('NextHarvestScheduler', () => {
  it('harvests once after the period start (jittered), again after run/4, never in the current phase or near the rotation', async () => {
    const r = rig({ startS: S + 30 });
    r.sch.start();
    await r.advanceTo(S + 119);
    expect(r.calls.harvest).toEqual([]);
    await r.advanceTo(S + 135);
    expect(r.calls.harvest).toHaveLength(1);
    const first = r.calls.harvest[0]! / 1000;
    // consensus valid-after S+120 reaches us at S+122; jitter 0.5 × 3 s
    expect(first).toBeGreaterThanOrEqual(S + 122);
    expect(first).toBeLessThan(S + 126);
    expect(r.calls.harvested).toHaveLength(1);
    await r.advanceTo(S + 239);
    // again once, 60 s later; nothing within 30 s of the rotation at S+240
    expect(r.calls.harvest.map((t) => Math.round(t / 1000 - first))).toEqual([0, 60]);
    r.sch.stop();
  });

  it('retries a race lost to another node within 1–4 s, and backs off on other errors', async () => {
    let n = 0;
    const r: ReturnType<typeof rig> = rig({
      startS: S + 125,
      harvest: () => {
        n++;
        if (n <= 2) return Promise.reject(new TorbalanceError(n === 1 ? 'TB_ERR_HARVEST_NOT_OURS' : 'TB_ERR_HARVEST_NO_UPLOAD', 'tor', 'x'));
        return Promise.resolve({ blindedKey: keyAt(S + 125), points: [], digest: '', revisionCounter: '1', hsdir: 'X', harvestedAtMs: r.clock.wallMs, tookMs: 1 });
      },
    });
    r.sch.start();
    await r.advanceTo(S + 150);
    const t = r.calls.harvest.map((x) => x / 1000);
    expect(t).toHaveLength(3);
    expect(t[1]! - t[0]!).toBeGreaterThanOrEqual(1);
    expect(t[1]! - t[0]!).toBeLessThanOrEqual(4.5);
    expect(t[2]! - t[1]!).toBeGreaterThanOrEqual(5);
    r.sch.stop();
  });

  it('the publisher seeds once per run after its tor rotated, and reasserts; members never seed', async () => {
    const r = rig({ startS: S - 20, publisher: true });
    r.setCurrentKey(keyAt(S - 140)); // tor has not rotated yet
    r.sch.start();
    await r.advanceTo(S + 5);
    expect(r.calls.seed).toEqual([]);
    r.setCurrentKey(keyAt(S + 5)); // rotated: desc_current is the client period
    r.sch.poke();
    await r.advanceTo(S + 100);
    expect(r.calls.seed).toHaveLength(1);
    expect(r.calls.seeded).toHaveLength(1);
    r.sch.stop();
    const m = rig({ startS: S + 5, publisher: false });
    m.setCurrentKey(keyAt(S + 5));
    m.sch.start();
    await m.advanceTo(S + 100);
    expect(m.calls.seed).toEqual([]);
    m.sch.stop();
  });

  it('does nothing while not clustered', async () => {
    const r = rig({ startS: S + 125, active: false, publisher: true });
    r.sch.start();
    await r.advanceTo(S + 230);
    expect(r.calls.harvest).toEqual([]);
    expect(r.calls.seed).toEqual([]);
    r.sch.stop();
  });
});

describe('NextHarvestScheduler and fail-closed pauses', () => {
  it('harvests nothing while paused (inactive), and after forget() drops the old set and harvests the re-added service at once', async () => {
    const r = rig({ startS: S + 125 });
    r.sch.start();
    await r.advanceTo(S + 130);
    expect(r.calls.harvest).toHaveLength(1);
    expect(r.sch.current()).toBeDefined();
    r.state.active = false; // paused: the cluster reports the scheduler inactive
    await r.advanceTo(S + 150);
    expect(r.calls.harvest).toHaveLength(1);
    r.state.active = true; // resumed: the service is new, its desc_next too
    r.sch.forget();
    expect(r.sch.current()).toBeUndefined();
    await r.advanceTo(S + 152);
    // without forget() the set harvested at ~S+125 would count as fresh until run/4 later (~S+185)
    expect(r.calls.harvest).toHaveLength(2);
    expect(r.sch.current()?.harvestedAtMs).toBeGreaterThanOrEqual((S + 150) * 1000);
    r.sch.stop();
  });
});

describe('NextHarvestScheduler.nextReconfigurationMs', () => {
  it('after a check, answers without asking who publishes (the mesh view it would read calls back into it)', async () => {
    const r = rig({ startS: S + 30, publisher: true });
    r.sch.start();
    await r.advanceTo(S + 40);
    let asked = 0;
    const orig = Object.getOwnPropertyDescriptor(r.state, 'publisher')!;
    Object.defineProperty(r.state, 'publisher', {
      get: () => {
        asked++;
        return orig.value as boolean;
      },
    });
    const at = r.sch.nextReconfigurationMs();
    expect(asked).toBe(0);
    expect(at).toBeGreaterThanOrEqual(r.clock.wallMs);
    r.sch.stop();
  });
});
