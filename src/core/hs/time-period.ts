/**
 * Time periods (rend-spec-v3 §2.2.1 [TIME-PERIODS]; tor `hs_common.c: hs_get_time_period_num,
 * get_time_period_length, hs_get_start_time_of_next_time_period,
 * hs_in_period_between_tp_and_srv`).
 *
 * All times are consensus `valid-after` seconds (not the wall clock) and are passed in.
 *
 * On the live network the period length is the consensus `hsdir_interval` (1440 min) and the
 * rotation offset is one SR phase, 12 voting intervals (12 h). Under `TestingTorNetwork` tor
 * ignores `hsdir_interval` and uses one SR protocol run, 24 voting intervals, so periods
 * last minutes: use {@link testingNetworkPeriodParams}.
 */

/** Parameters of the time-period schedule. */
export interface TimePeriodParams {
  /** Period length in minutes (`hsdir_interval`, or 24·votingInterval/60 on a test network). */
  readonly lengthMinutes: number;
  /** The consensus voting interval in seconds (3600 on the live network). */
  readonly votingIntervalSeconds: number;
}

/** Number of rounds in one SR phase; a protocol run has two phases (commit, reveal). */
export const SR_ROUNDS_PER_PHASE = 12;

/** The live network's schedule. */
export const LIVE_PERIOD_PARAMS: TimePeriodParams = { lengthMinutes: 1440, votingIntervalSeconds: 3600 };

/** tor's schedule under `TestingTorNetwork` with the given `V3AuthVotingInterval`. */
export function testingNetworkPeriodParams(votingIntervalSeconds: number): TimePeriodParams {
  return { lengthMinutes: Math.floor((2 * SR_ROUNDS_PER_PHASE * votingIntervalSeconds) / 60), votingIntervalSeconds };
}

/** Live-network schedule with a consensus `hsdir_interval` value. */
export function livePeriodParams(hsdirIntervalMinutes = 1440): TimePeriodParams {
  return { lengthMinutes: hsdirIntervalMinutes, votingIntervalSeconds: 3600 };
}

function check(params: TimePeriodParams): void {
  if (!Number.isSafeInteger(params.lengthMinutes) || params.lengthMinutes <= 0) throw new RangeError('period length must be a positive integer');
  if (!Number.isSafeInteger(params.votingIntervalSeconds) || params.votingIntervalSeconds <= 0) throw new RangeError('voting interval must be a positive integer');
}

/** The rotation offset in seconds: one SR phase (12 voting intervals). */
export function rotationOffsetSeconds(params: TimePeriodParams): number {
  return SR_ROUNDS_PER_PHASE * params.votingIntervalSeconds;
}

/** The SR protocol run length in seconds (24 voting intervals). */
export function srRunSeconds(params: TimePeriodParams): number {
  return 2 * SR_ROUNDS_PER_PHASE * params.votingIntervalSeconds;
}

/** The time-period number at `unixSeconds` (`hs_get_time_period_num`). */
export function timePeriodNum(unixSeconds: number, params: TimePeriodParams = LIVE_PERIOD_PARAMS): number {
  check(params);
  const offsetMinutes = Math.floor(rotationOffsetSeconds(params) / 60);
  const minutes = Math.floor(unixSeconds / 60) - offsetMinutes;
  if (minutes <= 0) throw new RangeError('time is before the first time period');
  return Math.floor(minutes / params.lengthMinutes);
}

/** Start (unix seconds) of period `periodNum`. */
export function timePeriodStart(periodNum: number, params: TimePeriodParams = LIVE_PERIOD_PARAMS): number {
  check(params);
  return periodNum * params.lengthMinutes * 60 + rotationOffsetSeconds(params);
}

/** Start of the period after the one containing `unixSeconds` (`hs_get_start_time_of_next_time_period`). */
export function nextTimePeriodStart(unixSeconds: number, params: TimePeriodParams = LIVE_PERIOD_PARAMS): number {
  return timePeriodStart(timePeriodNum(unixSeconds, params) + 1, params);
}

/**
 * Start of the SR protocol run containing `unixSeconds`
 * (`sr_state_get_start_time_of_current_protocol_run`): runs start at multiples of the run
 * length (00:00 UTC on the live network).
 */
export function srRunStart(unixSeconds: number, params: TimePeriodParams = LIVE_PERIOD_PARAMS): number {
  const run = srRunSeconds(params);
  return unixSeconds - (((unixSeconds % run) + run) % run);
}

/**
 * True between the start of a time period and the next SR run (12:00–24:00 UTC on the live
 * network) — `hs_in_period_between_tp_and_srv`. Then the client-current descriptor is for
 * period `tp` with the current SRV, and the other active one for `tp − 1` with the previous SRV;
 * otherwise they are `tp` (previous SRV) and `tp + 1` (current SRV).
 */
export function inPeriodBetweenTpAndSrv(validAfter: number, params: TimePeriodParams = LIVE_PERIOD_PARAMS): boolean {
  const srvStart = srRunStart(validAfter, params);
  const tpStart = nextTimePeriodStart(srvStart, params);
  return !(validAfter >= srvStart && validAfter < tpStart);
}
