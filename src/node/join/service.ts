/**
 * The join service of a cluster node (docs/OPERATIONS.md): admits a new node that presents a join token through the master onion's
 * join port, and manages the cluster-wide token ledger.
 *
 * - Ledger: `<data_dir>/join-ledger.json` (src/node/join/ledger-store.ts), merged with the
 *   mesh's `tokens` gossip (MeshNode.setTokenLedger / onTokenLedger; merge rule
 *   src/core/join/ledger.ts `mergeLedger`: revoked > used > issued). Every local change is
 *   persisted, then gossiped.
 * - Tokens: `issue(ttlS)` makes a token (src/core/join/token.ts, bound to the cluster secret,
 *   the master address and the join port), records it `issued` and returns its text once; the
 *   text is never stored or logged. `revoke(id)` records `revoked`.
 * - The join port (src/node/join/listener.ts) is open only while this node has a token of its
 *   own outstanding (`issued` by this node, not yet expired): it opens when the node issues
 *   one and closes when the last one is used, revoked (here or by gossip) or expires (a timer
 *   at the earliest expiry). Otherwise nothing listens on `join.sock` and tor answers a stream
 *   to the port as for any service port whose backend is down (docs/SECURITY.md "The join port").
 * - Attempts (one at a time): the request is verified with the cluster secret
 *   (`verifyJoinRequest`); one whose proof does not verify (malformed, another master, a wrong
 *   token secret) is closed without an answer, so the port says nothing to a stranger. Proven
 *   attempts are limited to `cluster.join.max_attempts_per_minute` (`rate-limited`). Then:
 *   - single use: ONLY the node that issued a token redeems it. Another node answers
 *     `not-here` (the joiner retries on a fresh circuit, which reaches a random node). So
 *     whether a token is spent is decided by one node, serially, from its own durable ledger:
 *     the token is marked `used` (persisted, fsynced, then gossiped) BEFORE the accept frame
 *     is built, so two concurrent redemptions — at one node or at two — never both get the
 *     bundle, and a crash between the two leaves the token spent rather than reusable.
 *     `used`, `revoked` and `expired` are answered by any node that knows them;
 *   - the accept frame seals the bundle (master key, cluster secret, peers = own advertise +
 *     live peers, settings from the config) to the joiner's ephemeral key.
 *   Each attempt is logged (result, token id, joiner node id; never a token or key) and counted.
 * - Admin routes ({@link JoinService.adminRoutes}): `POST /tokens {ttl_s}`, `GET /tokens`,
 *   `POST /tokens/revoke {id}`.
 */
import type { AdminRoute } from '../../adapters/admin/server.js';
import { extraConfigLines } from '../../adapters/config/load.js';
import type { Config } from '../../adapters/config/schema.js';
import type { Logger } from '../../adapters/log/logger.js';
import { TorbalanceError } from '../../core/errors.js';
import type { MembersLedger } from '../../core/mesh/members.js';
import { MAX_JOIN_MEMBER_ENTRIES, acceptJoin, refuseJoin, verifyJoinRequest, type JoinBundle, type JoinRefusal, type JoinSettings } from '../../core/join/handshake.js';
import { mergeLedger, tokenState, type LedgerEntry } from '../../core/join/ledger.js';
import { encodeJoinToken, issueJoinToken } from '../../core/join/token.js';
import type { RandomBytes } from '../../core/random.js';
import { LedgerStore } from './ledger-store.js';
import { JoinListener, SlidingWindowLimiter, type JoinAttempt, type JoinOutcome } from './listener.js';
import { joinLedgerPath, joinSocketPath } from './paths.js';

/**
 * Token lifetimes accepted by {@link JoinService.issue} (seconds). A token is a bearer
 * credential for the master key and keeps the join port open until it is used or expires, so
 * the default is short (15 min: enough to copy it to the new node and run `join`) and the
 * longest is one day.
 */
export const MIN_TOKEN_TTL_S = 60;
export const MAX_TOKEN_TTL_S = 24 * 3600;
export const DEFAULT_TOKEN_TTL_S = 15 * 60;

/** A cancellable one-shot timer (injected in tests). */
export type ScheduleTimer = (fn: () => void, ms: number) => () => void;

function defaultTimer(fn: () => void, ms: number): () => void {
  // setTimeout's limit is 2^31 - 1 ms; a token lives at most a day.
  const t = setTimeout(fn, Math.min(Math.max(ms, 0), 2 ** 31 - 1));
  t.unref();
  return () => {
    clearTimeout(t);
  };
}

/** The part of MeshNode the service uses. */
export interface TokenGossip {
  setTokenLedger(entries: readonly LedgerEntry[]): void;
  onTokenLedger(cb: (entries: readonly LedgerEntry[], fromNodeId: string) => void): () => void;
}

/** Options of {@link JoinService}. */
export interface JoinServiceOptions {
  readonly config: Config;
  readonly clusterSecret: Uint8Array;
  readonly masterAddress: string;
  /** The 64-byte expanded master secret key (a fresh copy per call; wiped after use). Secret. */
  readonly masterSecretKey: () => Uint8Array;
  /** This node's id (ledger `by`). */
  readonly nodeId: string;
  /** Mesh addresses for the bundle: own advertise first, then live peers. */
  readonly peers: () => readonly string[];
  readonly randomBytes: RandomBytes;
  readonly logger: Logger;
  /** Wall clock, unix ms. Default Date.now. */
  readonly now?: () => number;
  /** Override the listener's request deadline (tests). */
  readonly deadlineMs?: number;
  /** tor's PROXY v1 header precedes each request (HiddenServiceExportCircuitID haproxy). Default true. */
  readonly proxyHeader?: boolean;
  /** Timer that closes the join port at the earliest expiry of this node's tokens. Default setTimeout (unref'd). */
  readonly setTimer?: ScheduleTimer;
  /**
   * Put the joiner on the node allowlist (src/node/members.ts), after the token is recorded
   * `used` and before the bundle is sent; if it fails the join is refused (`not-ready`).
   */
  readonly admit?: (joinerNodeId: string) => Promise<void>;
  /** The node allowlist for the bundle (after `admit`), so the joiner enforces it from its first connection. */
  readonly members?: () => MembersLedger;
}

/** The allowlist as a bundle carries it: removals first, then members, at most MAX_JOIN_MEMBER_ENTRIES (the rest comes by gossip). */
function bundleMembers(m: MembersLedger | undefined): MembersLedger | undefined {
  if (m === undefined || (!m.enforced && m.entries.length === 0)) return undefined;
  const entries = [...m.entries.filter((e) => e.state === 'removed'), ...m.entries.filter((e) => e.state === 'member')].slice(0, MAX_JOIN_MEMBER_ENTRIES);
  return { enforced: m.enforced, entries };
}

/** Join counters and ledger summary in the cluster status. */
export interface JoinStatus {
  readonly enabled: boolean;
  /** True while the join port is open (this node has a token of its own outstanding). */
  readonly listening: boolean;
  readonly onionPort: number;
  readonly accepted: number;
  /** Refused or failed attempts by reason (refusal reasons plus timeout/closed/too-many-open/error). */
  readonly refused: Readonly<Record<string, number>>;
  /** Ledger entries by effective state. */
  readonly tokens: { readonly issued: number; readonly used: number; readonly revoked: number; readonly expired: number };
}

/** A ledger entry as listed (no secrets), with its effective state at listing time. */
export interface TokenListing extends LedgerEntry {
  readonly effective: 'issued' | 'used' | 'revoked' | 'expired' | 'unknown';
}

function same(a: readonly LedgerEntry[], b: readonly LedgerEntry[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function bad(status: number, code: string, message: string): { status: number; json: unknown } {
  return { status, json: { error: { code, message } } };
}

/** See the module doc. */
export class JoinService {
  readonly #o: JoinServiceOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #store: LedgerStore;
  readonly #listener: JoinListener | undefined;
  #ledger: LedgerEntry[] = [];
  #mesh: TokenGossip | undefined;
  #offMesh: (() => void) | undefined;
  #running = false;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #limiter: SlidingWindowLimiter;
  readonly #setTimer: ScheduleTimer;
  #cancelTimer: (() => void) | undefined;
  #accepted = 0;
  readonly #refused = new Map<string, number>();

  constructor(o: JoinServiceOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#now = o.now ?? Date.now;
    this.#store = new LedgerStore(joinLedgerPath(o.config.node.data_dir));
    this.#limiter = new SlidingWindowLimiter(o.config.cluster.join.max_attempts_per_minute, 60_000);
    this.#setTimer = o.setTimer ?? defaultTimer;
    this.#listener = o.config.cluster.join.enabled
      ? new JoinListener({
          path: joinSocketPath(o.config.node.data_dir),
          ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }),
          ...(o.proxyHeader === undefined ? {} : { proxyHeader: o.proxyHeader }),
          handle: (body) => this.#serial(() => this.#handle(body)),
          onAttempt: (a) => {
            this.#onAttempt(a);
          },
          now: this.#now,
        })
      : undefined;
  }

  #nowS(): number {
    return Math.floor(this.#now() / 1000);
  }

  /** Serialise ledger-changing work (attempts, issue, revoke, gossip merges). */
  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f, f);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Load the ledger; (with `cluster.join.enabled`) open the join port if a token of ours is outstanding. */
  async start(): Promise<void> {
    this.#ledger = mergeLedger(await this.#store.load(), [], this.#nowS());
    this.#running = true;
    await this.#serial(() => this.#reconcile());
    this.#log.info({ entries: this.#ledger.length, listening: this.#listener?.listening ?? false }, 'join service started');
  }

  /** Stop the listener and detach from the mesh. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#offMesh?.();
    this.#offMesh = undefined;
    this.#mesh = undefined;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    await this.#listener?.stop();
  }

  /** The earliest expiry (unix s) of a token this node issued that is still redeemable, if any. */
  #ownOutstanding(now: number): number | undefined {
    let first: number | undefined;
    for (const e of this.#ledger) {
      if (e.state === 'issued' && e.by === this.#o.nodeId && now < e.expiresAt && (first === undefined || e.expiresAt < first)) first = e.expiresAt;
    }
    return first;
  }

  /**
   * Open the join port while a token of ours is outstanding, close it otherwise (open attempts
   * finish), and arm the timer for the earliest expiry. Runs inside #serial.
   */
  async #reconcile(): Promise<void> {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const l = this.#listener;
    if (l === undefined) return;
    const now = this.#nowS();
    const until = this.#running ? this.#ownOutstanding(now) : undefined;
    if (until === undefined) {
      if (l.listening) {
        await l.close();
        this.#log.info('join port closed: no token of this node is outstanding');
      }
      return;
    }
    if (!l.listening) {
      await l.start();
      this.#log.info({ until }, 'join port open while a token of this node is outstanding');
    }
    this.#cancelTimer = this.#setTimer(() => {
      void this.#serial(() => this.#reconcile()).catch((e: unknown) => {
        this.#log.warn({ err: e instanceof TorbalanceError ? e.code : String(e) }, 'cannot update the join port');
      });
    }, (until - now) * 1000 + 1000 - (this.#now() % 1000));
  }

  /** Gossip the ledger over `mesh` and merge what peers send. */
  attachMesh(mesh: TokenGossip): void {
    this.#offMesh?.();
    this.#mesh = mesh;
    this.#offMesh = mesh.onTokenLedger((entries) => {
      void this.#serial(async () => {
        if (!this.#running) return;
        const merged = mergeLedger(this.#ledger, entries, this.#nowS());
        if (same(merged, this.#ledger)) return;
        await this.#commit(merged);
      }).catch((e: unknown) => {
        this.#log.warn({ err: e instanceof TorbalanceError ? e.code : String(e) }, 'cannot store the gossiped token ledger');
      });
    });
    mesh.setTokenLedger(this.#ledger);
  }

  /** Persist, adopt, gossip; then open or close the join port to match. */
  async #commit(next: LedgerEntry[]): Promise<void> {
    await this.#store.save(next);
    this.#ledger = next;
    this.#mesh?.setTokenLedger(next);
    try {
      await this.#reconcile();
    } catch (e) {
      // The ledger change stands (it is on disk and gossiped); the caller reports the failure.
      this.#log.warn({ err: e instanceof TorbalanceError ? e.code : String(e) }, 'cannot update the join port');
      throw e;
    }
  }

  /** The ledger (no secrets). */
  ledger(): readonly LedgerEntry[] {
    return this.#ledger;
  }

  /** Issue a token valid for `ttlS` seconds: recorded `issued` (persisted, gossiped). The text is returned once. */
  issue(ttlS: number = DEFAULT_TOKEN_TTL_S): Promise<{ token: string; id: string; expiresAt: number }> {
    if (!Number.isInteger(ttlS) || ttlS < MIN_TOKEN_TTL_S || ttlS > MAX_TOKEN_TTL_S) {
      return Promise.reject(new TorbalanceError('TB_ERR_JOIN_TTL', 'input', `ttl_s must be an integer from ${MIN_TOKEN_TTL_S} to ${MAX_TOKEN_TTL_S}`));
    }
    return this.#serial(async () => {
      if (!this.#running) throw new TorbalanceError('TB_ERR_JOIN_NOT_RUNNING', 'internal', 'the join service is not running');
      const now = this.#nowS();
      const expiresAt = now + ttlS;
      const t = issueJoinToken(this.#o.clusterSecret, this.#o.masterAddress, this.#o.config.cluster.join.onion_port, expiresAt, this.#o.randomBytes);
      const id = t.claims.id;
      const entry: LedgerEntry = { id, state: 'issued', expiresAt, at: now, by: this.#o.nodeId };
      await this.#commit(mergeLedger(this.#ledger, [entry], now));
      const token = encodeJoinToken(t);
      t.secret.fill(0);
      this.#log.info({ id, expiresAt }, 'join token issued');
      return { token, id, expiresAt };
    });
  }

  /** Revoke token `id` (must be in the ledger). Returns the new state, or undefined if unknown. */
  revoke(id: string): Promise<LedgerEntry | undefined> {
    return this.#serial(async () => {
      const now = this.#nowS();
      const cur = this.#ledger.find((e) => e.id === id);
      if (cur === undefined) return undefined;
      if (cur.state !== 'revoked') {
        await this.#commit(mergeLedger(this.#ledger, [{ id, state: 'revoked', expiresAt: cur.expiresAt, at: now, by: this.#o.nodeId }], now));
        this.#log.info({ id }, 'join token revoked');
      }
      return this.#ledger.find((e) => e.id === id);
    });
  }

  /** Every ledger entry with its effective state now. */
  list(): TokenListing[] {
    const now = this.#nowS();
    return this.#ledger.map((e) => ({ ...e, effective: tokenState(this.#ledger, e.id, now) }));
  }

  /** Counters and ledger summary. */
  status(): JoinStatus {
    const tokens = { issued: 0, used: 0, revoked: 0, expired: 0 };
    for (const e of this.list()) if (e.effective !== 'unknown') tokens[e.effective] += 1;
    return {
      enabled: this.#o.config.cluster.join.enabled,
      listening: this.#listener?.listening ?? false,
      onionPort: this.#o.config.cluster.join.onion_port,
      accepted: this.#accepted,
      refused: Object.fromEntries([...this.#refused].sort(([a], [b]) => (a < b ? -1 : 1))),
      tokens,
    };
  }

  #onAttempt(a: JoinAttempt): void {
    if (a.result === 'accepted') this.#accepted += 1;
    else this.#refused.set(a.result, (this.#refused.get(a.result) ?? 0) + 1);
    const fields = { result: a.result, id: a.tokenId, joiner: a.joiner };
    if (a.result === 'accepted') this.#log.info(fields, 'join attempt accepted');
    else this.#log.warn(fields, 'join attempt refused');
  }

  #refuse(reason: JoinRefusal, tokenId?: string, joiner?: string): JoinOutcome {
    return { response: refuseJoin(reason), result: reason, ...(tokenId === undefined ? {} : { tokenId }), ...(joiner === undefined ? {} : { joiner }) };
  }

  /** Closed without an answer: the request did not prove a token of this cluster. */
  #silent(reason: JoinRefusal): JoinOutcome {
    return { response: undefined, result: reason };
  }

  /** The settings a joining node copies (from this node's config). */
  settings(): JoinSettings {
    const c = this.#o.config;
    return {
      transport: c.cluster.transport,
      target: { address: c.target.address, port: c.target.port, mode: c.target.mode },
      torExtraConfig: extraConfigLines(c.tor.extra_config),
      cluster: {
        heartbeat_ms: c.cluster.heartbeat_ms,
        suspect_after_ms: c.cluster.suspect_after_ms,
        dead_after_ms: c.cluster.dead_after_ms,
        lease_ms: c.cluster.lease_ms,
        max_skew_ms: c.cluster.max_skew_ms,
      },
      health: { kind: c.health.kind, path: c.health.path, interval_ms: c.health.interval_ms, timeout_ms: c.health.timeout_ms },
    };
  }

  async #handle(body: Uint8Array): Promise<JoinOutcome> {
    if (!this.#running) return this.#silent('not-ready');
    const now = this.#nowS();
    const v = verifyJoinRequest(body, this.#o.clusterSecret, this.#o.masterAddress, now);
    if (!v.ok) {
      // `expired` is only reached once the proof verified: a token holder may be told.
      return v.reason === 'expired' ? this.#refuse('expired') : this.#silent(v.reason);
    }
    if (!this.#limiter.take(this.#now())) return this.#refuse('rate-limited', v.tokenId, v.joiner);
    const state = tokenState(this.#ledger, v.tokenId, now);
    switch (state) {
      case 'unknown':
        // Every node that issues a token records it before handing it out, so a node that does
        // not know it did not issue it.
        return this.#refuse('not-here', v.tokenId, v.joiner);
      case 'used':
      case 'revoked':
      case 'expired':
        return this.#refuse(state, v.tokenId, v.joiner);
      case 'issued':
        break;
    }
    // Single use: only the issuing node redeems (module doc). An `issued` entry is written only
    // by the node that issued the token, so its `by` names that node.
    if (this.#ledger.find((e) => e.id === v.tokenId)?.by !== this.#o.nodeId) return this.#refuse('not-here', v.tokenId, v.joiner);
    const used: LedgerEntry = { id: v.tokenId, state: 'used', expiresAt: v.expiresAt, at: now, by: this.#o.nodeId, joiner: v.joiner };
    try {
      await this.#commit(mergeLedger(this.#ledger, [used], now));
    } catch (e) {
      this.#log.error({ err: e instanceof TorbalanceError ? e.code : String(e), id: v.tokenId }, 'cannot record the token as used; refusing the join');
      return this.#refuse('not-ready', v.tokenId, v.joiner);
    }
    try {
      await this.#o.admit?.(v.joiner);
    } catch (e) {
      this.#log.error({ err: e instanceof TorbalanceError ? e.code : String(e), id: v.tokenId }, 'cannot add the joiner to the node allowlist; refusing the join');
      return this.#refuse('not-ready', v.tokenId, v.joiner);
    }
    const masterSecretKey = this.#o.masterSecretKey();
    const members = bundleMembers(this.#o.members?.());
    const bundle: JoinBundle = { masterSecretKey, clusterSecret: this.#o.clusterSecret, peers: [...this.#o.peers()], settings: this.settings(), ...(members === undefined ? {} : { members }) };
    try {
      return { response: acceptJoin(v, bundle, this.#o.randomBytes), result: 'accepted', tokenId: v.tokenId, joiner: v.joiner };
    } finally {
      masterSecretKey.fill(0);
    }
  }

  /** `POST /tokens {ttl_s}`, `GET /tokens`, `POST /tokens/revoke {id}`. */
  adminRoutes(): AdminRoute[] {
    return [
      {
        method: 'POST',
        path: '/tokens',
        handler: async (req) => {
          const b = (req.body ?? {}) as Record<string, unknown>;
          if (typeof b !== 'object' || Array.isArray(b)) return bad(400, 'TB_ERR_JOIN_TTL', 'expected a JSON object {"ttl_s": seconds}');
          const ttl = b['ttl_s'] ?? DEFAULT_TOKEN_TTL_S;
          if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < MIN_TOKEN_TTL_S || ttl > MAX_TOKEN_TTL_S) {
            return bad(400, 'TB_ERR_JOIN_TTL', `ttl_s must be an integer from ${MIN_TOKEN_TTL_S} to ${MAX_TOKEN_TTL_S}`);
          }
          try {
            return { status: 200, json: await this.issue(ttl) };
          } catch (e) {
            return bad(503, e instanceof TorbalanceError ? e.code : 'TB_ERR_JOIN_NOT_RUNNING', e instanceof Error ? e.message : 'cannot issue a token');
          }
        },
      },
      {
        method: 'GET',
        path: '/tokens',
        // The ledger names who joined when: token business, like issuing (over TCP only with the bearer secret).
        privileged: true,
        handler: () => ({ status: 200, json: { tokens: this.list() } }),
      },
      {
        method: 'POST',
        path: '/tokens/revoke',
        handler: async (req) => {
          const b = req.body as Record<string, unknown> | undefined;
          const id = b?.['id'];
          if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) return bad(400, 'TB_ERR_JOIN_TOKEN_ID', 'expected {"id": "<32 hex characters>"}');
          try {
            const e = await this.revoke(id);
            if (e === undefined) return bad(404, 'TB_ERR_JOIN_TOKEN_ID', `no token ${id} in the ledger`);
            return { status: 200, json: { id, state: e.state } };
          } catch (e) {
            return bad(503, e instanceof TorbalanceError ? e.code : 'TB_ERR_JOIN_LEDGER_IO', e instanceof Error ? e.message : 'cannot revoke');
          }
        },
      },
    ];
  }
}
