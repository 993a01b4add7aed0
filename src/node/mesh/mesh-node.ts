/**
 * MeshNode: one torbalance node's membership in the cluster mesh
 *.
 *
 * It combines
 * - a stream transport (src/adapters/mesh/tcp-transport.ts): a TCP listener and outgoing
 *   connections to `tcp:` addresses (the tcp transport), or the unix socket behind the node's
 *   coordination onion service and outgoing connections to `tor:` addresses through the node's
 *   SocksPort (the tor transport). The listener kind fixes the transport; addresses of the
 *   other kind are refused by the verifier, never sent by encodeFrame and never dialled by the
 *   connector (docs/SECURITY.md, "Mesh addresses");
 * - the pure mesh core (src/core/mesh/): every connection starts with the mutual handshake
 *   (handshake.ts; docs/mesh-protocol.md): the dialler sends M1, the accepting side answers
 *   only a cluster-MACed M1, and nothing else — no hello, intro points or gossip — is sent or
 *   accepted on a connection before the peer's proof verified (within `handshakeTimeoutMs`,
 *   else the connection is closed). Then every frame is built by `encodeFrame` (MAC with
 *   the connection's key for that direction and frame number, signed with the node key) and
 *   every received frame goes through one shared `MessageVerifier` (size → MAC → schema →
 *   version → identity → signature → skew → replay) with the connection's key, and its
 *   sender must be the peer the handshake proved, before anything else looks at it;
 * - the core's `Membership` (alive / suspect / dead / left / known) and `electPublisher`.
 *
 * Behaviour:
 * - `start()` listens, dials every bootstrap address and starts the heartbeat loop;
 * - once a connection's handshake completed both sides send `hello` (and our current
 *   `intro-points`); a handshake that reaches ourselves (our nonce comes back in M1) marks
 *   the dialled address as our own;
 * - every `heartbeatMs`: a `heartbeat` to every peer ({name, addr, priority, health,
 *   introDigest, lease?, peers}), a membership tick (suspect/dead transitions), an election;
 *   every `introEveryHeartbeats` heartbeats (and on {@link MeshNode.broadcastIntroPoints})
 *   an `intro-points` message;
 * - peers learned by gossip are dialled (at most `maxPeers` addresses); addresses that turn
 *   out to be our own are never dialled again; peers that left are no longer dialled;
 * - each frame goes to each peer over exactly one connection (its newest authenticated one), so
 *   the replay cache never sees legitimate duplicates;
 * - a rejected frame is counted by reason and logged at most once per (peer, reason) per
 *   `rejectLogIntervalMs` (reason, short detail, remote; never payloads or secrets);
 *   frames failing the MAC, size, schema, version, identity or signature checks, and failed
 *   or timed-out handshakes, also drop the connection (outsider, garbage or a broken
 *   member); `skew` and `replay` do not;
 * - `stop()` sends `leave` to every peer, waits briefly for it to be written, and closes;
 * - the join-token ledger: {@link MeshNode.setTokenLedger} sends a `tokens` message
 *   to every peer when the ledger changes, and to each peer after its `hello` on a connection;
 *   received ledgers go to {@link MeshNode.onTokenLedger} listeners (the join service merges
 *   them; MeshNode keeps no ledger state beyond the last one set);
 * - traffic and publish summaries: the local state may carry the node's `traffic` counters and,
 *   while it publishes, a `publish` summary; heartbeats carry them (each is checked with the
 *   protocol's validator first and left out, logged at debug, if invalid — a bad summary never
 *   costs the heartbeat). A peer's latest values are kept (bounded: peers the membership
 *   knows) and shown in its {@link PeerView}; a newer heartbeat without one clears it. They change
 *   every heartbeat, so they do not count as a view change for {@link MeshNode.onChange}.
 *
 * Time: `now()` (unix ms, also the frames' `ts`) and `timers` are injected.
 */
import { TorbalanceError } from '../../core/errors.js';
import { validateLedgerEntries, type LedgerEntry } from '../../core/join/ledger.js';
import type { RandomBytes } from '../../core/random.js';
import {
  FrameDecoder,
  HANDSHAKE_MAX_FRAME_BYTES,
  HANDSHAKE_NONCE_BYTES,
  MAX_INTRO_POINTS,
  InitiatorHandshake,
  Membership,
  MessageVerifier,
  REJECT_REASONS,
  electPublisher,
  ResponderHandshake,
  encodeFrame,
  linkFrameKey,
  nonceKey,
  EMPTY_MEMBERS,
  memberAllowed,
  sameMembers,
  validateMembers,
  type MembersLedger,
  type ElectionResult,
  type HandshakeStep,
  type IntroPointWire,
  type PowParamsWire,
  type MembershipEvent,
  type MeshLink,
  type MeshMessage,
  type MeshTransportKind,
  type NextIntroPoints,
  type NodeKey,
  type PeerState,
  type PublishSummary,
  type RejectReason,
  type TrafficSummary,
  validatePublishSummary,
  validateTrafficSummary,
} from '../../core/mesh/index.js';
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import {
  StreamMeshTransport,
  type MeshConnection,
  type StreamListen,
  type TransportStats,
} from '../../adapters/mesh/tcp-transport.js';
import { meshConnector } from '../../adapters/mesh/tor-transport.js';
import type { SocksEndpoint } from '../../adapters/net/socks-dialer.js';

/** The node's own state as the mesh advertises it. */
export interface LocalMeshState {
  readonly healthy: boolean;
  readonly reasons: string[];
  readonly introPoints: IntroPointWire[];
  readonly introDigest: string;
  /** Blinded key of the desc_current `introPoints` came from. */
  readonly introKey?: string | undefined;
  /** This node harvests desc_next (docs/DESIGN.md "Rotation-safe intro points"). */
  readonly rotationSafe?: boolean | undefined;
  /** Its harvested desc_next intro points. */
  readonly next?: NextIntroPoints | undefined;
  /** Its tor's current pow-params (PoW defenses on). */
  readonly pow?: PowParamsWire | undefined;
  /**
   * The node's visitor traffic (cumulative proxy counters), sent in heartbeats. Read only when
   * a heartbeat is built (the cluster computes it lazily in a getter).
   */
  readonly traffic?: TrafficSummary | undefined;
  /** The node's last publish round, only while it publishes; sent in heartbeats (read like `traffic`). */
  readonly publish?: PublishSummary | undefined;
}

/** Options of {@link MeshNode} (the cluster contract's MeshOptions plus tuning knobs). */
export interface MeshOptions {
  readonly key: NodeKey;
  readonly clusterSecret: Uint8Array;
  readonly name: string;
  readonly priority: number;
  /**
   * Cap on every node's priority in the election (`cluster.max_priority`; default 1000): a peer
   * claiming more is credited with this, and so is this node (docs/SECURITY.md "One member").
   */
  readonly maxPriority?: number;
  readonly listen:
    | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
    | { readonly kind: 'tor-onion'; readonly socketPath: string; readonly onionAddress: string; readonly port: number };
  /** How peers reach us: "tcp:10.99.0.1:7700" or "tor:<56>.onion:7700". */
  readonly advertise: string;
  /** Peer addresses to dial at start. */
  readonly bootstrap: readonly string[];
  /** Required to dial `tor:` peers (the tor transport); unused with a tcp listener. */
  readonly socks?: SocksEndpoint;
  readonly heartbeatMs: number;
  readonly suspectAfterMs: number;
  readonly deadAfterMs: number;
  readonly leaseMs: number;
  readonly maxSkewMs: number;
  readonly timers: Timers;
  /** Wall clock, unix ms. */
  readonly now: () => number;
  readonly randomBytes: RandomBytes;
  readonly logger: Logger;
  readonly localState: () => LocalMeshState;
  /** Send intro-points every N heartbeats as well as on change. Default 10. */
  readonly introEveryHeartbeats?: number;
  /** Most peer addresses dialled. Default 64. */
  readonly maxPeers?: number;
  /** Log a given (peer, reason) rejection at most this often. Default 60 s. */
  readonly rejectLogIntervalMs?: number;
  /** Close connections without a frame for this long. Default max(deadAfterMs, 3·heartbeatMs). */
  readonly idleTimeoutMs?: number;
  /** Dial deadline. Default 10 s for tcp, 60 s when socks is set. */
  readonly connectTimeoutMs?: number;
  /** Close a connection whose handshake did not complete in this time. Default 10 s for tcp, 30 s when socks is set. */
  readonly handshakeTimeoutMs?: number;
  /** Most remembered nonces per sender in the replay cache (core MessageVerifier). Default 4096. */
  readonly replayCacheSize?: number;
  /** Reconnect backoff. Default 250 ms doubling to 30 s. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** One peer in a {@link ClusterView}. */
export interface PeerView {
  readonly id: string;
  readonly name: string;
  readonly addr: string;
  readonly state: PeerState;
  readonly healthy: boolean;
  readonly reasons: readonly string[];
  readonly priority: number;
  readonly introDigest: string;
  readonly introPoints: readonly IntroPointWire[];
  /** Blinded key of the desc_current its `introPoints` came from (undefined: not sent). */
  readonly introKey: string | undefined;
  readonly rotationSafe: boolean;
  /** Its harvested desc_next intro points, if it sent any. */
  readonly next: { readonly key: string; readonly harvestedAt: number; readonly points: readonly IntroPointWire[] } | undefined;
  /** Its tor's pow-params, if it sent them. */
  readonly pow: PowParamsWire | undefined;
  /** Our clock (unix ms) when we last accepted a frame from it; undefined if only gossiped. */
  readonly lastSeenMs: number | undefined;
  /** Its traffic counters from its latest heartbeat (undefined: none carried them). */
  readonly traffic: TrafficSummary | undefined;
  /** Its publish summary from its latest heartbeat (only the publishing node sends one). */
  readonly publish: PublishSummary | undefined;
}

/** The cluster as this node sees it. */
export interface ClusterView {
  readonly self: { readonly id: string; readonly name: string; readonly addr: string; readonly priority: number; readonly healthy: boolean; readonly introDigest: string };
  readonly peers: readonly PeerView[];
  /** The elected publisher (nodeId), if any. */
  readonly publisher: string | undefined;
  readonly selfIsPublisher: boolean;
  /** Expiry (unix ms) of the lease we hold, if we hold one. */
  readonly leaseUntil: number | undefined;
  /** Why the election came out as it did (core's explanation). */
  readonly electionReason: string;
}

/** Counters of {@link MeshNode.stats}. */
export interface MeshStats {
  accepted: number;
  acceptedByType: Record<MeshMessage['type'], number>;
  rejected: Record<RejectReason, number>;
  sent: number;
  connections: number;
  transport: TransportStats;
}

function zeroRejects(): Record<RejectReason, number> {
  const r = {} as Record<RejectReason, number>;
  for (const k of REJECT_REASONS) r[k] = 0;
  return r;
}

const CLOSE_ON: ReadonlySet<RejectReason> = new Set(['mac', 'size', 'schema', 'version', 'identity', 'signature', 'handshake']);

/** A connection's handshake in progress, or its authenticated link with the frame counters. */
type ConnState =
  | { readonly phase: 'handshake'; readonly hs: InitiatorHandshake | ResponderHandshake; readonly timer: TimerHandle; readonly nonce: string | undefined }
  | { readonly phase: 'link'; readonly link: MeshLink; sendSeq: number; recvSeq: number };

/** A node of the cluster mesh. See the module doc. */
export class MeshNode {
  readonly id: string;
  readonly #o: MeshOptions;
  readonly #log: Logger;
  readonly #verifier: MessageVerifier;
  /** The cluster transport: `tor` with the coordination-onion listener, else `tcp`. */
  readonly #kind: MeshTransportKind;
  readonly #transport: StreamMeshTransport;
  readonly #members: Membership;
  readonly #connPeer = new Map<MeshConnection, string>();
  readonly #connState = new Map<MeshConnection, ConnState>();
  /** Nonces of our outgoing handshakes in progress → their connection (to recognise a dial to ourselves). */
  readonly #ownNonces = new Map<string, MeshConnection>();
  readonly #selfAddrs = new Set<string>();
  readonly #listeners = new Set<(v: ClusterView) => void>();
  readonly #rejectLogged = new Map<string, number>();
  readonly #stats: Omit<MeshStats, 'transport' | 'connections'> = {
    accepted: 0,
    acceptedByType: { hello: 0, heartbeat: 0, 'intro-points': 0, leave: 0, lease: 0, tokens: 0, members: 0 },
    rejected: zeroRejects(),
    sent: 0,
  };
  #timer: TimerHandle | undefined;
  #beats = 0;
  #started = false;
  #stopped = false;
  #leaseUntil: number | undefined;
  #lastViewKey = '';
  #tokenLedger: readonly LedgerEntry[] = [];
  #tokenLedgerKey = '[]';
  readonly #tokenListeners = new Set<(entries: readonly LedgerEntry[], fromNodeId: string) => void>();
  /** The node allowlist (src/core/mesh/members.ts) as last set; who may complete a handshake. */
  #allow: MembersLedger = EMPTY_MEMBERS;
  /** Peers that sent us a `members` message (they understand it: we answer with ours). */
  readonly #membersPeers = new Set<string>();
  readonly #membersListeners = new Set<(ledger: MembersLedger, fromNodeId: string) => void>();
  /** Latest traffic / publish summaries per peer (from heartbeats; pruned to known peers). */
  readonly #summaries = new Map<string, { readonly ts: number; readonly traffic: TrafficSummary | undefined; readonly publish: PublishSummary | undefined }>();
  #badSummaryLogged = false;

  constructor(o: MeshOptions) {
    if (!(o.heartbeatMs > 0 && o.suspectAfterMs > o.heartbeatMs && o.deadAfterMs > o.suspectAfterMs && o.leaseMs > 0 && o.maxSkewMs > 0)) {
      throw new TorbalanceError('TB_ERR_MESH_CONFIG', 'config', 'mesh timings must satisfy 0 < heartbeat < suspectAfter < deadAfter, lease > 0, maxSkew > 0');
    }
    this.#o = o;
    this.id = o.key.nodeId;
    this.#log = o.logger;
    this.#kind = o.listen.kind === 'tor-onion' ? 'tor' : 'tcp';
    this.#verifier = new MessageVerifier({
      clusterSecret: o.clusterSecret,
      maxSkewMs: o.maxSkewMs,
      transport: this.#kind,
      ...(o.replayCacheSize === undefined ? {} : { replayCacheSize: o.replayCacheSize }),
    });
    this.#members = new Membership({
      selfId: this.id,
      heartbeatMs: o.heartbeatMs,
      suspectAfterMs: o.suspectAfterMs,
      deadAfterMs: o.deadAfterMs,
      leaseMs: o.leaseMs,
      maxKnown: Math.min(32, o.maxPeers ?? 64),
      ...(o.maxPriority === undefined ? {} : { maxPriority: o.maxPriority }),
      allowed: (id) => memberAllowed(this.#allow, id),
      // Our own intro points' auth keys are ours: a peer claiming one is dropped (docs/SECURITY.md "One member").
      ownAuthKeys: () => {
        const local = o.localState();
        return [...local.introPoints, ...(local.next?.points ?? [])].map((x) => x.authKey);
      },
    });
    this.#selfAddrs.add(o.advertise);
    const listen: StreamListen = o.listen.kind === 'tcp' ? { kind: 'tcp', host: o.listen.host, port: o.listen.port } : { kind: 'unix', path: o.listen.socketPath };
    this.#transport = new StreamMeshTransport({
      listen,
      connect: meshConnector({ transport: this.#kind, ...(o.socks === undefined ? {} : { socks: o.socks }) }),
      timers: o.timers,
      logger: o.logger,
      // Before the handshake completed only small frames are accepted: M1 and M3 inbound, M2 outbound.
      decoder: (direction) => new FrameDecoder({ firstFrames: { count: direction === 'in' ? 2 : 1, maxBytes: HANDSHAKE_MAX_FRAME_BYTES } }),
      random: () => {
        const b = o.randomBytes(4);
        return (((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!) / 2 ** 32;
      },
      idleTimeoutMs: o.idleTimeoutMs ?? Math.max(o.deadAfterMs, 3 * o.heartbeatMs),
      connectTimeoutMs: o.connectTimeoutMs ?? (o.socks === undefined ? 10_000 : 60_000),
      backoff: { initialMs: o.backoff?.initialMs ?? 250, maxMs: o.backoff?.maxMs ?? 30_000, factor: 2 },
      handlers: {
        onOpen: (c) => {
          this.#onOpen(c);
        },
        onFrame: (c, f) => {
          this.#onFrame(c, f);
        },
        onClose: (c) => {
          this.#forget(c);
        },
        onStreamError: (c, reason, detail) => {
          this.#reject(c, reason, detail, undefined);
        },
      },
    });
  }

  /** The transport (tests use its hooks: setBlocked, crash, port). */
  get transport(): StreamMeshTransport {
    return this.#transport;
  }

  /** Listen, dial the bootstrap addresses and start heartbeats. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#transport.start();
    this.#syncDials();
    this.#schedule();
    this.#emitIfChanged();
  }

  /** Send `leave` to every peer, then close everything. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    if (this.#started) {
      this.#broadcast({ type: 'leave', body: { reason: reason.slice(0, 200) } }, false);
      // Give the sockets a moment to write the leave before closing them.
      await new Promise<void>((r) => {
        this.#o.timers.setTimeout(r, 50);
      });
    }
    await this.#transport.close();
  }

  /**
   * Test hook: die like a killed process — no leave, sockets destroyed, timers stopped.
   */
  crash(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    for (const st of this.#connState.values()) if (st.phase === 'handshake') this.#o.timers.clearTimeout(st.timer);
    this.#connState.clear();
    this.#connPeer.clear();
    this.#ownNonces.clear();
    this.#transport.crash();
  }

  /** Register a listener for view changes (membership, health, intro points, election). Returns an unsubscribe function. */
  onChange(l: (v: ClusterView) => void): () => void {
    this.#listeners.add(l);
    return () => {
      this.#listeners.delete(l);
    };
  }

  /** Counters. */
  stats(): MeshStats {
    return {
      accepted: this.#stats.accepted,
      acceptedByType: { ...this.#stats.acceptedByType },
      rejected: { ...this.#stats.rejected },
      sent: this.#stats.sent,
      connections: this.#transport.connections().length,
      transport: { ...this.#transport.stats },
    };
  }

  /**
   * Set the node allowlist (src/core/mesh/members.ts; docs/SECURITY.md "One member"). A peer
   * that is not allowed is refused when its handshake completes (`identity` rejection, the
   * connection is closed, nothing is sent); setting a ledger that no longer allows a connected
   * peer closes its connections and drops it from the membership at once. The ledger is sent to
   * every peer when it changes and after each peer's `hello` — but only once it is enforced or
   * records a removal, or to a peer that sent us one: so a cluster being upgraded from a
   * version without the allowlist sees no new message until the operator uses it
   * (docs/OPERATIONS.md "Node membership"). Validated first (throws MembersViolation
   * `TB_ERR_MEMBERS`) and copied.
   */
  setMembers(ledger: MembersLedger): void {
    const valid = validateMembers(ledger);
    if (sameMembers(valid, this.#allow)) return;
    this.#allow = valid;
    for (const c of this.#transport.connections()) {
      const id = this.#connPeer.get(c);
      if (id !== undefined && !memberAllowed(valid, id)) {
        this.#reject(c, 'identity', 'peer is not on the node allowlist', id);
        this.#applyEvents(this.#dropPeer(id));
      }
    }
    if (this.#started && !this.#stopped) for (const c of this.#targets()) this.#sendMembers(c, false);
    this.#emitIfChanged();
  }

  /** Ids of the peers alive in our view now. */
  alivePeers(): string[] {
    return this.#members.peers().filter((p) => p.state === 'alive').map((p) => p.id);
  }

  /** The allowlist as last set. */
  members(): MembersLedger {
    return this.#allow;
  }

  /** Listen for allowlists received from peers. Returns an unsubscribe function. */
  onMembers(cb: (ledger: MembersLedger, fromNodeId: string) => void): () => void {
    this.#membersListeners.add(cb);
    return () => {
      this.#membersListeners.delete(cb);
    };
  }

  #dropPeer(id: string): MembershipEvent[] {
    this.#summaries.delete(id);
    return this.#members.drop(id);
  }

  /** Send our allowlist on `conn` if the peer should get it (see setMembers); `answer`: it sent us its own. */
  #sendMembers(conn: MeshConnection, answer: boolean): void {
    const peer = this.#connPeer.get(conn);
    const m = this.#allow;
    if (m.entries.length === 0 && !m.enforced) return;
    const worth = m.enforced || m.entries.some((e) => e.state === 'removed') || (peer !== undefined && this.#membersPeers.has(peer));
    if (!worth && !answer) return;
    this.#sendOn(conn, { type: 'members', body: m }, false);
  }

  /**
   * Set the join-token ledger this node advertises. If it differs from the last one set, it
   * is sent to every peer now; it is also sent to each peer after that peer's `hello`. The
   * entries are validated first (≤ MAX_LEDGER_ENTRIES; throws LedgerViolation
   * `TB_ERR_JOIN_LEDGER` on an invalid entry) and copied.
   */
  setTokenLedger(entries: readonly LedgerEntry[]): void {
    const valid = validateLedgerEntries(entries);
    const key = JSON.stringify(valid);
    if (key === this.#tokenLedgerKey) return;
    this.#tokenLedger = valid;
    this.#tokenLedgerKey = key;
    if (!this.#started || this.#stopped) return;
    this.#broadcast(this.#tokensMessage(), false);
  }

  /**
   * Register a listener for ledgers received from peers (validated entries, the sender's node
   * id). Returns an unsubscribe function. Listener errors are logged, never propagated.
   */
  onTokenLedger(cb: (entries: readonly LedgerEntry[], fromNodeId: string) => void): () => void {
    this.#tokenListeners.add(cb);
    return () => {
      this.#tokenListeners.delete(cb);
    };
  }

  /** Tell peers our intro points now (call when the local set changed). */
  broadcastIntroPoints(): void {
    if (!this.#started || this.#stopped) return;
    this.#broadcast(this.#introMessage(), false);
    this.#emitIfChanged();
  }

  /** The current cluster view. */
  view(): ClusterView {
    const local = this.#o.localState();
    const election = this.#elect(this.#o.now(), local);
    return {
      self: { id: this.id, name: this.#o.name, addr: this.#o.advertise, priority: this.#o.priority, healthy: local.healthy, introDigest: local.introDigest },
      peers: this.#members.peers().map((p): PeerView => ({
        id: p.id,
        name: p.name ?? '',
        addr: p.addr ?? '',
        state: p.state,
        healthy: p.health?.healthy ?? false,
        reasons: p.health?.reasons ?? [],
        priority: p.priority ?? 0,
        introDigest: p.introDigest ?? '',
        introPoints: p.introPoints?.points ?? [],
        introKey: p.introPoints?.key,
        rotationSafe: p.introPoints?.rotationSafe === true,
        next: p.introPoints?.next,
        pow: p.introPoints?.pow,
        lastSeenMs: p.lastHeardMs,
        traffic: this.#summaries.get(p.id)?.traffic,
        publish: this.#summaries.get(p.id)?.publish,
      })),
      publisher: election.publisher,
      selfIsPublisher: election.selfShouldPublish,
      leaseUntil: election.leaseUntilMs,
      electionReason: election.reason,
    };
  }

  // ---- internals -------------------------------------------------------------------------

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      try {
        this.#tick();
      } catch (e) {
        this.#log.error({ err: e }, 'mesh heartbeat tick failed');
      }
      this.#schedule();
    }, this.#o.heartbeatMs);
  }

  #tick(): void {
    const now = this.#o.now();
    this.#applyEvents(this.#members.tick(now));
    this.#pruneSummaries();
    // Decide (and claim/renew/release our lease) once per heartbeat, before advertising it.
    const before = this.#leaseUntil;
    this.#leaseUntil = this.#elect(now, this.#o.localState()).leaseUntilMs;
    // Tell peers at once when we claim or release the lease (heartbeats carry renewals).
    if ((before === undefined || before <= now) !== (this.#leaseUntil === undefined)) {
      this.#broadcast({ type: 'lease', body: { until: Math.floor(this.#leaseUntil ?? now) } }, false);
    }
    this.#beats += 1;
    this.#broadcast(this.#heartbeatMessage(now), true);
    const every = this.#o.introEveryHeartbeats ?? 10;
    if (this.#beats % every === 0) this.#broadcast(this.#introMessage(), false);
    this.#syncDials();
    this.#emitIfChanged();
  }

  #elect(now: number, local: LocalMeshState): ElectionResult {
    return electPublisher({
      self: { id: this.id, priority: Math.min(this.#o.priority, this.#o.maxPriority ?? 1000), healthy: local.healthy, hasIntroPoints: local.introPoints.length > 0, leaseUntilMs: this.#leaseUntil },
      peers: this.#members.electionPeers(),
      nowMs: now,
      leaseMs: this.#o.leaseMs,
    });
  }

  #applyEvents(events: readonly MembershipEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'changed') continue;
      const level = ev.type === 'known' || ev.type === 'forgotten' ? 'debug' : 'info';
      this.#log[level]({ peer: ev.id, event: ev.type }, 'mesh peer state');
    }
  }

  /** Keep one outgoing connection to each bootstrap address and each non-left peer (bounded). */
  #syncDials(): void {
    if (this.#stopped) return;
    const want = new Set<string>();
    for (const a of this.#o.bootstrap) if (!this.#selfAddrs.has(a)) want.add(a);
    for (const t of this.#members.dialTargets(this.#o.maxPeers ?? 64)) if (!this.#selfAddrs.has(t.addr)) want.add(t.addr);
    for (const a of this.#transport.dialed()) if (!want.has(a)) this.#transport.undial(a);
    for (const a of want) this.#transport.dial(a);
  }

  #helloBody(): { name: string; addr: string; priority: number; health: { healthy: boolean; reasons: string[] }; introDigest: string } {
    const local = this.#o.localState();
    return {
      name: this.#o.name,
      addr: this.#o.advertise,
      priority: this.#o.priority,
      health: { healthy: local.healthy, reasons: local.reasons.slice(0, 16).map((r) => r.slice(0, 200)) },
      introDigest: local.introDigest,
    };
  }

  #heartbeatMessage(now: number): MeshMessage {
    const lease = this.#leaseUntil !== undefined && this.#leaseUntil > now ? { holder: this.id, until: this.#leaseUntil } : undefined;
    const local = this.#o.localState();
    const traffic = this.#checked(local.traffic, validateTrafficSummary, 'traffic');
    const publish = this.#checked(local.publish, validatePublishSummary, 'publish');
    return {
      type: 'heartbeat',
      body: {
        ...this.#helloBody(),
        ...(lease === undefined ? {} : { lease }),
        peers: this.#members.gossip(now),
        ...(traffic === undefined ? {} : { traffic }),
        ...(publish === undefined ? {} : { publish }),
      },
    };
  }

  /** A local summary as the protocol accepts it, or undefined (logged once at debug) if invalid. */
  #checked<T>(v: T | undefined, validate: (v: unknown, path: string) => T, what: string): T | undefined {
    if (v === undefined) return undefined;
    try {
      return validate(v, what);
    } catch (e) {
      if (!this.#badSummaryLogged) {
        this.#badSummaryLogged = true;
        this.#log.debug({ err: e instanceof Error ? e.message : String(e), what }, 'local summary not sent: invalid');
      }
      return undefined;
    }
  }

  /** Keep summaries only of peers the membership still knows (bounded like it). */
  #pruneSummaries(): void {
    if (this.#summaries.size === 0) return;
    const known = new Set(this.#members.peers().map((p) => p.id));
    for (const id of this.#summaries.keys()) if (!known.has(id)) this.#summaries.delete(id);
  }

  #introMessage(): MeshMessage {
    const local = this.#o.localState();
    return {
      type: 'intro-points',
      body: {
        digest: local.introDigest,
        fetchedAt: this.#o.now(),
        points: local.introPoints.slice(0, MAX_INTRO_POINTS),
        ...(local.introKey === undefined ? {} : { key: local.introKey }),
        ...(local.rotationSafe === true ? { rotationSafe: true } : {}),
        ...(local.next === undefined ? {} : { next: { key: local.next.key, harvestedAt: local.next.harvestedAt, points: local.next.points.slice(0, MAX_INTRO_POINTS) } }),
        ...(local.pow === undefined ? {} : { pow: local.pow }),
      },
    };
  }

  #tokensMessage(): MeshMessage {
    return { type: 'tokens', body: { entries: this.#tokenLedger } };
  }

  #encode(msg: MeshMessage, macKey: Uint8Array): Uint8Array | undefined {
    try {
      return encodeFrame(msg, { key: this.#o.key, macKey, nowMs: Math.floor(this.#o.now()), randomBytes: this.#o.randomBytes, transport: this.#kind });
    } catch (e) {
      this.#log.error({ err: e, type: msg.type }, 'cannot encode mesh message');
      return undefined;
    }
  }

  /**
   * Send `msg` on an authenticated connection (nothing is sent on one whose handshake is not
   * done). Frames are numbered per connection (their MAC key depends on the number), so none
   * may be dropped: `droppable` is not passed to the transport, whose queue bound then closes
   * a connection that cannot keep up (it is re-dialled and re-synchronised).
   */
  #sendOn(conn: MeshConnection, msg: MeshMessage, _droppable: boolean): void {
    const st = this.#connState.get(conn);
    if (st?.phase !== 'link') return;
    const wire = this.#encode(msg, linkFrameKey(st.link.sendKey, st.sendSeq));
    if (wire === undefined) return;
    st.sendSeq += 1;
    if (conn.send(wire)) this.#stats.sent += 1;
  }

  /** One connection per authenticated peer (its newest). */
  #targets(): MeshConnection[] {
    const byPeer = new Map<string, MeshConnection>();
    const out: MeshConnection[] = [];
    for (const c of this.#transport.connections()) {
      const id = this.#connPeer.get(c);
      if (id === undefined) continue;
      const prev = byPeer.get(id);
      if (prev === undefined || c.id > prev.id) byPeer.set(id, c);
    }
    out.push(...byPeer.values());
    return out;
  }

  #broadcast(msg: MeshMessage, droppable: boolean): void {
    for (const c of this.#targets()) {
      const id = this.#connPeer.get(c);
      if (id !== undefined && this.#members.peer(id)?.state === 'left') continue;
      // Each frame gets its own nonce: encode per connection.
      this.#sendOn(c, msg, droppable);
    }
  }

  #onOpen(conn: MeshConnection): void {
    if (this.#stopped) {
      conn.close('node stopping');
      return;
    }
    const nonce = this.#o.randomBytes(HANDSHAKE_NONCE_BYTES);
    const opts = { clusterSecret: this.#o.clusterSecret, key: this.#o.key, nonce };
    const timeoutMs = this.#o.handshakeTimeoutMs ?? (this.#o.socks === undefined ? 10_000 : 30_000);
    const timer = this.#o.timers.setTimeout(() => {
      if (this.#connState.get(conn)?.phase !== 'handshake') return;
      this.#reject(conn, 'handshake', `no handshake within ${timeoutMs} ms`, undefined);
    }, timeoutMs);
    if (conn.direction === 'out') {
      const hs = new InitiatorHandshake(opts);
      const key = nonceKey(nonce);
      this.#connState.set(conn, { phase: 'handshake', hs, timer, nonce: key });
      this.#ownNonces.set(key, conn);
      this.#sendRaw(conn, hs.start());
    } else {
      // The accepting side sends nothing until the dialler proved it holds the cluster secret (M1).
      this.#connState.set(conn, { phase: 'handshake', hs: new ResponderHandshake(opts), timer, nonce: undefined });
    }
  }

  /** Send one handshake message (framed with its length prefix). */
  #sendRaw(conn: MeshConnection, msg: Uint8Array): void {
    const wire = new Uint8Array(4 + msg.length);
    new DataView(wire.buffer).setUint32(0, msg.length, false);
    wire.set(msg, 4);
    conn.send(wire);
  }

  /** Drop a connection's state (on close). */
  #forget(conn: MeshConnection): void {
    const st = this.#connState.get(conn);
    if (st?.phase === 'handshake') {
      this.#o.timers.clearTimeout(st.timer);
      if (st.nonce !== undefined) this.#ownNonces.delete(st.nonce);
    }
    this.#connState.delete(conn);
    this.#connPeer.delete(conn);
  }

  /** A frame on a connection whose handshake is in progress. */
  #onHandshakeFrame(conn: MeshConnection, st: Extract<ConnState, { phase: 'handshake' }>, frame: Uint8Array): void {
    const step: HandshakeStep = st.hs.receive(frame);
    if (!step.ok) {
      if (step.selfNonce !== undefined) {
        // Our own M1 came back: the address we dialled is ours.
        const own = this.#ownNonces.get(nonceKey(step.selfNonce));
        if (own?.dialAddress !== undefined) {
          this.#selfAddrs.add(own.dialAddress);
          this.#transport.undial(own.dialAddress);
          conn.close('connected to self');
          return;
        }
      }
      this.#reject(conn, step.reason, step.detail, undefined);
      return;
    }
    if (step.send !== undefined) this.#sendRaw(conn, step.send);
    if (step.link === undefined) return;
    this.#o.timers.clearTimeout(st.timer);
    if (st.nonce !== undefined) this.#ownNonces.delete(st.nonce);
    if (!memberAllowed(this.#allow, step.link.peerId)) {
      // Not on the node allowlist (removed, or not a member of an enforced list): nothing is sent.
      this.#connState.delete(conn);
      this.#reject(conn, 'identity', 'peer is not on the node allowlist', step.link.peerId);
      return;
    }
    this.#connState.set(conn, { phase: 'link', link: step.link, sendSeq: 0, recvSeq: 0 });
    this.#connPeer.set(conn, step.link.peerId);
    this.#log.debug({ conn: conn.id, remote: conn.remote, peer: step.link.peerId }, 'mesh connection authenticated');
    this.#sendOn(conn, { type: 'hello', body: this.#helloBody() }, false);
    this.#sendOn(conn, this.#introMessage(), false);
  }

  #reject(conn: MeshConnection, reason: RejectReason, detail: string, from: string | undefined): void {
    this.#stats.rejected[reason] += 1;
    const who = from ?? conn.remote;
    const key = `${who}|${reason}`;
    const now = this.#o.timers.now();
    const last = this.#rejectLogged.get(key);
    const every = this.#o.rejectLogIntervalMs ?? 60_000;
    if (last === undefined || now - last >= every) {
      if (this.#rejectLogged.size > 1024) this.#rejectLogged.clear();
      this.#rejectLogged.set(key, now);
      this.#log.warn({ reason, detail, remote: conn.remote, ...(from === undefined ? {} : { peer: from }), total: this.#stats.rejected[reason] }, 'mesh frame rejected');
    }
    if (CLOSE_ON.has(reason)) conn.close(`rejected frame (${reason})`);
  }

  #onFrame(conn: MeshConnection, frame: Uint8Array): void {
    if (this.#stopped) return;
    const st = this.#connState.get(conn);
    if (st === undefined) {
      conn.close('unknown connection');
      return;
    }
    if (st.phase === 'handshake') {
      this.#onHandshakeFrame(conn, st, frame);
      return;
    }
    const now = this.#o.now();
    // Every received frame takes the next number, so a frame that fails (and closes the
    // connection, or is a skew/replay rejection) never lets a later one through out of order.
    const macKey = linkFrameKey(st.link.recvKey, st.recvSeq);
    st.recvSeq += 1;
    const r = this.#verifier.verify(frame, Math.floor(now), macKey);
    if (!r.ok) {
      this.#reject(conn, r.reason, r.detail, r.from);
      return;
    }
    if (r.from !== st.link.peerId) {
      // A frame of another node relayed by the peer: only the peer's own frames travel on its link.
      this.#reject(conn, 'identity', 'sender is not the peer this connection authenticated', r.from);
      return;
    }
    this.#stats.accepted += 1;
    this.#stats.acceptedByType[r.msg.type] += 1;
    const events = this.#members.receive({ from: r.from, ts: r.ts, msg: r.msg }, now);
    this.#applyEvents(events);
    if (r.msg.type === 'heartbeat') {
      // Only a newer heartbeat replaces the last one (frames may cross on two connections).
      const { traffic, publish } = r.msg.body;
      if (r.ts >= (this.#summaries.get(r.from)?.ts ?? 0)) this.#summaries.set(r.from, { ts: r.ts, traffic, publish });
      if (this.#summaries.size > 2 * (this.#o.maxPeers ?? 64)) this.#pruneSummaries();
    }
    if (r.msg.type === 'leave') this.#log.info({ peer: r.from, reason: r.msg.body.reason }, 'mesh peer said leave');
    if (r.msg.type === 'hello' && this.#tokenLedger.length > 0) this.#sendOn(conn, this.#tokensMessage(), false);
    if (r.msg.type === 'tokens') this.#emitTokens(r.msg.body.entries, r.from);
    if (r.msg.type === 'hello') this.#sendMembers(conn, false);
    if (r.msg.type === 'members') {
      const first = !this.#membersPeers.has(r.from);
      if (this.#membersPeers.size < 4 * (this.#o.maxPeers ?? 64)) this.#membersPeers.add(r.from);
      if (first) this.#sendMembers(conn, true);
      this.#emitMembers(r.msg.body, r.from);
    }
    if (events.some((e) => e.type !== 'changed')) this.#syncDials();
    this.#emitIfChanged();
  }

  #emitMembers(ledger: MembersLedger, from: string): void {
    for (const l of [...this.#membersListeners]) {
      try {
        l(ledger, from);
      } catch (e) {
        this.#log.error({ err: e }, 'members listener threw');
      }
    }
  }

  #emitTokens(entries: readonly LedgerEntry[], from: string): void {
    for (const l of [...this.#tokenListeners]) {
      try {
        l(entries, from);
      } catch (e) {
        this.#log.error({ err: e }, 'token ledger listener threw');
      }
    }
  }

  #emitIfChanged(): void {
    if (this.#listeners.size === 0 && this.#lastViewKey !== '') return;
    const v = this.view();
    const key = JSON.stringify({ ...v, peers: v.peers.map((p) => ({ ...p, lastSeenMs: undefined, traffic: undefined, publish: undefined })), leaseUntil: v.leaseUntil === undefined ? 0 : 1 });
    if (key === this.#lastViewKey) return;
    this.#lastViewKey = key;
    for (const l of [...this.#listeners]) {
      try {
        l(v);
      } catch (e) {
        this.#log.error({ err: e }, 'mesh view listener threw');
      }
    }
  }
}
