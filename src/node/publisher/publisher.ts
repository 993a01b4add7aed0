/**
 * The merged-descriptor publisher (tor-facts §1.1, §2, §8 items 3–5; tor `hs_service.c:
 * upload_descriptor_to_all, set_descriptor_revision_counter`, `hs_common.c:
 * hs_get_responsible_hsdirs`).
 *
 * Given the cluster's intro points ({@link Publisher.update}), it builds BOTH descriptors
 * tor itself would upload under the local tor's consensus (`descriptorTargets`: the
 * `desc_current` slot with the first HSDir index and the `desc_next` slot with the second),
 * re-certifies the chosen intro points (`buildDescriptor`, fresh signing key per descriptor),
 * uses tor's OPE revision counter (`revisionCounterFor`: time-based, so two publishers with
 * synchronized clocks produce increasing counters across failover), and sends
 * `+HSPOST SERVER=<fp>… HSADDRESS=<master>` with exactly that descriptor's responsible
 * HSDirs. The two HSPOSTs go one after the other, each waiting for its
 * {@link UploadTracker} round (UPLOADED carries no descriptor id).
 *
 * Republish triggers: the selected intro points change (node join/leave/death or a node's
 * intro points change: a different selection digest); the plan changes (a new consensus with
 * another period, SRV or responsible-HSDir set: checked every `consensusPollMs`, which also
 * covers the period roll-over); every `refreshMs`; and retries for HSDirs that FAILED or
 * stayed silent (exponential backoff from `retryMs`, only to those HSDirs, with a new
 * counter). `update(null)` stops publishing (not the publisher, or a lone node whose tor
 * publishes for itself). Counters: a publish never reuses a wall-clock second already used
 * for the same blinded key (it waits for the next second), so successive counters strictly
 * increase. `flow-control 1-2 31` by default.
 *
 * Placement (src/core/publish/placement.ts, docs/DESIGN.md "Placement: PoW and more than 20
 * intro points"): each descriptor is either one merged descriptor for all its HSDirs (no
 * `pow-params`), or per-HSDir variants — `spread` when the nodes have more intro points than
 * one descriptor holds, `per-node` (one node's points with that node's `pow-params`) when PoW
 * is published and a node's suggested effort is above 0, or always by config. All variants of
 * a descriptor share one revision counter; each goes to its own HSDirs with `HSPOST SERVER=`.
 * A published pow-params leaves its descriptor shortly before it expires (a timer re-plans).
 *
 * Verification (optional, on by default): after a round that posted the client-current
 * descriptor (the one HSFETCH fetches: period of the consensus valid-after, tor-facts §1.3),
 * and every `verify.everyMs`, but never more than once per `verify.minIntervalMs`, the
 * publisher sends `HSFETCH <master> SERVER=<fp>…` to that descriptor's fetch HSDirs
 * (`hsdir_spread_fetch` per replica; a client asks only these) and checks what each serves
 * ({@link FetchVerifier}): a lower revision counter than we last posted (`stale`) or none
 * (`not-found`) → that HSDir alone gets a fresh descriptor with a higher counter (reason
 * `verify`); errors and timeouts are only reported. Verification runs in the publish loop, so
 * it never overlaps an upload round; it is skipped while upload retries are pending, and an
 * intro-point change cancels a round in flight so failover is never delayed by it. The
 * fetched descriptor lands in the local tor's client cache (harmless).
 *
 * The HSDirs come from the local tor's microdesc consensus and `md/all` (read again only when
 * `consensus/valid-after` changes). Under `TestingTorNetwork` periods are 24 voting intervals.
 */
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { toBase64NoPad } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { blindKeypair } from '../../core/hs/blinding.js';
import {
  buildRing,
  descriptorTargets,
  responsibleHsdirs,
  type DescriptorTarget,
  type DescriptorTargets,
  type HsdirRelay,
  type RingConsensus,
} from '../../core/hs/hashring.js';
import { OpeCipher, revisionCounterFor, revisionCounterKey } from '../../core/hs/revision-counter.js';
import { buildDescriptor, DEFAULT_FLOW_CONTROL } from '../../core/hsdesc/descriptor.js';
import type { FlowControl } from '../../core/hsdesc/inner.js';
import { hsdirRelays, parseMicrodescConsensus, parseMicrodescriptors } from '../../core/netdoc/consensus.js';
import type { RandomBytes } from '../../core/random.js';
import { parseHsDesc, parseHsDescContent } from '../../core/torctl/events.js';
import type { PublisherControl } from './control.js';
import { FetchVerifier, type HsdirVerification } from './fetch-verifier.js';
import { DEFAULT_MAX_INTRO_POINTS } from '../../core/publish/select.js';
import { introPointsForPeriod, introSetsKey, type IntroSetSource, type NodeIntroSets } from '../../core/publish/rotation.js';
import { UploadTracker, type HsdirOutcome } from './upload-tracker.js';
import { introDigest, introPointFromWire, powParamsFromWire, type IntroPointWire, type PowParamsWire } from '../../core/intro/wire.js';
import { planPlacement, POW_EXPIRY_MARGIN_SECONDS, type Placement, type PlacementMode, type PlacementSetting } from '../../core/publish/placement.js';

/** The network as the publisher needs it. */
export interface NetworkSnapshot {
  readonly consensus: RingConsensus;
  /** HSDir ring members. */
  readonly relays: readonly HsdirRelay[];
}

/** Source of the current network view (cached by the implementation). */
export interface NetworkSource {
  read(): Promise<NetworkSnapshot>;
}

const DIRDOC_OPTS = { maxReplyBytes: 64 * 1024 * 1024, timeoutMs: 60_000 };

/**
 * Network view from the local tor: `consensus/valid-after` on every read, and the microdesc
 * consensus + `md/all` only when it changed. Rejects (ControlReplyError 551) while tor has
 * no consensus.
 */
export class ControlNetworkSource implements NetworkSource {
  readonly #control: Pick<PublisherControl, 'getInfo'>;
  #validAfter: string | undefined;
  #snapshot: NetworkSnapshot | undefined;

  constructor(control: Pick<PublisherControl, 'getInfo'>) {
    this.#control = control;
  }

  async read(): Promise<NetworkSnapshot> {
    const va = await this.#control.getInfo('consensus/valid-after', { timeoutMs: 30_000 });
    if (va === '') throw new TorbalanceError('TB_ERR_PUBLISHER_NO_CONSENSUS', 'tor', 'tor has no consensus yet');
    if (this.#snapshot !== undefined && va === this.#validAfter) return this.#snapshot;
    const text = await this.#control.getInfo('dir/status-vote/current/consensus-microdesc', DIRDOC_OPTS);
    const mdText = await this.#control.getInfo('md/all', DIRDOC_OPTS);
    const consensus = parseMicrodescConsensus(text.endsWith('\n') ? text : `${text}\n`);
    const mds = parseMicrodescriptors(mdText === '' || mdText.endsWith('\n') ? mdText : `${mdText}\n`, { onInvalid: 'skip' });
    this.#snapshot = { consensus, relays: hsdirRelays(consensus, mds) };
    this.#validAfter = va;
    return this.#snapshot;
  }
}

/** Per-HSDir outcome of a publish, with the descriptor it was for. */
export interface HsdirResult extends HsdirOutcome {
  readonly descriptor: 'first' | 'second';
}

/** One publish round. */
export interface PublishRecord {
  /** Wall-clock ms when the round started / ended. */
  readonly atMs: number;
  readonly endMs: number;
  /** Why: initial, intro-points, plan, refresh, retry (comma-joined if several). */
  readonly reason: string;
  readonly introDigest: string;
  readonly introPoints: number;
  /** Intro points per node id. */
  readonly perNode: Readonly<Record<string, number>>;
  readonly descriptors: readonly {
    readonly descriptor: 'first' | 'second';
    readonly periodNum: number;
    readonly blindedKey: string;
    readonly revisionCounter: string;
    readonly servers: readonly string[];
    /** Intro points listed in this descriptor, per node, and where each node's set came from. */
    readonly introPoints?: number;
    readonly perNode?: Readonly<Record<string, number>>;
    readonly sources?: Readonly<Record<string, IntroSetSource>>;
    /** How the descriptor's variants were placed on its HSDirs (src/core/publish/placement.ts). */
    readonly placement?: PlacementMode;
    /** Per variant (more than one only for `spread` and `per-node`): its HSDirs, points, and the node whose pow-params it carries. */
    readonly groups?: readonly { readonly servers: readonly string[]; readonly introPoints: number; readonly perNode: Readonly<Record<string, number>>; readonly powNode?: string; readonly powEffort?: number }[];
    /** HSPOST sent → tor's 250 (ms; all variants). */
    readonly postMs: number;
    readonly error?: string;
  }[];
  readonly hsdirs: readonly HsdirResult[];
}

/** One HSFETCH verification round. */
export interface VerificationRecord {
  /** Wall-clock ms when HSFETCH was sent / the round ended. */
  readonly atMs: number;
  readonly endMs: number;
  /** first / second: which of our descriptors is the client-current one. */
  readonly descriptor: 'first' | 'second';
  readonly periodNum: number;
  readonly blindedKey: string;
  /** Per verified HSDir: the revision counter of our last post it accepted (decimal). */
  readonly expected: Readonly<Record<string, string>>;
  /** Per fetch HSDir: verified / stale / not-found / error, with the time of the answer. */
  readonly hsdirs: readonly HsdirVerification[];
  /** HSDirs that were re-posted to because they were stale or had nothing. */
  readonly reposted: readonly string[];
}

/** What {@link Publisher.status} reports. */
export interface PublisherStatus {
  /** update() gave a non-null input with at least one intro point. */
  readonly active: boolean;
  readonly introPoints: number;
  readonly introDigest: string | undefined;
  readonly publishes: number;
  readonly lastPublish?: PublishRecord;
  readonly lastError?: { readonly code: string; readonly message: string; readonly atMs: number };
  /** HSDirs awaiting a retry. */
  readonly retryPending: number;
  /** Verification rounds run, and stale / not-found findings over all of them. */
  readonly verifications: number;
  readonly staleFound: number;
  readonly lastVerification?: VerificationRecord;
}

/** Options of the HSFETCH verification ({@link PublisherOptions.verify}). */
export interface VerifyOptions {
  /** At most one verification round per this many ms. Default 60 000. */
  readonly minIntervalMs?: number;
  /** Verify at least this often while publishing. Default 600 000. */
  readonly everyMs?: number;
  /** Wait for all answers this long; unanswered HSDirs are `error` (no re-post). Default 30 000. */
  readonly timeoutMs?: number;
  /** Verify at most this many of the fetch HSDirs (in ring order). Default: all. */
  readonly maxHsdirs?: number;
}

/** Options of {@link Publisher}. */
export interface PublisherOptions {
  readonly control: PublisherControl;
  /** Default: a {@link ControlNetworkSource} on `control`. */
  readonly network?: NetworkSource;
  /** The master identity; `expandedSecretKey` is secret (copied, never logged). */
  readonly identity: { readonly expandedSecretKey: Uint8Array; readonly publicKey: Uint8Array };
  readonly masterAddress: string;
  /** Wall clock, ms since the epoch (descriptor times and revision counters). */
  readonly now: () => number;
  readonly timers: Timers;
  readonly randomBytes: RandomBytes;
  readonly logger: Logger;
  /** Republish at least this often (tor: 60–120 min). */
  readonly refreshMs: number;
  /** Per-descriptor wait for UPLOADED/FAILED from every HSDir. */
  readonly uploadTimeoutMs: number;
  readonly testingTorNetwork: boolean;
  /** How often the consensus is checked for a new plan. Default 30 000. */
  readonly consensusPollMs?: number;
  /** First retry delay after failures, doubled up to 32×. Default 5 000. */
  readonly retryMs?: number;
  /** Default 20. */
  readonly maxIntroPoints?: number;
  /** `null` omits the flow-control line. Default 1-2 31. */
  readonly flowControl?: FlowControl | null;
  /** Timeout of the HSPOST command itself. Default 30 000. */
  readonly hsPostTimeoutMs?: number;
  /** HSFETCH verification of what the HSDirs serve; `false` disables it. Default: enabled. */
  readonly verify?: VerifyOptions | false;
  /** Which HSDir gets which descriptor (`cluster.publish.placement`). Default `auto`. */
  readonly placement?: PlacementSetting;
  /** Publish the nodes' pow-params (`tor.pow.enabled`), in per-node placement only. Default false. */
  readonly publishPow?: boolean;
}

interface Published {
  /** Per descriptor slot: the selection key last posted ('' = nothing to post for it). */
  readonly keys: ReadonlyMap<Slot, string>;
  readonly planKey: string;
  readonly atMs: number;
}

/** The intro points chosen for one descriptor, and which HSDir gets which of its variants. */
interface Selection {
  readonly placement: Placement;
  /** Every point the descriptor's variants list, for status. */
  readonly points: IntroPointWire[];
  readonly perNode: Record<string, number>;
  readonly sources: Readonly<Record<string, IntroSetSource>>;
  readonly digest: string;
  /** placement key + the newest harvest used: a fresh harvest re-posts even with the same points (tor's own upload replaced ours). */
  readonly key: string;
  /** Newest harvest used (wall-clock ms, 0 if none): tor's own upload preceded it. */
  readonly harvestMs: number;
}

type Slot = 'first' | 'second';

function planKeyOf(t: DescriptorTargets): string {
  return t.descriptors.map((d) => `${d.periodNum}:${toBase64NoPad(d.blindedPublicKey)}:${d.hsdirs.map((h) => h.rsaFingerprint).join(',')}`).join('|');
}

/** pow-params this close to expiry are not published: 2 minutes, less in a test network's short periods. */
function powMarginSeconds(periodLengthMinutes: number): number {
  return Math.min(POW_EXPIRY_MARGIN_SECONDS, Math.max(2, Math.floor((periodLengthMinutes * 60) / 32)));
}

function errInfo(e: unknown): { code: string; message: string } {
  if (e instanceof TorbalanceError) return { code: e.code, message: e.message };
  return { code: 'TB_ERR_PUBLISHER_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** Publishes the cluster's merged descriptors; see the module doc. */
export class Publisher {
  /** Event types the publisher needs subscribed on its control connection. */
  static readonly EVENTS: readonly string[] = ['HS_DESC', 'HS_DESC_CONTENT'];

  readonly #o: PublisherOptions;
  readonly #label: string;
  readonly #expanded: Uint8Array;
  readonly #network: NetworkSource;
  readonly #tracker: UploadTracker;
  readonly #verifier: FetchVerifier;
  readonly #log: Logger;
  readonly #listeners = new Set<(r: PublishRecord) => void>();
  readonly #ope = new Map<string, { ope: OpeCipher; blindedExpanded: Uint8Array; periodNum: number }>();
  readonly #lastSecond = new Map<string, number>();
  readonly #lastCounter = new Map<string, bigint>();
  /** blinded key → fp → counter of our last post that HSDir answered UPLOADED to. */
  readonly #accepted = new Map<string, Map<string, bigint>>();
  readonly #sleeps = new Set<() => void>();

  #started = false;
  #offEvent: (() => void) | undefined;
  #offContent: (() => void) | undefined;
  #desired: readonly NodeIntroSets[] | null = null;
  /** Fingerprint of #desired, to kick a round only on a real change. */
  #desiredKey = '';
  /** The client-current descriptor's selection of the last round (for status). */
  #selection: Selection | undefined;
  /** Post every descriptor again, in a second after this one (tor uploaded its own). */
  #reassertAfterSec: number | undefined;
  #published: Published | undefined;
  #retry = new Map<Slot, Set<string>>();
  #retryDelay = 0;
  #retryAtMs: number | undefined;
  #running: Promise<void> | undefined;
  #again: string[] = [];
  #pollTimer: TimerHandle | undefined;
  #refreshTimer: TimerHandle | undefined;
  #retryTimer: TimerHandle | undefined;
  /** Re-plan when a published pow-params is about to expire (it then leaves the descriptor). */
  #powTimer: TimerHandle | undefined;
  #powTimerAtSec: number | undefined;
  #publishes = 0;
  #lastPublish: PublishRecord | undefined;
  #lastError: { code: string; message: string; atMs: number } | undefined;
  /** A verification is wanted (after a publish of the client-current descriptor, or periodic). */
  #verifyWanted = false;
  /** timers.now() of the last verification round's start. */
  #lastVerifyMono: number | undefined;
  #verifyTimer: TimerHandle | undefined;
  #verifyEveryTimer: TimerHandle | undefined;
  #verifications = 0;
  #staleFound = 0;
  #lastVerification: VerificationRecord | undefined;

  constructor(o: PublisherOptions) {
    this.#o = o;
    this.#label = decodeOnionAddress(o.masterAddress).label;
    this.#expanded = o.identity.expandedSecretKey.slice();
    this.#network = o.network ?? new ControlNetworkSource(o.control);
    this.#tracker = new UploadTracker({ timers: o.timers, address: this.#label });
    this.#verifier = new FetchVerifier({ timers: o.timers, now: o.now, address: this.#label, identityPublicKey: o.identity.publicKey });
    this.#log = o.logger.child({ component: 'publisher' });
  }

  /** Start listening for HS_DESC events and polling the consensus (publishes once update() gives points). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#offEvent = this.#o.control.onEvent('HS_DESC', (e) => {
      let ev;
      try {
        ev = parseHsDesc(e);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        return;
      }
      this.#tracker.handleEvent(ev);
      this.#verifier.handleHsDesc(ev);
    });
    this.#offContent = this.#o.control.onEvent('HS_DESC_CONTENT', (e) => {
      let ev;
      try {
        ev = parseHsDescContent(e);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        return;
      }
      this.#verifier.handleContent(ev);
    });
    this.#schedulePoll();
    this.#scheduleVerifyEvery();
    this.#kick('initial');
  }

  /** Stop timers and listeners; an open upload round is cut short. Resolves when the loop ended. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#offEvent?.();
    this.#offEvent = undefined;
    this.#offContent?.();
    this.#offContent = undefined;
    for (const t of [this.#pollTimer, this.#refreshTimer, this.#retryTimer, this.#verifyTimer, this.#verifyEveryTimer, this.#powTimer]) {
      if (t !== undefined) this.#o.timers.clearTimeout(t);
    }
    this.#pollTimer = this.#refreshTimer = this.#retryTimer = this.#verifyTimer = this.#verifyEveryTimer = this.#powTimer = undefined;
    this.#powTimerAtSec = undefined;
    this.#tracker.cancelOpen();
    this.#verifier.cancelOpen('stopped');
    for (const wake of [...this.#sleeps]) wake();
    await this.#running;
  }

  /**
   * Desired state from the cluster: the nodes whose intro points to publish, or `null` =
   * do not publish (not the publisher, or alone so tor publishes itself). Each node gives its
   * desc_current points with their blinded key and, in rotation-safe mode, its harvested
   * desc_next points; each descriptor lists the set built for its own period
   * ({@link introPointsForPeriod}), and a descriptor no node has a set for is not posted
   * (the HSDirs keep a node's own upload). Invalid intro points from peers are dropped (logged).
   */
  update(input: { readonly nodes: readonly NodeIntroSets[] } | null): void {
    if (input === null) {
      this.#desired = null;
      this.#desiredKey = '';
      this.#selection = undefined;
      this.#published = undefined;
      this.#retry.clear();
      this.#verifyWanted = false;
      return;
    }
    const valid = (id: string, pts: readonly IntroPointWire[]): IntroPointWire[] =>
      pts.filter((p) => {
        try {
          introPointFromWire(p);
          return true;
        } catch (e) {
          if (!(e instanceof TorbalanceError)) throw e;
          this.#log.warn({ node: id, err: e.code }, 'dropping a malformed intro point from the cluster');
          return false;
        }
      });
    const validPow = (id: string, p: PowParamsWire | undefined): PowParamsWire | undefined => {
      if (p === undefined) return undefined;
      try {
        powParamsFromWire(p);
        return p;
      } catch (e) {
        if (!(e instanceof TorbalanceError)) throw e;
        this.#log.warn({ node: id, err: e.code }, 'dropping malformed pow-params from the cluster');
        return undefined;
      }
    };
    const nodes: NodeIntroSets[] = input.nodes.map((n) => ({
      id: n.id,
      introPoints: valid(n.id, n.introPoints),
      currentKey: n.currentKey,
      rotationSafe: n.rotationSafe,
      next: n.next === undefined ? undefined : { blindedKey: n.next.blindedKey, harvestedAtMs: n.next.harvestedAtMs, points: valid(n.id, n.next.points) },
      pow: validPow(n.id, n.pow),
    }));
    const key = introSetsKey(nodes);
    this.#desired = nodes;
    if (key === this.#desiredKey) return;
    this.#desiredKey = key;
    // A verification round can wait up to its timeout for silent HSDirs; it must never
    // delay publishing a changed intro-point set (failover). Cut it short; the next
    // verification runs after this publish.
    this.#verifier.cancelOpen('superseded by an intro-point change');
    this.#kick('intro-points');
  }

  /**
   * tor has just uploaded its own descriptors (a publish-mode pulse) and replaced ours on the
   * HSDirs: post every descriptor again, in a later second than `uploadedAtMs` (an HSDir keeps
   * only a higher revision counter, and tor's is time-based like ours).
   */
  reassert(uploadedAtMs: number): void {
    this.#reassertAfterSec = Math.max(this.#reassertAfterSec ?? 0, Math.floor(uploadedAtMs / 1000));
    this.#kick('reassert');
  }

  /** Listen for finished publish rounds. */
  onPublish(listener: (r: PublishRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): PublisherStatus {
    const sel = this.#selection;
    return {
      active: this.#desired !== null && this.#desired.some((n) => n.introPoints.length > 0 || (n.next?.points.length ?? 0) > 0),
      introPoints: sel?.points.length ?? 0,
      introDigest: sel?.digest,
      publishes: this.#publishes,
      ...(this.#lastPublish === undefined ? {} : { lastPublish: this.#lastPublish }),
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      retryPending: [...this.#retry.values()].reduce((a, s) => a + s.size, 0),
      verifications: this.#verifications,
      staleFound: this.#staleFound,
      ...(this.#lastVerification === undefined ? {} : { lastVerification: this.#lastVerification }),
    };
  }

  // -------------------------------------------------------------------------------------

  #schedulePoll(): void {
    if (!this.#started) return;
    this.#pollTimer = this.#o.timers.setTimeout(() => {
      this.#pollTimer = undefined;
      this.#kick('poll');
      this.#schedulePoll();
    }, this.#o.consensusPollMs ?? 30_000);
  }

  /** Run a reconcile now, or once the running one ends. */
  #kick(reason: string): void {
    if (!this.#started) return;
    if (this.#running !== undefined) {
      this.#again.push(reason);
      return;
    }
    this.#running = this.#loop(reason);
  }

  async #loop(first: string): Promise<void> {
    let reason: string | undefined = first;
    try {
      while (reason !== undefined && this.#started) {
        try {
          await this.#reconcile(reason);
        } catch (e) {
          this.#fail(e);
        }
        reason = this.#again.length > 0 ? [...new Set(this.#again.splice(0))].join(',') : undefined;
      }
    } finally {
      this.#running = undefined;
    }
  }

  #fail(e: unknown): void {
    const info = errInfo(e);
    this.#lastError = { ...info, atMs: this.#o.now() };
    this.#log.warn({ code: info.code, err: info.message }, 'publish failed');
    this.#scheduleRetry();
  }

  /** The intro points for one descriptor and their placement (`undefined`: no node has a set for its period). */
  #selectFor(t: DescriptorTarget, targets: DescriptorTargets, net: NetworkSnapshot): Selection | undefined {
    if (this.#desired === null) return undefined;
    const period = introPointsForPeriod(this.#desired, toBase64NoPad(t.blindedPublicKey));
    const placement = planPlacement({
      hsdirs: t.hsdirs.map((h) => h.rsaFingerprint),
      fetchHsdirs: new Set(this.#fetchHsdirs(t, targets, net)),
      // A fallback set (a node that does not harvest) lists desc_current's points under another
      // period: a PoW solution for this descriptor's blinded key cannot verify there.
      nodes: period.nodes.map((n) => (period.sources[n.id] === 'fallback' ? { id: n.id, introPoints: n.introPoints } : n)),
      max: this.#o.maxIntroPoints ?? DEFAULT_MAX_INTRO_POINTS,
      setting: this.#o.placement ?? 'auto',
      powEnabled: this.#o.publishPow === true,
      periodNum: t.periodNum,
      nowSeconds: Math.floor(this.#o.now() / 1000),
      powMarginSeconds: powMarginSeconds(targets.plan.periodParams.lengthMinutes),
    });
    const chosen = new Map<string, { nodeId: string; point: IntroPointWire }>();
    for (const g of placement.groups) for (const c of g.chosen) chosen.set(c.point.authKey, c);
    if (chosen.size === 0) return undefined;
    const perNode: Record<string, number> = {};
    const sources: Record<string, IntroSetSource> = {};
    for (const c of chosen.values()) {
      perNode[c.nodeId] = (perNode[c.nodeId] ?? 0) + 1;
      const src = period.sources[c.nodeId];
      if (src !== undefined) sources[c.nodeId] = src;
    }
    const points = [...chosen.values()].map((c) => c.point);
    const digest = introDigest(points);
    return { placement, points, perNode, sources, digest, key: `${placement.key}@${period.newestHarvestMs}`, harvestMs: period.newestHarvestMs };
  }

  /** pow-params leave a descriptor {@link powMarginSeconds} before they expire: re-plan then. */
  #armPowTimer(sels: ReadonlyMap<Slot, Selection | undefined>, targets: DescriptorTargets): void {
    let first: number | undefined;
    for (const sel of sels.values()) {
      for (const g of sel?.placement.groups ?? []) {
        if (g.pow !== undefined) first = Math.min(first ?? Infinity, g.pow.params.expires);
      }
    }
    if (first === undefined || !this.#started) return;
    const atSec = first - powMarginSeconds(targets.plan.periodParams.lengthMinutes);
    if (this.#powTimer !== undefined && this.#powTimerAtSec === atSec) return;
    if (this.#powTimer !== undefined) this.#o.timers.clearTimeout(this.#powTimer);
    this.#powTimerAtSec = atSec;
    this.#powTimer = this.#o.timers.setTimeout(
      () => {
        this.#powTimer = undefined;
        this.#powTimerAtSec = undefined;
        this.#kick('pow-expiry');
      },
      Math.max(0, atSec * 1000 - this.#o.now() + 50),
    );
  }

  /** The HSDirs clients fetch this descriptor from (`hsdir_spread_fetch` per replica), among those it is stored on. */
  #fetchHsdirs(t: DescriptorTarget, targets: DescriptorTargets, net: NetworkSnapshot): string[] {
    const len = targets.plan.periodParams.lengthMinutes;
    const stored = new Set(t.hsdirs.map((h) => h.rsaFingerprint));
    return responsibleHsdirs({
      blindedPublicKey: t.blindedPublicKey,
      periodNum: t.periodNum,
      periodLengthMinutes: len,
      ring: buildRing(net.relays, t.srv, t.periodNum, len),
      replicas: targets.hsdirParams.replicas,
      spread: targets.hsdirParams.spreadFetch,
    })
      .hsdirs.map((h) => h.rsaFingerprint)
      .filter((fp) => stored.has(fp));
  }

  async #reconcile(trigger: string): Promise<void> {
    if (this.#desired === null) return;
    const net = await this.#network.read();
    const targets = descriptorTargets(net.consensus, this.#o.identity.publicKey, {
      relays: net.relays,
      testingTorNetwork: this.#o.testingTorNetwork,
    });
    const sels = new Map<Slot, Selection | undefined>(targets.descriptors.map((d) => [d.descriptor, this.#selectFor(d, targets, net)]));
    this.#armPowTimer(sels, targets);
    const clientSlot = targets.descriptors.find((d) => d.periodNum === targets.plan.currentPeriodNum)?.descriptor;
    this.#selection = clientSlot === undefined ? undefined : sels.get(clientSlot);
    if (![...sels.values()].some((x) => x !== undefined)) return;
    const planKey = planKeyOf(targets);
    const pub = this.#published;
    const nowMs = this.#o.now();
    const reasons: string[] = [];
    let work: Map<Slot, Set<string>>;
    const all = (slots: readonly Slot[]): Map<Slot, Set<string>> =>
      new Map(targets.descriptors.filter((d) => slots.includes(d.descriptor)).map((d) => [d.descriptor, new Set(d.hsdirs.map((h) => h.rsaFingerprint))]));
    const reassert = this.#reassertAfterSec !== undefined;
    if (pub === undefined || pub.planKey !== planKey || nowMs - pub.atMs >= this.#o.refreshMs || reassert) {
      if (pub === undefined) reasons.push('initial');
      else {
        if (pub.planKey !== planKey) reasons.push('plan');
        if (nowMs - pub.atMs >= this.#o.refreshMs) reasons.push('refresh');
      }
      if (reassert) reasons.push('reassert');
      work = all(targets.descriptors.map((d) => d.descriptor));
    } else {
      const changed = targets.descriptors.filter((d) => (sels.get(d.descriptor)?.key ?? '') !== (pub.keys.get(d.descriptor) ?? '')).map((d) => d.descriptor);
      if (changed.length > 0) {
        reasons.push('intro-points');
        work = all(changed);
      } else if (this.#retry.size > 0 && (this.#retryAtMs === undefined || this.#o.timers.now() >= this.#retryAtMs)) {
        reasons.push('retry');
        work = this.#retry;
      } else {
        const sel = this.#selection;
        if (this.#verifyWanted && this.#retry.size === 0 && sel !== undefined) await this.#verify(targets, net, sel);
        return;
      }
    }
    if (targets.descriptors.some((d) => d.hsdirs.length === 0)) {
      throw new TorbalanceError('TB_ERR_PUBLISHER_NO_HSDIRS', 'tor', 'the consensus has no HSDirs for a descriptor');
    }
    this.#retry = new Map();
    await this.#publish(targets, work, sels, planKey, reasons.join(',') || trigger);
  }

  async #publish(
    targets: DescriptorTargets,
    work: Map<Slot, Set<string>>,
    sels: ReadonlyMap<Slot, Selection | undefined>,
    planKey: string,
    reason: string,
  ): Promise<void> {
    const atMs = this.#o.now();
    const len = targets.plan.periodParams.lengthMinutes;
    const descs: PublishRecord['descriptors'][number][] = [];
    const results: HsdirResult[] = [];
    const failed = new Map<Slot, Set<string>>();
    const reassertAfter = this.#reassertAfterSec;
    for (const t of targets.descriptors) {
      const sel = sels.get(t.descriptor);
      if (sel === undefined) continue;
      const servers = t.hsdirs.map((h) => h.rsaFingerprint).filter((fp) => work.get(t.descriptor)?.has(fp) === true);
      if (servers.length === 0) continue;
      const r = await this.#postOne(t, len, targets, sel, servers, reassertAfter);
      descs.push(r.desc);
      results.push(...r.outcomes.map((o) => ({ ...o, descriptor: t.descriptor })));
      const bad = r.outcomes.filter((o) => o.result !== 'uploaded').map((o) => o.fp);
      if (bad.length > 0) failed.set(t.descriptor, new Set(bad));
    }
    if (reassertAfter !== undefined && this.#reassertAfterSec === reassertAfter) this.#reassertAfterSec = undefined;
    const clientCurrent = targets.descriptors.find((d) => d.periodNum === targets.plan.currentPeriodNum)?.descriptor;
    const shown = (clientCurrent === undefined ? undefined : sels.get(clientCurrent)) ?? [...sels.values()].find((x) => x !== undefined);
    const record: PublishRecord = {
      atMs,
      endMs: this.#o.now(),
      reason,
      introDigest: shown?.digest ?? introDigest([]),
      introPoints: shown?.points.length ?? 0,
      perNode: { ...shown?.perNode },
      descriptors: descs,
      hsdirs: results,
    };
    this.#publishes++;
    this.#lastPublish = record;
    if (!reason.split(',').every((r) => r === 'retry' || r === 'verify') || this.#published === undefined) {
      const keys = new Map<Slot, string>(this.#published?.keys ?? []);
      for (const t of targets.descriptors) if (work.has(t.descriptor)) keys.set(t.descriptor, sels.get(t.descriptor)?.key ?? '');
      this.#published = { keys, planKey, atMs };
    }
    this.#scheduleRefresh();
    if (failed.size > 0) {
      this.#retry = failed;
      const n = [...failed.values()].reduce((a, s) => a + s.size, 0);
      this.#lastError = { code: 'TB_ERR_PUBLISHER_UPLOAD', message: `${n} HSDir upload(s) failed or timed out`, atMs: this.#o.now() };
      this.#scheduleRetry();
    } else {
      this.#retryDelay = 0;
      this.#retryAtMs = undefined;
    }
    if (this.#verifyOpts() !== undefined && results.some((x) => x.descriptor === clientCurrent && x.result === 'uploaded')) {
      this.#verifyWanted = true;
      this.#scheduleVerify();
    }
    const up = results.filter((x) => x.result === 'uploaded').length;
    this.#log.info(
      {
        reason,
        descriptors: descs.map((d) => ({ period: d.periodNum, introPoints: d.introPoints, perNode: d.perNode, sources: d.sources })),
        uploaded: up,
        total: results.length,
        ms: record.endMs - atMs,
      },
      'published merged descriptors',
    );
    for (const l of this.#listeners) {
      try {
        l(record);
      } catch (e) {
        // A listener's bug must not stop publishing; it is logged, not rethrown.
        this.#log.error({ err: e instanceof Error ? e.message : String(e) }, 'a publish listener threw');
      }
    }
  }

  /**
   * Post one descriptor to `servers`: each placement group's variant to the group's HSDirs
   * among them, all with the same revision counter (one wall-clock second per blinded key).
   */
  async #postOne(
    t: DescriptorTarget,
    len: number,
    targets: DescriptorTargets,
    sel: Selection,
    servers: string[],
    reassertAfterSec: number | undefined,
  ): Promise<{ desc: PublishRecord['descriptors'][number]; outcomes: readonly HsdirOutcome[] }> {
    const blindedKey = toBase64NoPad(t.blindedPublicKey);
    // Never reuse a second for the same blinded key (ours, or tor's own upload we reassert
    // over): the counter would not be higher.
    // A harvest came after the harvesting node's own upload, so a later second than the
    // harvest's beats that upload's counter too.
    // (A peer's clock ahead of ours costs at most one second here.)
    let nowMs = this.#o.now();
    const last = Math.max(this.#lastSecond.get(blindedKey) ?? -1, reassertAfterSec ?? -1, sel.harvestMs > 0 ? Math.floor(Math.min(sel.harvestMs, nowMs) / 1000) : -1);
    // A loop, not one sleep: a timer may fire a millisecond before the wall clock reaches
    // the second it was set for, and a counter in the same second is rejected by the HSDirs.
    while (this.#started && last >= 0 && Math.floor(nowMs / 1000) <= last) {
      await this.#sleep(Math.max(1, (last + 1) * 1000 - nowMs));
      nowMs = this.#o.now();
    }
    const wanted = new Set(servers);
    const groups = sel.placement.groups
      .map((g) => ({ g, servers: g.servers.filter((fp) => wanted.has(fp)) }))
      .filter((x) => x.servers.length > 0);
    const groupInfo = groups.map(({ g, servers: sv }) => {
      const perNode: Record<string, number> = {};
      for (const c of g.chosen) perNode[c.nodeId] = (perNode[c.nodeId] ?? 0) + 1;
      return { servers: sv, introPoints: g.chosen.length, perNode, ...(g.pow === undefined ? {} : { powNode: g.pow.nodeId, powEffort: g.pow.params.effort }) };
    });
    const base = {
      descriptor: t.descriptor,
      periodNum: t.periodNum,
      blindedKey,
      servers,
      introPoints: sel.points.length,
      perNode: { ...sel.perNode },
      sources: { ...sel.sources },
      placement: sel.placement.mode,
      ...(groups.length > 1 || sel.placement.mode !== 'merged' ? { groups: groupInfo } : {}),
    };
    if (!this.#started) {
      return {
        desc: { ...base, revisionCounter: '', postMs: 0, error: 'TB_ERR_PUBLISHER_STOPPED' },
        outcomes: servers.map((fp) => ({ fp, result: 'timeout', reason: 'stopped', ms: 0 })),
      };
    }
    const nowSeconds = Math.floor(nowMs / 1000);
    const texts: { servers: string[]; text: string }[] = [];
    let revisionCounter: bigint;
    try {
      const ope = this.#opeFor(t.periodNum, len, blindedKey);
      revisionCounter = revisionCounterFor({
        periodNum: t.periodNum,
        params: targets.plan.periodParams,
        nowSeconds,
        blindedExpandedSecretKey: ope.blindedExpanded,
        ope: ope.ope,
      });
      const prev = this.#lastCounter.get(blindedKey);
      if (prev !== undefined && revisionCounter <= prev) {
        this.#log.warn({ descriptor: t.descriptor }, 'revision counter is not higher than the last one (clock went back?)');
      }
      for (const { g, servers: sv } of groups) {
        texts.push({
          servers: sv,
          text: buildDescriptor({
            identity: { expandedSecretKey: this.#expanded, publicKey: this.#o.identity.publicKey },
            periodNum: t.periodNum,
            periodLengthMinutes: len,
            revisionCounter,
            nowSeconds,
            introPoints: g.chosen.map((c) => introPointFromWire(c.point)),
            flowControl: this.#o.flowControl === null ? undefined : (this.#o.flowControl ?? DEFAULT_FLOW_CONTROL),
            ...(g.pow === undefined ? {} : { powParams: powParamsFromWire(g.pow.params) }),
            randomBytes: this.#o.randomBytes,
          }).text,
        });
      }
    } catch (e) {
      const info = errInfo(e);
      this.#lastError = { ...info, atMs: this.#o.now() };
      return { desc: { ...base, revisionCounter: '', postMs: 0, error: info.code }, outcomes: servers.map((fp) => ({ fp, result: 'failed', reason: info.code, ms: 0 })) };
    }
    this.#lastSecond.set(blindedKey, nowSeconds);
    this.#lastCounter.set(blindedKey, revisionCounter);
    const outcomes: HsdirOutcome[] = [];
    let postMs = 0;
    let error: string | undefined;
    for (const { servers: sv, text } of texts) {
      const round = this.#tracker.begin(sv, this.#o.uploadTimeoutMs, blindedKey);
      const t0 = this.#o.timers.now();
      try {
        await this.#o.control.hsPost(text, { hsAddress: this.#label, servers: sv, timeoutMs: this.#o.hsPostTimeoutMs ?? 30_000 });
        postMs += this.#o.timers.now() - t0;
      } catch (e) {
        round.cancel();
        await round.done;
        const info = errInfo(e);
        this.#lastError = { ...info, atMs: this.#o.now() };
        this.#log.warn({ code: info.code, err: info.message, descriptor: t.descriptor }, 'HSPOST failed');
        postMs += this.#o.timers.now() - t0;
        error = info.code;
        outcomes.push(...sv.map((fp): HsdirOutcome => ({ fp, result: 'failed', reason: info.code, ms: 0 })));
        continue;
      }
      outcomes.push(...(await round.done));
    }
    let acc = this.#accepted.get(blindedKey);
    if (acc === undefined) this.#accepted.set(blindedKey, (acc = new Map<string, bigint>()));
    for (const o of outcomes) if (o.result === 'uploaded') acc.set(o.fp, revisionCounter);
    return { desc: { ...base, revisionCounter: revisionCounter.toString(), postMs, ...(error === undefined ? {} : { error }) }, outcomes };
  }

  #opeFor(periodNum: number, len: number, blindedKey: string): { ope: OpeCipher; blindedExpanded: Uint8Array } {
    const hit = this.#ope.get(blindedKey);
    if (hit !== undefined) return hit;
    const kp = blindKeypair(this.#expanded, periodNum, len);
    const entry = { ope: new OpeCipher(revisionCounterKey(kp.expandedSecretKey)), blindedExpanded: kp.expandedSecretKey, periodNum };
    this.#ope.set(blindedKey, entry);
    // Keep the ciphers of the last few periods only.
    for (const [k, v] of this.#ope) {
      if (v.periodNum < periodNum - 2) {
        v.blindedExpanded.fill(0);
        this.#ope.delete(k);
        this.#lastSecond.delete(k);
        this.#lastCounter.delete(k);
        this.#accepted.delete(k);
      }
    }
    return entry;
  }

  #scheduleRefresh(): void {
    if (this.#refreshTimer !== undefined) this.#o.timers.clearTimeout(this.#refreshTimer);
    if (!this.#started) return;
    this.#refreshTimer = this.#o.timers.setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#kick('refresh');
    }, this.#o.refreshMs);
  }

  #scheduleRetry(): void {
    if (!this.#started || this.#retryTimer !== undefined) return;
    const base = this.#o.retryMs ?? 5000;
    this.#retryDelay = this.#retryDelay === 0 ? base : Math.min(base * 32, this.#retryDelay * 2);
    const delay = this.#retryDelay;
    this.#retryAtMs = this.#o.timers.now() + delay;
    this.#retryTimer = this.#o.timers.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#kick('retry');
    }, delay);
  }

  #verifyOpts(): Required<VerifyOptions> | undefined {
    const v = this.#o.verify;
    if (v === false) return undefined;
    return {
      minIntervalMs: v?.minIntervalMs ?? 60_000,
      everyMs: v?.everyMs ?? 600_000,
      timeoutMs: v?.timeoutMs ?? 30_000,
      maxHsdirs: v?.maxHsdirs ?? Number.MAX_SAFE_INTEGER,
    };
  }

  /** Kick a 'verify' reconcile as soon as the rate limit allows (one pending timer at most). */
  #scheduleVerify(): void {
    const v = this.#verifyOpts();
    if (v === undefined || !this.#started || this.#verifyTimer !== undefined) return;
    const wait = this.#lastVerifyMono === undefined ? 0 : Math.max(0, this.#lastVerifyMono + v.minIntervalMs - this.#o.timers.now());
    this.#verifyTimer = this.#o.timers.setTimeout(() => {
      this.#verifyTimer = undefined;
      this.#kick('verify');
    }, wait);
  }

  #scheduleVerifyEvery(): void {
    const v = this.#verifyOpts();
    if (v === undefined || !this.#started) return;
    this.#verifyEveryTimer = this.#o.timers.setTimeout(() => {
      this.#verifyEveryTimer = undefined;
      if (this.#published !== undefined) {
        this.#verifyWanted = true;
        this.#scheduleVerify();
      }
      this.#scheduleVerifyEvery();
    }, v.everyMs);
  }

  /** One HSFETCH round against the client-current descriptor's fetch HSDirs; re-post to stale ones. */
  async #verify(
    targets: DescriptorTargets,
    net: NetworkSnapshot,
    sel: Selection,
  ): Promise<void> {
    const v = this.#verifyOpts();
    if (v === undefined) return;
    if (this.#lastVerifyMono !== undefined && this.#o.timers.now() - this.#lastVerifyMono < v.minIntervalMs) {
      this.#scheduleVerify();
      return;
    }
    this.#verifyWanted = false;
    const t = targets.descriptors.find((d) => d.periodNum === targets.plan.currentPeriodNum);
    if (t === undefined) return;
    const blindedKey = toBase64NoPad(t.blindedPublicKey);
    const accepted = this.#accepted.get(blindedKey);
    if (accepted === undefined) return; // nothing of ours is on an HSDir yet
    const len = targets.plan.periodParams.lengthMinutes;
    const fetchSet = this.#fetchHsdirs(t, targets, net)
      .filter((fp) => accepted.has(fp))
      .slice(0, v.maxHsdirs);
    const expected = new Map(fetchSet.map((fp) => [fp, accepted.get(fp)!]));
    if (fetchSet.length === 0) return;
    this.#lastVerifyMono = this.#o.timers.now();
    const atMs = this.#o.now();
    const round = this.#verifier.begin({ hsdirs: fetchSet, blindedKey, periodNum: t.periodNum, periodLengthMinutes: len, expected, timeoutMs: v.timeoutMs });
    try {
      await this.#o.control.hsFetch(this.#label, fetchSet);
    } catch (e) {
      const info = errInfo(e);
      this.#log.warn({ code: info.code, err: info.message }, 'HSFETCH for verification failed');
      round.cancel('hsfetch');
    }
    const hsdirs = await round.done;
    this.#verifications++;
    const bad = hsdirs.filter((h) => h.result === 'stale' || h.result === 'not-found').map((h) => h.fp);
    this.#staleFound += bad.length;
    const record: VerificationRecord = {
      atMs,
      endMs: this.#o.now(),
      descriptor: t.descriptor,
      periodNum: t.periodNum,
      blindedKey,
      expected: Object.fromEntries([...expected].map(([fp, c]) => [fp, c.toString()])),
      hsdirs,
      reposted: bad,
    };
    this.#lastVerification = record;
    const count = (r: string): number => hsdirs.filter((h) => h.result === r).length;
    this.#log.info(
      { verified: count('verified'), stale: count('stale'), notFound: count('not-found'), error: count('error'), ms: record.endMs - atMs },
      'verified what the HSDirs serve',
    );
    for (const h of hsdirs) {
      if (h.result === 'stale' || h.result === 'not-found') {
        this.#log.warn({ hsdir: h.fp, result: h.result, served: h.servedCounter, expected: expected.get(h.fp)?.toString() }, 'HSDir serves an old descriptor or none; re-posting to it');
      }
    }
    if (bad.length > 0 && this.#started) {
      await this.#publish(targets, new Map<Slot, Set<string>>([[t.descriptor, new Set(bad)]]), new Map([[t.descriptor, sel]]), planKeyOf(targets), 'verify');
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.#sleeps.delete(wake);
        this.#o.timers.clearTimeout(h);
        resolve();
      };
      this.#sleeps.add(wake);
      const h = this.#o.timers.setTimeout(wake, Math.max(0, ms));
    });
  }
}
