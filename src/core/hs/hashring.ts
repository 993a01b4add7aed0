/**
 * The HSDir hash ring (rend-spec-v3 §2.2.3 [HASHRING], §2.2.4 [SHAREDRANDOM]; tor
 * `hs_common.c: hs_build_hs_index, hs_build_hsdir_index, hs_get_responsible_hsdirs,
 * hs_get_current_srv, hs_get_previous_srv, hs_in_period_between_tp_and_srv`,
 * `nodelist.c: node_set_hsdir_index`, `hs_service.c: upload_descriptor_to_all`).
 *
 * ```
 * hs_index(replica)  = H("store-at-idx" ‖ blinded_pk ‖ INT_8(replica) ‖ INT_8(period_length) ‖ INT_8(period_num))
 * hsdir_index(node)  = H("node-idx" ‖ ed25519_id ‖ srv ‖ INT_8(period_num) ‖ INT_8(period_length))
 * ```
 * (note the length/num order differs). Members are sorted by hsdir_index (unsigned
 * big-endian); for each replica 1..hsdir_n_replicas, start at the first member whose index is
 * ≥ hs_index (wrapping to 0), and take `spread` members, skipping ones an earlier replica
 * already chose, stopping after one full turn.
 *
 * Which SRV and period (node_set_hsdir_index), with `tp` the period of the consensus
 * `valid-after` and "between" = `hs_in_period_between_tp_and_srv`:
 * - first descriptor (`desc_current`, `use_second_hsdir_index = 0`): period `between ? tp−1 : tp`,
 *   **previous** SRV;
 * - second descriptor (`desc_next`, `use_second_hsdir_index = 1`): period `between ? tp : tp+1`,
 *   **current** SRV;
 * - client fetch: period `tp`, current SRV if between, else previous.
 * A missing SRV is replaced by the disaster SRV of that descriptor's period.
 *
 * The period length is the consensus `hsdir_interval` on the live network, but one SR run
 * (24 voting intervals) under `TestingTorNetwork`, so everything takes period parameters.
 */
import { compareBytes, u64be, utf8 } from '../bytes.js';
import { sha3_256 } from '../crypto/index.js';
import { BugError, TorbalanceError } from '../errors.js';
import { blindPublicKey } from './blinding.js';
import { disasterSrv } from './disaster-srv.js';
import {
  inPeriodBetweenTpAndSrv,
  rotationOffsetSeconds,
  testingNetworkPeriodParams,
  timePeriodNum,
  type TimePeriodParams,
} from './time-period.js';

/** A relay that can be on the ring. */
export interface HsdirRelay {
  /** 40 upper-case hex digits of the RSA identity digest (as in HS_DESC events, without `$`). */
  readonly rsaFingerprint: string;
  /** 32-byte ed25519 identity. */
  readonly ed25519Id: Uint8Array;
  readonly nickname?: string;
}

/** A ring member with its hsdir_index for one (SRV, period). */
export interface RingEntry {
  readonly relay: HsdirRelay;
  readonly hsdirIndex: Uint8Array;
}

/** Ring parameters from the consensus (tor `hs_get_hsdir_*`). */
export interface HsdirParams {
  /** `hsdir_n_replicas`, default 2, [1,16]. */
  readonly replicas: number;
  /** `hsdir_spread_store`, default 4, [1,128]. */
  readonly spreadStore: number;
  /** `hsdir_spread_fetch`, default 3, [1,128]. */
  readonly spreadFetch: number;
}

/** tor's defaults and bounds (hs_common.h, hs_common.c). */
export const HSDIR_PARAM_BOUNDS = {
  hsdir_n_replicas: { def: 2, min: 1, max: 16 },
  hsdir_spread_store: { def: 4, min: 1, max: 128 },
  hsdir_spread_fetch: { def: 3, min: 1, max: 128 },
  /** Minutes; min is 5 in tor 0.4.9 (`HS_TIME_PERIOD_LENGTH_MIN`; 30 in 0.4.8), max 10 days. */
  hsdir_interval: { def: 1440, min: 5, max: 14400 },
} as const;

const HS_INDEX_PREFIX = utf8('store-at-idx');
const HSDIR_INDEX_PREFIX = utf8('node-idx');

function need32(b: Uint8Array, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== 32) throw new BugError(`${what} must be 32 bytes`);
}

/** `hs_index` for one replica (`hs_build_hs_index`). */
export function hsIndex(blindedPublicKey: Uint8Array, replica: number, periodLengthMinutes: number, periodNum: number): Uint8Array {
  need32(blindedPublicKey, 'blinded public key');
  return sha3_256(HS_INDEX_PREFIX, blindedPublicKey, u64be(replica), u64be(periodLengthMinutes), u64be(periodNum));
}

/** `hsdir_index` of a relay (`hs_build_hsdir_index`). */
export function hsdirIndex(ed25519Id: Uint8Array, srv: Uint8Array, periodNum: number, periodLengthMinutes: number): Uint8Array {
  need32(ed25519Id, 'ed25519 identity');
  need32(srv, 'shared random value');
  return sha3_256(HSDIR_INDEX_PREFIX, ed25519Id, srv, u64be(periodNum), u64be(periodLengthMinutes));
}

/** Entries sorted by hsdir_index (unsigned big-endian), as tor sorts the ring. */
export function sortRing(entries: readonly RingEntry[]): RingEntry[] {
  return entries.slice().sort((a, b) => compareBytes(a.hsdirIndex, b.hsdirIndex));
}

/** The sorted ring of `relays` for one SRV and period. */
export function buildRing(relays: readonly HsdirRelay[], srv: Uint8Array, periodNum: number, periodLengthMinutes: number): RingEntry[] {
  return sortRing(relays.map((relay) => ({ relay, hsdirIndex: hsdirIndex(relay.ed25519Id, srv, periodNum, periodLengthMinutes) })));
}

/** Index of the first entry of sorted `ring` whose hsdir_index is ≥ `key` (ring.length if none). */
function lowerBound(ring: readonly RingEntry[], key: Uint8Array): number {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(ring[mid]!.hsdirIndex, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One replica's position on the ring. */
export interface ReplicaPosition {
  readonly replica: number;
  readonly hsIndex: Uint8Array;
  /** First ring index with hsdir_index ≥ hs_index (may equal the ring length; tor then starts at 0). */
  readonly ringPosition: number;
}

/** Result of {@link responsibleHsdirs}. */
export interface ResponsibleHsdirs {
  /** In tor's order: replica 1's picks, then replica 2's, … */
  readonly hsdirs: readonly HsdirRelay[];
  readonly replicas: readonly ReplicaPosition[];
}

/** Arguments of {@link responsibleHsdirs}. */
export interface ResponsibleHsdirsInput {
  readonly blindedPublicKey: Uint8Array;
  readonly periodNum: number;
  readonly periodLengthMinutes: number;
  /** Ring members with their hsdir_index for this descriptor (any order). */
  readonly ring: readonly RingEntry[];
  /** `hsdir_n_replicas`. */
  readonly replicas: number;
  /** `hsdir_spread_store` (upload) or `hsdir_spread_fetch` (client). */
  readonly spread: number;
}

/** `hs_get_responsible_hsdirs`: fewer than replicas·spread if the ring is small; none if empty. */
export function responsibleHsdirs(input: ResponsibleHsdirsInput): ResponsibleHsdirs {
  const { blindedPublicKey, periodNum, periodLengthMinutes, replicas, spread } = input;
  if (!Number.isSafeInteger(replicas) || replicas < 1 || !Number.isSafeInteger(spread) || spread < 1) {
    throw new BugError('replicas and spread must be positive integers');
  }
  const ring = sortRing(input.ring);
  const chosen: HsdirRelay[] = [];
  const chosenIds = new Set<string>();
  const positions: ReplicaPosition[] = [];
  for (let replica = 1; replica <= replicas; replica++) {
    const idx = hsIndex(blindedPublicKey, replica, periodLengthMinutes, periodNum);
    const pos = lowerBound(ring, idx);
    positions.push({ replica, hsIndex: idx, ringPosition: pos });
    if (ring.length === 0) continue;
    const start = pos === ring.length ? 0 : pos;
    let i = start;
    let added = 0;
    while (added < spread) {
      const relay = ring[i]!.relay;
      if (!chosenIds.has(relay.rsaFingerprint)) {
        chosenIds.add(relay.rsaFingerprint);
        chosen.push(relay);
        added++;
      }
      i = i + 1 === ring.length ? 0 : i + 1;
      if (i === start) break;
    }
  }
  return { hsdirs: chosen, replicas: positions };
}

// ---------------------------------------------------------------------------------------
// From a consensus

/** What the ring needs from a parsed consensus (netdoc/consensus.ts `Consensus` fits). */
export interface RingConsensus {
  readonly validAfter: number;
  /** `fresh-until − valid-after`. */
  readonly votingIntervalSeconds: number;
  readonly params: ReadonlyMap<string, number>;
  readonly sharedRandCurrent: { readonly value: Uint8Array } | undefined;
  readonly sharedRandPrevious: { readonly value: Uint8Array } | undefined;
}

function param(params: ReadonlyMap<string, number>, name: keyof typeof HSDIR_PARAM_BOUNDS): number {
  const b = HSDIR_PARAM_BOUNDS[name];
  const v = params.get(name);
  if (v === undefined) return b.def;
  return Math.min(b.max, Math.max(b.min, v));
}

/** `hsdir_n_replicas`, `hsdir_spread_store`, `hsdir_spread_fetch` with tor's defaults and clamping. */
export function hsdirParams(params: ReadonlyMap<string, number>): HsdirParams {
  return {
    replicas: param(params, 'hsdir_n_replicas'),
    spreadStore: param(params, 'hsdir_spread_store'),
    spreadFetch: param(params, 'hsdir_spread_fetch'),
  };
}

/**
 * The time-period schedule tor derives from a consensus (`get_time_period_length`,
 * `get_voting_interval`): under `TestingTorNetwork` one SR run (24 voting intervals, in whole
 * minutes), otherwise `hsdir_interval` (clamped to [5, 14400]). The voting interval is
 * `fresh-until − valid-after`.
 *
 * @throws TorbalanceError `TB_ERR_HASHRING_SCHEDULE` if that gives no usable schedule.
 */
export function ringPeriodParams(consensus: RingConsensus, testingTorNetwork: boolean): TimePeriodParams {
  const v = consensus.votingIntervalSeconds;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new TorbalanceError('TB_ERR_HASHRING_SCHEDULE', 'input', 'consensus has no usable voting interval');
  }
  const p = testingTorNetwork
    ? testingNetworkPeriodParams(v)
    : { lengthMinutes: param(consensus.params, 'hsdir_interval'), votingIntervalSeconds: v };
  if (p.lengthMinutes < 1) {
    throw new TorbalanceError('TB_ERR_HASHRING_SCHEDULE', 'input', 'voting interval too short for a time period');
  }
  return p;
}

/** Where an SRV came from. */
export type SrvSource = 'current' | 'previous' | 'disaster';

/** Period and SRV of one ring use. */
export interface RingSlot {
  readonly periodNum: number;
  readonly srv: Uint8Array;
  readonly srvSource: SrvSource;
}

/** Which period and SRV each descriptor (and a client fetch) uses under a consensus. */
export interface DescriptorPlan {
  readonly periodParams: TimePeriodParams;
  /** The period of the consensus valid-after (`hs_get_time_period_num`). */
  readonly currentPeriodNum: number;
  readonly inPeriodBetweenTpAndSrv: boolean;
  /** desc_current, use_second_hsdir_index = 0. */
  readonly first: RingSlot;
  /** desc_next, use_second_hsdir_index = 1. */
  readonly second: RingSlot;
  /** A client's fetch index. */
  readonly fetch: RingSlot;
}

function slot(consensus: RingConsensus, which: 'current' | 'previous', periodNum: number, lengthMinutes: number): RingSlot {
  const v = which === 'current' ? consensus.sharedRandCurrent : consensus.sharedRandPrevious;
  if (v !== undefined) return { periodNum, srv: v.value, srvSource: which };
  return { periodNum, srv: disasterSrv(periodNum, lengthMinutes), srvSource: 'disaster' };
}

/**
 * Periods and SRVs per `node_set_hsdir_index`.
 *
 * @throws TorbalanceError `TB_ERR_HASHRING_TIME` if valid-after is before the first period.
 */
export function descriptorPlan(consensus: RingConsensus, periodParams: TimePeriodParams): DescriptorPlan {
  const va = consensus.validAfter;
  if (!Number.isSafeInteger(va) || va / 60 <= rotationOffsetSeconds(periodParams) / 60 + periodParams.lengthMinutes) {
    throw new TorbalanceError('TB_ERR_HASHRING_TIME', 'input', 'consensus valid-after is before the first time period');
  }
  const tp = timePeriodNum(va, periodParams);
  const between = inPeriodBetweenTpAndSrv(va, periodParams);
  const len = periodParams.lengthMinutes;
  return {
    periodParams,
    currentPeriodNum: tp,
    inPeriodBetweenTpAndSrv: between,
    first: slot(consensus, 'previous', between ? tp - 1 : tp, len),
    second: slot(consensus, 'current', between ? tp : tp + 1, len),
    fetch: slot(consensus, between ? 'current' : 'previous', tp, len),
  };
}

/** Where one descriptor goes. */
export interface DescriptorTarget extends RingSlot {
  readonly descriptor: 'first' | 'second';
  readonly useSecondHsdirIndex: boolean;
  readonly blindedPublicKey: Uint8Array;
  /** hsdir_spread_store per replica, in tor's order. */
  readonly hsdirs: readonly HsdirRelay[];
  readonly replicas: readonly ReplicaPosition[];
}

/** Result of {@link descriptorTargets}. */
export interface DescriptorTargets {
  readonly plan: DescriptorPlan;
  readonly hsdirParams: HsdirParams;
  /** [first (desc_current), second (desc_next)], as tor's upload_descriptor_to_all. */
  readonly descriptors: readonly [DescriptorTarget, DescriptorTarget];
}

/** Options of {@link descriptorTargets}. */
export interface DescriptorTargetsOptions {
  /** Ring members (see `hsdirRelays` in netdoc/consensus.ts). */
  readonly relays: readonly HsdirRelay[];
  /** The network runs with `TestingTorNetwork 1` (periods of 24 voting intervals). */
  readonly testingTorNetwork?: boolean;
  /** Override the schedule entirely (otherwise {@link ringPeriodParams}). */
  readonly periodParams?: TimePeriodParams;
}

/**
 * For the service with `identityPublicKey`, the two descriptors tor would upload under
 * `consensus`: period, blinded key, SRV and the responsible HSDirs of each.
 *
 * @throws TorbalanceError `TB_ERR_HASHRING_TIME`, `TB_ERR_HASHRING_SCHEDULE`,
 *   `TB_ERR_HASHRING_KEY` (identity key is not a valid ed25519 point).
 */
export function descriptorTargets(
  consensus: RingConsensus,
  identityPublicKey: Uint8Array,
  options: DescriptorTargetsOptions,
): DescriptorTargets {
  const periodParams = options.periodParams ?? ringPeriodParams(consensus, options.testingTorNetwork ?? false);
  const plan = descriptorPlan(consensus, periodParams);
  const hp = hsdirParams(consensus.params);
  const len = periodParams.lengthMinutes;
  const target = (descriptor: 'first' | 'second', s: RingSlot): DescriptorTarget => {
    let blindedPublicKey: Uint8Array;
    try {
      blindedPublicKey = blindPublicKey(identityPublicKey, s.periodNum, len);
    } catch (cause) {
      throw new TorbalanceError('TB_ERR_HASHRING_KEY', 'config', 'identity key cannot be blinded', { cause });
    }
    const r = responsibleHsdirs({
      blindedPublicKey,
      periodNum: s.periodNum,
      periodLengthMinutes: len,
      ring: buildRing(options.relays, s.srv, s.periodNum, len),
      replicas: hp.replicas,
      spread: hp.spreadStore,
    });
    return { ...s, descriptor, useSecondHsdirIndex: descriptor === 'second', blindedPublicKey, hsdirs: r.hsdirs, replicas: r.replicas };
  };
  return { plan, hsdirParams: hp, descriptors: [target('first', plan.first), target('second', plan.second)] };
}
