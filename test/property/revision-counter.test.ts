/**
 * Properties of revision counters (tor hs_service.c: set_descriptor_revision_counter):
 * for one descriptor (one time period, one blinded key) the counter rises strictly with the
 * publisher's clock over the whole window in which tor computes it, and two publishers that
 * hold the same identity key and read the same clock compute the same value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ed25519ExpandSeed } from '../../src/core/crypto/index.js';
import { blindKeypair } from '../../src/core/hs/blinding.js';
import {
  OPE_INPUT_MAX,
  OpeCipher,
  revisionCounterFor,
  revisionCounterKey,
  revisionCounterSrvStart,
} from '../../src/core/hs/revision-counter.js';
import {
  LIVE_PERIOD_PARAMS,
  testingNetworkPeriodParams,
  timePeriodStart,
  type TimePeriodParams,
} from '../../src/core/hs/time-period.js';

const schedules: readonly TimePeriodParams[] = [LIVE_PERIOD_PARAMS, testingNetworkPeriodParams(10), testingNetworkPeriodParams(20)];

describe('revision counter', () => {
  it('rises strictly with time within a descriptor window', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1000, max: 30000 }),
        fc.constantFrom(...schedules),
        fc.integer({ min: 0, max: OPE_INPUT_MAX - 2 }),
        fc.integer({ min: 1, max: OPE_INPUT_MAX - 1 }),
        (seed, periodNum, params, off, gap) => {
          const blinded = blindKeypair(ed25519ExpandSeed(seed), periodNum, params.lengthMinutes);
          const ope = new OpeCipher(revisionCounterKey(blinded.expandedSecretKey));
          const start = revisionCounterSrvStart(periodNum, params);
          // The period begins inside the window, after the run start.
          expect(timePeriodStart(periodNum, params)).toBeGreaterThanOrEqual(start);
          const t1 = start + off;
          const t2 = Math.min(t1 + gap, start + OPE_INPUT_MAX - 1);
          fc.pre(t2 > t1);
          const base = { blindedExpandedSecretKey: blinded.expandedSecretKey, periodNum, params, ope };
          const c1 = revisionCounterFor({ ...base, nowSeconds: t1 });
          const c2 = revisionCounterFor({ ...base, nowSeconds: t2 });
          const c1next = revisionCounterFor({ ...base, nowSeconds: t1 + 1 });
          expect(c1 < c1next).toBe(true);
          expect(c1 < c2).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('is the same for two publishers with the same key at the same instant', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1000, max: 30000 }),
        fc.constantFrom(...schedules),
        fc.integer({ min: 0, max: OPE_INPUT_MAX - 1 }),
        (seed, periodNum, params, off) => {
          // Each publisher derives everything on its own from the identity key.
          const a = blindKeypair(ed25519ExpandSeed(seed.slice()), periodNum, params.lengthMinutes);
          const b = blindKeypair(ed25519ExpandSeed(seed.slice()), periodNum, params.lengthMinutes);
          const nowSeconds = revisionCounterSrvStart(periodNum, params) + off;
          const ca = revisionCounterFor({ blindedExpandedSecretKey: a.expandedSecretKey, periodNum, params, nowSeconds });
          const cb = revisionCounterFor({
            blindedExpandedSecretKey: b.expandedSecretKey,
            periodNum,
            params,
            nowSeconds,
            ope: new OpeCipher(revisionCounterKey(b.expandedSecretKey)),
          });
          expect(ca).toBe(cb);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses times outside the window with a typed error', () => {
    const params = LIVE_PERIOD_PARAMS;
    const blinded = blindKeypair(ed25519ExpandSeed(new Uint8Array(32).fill(7)), 19000, 1440);
    const start = revisionCounterSrvStart(19000, params);
    const base = { blindedExpandedSecretKey: blinded.expandedSecretKey, periodNum: 19000, params };
    expect(() => revisionCounterFor({ ...base, nowSeconds: start - 1 })).toThrow(expect.objectContaining({ code: 'TB_ERR_REVCOUNTER_TIME' }));
    expect(() => revisionCounterFor({ ...base, nowSeconds: start + OPE_INPUT_MAX })).toThrow(
      expect.objectContaining({ code: 'TB_ERR_REVCOUNTER_TIME' }),
    );
    expect(revisionCounterFor({ ...base, nowSeconds: start + OPE_INPUT_MAX - 1 })).toBeGreaterThan(0n);
    // On the live network the window runs from 00:00 on the day the period starts (12:00).
    expect(timePeriodStart(19000, params) - start).toBe(12 * 3600);
  });
});
