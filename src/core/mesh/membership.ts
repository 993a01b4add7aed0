/**
 * Cluster membership: a pure state machine (cluster contract, "Membership"). Inputs are
 * verified messages (`receive`) and clock ticks (`tick`), both with the local time `nowMs`;
 * outputs are events. No I/O, no timers.
 *
 * ## Peer states
 *
 * - `known`: learned from gossip only (an address to dial); never heard from directly.
 * - `alive`: a hello/heartbeat arrived less than suspectAfterMs ago.
 * - `suspect`: none for suspectAfterMs (default 3 × heartbeatMs). A suspect peer that sends a
 *   hello/heartbeat is alive again (no flapping through dead).
 * - `dead`: none for deadAfterMs (default 10 × heartbeatMs). Only a *fresh* hello/heartbeat
 *   revives it: one whose sender timestamp is strictly newer than every message seen from
 *   that peer (so a delayed or reordered old message cannot).
 * - `left`: a `leave` arrived (immediately). Returns only with a fresh hello/heartbeat.
 *
 * Every peer keeps `lastTs`, the sender timestamp of the newest hello/heartbeat/leave/lease
 * accepted from it; such messages with ts < lastTs are stale (reordered across connections)
 * and ignored (equal ts is accepted: a `leave` sent in the same millisecond as the last
 * heartbeat must count; the verifier's replay cache already drops duplicates), except that a
 * dead or left peer returns only with ts > lastTs. `intro-points` messages are ordered separately by their own ts.
 *
 * ## Leases
 *
 * A heartbeat's `lease` is recorded only if `holder` = the sender; a heartbeat without one
 * releases it. A `lease` message sets or (until ≤ ts) releases it. The expiry is converted to
 * our clock as `now + min(until − ts, leaseMs)`, so clock offsets between nodes do not matter
 * and no peer can claim more than leaseMs. Dead/left peers lose their lease.
 *
 * ## Gossip and bounds
 *
 * Heartbeats list peers the sender hears directly. An entry becomes a `known` peer only if it
 * is not us, not the sender, unknown to us, reported as heard within suspectAfterMs, and we
 * hold fewer than `maxKnown` known peers and fewer than `maxPeers` peers in total. Gossip never
 * changes the address or state of a peer we already have. Known peers never contacted are
 * forgotten after knownTtlMs; dead/left peers after forgetAfterMs; ids the node allowlist does
 * not allow (`allowed`) are never added. So gossip can never make a
 * node dial more than maxKnown unverified addresses. Messages claiming to be from us are
 * ignored (and counted in `ignoredSelf`).
 *
 * ## Intro-point ownership
 *
 * An intro point is identified by its auth key (tor-facts §2), and a member could copy another
 * node's auth key with bogus link specifiers so that the publisher lists its copy instead
 * (docs/SECURITY.md "One member"). So an auth key belongs to the first node that announced it
 * (in this node's order of arrival), for as long as that node's latest `intro-points` (its
 * `points` or `next.points`) still lists it and the node is in the table; our own node's keys
 * (`ownAuthKeys`) always belong to us. A point of another node whose auth key has an owner is
 * dropped from that node's sets when they are received (counted in `droppedIntroClaims`), so
 * the publisher never sees it. Ownership is released when the owner stops listing the key or is
 * forgotten.
 */
import { MAX_GOSSIP_PEERS, type GossipPeer, type HealthInfo, type IntroPointWire, type MeshMessage, type PowParamsWire } from './protocol.js';
import { DEFAULT_LEASE_MS, type PeerCandidate } from './election.js';

export type PeerState = 'known' | 'alive' | 'suspect' | 'dead' | 'left';

/** What Membership knows about one peer. */
export interface PeerInfo {
  readonly id: string;
  readonly state: PeerState;
  /** Local time the current state began. */
  readonly stateSinceMs: number;
  readonly name: string | undefined;
  readonly addr: string | undefined;
  readonly priority: number | undefined;
  readonly health: HealthInfo | undefined;
  /** Intro digest from the peer's last hello/heartbeat. */
  readonly introDigest: string | undefined;
  /** The peer's last `intro-points` message. */
  readonly introPoints:
    | {
        readonly digest: string;
        readonly fetchedAt: number;
        readonly points: readonly IntroPointWire[];
        readonly receivedMs: number;
        /** Blinded key of the desc_current `points` came from (absent from older senders). */
        readonly key?: string | undefined;
        readonly rotationSafe?: boolean | undefined;
        /** Harvested desc_next points (docs/DESIGN.md "Rotation-safe intro points"). */
        readonly next?: { readonly key: string; readonly harvestedAt: number; readonly points: readonly IntroPointWire[] } | undefined;
        /** The peer tor's pow-params (for per-node placement). */
        readonly pow?: PowParamsWire | undefined;
      }
    | undefined;
  /** The peer's lease expiry in our clock, if it holds one. */
  readonly leaseUntilMs: number | undefined;
  /** Local time of the last hello/heartbeat (undefined for `known`). */
  readonly lastHeardMs: number | undefined;
  /** Sender ts of the newest hello/heartbeat/leave/lease accepted. */
  readonly lastTs: number;
  /** For `known` peers: who gossiped it. */
  readonly learnedFrom: string | undefined;
  /** Last leave reason, for `left`. */
  readonly leaveReason: string | undefined;
}

export type MembershipEvent =
  | { readonly type: 'alive' | 'suspect' | 'dead' | 'left' | 'known'; readonly id: string }
  /** Data of a peer changed (name, addr, priority, health, intro digest/points, lease). */
  | { readonly type: 'changed'; readonly id: string }
  /** A known/dead/left peer was dropped from the table. */
  | { readonly type: 'forgotten'; readonly id: string };

export interface MembershipOptions {
  readonly selfId: string;
  readonly heartbeatMs: number;
  /** Default 3 × heartbeatMs. */
  readonly suspectAfterMs?: number;
  /** Default 10 × heartbeatMs. */
  readonly deadAfterMs?: number;
  /** Longest lease a peer can hold in our view; default DEFAULT_LEASE_MS. */
  readonly leaseMs?: number;
  /** Most peers in the table (any state); default 256. */
  readonly maxPeers?: number;
  /** Most `known` (gossip-only) peers; default 32. */
  readonly maxKnown?: number;
  /** Forget a known peer never heard from after this; default 3 × deadAfterMs. */
  readonly knownTtlMs?: number;
  /** Forget a dead/left peer after this; default 6 × deadAfterMs. */
  readonly forgetAfterMs?: number;
  /**
   * Highest priority a peer is credited with in the election, whatever it claims (default 1000,
   * the protocol's range): the cluster's `cluster.max_priority` (docs/SECURITY.md "One member").
   */
  readonly maxPriority?: number;
  /** Auth keys of our own node's intro points (module doc, "Intro-point ownership"). */
  readonly ownAuthKeys?: () => Iterable<string>;
  /** Node ids that may be peers (the node allowlist); gossip about others is dropped. Default: all. */
  readonly allowed?: (id: string) => boolean;
}

/** A message accepted by MessageVerifier. */
export interface ReceivedMessage {
  readonly from: string;
  readonly ts: number;
  readonly msg: MeshMessage;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The membership table of one node. */
export class Membership {
  readonly selfId: string;
  readonly heartbeatMs: number;
  readonly suspectAfterMs: number;
  readonly deadAfterMs: number;
  readonly leaseMs: number;
  readonly maxPeers: number;
  readonly maxKnown: number;
  readonly knownTtlMs: number;
  readonly forgetAfterMs: number;
  readonly maxPriority: number;
  /** Messages ignored because they claimed to come from us. */
  ignoredSelf = 0;
  /** Stale (reordered) messages ignored. */
  ignoredStale = 0;
  /** Gossip entries dropped by the bounds. */
  droppedGossip = 0;
  /** Intro points dropped because another node (or we) owns their auth key. */
  droppedIntroClaims = 0;
  private readonly table = new Map<string, Mutable<PeerInfo>>();
  private introTs = new Map<string, number>();
  /** auth key → the node that owns it (module doc, "Intro-point ownership"). */
  private readonly introOwner = new Map<string, string>();
  private readonly ownAuthKeys: () => Iterable<string>;
  private readonly allowed: (id: string) => boolean;

  constructor(opts: MembershipOptions) {
    this.selfId = opts.selfId;
    this.heartbeatMs = opts.heartbeatMs;
    this.suspectAfterMs = opts.suspectAfterMs ?? 3 * opts.heartbeatMs;
    this.deadAfterMs = opts.deadAfterMs ?? 10 * opts.heartbeatMs;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.maxPeers = opts.maxPeers ?? 256;
    this.maxKnown = opts.maxKnown ?? 32;
    this.knownTtlMs = opts.knownTtlMs ?? 3 * this.deadAfterMs;
    this.forgetAfterMs = opts.forgetAfterMs ?? 6 * this.deadAfterMs;
    this.ownAuthKeys = opts.ownAuthKeys ?? (() => []);
    this.allowed = opts.allowed ?? (() => true);
    this.maxPriority = opts.maxPriority ?? 1000;
  }

  /** The node that owns intro-point auth key `authKey` in our view, if any (not us). */
  introPointOwner(authKey: string): string | undefined {
    return this.introOwner.get(authKey);
  }

  /** One peer, or undefined. */
  peer(id: string): PeerInfo | undefined {
    return this.table.get(id);
  }

  /** All peers (any state), sorted by id. */
  peers(): PeerInfo[] {
    return [...this.table.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Process one verified message at local time nowMs. */
  receive(m: ReceivedMessage, nowMs: number): MembershipEvent[] {
    if (m.from === this.selfId) {
      this.ignoredSelf++;
      return [];
    }
    const events: MembershipEvent[] = [];
    const msg = m.msg;
    switch (msg.type) {
      case 'hello':
      case 'heartbeat': {
        let p = this.table.get(m.from);
        // Stale if older than the newest message seen; returning from dead/left needs strictly newer.
        if (p !== undefined && (m.ts < p.lastTs || (m.ts === p.lastTs && (p.state === 'dead' || p.state === 'left')))) {
          this.ignoredStale++;
          return [];
        }
        if (p === undefined) {
          if (!this.makeRoom(nowMs, events)) return events;
          p = blank(m.from, nowMs);
          this.table.set(m.from, p);
        }
        const b = msg.body;
        let changed =
          p.name !== b.name ||
          p.addr !== b.addr ||
          p.priority !== b.priority ||
          p.introDigest !== b.introDigest ||
          p.health?.healthy !== b.health.healthy ||
          !sameStrings(p.health.reasons, b.health.reasons);
        p.name = b.name;
        p.addr = b.addr;
        p.priority = b.priority;
        p.health = { healthy: b.health.healthy, reasons: [...b.health.reasons] };
        p.introDigest = b.introDigest;
        p.lastTs = m.ts;
        p.lastHeardMs = nowMs;
        p.learnedFrom = undefined;
        if (msg.type === 'heartbeat') {
          const lease = msg.body.lease;
          const until = lease !== undefined && lease.holder === m.from ? this.localLease(lease.until, m.ts, nowMs) : undefined;
          if (until !== p.leaseUntilMs) changed = true;
          p.leaseUntilMs = until;
        }
        if (p.state !== 'alive') {
          p.state = 'alive';
          p.stateSinceMs = nowMs;
          p.leaveReason = undefined;
          events.push({ type: 'alive', id: m.from });
        } else if (changed) {
          events.push({ type: 'changed', id: m.from });
        }
        if (msg.type === 'heartbeat') this.mergeGossip(m.from, msg.body.peers, nowMs, events);
        return events;
      }
      case 'leave': {
        const p = this.table.get(m.from);
        if (p === undefined) return [];
        if (m.ts < p.lastTs) {
          this.ignoredStale++;
          return [];
        }
        p.lastTs = m.ts;
        p.leaseUntilMs = undefined;
        p.leaveReason = msg.body.reason;
        if (p.state !== 'left') {
          p.state = 'left';
          p.stateSinceMs = nowMs;
          events.push({ type: 'left', id: m.from });
        }
        return events;
      }
      case 'lease': {
        const p = this.table.get(m.from);
        if (p === undefined || (p.state !== 'alive' && p.state !== 'suspect')) return [];
        if (m.ts < p.lastTs) {
          this.ignoredStale++;
          return [];
        }
        p.lastTs = m.ts;
        const until = this.localLease(msg.body.until, m.ts, nowMs);
        if (until !== p.leaseUntilMs) {
          p.leaseUntilMs = until;
          events.push({ type: 'changed', id: m.from });
        }
        return events;
      }
      case 'intro-points': {
        const p = this.table.get(m.from);
        if (p === undefined || p.state === 'known') return [];
        const prev = this.introTs.get(m.from);
        if (prev !== undefined && m.ts <= prev) {
          this.ignoredStale++;
          return [];
        }
        this.introTs.set(m.from, m.ts);
        const b = msg.body;
        const keep = this.claimIntroPoints(m.from, [...b.points, ...(b.next?.points ?? [])]);
        p.introPoints = {
          digest: b.digest,
          fetchedAt: b.fetchedAt,
          points: b.points.filter((x) => keep.has(x.authKey)).map((x) => ({ ...x })),
          receivedMs: nowMs,
          ...(b.key === undefined ? {} : { key: b.key }),
          ...(b.rotationSafe === undefined ? {} : { rotationSafe: b.rotationSafe }),
          ...(b.next === undefined
            ? {}
            : { next: { key: b.next.key, harvestedAt: b.next.harvestedAt, points: b.next.points.filter((x) => keep.has(x.authKey)).map((x) => ({ ...x })) } }),
          ...(b.pow === undefined ? {} : { pow: { ...b.pow } }),
        };
        events.push({ type: 'changed', id: m.from });
        return events;
      }
      case 'tokens':
        // The join-token ledger is the join service's business (MeshNode.onTokenLedger).
        return [];
      case 'members':
        // The node allowlist is the members service's business (MeshNode.onMembers).
        return [];
    }
  }

  /** Drop a peer at once (a node removed from the allowlist, MeshNode.setMembers); its intro-point keys are released. */
  drop(id: string): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    if (this.table.has(id)) this.forget(id, events);
    return events;
  }

  /** Advance liveness with the clock: alive → suspect → dead, expire leases, forget old entries. */
  tick(nowMs: number): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    for (const p of this.table.values()) {
      if (p.leaseUntilMs !== undefined && p.leaseUntilMs <= nowMs) {
        p.leaseUntilMs = undefined;
        events.push({ type: 'changed', id: p.id });
      }
      const since = nowMs - p.stateSinceMs;
      switch (p.state) {
        case 'alive':
        case 'suspect': {
          const quiet = nowMs - (p.lastHeardMs ?? p.stateSinceMs);
          if (quiet >= this.deadAfterMs) {
            this.setState(p, 'dead', nowMs, events);
            p.leaseUntilMs = undefined;
          } else if (quiet >= this.suspectAfterMs && p.state === 'alive') {
            this.setState(p, 'suspect', nowMs, events);
          }
          break;
        }
        case 'known':
          if (since >= this.knownTtlMs) this.forget(p.id, events);
          break;
        case 'dead':
        case 'left':
          if (since >= this.forgetAfterMs) this.forget(p.id, events);
          break;
      }
    }
    return events;
  }

  /** Gossip for our next heartbeat: alive peers with an address, most recently heard first (≤ 64). */
  gossip(nowMs: number): GossipPeer[] {
    return [...this.table.values()]
      .filter((p) => p.state === 'alive' && p.addr !== undefined && p.lastHeardMs !== undefined)
      .sort((a, b) => b.lastHeardMs! - a.lastHeardMs! || (a.id < b.id ? -1 : 1))
      .slice(0, MAX_GOSSIP_PEERS)
      .map((p) => ({ id: p.id, addr: p.addr!, lastSeenAgoMs: Math.max(0, Math.min(2 ** 31 - 1, Math.trunc(nowMs - p.lastHeardMs!))) }));
  }

  /**
   * Addresses worth keeping a connection to: alive, suspect, known and dead peers (not left),
   * in that order, at most `max` (default 64). Bootstrap addresses are the caller's own list.
   */
  dialTargets(max = 64): { id: string; addr: string; state: PeerState }[] {
    const order: Record<PeerState, number> = { alive: 0, suspect: 1, known: 2, dead: 3, left: 4 };
    return [...this.table.values()]
      .filter((p) => p.state !== 'left' && p.addr !== undefined)
      .sort((a, b) => order[a.state] - order[b.state] || (a.id < b.id ? -1 : 1))
      .slice(0, max)
      .map((p) => ({ id: p.id, addr: p.addr!, state: p.state }));
  }

  /**
   * The peers as the election sees them (alive and suspect ones; others cannot matter), each
   * priority capped at `maxPriority`.
   */
  electionPeers(): PeerCandidate[] {
    const out: PeerCandidate[] = [];
    for (const p of this.table.values()) {
      if ((p.state !== 'alive' && p.state !== 'suspect') || p.priority === undefined || p.health === undefined) continue;
      out.push({
        id: p.id,
        priority: Math.min(p.priority, this.maxPriority),
        healthy: p.health.healthy,
        hasIntroPoints: p.introPoints !== undefined && p.introPoints.points.length > 0,
        state: p.state,
        leaseUntilMs: p.leaseUntilMs,
      });
    }
    return out;
  }

  private localLease(until: number, ts: number, nowMs: number): number | undefined {
    const remaining = Math.min(until - ts, this.leaseMs);
    return remaining > 0 ? nowMs + remaining : undefined;
  }

  private setState(p: Mutable<PeerInfo>, state: PeerState, nowMs: number, events: MembershipEvent[]): void {
    p.state = state;
    p.stateSinceMs = nowMs;
    if (state !== 'known') events.push({ type: state, id: p.id });
  }

  /**
   * Record `from`'s claim to the auth keys of `points` (its whole latest announcement): release
   * the keys it no longer lists, take the unowned ones, and return the keys it owns — the
   * points it may keep. The others are counted in `droppedIntroClaims`.
   */
  private claimIntroPoints(from: string, points: readonly IntroPointWire[]): Set<string> {
    const claimed = new Set(points.map((x) => x.authKey));
    for (const [k, owner] of this.introOwner) if (owner === from && !claimed.has(k)) this.introOwner.delete(k);
    const ours = new Set(this.ownAuthKeys());
    const keep = new Set<string>();
    for (const k of claimed) {
      const owner = this.introOwner.get(k);
      if (ours.has(k) || (owner !== undefined && owner !== from)) {
        this.droppedIntroClaims++;
        continue;
      }
      this.introOwner.set(k, from);
      keep.add(k);
    }
    return keep;
  }

  private forget(id: string, events: MembershipEvent[]): void {
    this.table.delete(id);
    this.introTs.delete(id);
    for (const [k, owner] of this.introOwner) if (owner === id) this.introOwner.delete(k);
    events.push({ type: 'forgotten', id });
  }

  private countKnown(): number {
    let n = 0;
    for (const p of this.table.values()) if (p.state === 'known') n++;
    return n;
  }

  /** Ensure room for one more peer: evict the oldest known, then the oldest dead/left. */
  private makeRoom(_nowMs: number, events: MembershipEvent[]): boolean {
    if (this.table.size < this.maxPeers) return true;
    for (const states of [['known'], ['left', 'dead']] as const) {
      let victim: PeerInfo | undefined;
      for (const p of this.table.values()) {
        if ((states as readonly PeerState[]).includes(p.state) && (victim === undefined || p.stateSinceMs < victim.stateSinceMs)) victim = p;
      }
      if (victim !== undefined) {
        this.forget(victim.id, events);
        return true;
      }
    }
    return false;
  }

  private mergeGossip(from: string, peers: readonly GossipPeer[], nowMs: number, events: MembershipEvent[]): void {
    let known = this.countKnown();
    for (const g of peers.slice(0, MAX_GOSSIP_PEERS)) {
      if (g.id === this.selfId || g.id === from || this.table.has(g.id)) continue;
      if (g.lastSeenAgoMs >= this.suspectAfterMs || known >= this.maxKnown || this.table.size >= this.maxPeers || !this.allowed(g.id)) {
        this.droppedGossip++;
        continue;
      }
      const p = blank(g.id, nowMs);
      p.state = 'known';
      p.addr = g.addr;
      p.learnedFrom = from;
      this.table.set(g.id, p);
      known++;
      events.push({ type: 'known', id: g.id });
    }
  }
}

function blank(id: string, nowMs: number): Mutable<PeerInfo> {
  return {
    id,
    state: 'known',
    stateSinceMs: nowMs,
    name: undefined,
    addr: undefined,
    priority: undefined,
    health: undefined,
    introDigest: undefined,
    introPoints: undefined,
    leaseUntilMs: undefined,
    lastHeardMs: undefined,
    lastTs: -1,
    learnedFrom: undefined,
    leaveReason: undefined,
  };
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
