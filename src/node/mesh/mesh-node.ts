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
 * - the pure mesh core (src/core/mesh/): every frame is built by `encodeFrame` (MAC with the
 *   cluster secret, signed with the node key) and every received frame goes through one
 *   shared `MessageVerifier` (size → MAC → schema → version → identity → signature → skew →
 *   replay) before anything else looks at it;
 * - the core's `Membership` (alive / suspect / dead / left / known) and `electPublisher`.
 *
 * Behaviour:
 * - `start()` listens, dials every bootstrap address and starts the heartbeat loop;
 * - on every new connection both sides send `hello` (and our current `intro-points`);
 * - every `heartbeatMs`: a `heartbeat` to every peer ({name, addr, priority, health,
 *   introDigest, lease?, peers}), a membership tick (suspect/dead transitions), an election;
 *   every `introEveryHeartbeats` heartbeats (and on {@link MeshNode.broadcastIntroPoints})
 *   an `intro-points` message;
 * - peers learned by gossip are dialled (at most `maxPeers` addresses); addresses that turn
 *   out to be our own are never dialled again; peers that left are no longer dialled;
 * - each frame goes to each peer over exactly one connection (its newest identified one), so
 *   the replay cache never sees legitimate duplicates;
 * - a rejected frame is counted by reason and logged at most once per (peer, reason) per
 *   `rejectLogIntervalMs` (reason, short detail, remote; never payloads or secrets);
 *   frames failing the MAC, size, schema, version, identity or signature checks also drop
 *   the connection (outsider, garbage or a broken member); `skew` and `replay` do not;
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
  Membership,
  MessageVerifier,
  REJECT_REASONS,
  electPublisher,
  encodeFrame,
  meshMacKey,
  type ElectionResult,
  type IntroPointWire,
  type MembershipEvent,
  type MeshMessage,
  type MeshTransportKind,
  type NodeKey,
  type PeerState,
  type PublishSummary,
  type RejectReason,
  type TrafficSummary,
  validatePublishSummary,
  validateTrafficSummary,
} from '../../core/mesh/index.js';
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/tor/process.js';
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

const CLOSE_ON: ReadonlySet<RejectReason> = new Set(['mac', 'size', 'schema', 'version', 'identity', 'signature']);

/** A node of the cluster mesh. See the module doc. */
export class MeshNode {
  readonly id: string;
  readonly #o: MeshOptions;
  readonly #log: Logger;
  readonly #verifier: MessageVerifier;
  readonly #macKey: Uint8Array;
  /** The cluster transport: `tor` with the coordination-onion listener, else `tcp`. */
  readonly #kind: MeshTransportKind;
  readonly #transport: StreamMeshTransport;
  readonly #members: Membership;
  readonly #connPeer = new Map<MeshConnection, string>();
  readonly #selfAddrs = new Set<string>();
  readonly #listeners = new Set<(v: ClusterView) => void>();
  readonly #rejectLogged = new Map<string, number>();
  readonly #stats: Omit<MeshStats, 'transport' | 'connections'> = {
    accepted: 0,
    acceptedByType: { hello: 0, heartbeat: 0, 'intro-points': 0, leave: 0, lease: 0, tokens: 0 },
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
    this.#macKey = meshMacKey(o.clusterSecret);
    this.#kind = o.listen.kind === 'tor-onion' ? 'tor' : 'tcp';
    this.#verifier = new MessageVerifier({ clusterSecret: o.clusterSecret, maxSkewMs: o.maxSkewMs, transport: this.#kind });
    this.#members = new Membership({
      selfId: this.id,
      heartbeatMs: o.heartbeatMs,
      suspectAfterMs: o.suspectAfterMs,
      deadAfterMs: o.deadAfterMs,
      leaseMs: o.leaseMs,
      maxKnown: Math.min(32, o.maxPeers ?? 64),
    });
    this.#selfAddrs.add(o.advertise);
    const listen: StreamListen = o.listen.kind === 'tcp' ? { kind: 'tcp', host: o.listen.host, port: o.listen.port } : { kind: 'unix', path: o.listen.socketPath };
    this.#transport = new StreamMeshTransport({
      listen,
      connect: meshConnector({ transport: this.#kind, ...(o.socks === undefined ? {} : { socks: o.socks }) }),
      timers: o.timers,
      logger: o.logger,
      decoder: () => new FrameDecoder(),
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
          this.#connPeer.delete(c);
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
      self: { id: this.id, priority: this.#o.priority, healthy: local.healthy, hasIntroPoints: local.introPoints.length > 0, leaseUntilMs: this.#leaseUntil },
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
    return { type: 'intro-points', body: { digest: local.introDigest, fetchedAt: this.#o.now(), points: local.introPoints.slice(0, 20) } };
  }

  #tokensMessage(): MeshMessage {
    return { type: 'tokens', body: { entries: this.#tokenLedger } };
  }

  #encode(msg: MeshMessage): Uint8Array | undefined {
    try {
      return encodeFrame(msg, { key: this.#o.key, macKey: this.#macKey, nowMs: Math.floor(this.#o.now()), randomBytes: this.#o.randomBytes, transport: this.#kind });
    } catch (e) {
      this.#log.error({ err: e, type: msg.type }, 'cannot encode mesh message');
      return undefined;
    }
  }

  #sendOn(conn: MeshConnection, msg: MeshMessage, droppable: boolean): void {
    const wire = this.#encode(msg);
    if (wire === undefined) return;
    if (conn.send(wire, { droppable })) this.#stats.sent += 1;
  }

  /** One connection per identified peer (its newest), plus every not-yet-identified outgoing one. */
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
    const now = this.#o.now();
    const r = this.#verifier.verify(frame, Math.floor(now));
    if (!r.ok) {
      this.#reject(conn, r.reason, r.detail, r.from);
      return;
    }
    if (r.from === this.id) {
      // We dialled ourselves (our own address came back by gossip or bootstrap).
      if (conn.dialAddress !== undefined) {
        this.#selfAddrs.add(conn.dialAddress);
        this.#transport.undial(conn.dialAddress);
      }
      conn.close('connected to self');
      return;
    }
    this.#stats.accepted += 1;
    this.#stats.acceptedByType[r.msg.type] += 1;
    const known = this.#connPeer.get(conn);
    if (known !== undefined && known !== r.from) {
      this.#log.warn({ remote: conn.remote }, 'mesh connection changed identity; closing');
      conn.close('identity changed');
      return;
    }
    this.#connPeer.set(conn, r.from);
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
    if (events.some((e) => e.type !== 'changed')) this.#syncDials();
    this.#emitIfChanged();
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
