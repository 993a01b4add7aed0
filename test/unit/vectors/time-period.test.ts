/**
 * Known answers for time periods (rend-spec-v3 §2.2.1; tor `hs_get_time_period_num`,
 * `hs_get_start_time_of_next_time_period`, `hs_in_period_between_tp_and_srv`), including the
 * TestingTorNetwork schedule.
 */
import { describe, expect } from 'vitest';
import {
  LIVE_PERIOD_PARAMS,
  inPeriodBetweenTpAndSrv,
  nextTimePeriodStart,
  rotationOffsetSeconds,
  testingNetworkPeriodParams,
  timePeriodNum,
  timePeriodStart,
  type TimePeriodParams,
} from '../../../src/core/hs/time-period.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace('.000Z', 'Z');
}

function unix(isoTime: string): number {
  const ms = Date.parse(isoTime);
  if (!Number.isFinite(ms)) throw new Error(`bad time ${isoTime}`);
  return ms / 1000;
}

describe('time-period vectors', () => {
  forEachVector('time-period', (v) => {
    const ex = expectedOf(v);
    const i = v.inputs;
    let params: TimePeriodParams;
    if ('voting_interval_seconds' in i) {
      params = testingNetworkPeriodParams(i['voting_interval_seconds']);
      expect(params.lengthMinutes * 60).toBe(i['time_period_length_seconds']);
      expect(rotationOffsetSeconds(params)).toBe(i['rotation_offset_seconds']);
    } else {
      params = LIVE_PERIOD_PARAMS;
      if ('time_period_length_minutes' in i) expect(params.lengthMinutes).toBe(i['time_period_length_minutes']);
      if ('rotation_offset_minutes' in i) expect(rotationOffsetSeconds(params)).toBe(i['rotation_offset_minutes'] * 60);
    }
    const timeText = (i['time_utc'] ?? i['consensus_valid_after_utc']) as string | undefined;
    if (timeText === undefined) throw new Error(`unrecognised vector shape: ${v.name}`);
    const t = unix(timeText);
    if ('unix_time' in i) expect(i['unix_time']).toBe(t);

    if (ex.has('time_period_num')) {
      const tp = timePeriodNum(t, params);
      expect(tp).toBe(ex.get('time_period_num'));
      expect(timePeriodStart(tp, params)).toBeLessThanOrEqual(t);
      expect(timePeriodStart(tp + 1, params)).toBeGreaterThan(t);
    }
    if (ex.has('next_time_period_num')) expect(timePeriodNum(nextTimePeriodStart(t, params), params)).toBe(ex.get('next_time_period_num'));
    if (ex.has('time_period_start_utc')) expect(iso(timePeriodStart(timePeriodNum(t, params), params))).toBe(ex.get('time_period_start_utc'));
    if (ex.has('next_time_period_start_utc')) expect(iso(nextTimePeriodStart(t, params))).toBe(ex.get('next_time_period_start_utc'));
    if (ex.has('in_period_between_tp_and_srv')) expect(inPeriodBetweenTpAndSrv(t, params)).toBe(ex.get('in_period_between_tp_and_srv'));
    ex.done();
  });
});
