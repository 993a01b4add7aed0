/**
 * Rotation-safe publishing, as pure policy (docs/DESIGN.md "Rotation-safe intro points").
 *
 * A node's tor holds two descriptors: `desc_current` and `desc_next`. At the start of each
 * shared-random run S (00:00 UTC live) it closes `desc_current`'s intro circuits, and
 * `desc_next` — whose intro points are already established — becomes `desc_current`.
 * Clients always use the period of their consensus: between S and the next period start P
 * (12:00 UTC) that is the nodes' `desc_current`; between P and the next run start S′ it is
 * the nodes' `desc_next`. A client's cached descriptor expires at the next period start.
 *
 * So the descriptor of the client-current period must list, for each node, the intro points
 * that node built for THAT period:
 * - in [S, P) (`current` phase): `desc_current`'s points (read with GETINFO; they live until
 *   S′, after the cache entry expired at P);
 * - in [P, S′) (`next` phase): `desc_next`'s points, which tor shows nowhere locally; each
 *   node harvests them from an HSDir after a native upload (src/node/publisher/next-harvest.ts)
 *   and gossips them with the period's blinded key.
 *
 * {@link introPointsForPeriod} picks each node's set for one descriptor;
 * {@link rotationPhase} names the phase of a consensus; {@link nextHarvestAction} and
 * {@link seedDue} decide when a node harvests and when the publisher lets tor upload its own
 * descriptors once after a rotation (so the next period's descriptor on the HSDirs is a
 * valid one-node descriptor at P, until the harvested sets are merged).
 */
import { introDigest, type IntroPointWire, type PowParamsWire } from '../intro/wire.js';
import { nextTimePeriodStart, srRunSeconds, srRunStart, type TimePeriodParams } from '../hs/time-period.js';
import type { PlacementNode } from './placement.js';

/** A node's intro points as the publisher knows them (from its own tor, or a peer's gossip). */
export interface NodeIntroSets {
  readonly id: string;
  /** `desc_current`'s intro points. */
  readonly introPoints: readonly IntroPointWire[];
  /** Blinded key (base64, no padding) of the `desc_current` they came from; undefined: unknown. */
  readonly currentKey?: string | undefined;
  /** `desc_next`'s harvested intro points and the blinded key of their period. */
  readonly next?: { readonly blindedKey: string; readonly points: readonly IntroPointWire[]; readonly harvestedAtMs: number } | undefined;
  /**
   * The node harvests `desc_next` (rotation-safe mode). Its `desc_current` points are then
   * listed only in their own period's descriptor. A node that does not (no PoW defenses, or an
   * older version) is listed with its `desc_current` points in every descriptor, as before.
   */
  readonly rotationSafe?: boolean | undefined;
  /** The node tor's current pow-params (one seed for both of its descriptors, tor-facts §3.1). */
  readonly pow?: PowParamsWire | undefined;
}

/** A fingerprint of the nodes' sets: equal iff nothing the publisher uses changed. */
export function introSetsKey(nodes: readonly NodeIntroSets[]): string {
  return nodes
    .map(
      (n) =>
        `${n.id}:${n.currentKey ?? '?'}:${introDigest(n.introPoints)}:${n.rotationSafe === true ? 1 : 0}:${n.next === undefined ? '-' : `${n.next.blindedKey}:${n.next.harvestedAtMs}:${introDigest(n.next.points)}`}:${n.pow === undefined ? '-' : `${n.pow.seed}:${n.pow.effort}:${n.pow.expires}`}`,
    )
    .join(',');
}

/** Where a node's points for one descriptor came from. */
export type IntroSetSource = 'current' | 'next' | 'fallback';

/** Result of {@link introPointsForPeriod}. */
export interface PeriodIntroPoints {
  /** Nodes with a set for this descriptor (input order), with their pow-params, for the placement. */
  readonly nodes: readonly PlacementNode[];
  readonly sources: Readonly<Record<string, IntroSetSource>>;
  /** Newest harvest among the `next` sets used (0 if none). */
  readonly newestHarvestMs: number;
}

/** Each node's intro points for the descriptor whose blinded key is `blindedKey`. */
export function introPointsForPeriod(nodes: readonly NodeIntroSets[], blindedKey: string): PeriodIntroPoints {
  const out: PlacementNode[] = [];
  const sources: Record<string, IntroSetSource> = {};
  let newest = 0;
  for (const n of nodes) {
    let points: readonly IntroPointWire[] | undefined;
    let source: IntroSetSource;
    if (n.currentKey === blindedKey) {
      points = n.introPoints;
      source = 'current';
    } else if (n.next !== undefined && n.next.blindedKey === blindedKey) {
      points = n.next.points;
      source = 'next';
      newest = Math.max(newest, n.next.harvestedAtMs);
    } else if (n.rotationSafe !== true || n.currentKey === undefined) {
      points = n.introPoints;
      source = 'fallback';
    } else {
      continue;
    }
    if (points.length === 0) continue;
    out.push({ id: n.id, introPoints: points, ...(n.pow === undefined ? {} : { pow: n.pow }) });
    sources[n.id] = source;
  }
  return { nodes: out, sources, newestHarvestMs: newest };
}

/** The phase of the schedule at a time (consensus valid-after or wall clock, unix seconds). */
export interface RotationPhase {
  /** `current`: clients use the nodes' desc_current; `next`: their desc_next. */
  readonly phase: 'current' | 'next';
  /** Start of the SR run containing the time (the nodes' last rotation), unix seconds. */
  readonly runStart: number;
  /** Start of the time period that begins inside this run (the `next` phase starts there). */
  readonly periodStart: number;
  /** The next rotation (start of the next SR run). */
  readonly nextRotation: number;
}

/** Name the phase of `unixSeconds` under `params`. */
export function rotationPhase(unixSeconds: number, params: TimePeriodParams): RotationPhase {
  const runStart = srRunStart(unixSeconds, params);
  const periodStart = nextTimePeriodStart(runStart, params);
  return { phase: unixSeconds >= periodStart ? 'next' : 'current', runStart, periodStart, nextRotation: runStart + srRunSeconds(params) };
}

/** Input of {@link nextHarvestAction}. */
export interface HarvestState {
  /** The local tor's consensus valid-after, unix seconds. */
  readonly validAfterSeconds: number;
  /** Wall clock, ms. */
  readonly nowMs: number;
  readonly params: TimePeriodParams;
  /** Blinded key of the client-current period (the `next` phase's desc_next). */
  readonly clientKey: string;
  /** Blinded key of the node's desc_current, if known. */
  readonly currentKey: string | undefined;
  /** The node's last harvest, if any. */
  readonly last: { readonly blindedKey: string; readonly harvestedAtMs: number } | undefined;
  /** Wall-clock ms before which no attempt starts (backoff after a failure, or start-up jitter). */
  readonly notBeforeMs: number;
  /** No harvest starts closer than this to the rotation (tor may rotate mid-harvest). */
  readonly marginMs: number;
  /** Harvest again after this long (tor replaces intro points that fail or expire). */
  readonly reharvestMs: number;
}

/** What a node does about desc_next now. */
export type HarvestAction = { readonly action: 'harvest' } | { readonly action: 'wait'; readonly untilMs: number; readonly why: string };

/** When should this node harvest its desc_next? Pure; see the module doc. */
export function nextHarvestAction(s: HarvestState): HarvestAction {
  const ph = rotationPhase(s.validAfterSeconds, s.params);
  const rotationMs = ph.nextRotation * 1000;
  if (ph.phase === 'current') return { action: 'wait', untilMs: ph.periodStart * 1000, why: 'clients use desc_current until the period start' };
  if (s.currentKey === s.clientKey) {
    // tor already rotated (its consensus is ahead of ours): desc_current is the client period.
    return { action: 'wait', untilMs: rotationMs, why: 'tor already rotated: desc_current serves the client period' };
  }
  if (s.nowMs >= rotationMs - s.marginMs) return { action: 'wait', untilMs: rotationMs, why: 'too close to the rotation' };
  if (s.last !== undefined && s.last.blindedKey === s.clientKey && s.nowMs - s.last.harvestedAtMs < s.reharvestMs) {
    return { action: 'wait', untilMs: Math.min(s.last.harvestedAtMs + s.reharvestMs, rotationMs - s.marginMs), why: 'harvested recently' };
  }
  if (s.nowMs < s.notBeforeMs) return { action: 'wait', untilMs: Math.min(s.notBeforeMs, rotationMs - s.marginMs), why: 'backing off' };
  return { action: 'harvest' };
}

/**
 * Should the publisher let its tor upload its own descriptors now (a "seed")? Once per SR run,
 * in the `current` phase after its tor rotated (its desc_current is the client period), so that
 * at the period start the HSDirs hold a valid descriptor of the next period (the node's own,
 * with intro points that survive the next rotation) rather than nothing. `seededRun` is the
 * run start of the last seed.
 */
export function seedDue(s: { readonly validAfterSeconds: number; readonly params: TimePeriodParams; readonly clientKey: string; readonly currentKey: string | undefined; readonly seededRun: number | undefined }): boolean {
  const ph = rotationPhase(s.validAfterSeconds, s.params);
  return ph.phase === 'current' && s.currentKey === s.clientKey && s.seededRun !== ph.runStart;
}

/**
 * When will this node's tor next be reconfigured by the rotation-safe schedule (a harvest or a
 * seed: each SETCONF draws new PoW seeds, docs/DESIGN.md "Placement: PoW and more than 20
 * intro points")? Wall-clock ms; `nowMs` when one is due or under way. A node's published
 * pow-params expire then, so clients refetch instead of solving for a seed its tor dropped.
 * The candidates: the first harvest of a `next` phase (at its period start), a reharvest
 * (`last` + `reharvestMs`, unless within `marginMs` of the rotation), and the seed at the
 * rotation (the publisher's; any node may be publisher by then; `seedPending`: this node is
 * the publisher and its seed for this run is still to come).
 */
export function nextReconfigurationMs(s: Omit<HarvestState, 'notBeforeMs'> & { readonly seedPending: boolean }): number {
  if (s.seedPending) return s.nowMs;
  const ph = rotationPhase(s.validAfterSeconds, s.params);
  const rotationMs = ph.nextRotation * 1000;
  if (ph.phase === 'current') return Math.max(s.nowMs, Math.min(ph.periodStart * 1000, rotationMs));
  if (s.currentKey === s.clientKey) return Math.max(s.nowMs, rotationMs);
  if (s.last === undefined || s.last.blindedKey !== s.clientKey) return s.nowMs;
  const again = s.last.harvestedAtMs + s.reharvestMs;
  return Math.max(s.nowMs, again < rotationMs - s.marginMs ? again : rotationMs);
}
