/**
 * The cluster side of a node (issue 5; /work/notes/cluster-contracts.md): wires the mesh
 * (src/node/mesh, M) and the publisher components (src/node/publisher, N) into the node
 * daemon when `[cluster] enabled = true`.
 *
 * Start-up is split in two because the tor transport needs torrc lines before tor starts:
 * - {@link prepareCluster} (before tor): read the node key and the cluster secret (key-store
 *   permission checks: directory 0700, file 0600); for `transport = "tor"` create
 *   `<data_dir>/mesh-hs` (0700) and return the coordination onion service's torrc entries
 *   (src/core/mesh-torrc.ts), which the daemon appends after the master service's lines.
 * - {@link ClusterService.start} (after tor's control port is up): its own reconnecting control
 *   connection (events merged with {@link EventSubscriptions}), an {@link IntroCollector} on the
 *   node's tor, {@link FailClosed}, {@link PublishModeSwitch}, a {@link Publisher} and the
 *   {@link MeshNode}, whose local state is the node's health plus its own intro points.
 *
 * Reconciliation (on every mesh view change, intro-point change and health change):
 * - alive or suspect peers exist → clustered: `PublishHidServDescriptors 0` on this node's tor;
 *   if this node is the elected publisher, `Publisher.update({nodes})` with every healthy
 *   node (self included) that has intro points, else `update(null)`. Suspect peers stay in
 *   (a late heartbeat is not a failure; only `dead`/`left` removes a node: no flapping);
 * - no live peer → alone: `update(null)` and `PublishHidServDescriptors 1` (tor publishes
 *   its own descriptor, as a single node does) — but only after the view has stayed alone for
 *   `suspect_after_ms` (the "alone grace"). A node whose process stalled (SIGSTOP, swap, a
 *   long GC) sees every peer dead for an instant when it resumes, until the queued heartbeats
 *   are read; switching at once would let its tor upload a descriptor with only its own intro
 *   points, which can overwrite the merged one on the HSDirs (newer revision counter).
 * - target unhealthy → {@link FailClosed} closes the node's intro circuits; the heartbeat
 *   says unhealthy so the publisher leaves the node out. FailClosed follows the TARGET's
 *   health only: the node health also requires intro points, which fail-closed itself removes,
 *   so following it would never reopen.
 *
 * {@link ClusterService.stop}: mesh `leave` first (peers drop us and republish at once), then
 * the publisher, collector and control connection.
 *
 * Known gap (tor-facts §1.9, see src/core/mesh-torrc.ts): `PublishHidServDescriptors` is
 * global, so in clustered mode the node's tor no longer uploads the coordination onion
 * service's descriptor either; peers can dial it only while an earlier upload is still on
 * the HSDirs. The tcp transport (over WireGuard) has no such limit.
 */
import { mkdir, chmod, readFile } from 'node:fs/promises';
import type { Config } from '../adapters/config/schema.js';
import { readNodeSecret } from '../adapters/fs/node-secrets.js';
import type { Logger } from '../adapters/log/logger.js';
import { systemRandomBytes } from '../adapters/system/random.js';
import { ReconnectingTorControl, type ControlEndpoint } from '../adapters/tor/control.js';
import type { Timers } from '../adapters/tor/process.js';
import { TorbalanceError } from '../core/errors.js';
import { nodeKeyFromSeed, type NodeKey } from '../core/mesh/index.js';
import { meshOnionPaths, meshTorrcEntries, parseMeshHostname, type MeshOnionPaths } from '../core/mesh-torrc.js';
import type { TorrcEntry } from '../core/torrc.js';
import { MeshNode, type ClusterView, type LocalMeshState, type MeshStats } from './mesh/index.js';
import {
  controlFromReconnecting,
  EventSubscriptions,
  FailClosed,
  IntroCollector,
  Publisher,
  PublishModeSwitch,
  type PublisherStatus,
} from './publisher/index.js';
import { introDigest, type IntroPointWire } from './publisher/wire.js';

/** What {@link prepareCluster} read and computed (secrets inside: never log it). */
export interface PreparedCluster {
  readonly key: NodeKey;
  readonly clusterSecret: Uint8Array;
  /** Torrc entries to append after the master service (tor transport), else empty. */
  readonly torrcEntries: readonly TorrcEntry[];
  /** The coordination onion service's paths (tor transport). */
  readonly onion: MeshOnionPaths | undefined;
}

/** Read the cluster secrets and, for the tor transport, prepare the coordination onion service. */
export async function prepareCluster(config: Config): Promise<PreparedCluster> {
  const c = config.cluster;
  const seed = await readNodeSecret('node-key', c.node_key_file);
  const clusterSecret = await readNodeSecret('cluster-secret', c.secret_file);
  const key = nodeKeyFromSeed(seed);
  seed.fill(0);
  if (c.transport !== 'tor') return { key, clusterSecret, torrcEntries: [], onion: undefined };
  const onion = meshOnionPaths({ dataDir: config.node.data_dir });
  try {
    await mkdir(onion.hsDir, { recursive: true, mode: 0o700 });
    await chmod(onion.hsDir, 0o700);
  } catch (e) {
    throw new TorbalanceError('TB_ERR_NODE_DATA_DIR', 'config', `cannot prepare ${onion.hsDir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  return { key, clusterSecret, torrcEntries: meshTorrcEntries({ dataDir: config.node.data_dir }), onion };
}

/** The node's own health as the cluster needs it. */
export interface ClusterHealthSource {
  /** Node health (target ∧ tor bootstrapped ∧ intro points), with reasons. */
  node(): { readonly healthy: boolean; readonly reasons: readonly string[] };
  /** Target health only (drives fail-closed). Undefined = not checked yet. */
  targetHealthy(): boolean | undefined;
  /** Subscribe to changes of either. */
  onChange(listener: () => void): () => void;
}

/** Options of {@link ClusterService}. */
export interface ClusterServiceOptions {
  readonly config: Config;
  readonly prepared: PreparedCluster;
  readonly masterAddress: string;
  /** The master identity (the publisher signs descriptors with it). Secret: never log. */
  readonly identity: { readonly expandedSecretKey: Uint8Array; readonly publicKey: Uint8Array };
  readonly controlEndpoint: ControlEndpoint;
  readonly socksPort: number;
  readonly health: ClusterHealthSource;
  readonly timers: Timers;
  readonly logger: Logger;
  /** Wall clock (unix ms). Default Date.now. */
  readonly now?: () => number;
  /** Intro-collector poll interval. Default 10 s. */
  readonly introPollMs?: number;
}

/** A peer in {@link ClusterStatus}. */
export interface ClusterPeerStatus {
  readonly id: string;
  readonly name: string;
  readonly addr: string;
  readonly state: string;
  readonly healthy: boolean;
  readonly reasons: readonly string[];
  readonly priority: number;
  readonly introPoints: number;
  readonly lastSeenAgoMs: number | undefined;
}

/** The cluster part of the node status. */
export interface ClusterStatus {
  readonly nodeId: string;
  readonly name: string;
  readonly transport: 'tcp' | 'tor';
  readonly advertise: string | undefined;
  /** 'starting' until the mesh runs. */
  readonly state: 'starting' | 'running' | 'stopped';
  /** True while live peers exist (tor's own publishing is off). */
  readonly clustered: boolean;
  /** tor's PublishHidServDescriptors as last set (undefined before the first switch). */
  readonly torPublishes: boolean | undefined;
  readonly role: 'publisher' | 'member' | 'alone';
  readonly publisher: string | undefined;
  readonly selfIsPublisher: boolean;
  readonly leaseUntil: number | undefined;
  readonly electionReason: string;
  readonly selfHealthy: boolean;
  readonly introPoints: number;
  readonly peers: readonly ClusterPeerStatus[];
  /** Node ids in the last `Publisher.update` (empty when not publishing). */
  readonly publishing: readonly string[];
  readonly publish: PublisherStatus | undefined;
  readonly failClosed: { readonly active: boolean; readonly closedCircuits: number };
  readonly mesh: MeshStats | undefined;
  /** Last error of a mode switch (code), if any. */
  readonly lastModeError: string | undefined;
}

function errCode(e: unknown): string {
  if (e instanceof TorbalanceError) return e.code;
  return e instanceof Error ? e.message : String(e);
}

/** The running cluster components of one node; see the module doc. */
export class ClusterService {
  readonly #o: ClusterServiceOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #rc: ReconnectingTorControl | undefined;
  #collector: IntroCollector | undefined;
  #publisher: Publisher | undefined;
  #mode: PublishModeSwitch | undefined;
  #failClosed: FailClosed | undefined;
  #mesh: MeshNode | undefined;
  #advertise: string | undefined;
  #state: ClusterStatus['state'] = 'starting';
  #clustered = false;
  #publishing: readonly string[] = [];
  #publishKey = '';
  #lastModeError: string | undefined;
  #offs: (() => void)[] = [];
  #reconnects = 0;
  #aloneSince: number | undefined;
  #aloneTimer: ReturnType<Timers['setTimeout']> | undefined;

  constructor(o: ClusterServiceOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#now = o.now ?? Date.now;
  }

  /** Our node id. */
  get nodeId(): string {
    return this.#o.prepared.key.nodeId;
  }

  /** The mesh (after start). */
  get mesh(): MeshNode | undefined {
    return this.#mesh;
  }

  /** Start everything (tor's control port must be up). */
  async start(): Promise<void> {
    const o = this.#o;
    const cfg = o.config.cluster;
    const timers = o.timers;
    const testing = o.config.tor.extra_config.some(([k, v]) => k === 'TestingTorNetwork' && v.trim() === '1');
    this.#rc = ReconnectingTorControl.start(o.controlEndpoint, { maxDelayMs: 2000 }, () => {
      // tor (re)started: it read its torrc again (PublishHidServDescriptors 1), re-apply ours.
      this.#reconnects += 1;
      if (this.#reconnects > 1) {
        this.#mode?.invalidate();
        this.#log.info('control reconnected: re-applying the publish mode');
        queueMicrotask(() => {
          this.#reconcile(true);
        });
      }
      return Promise.resolve();
    });
    const control = controlFromReconnecting(this.#rc);
    const subs = new EventSubscriptions(this.#rc);
    await subs.need('cluster', [...IntroCollector.EVENTS, ...Publisher.EVENTS, ...FailClosed.EVENTS]);

    this.#mode = new PublishModeSwitch({ control, logger: this.#log });
    this.#failClosed = new FailClosed({ control, masterAddress: o.masterAddress, timers, logger: this.#log });
    this.#collector = new IntroCollector({
      control,
      masterAddress: o.masterAddress,
      identityPublicKey: o.identity.publicKey,
      now: this.#now,
      timers,
      logger: this.#log,
      pollMs: o.introPollMs ?? 10_000,
    });
    this.#publisher = new Publisher({
      control,
      identity: o.identity,
      masterAddress: o.masterAddress,
      now: this.#now,
      timers,
      randomBytes: systemRandomBytes,
      logger: this.#log,
      refreshMs: cfg.publish.refresh_ms,
      uploadTimeoutMs: cfg.publish.upload_timeout_ms,
      testingTorNetwork: testing,
    });
    this.#publisher.onPublish((r) => {
      const bad = r.hsdirs.filter((h) => h.result !== 'uploaded').length;
      this.#log.info(
        { reason: r.reason, introPoints: r.introPoints, perNode: r.perNode, hsdirs: r.hsdirs.length, notUploaded: bad, periods: r.descriptors.map((d) => d.periodNum) },
        'published the merged descriptors',
      );
    });

    let listen: ConstructorParameters<typeof MeshNode>[0]['listen'];
    let advertise: string;
    if (cfg.transport === 'tcp') {
      const hp = /^\[?([^\]]+)\]?:(\d+)$/.exec(cfg.listen ?? '');
      if (hp === null) throw new TorbalanceError('TB_ERR_CONFIG_INVALID', 'config', 'cluster.listen is required with transport "tcp"');
      listen = { kind: 'tcp', host: hp[1]!, port: Number(hp[2]) };
      advertise = cfg.advertise ?? `tcp:${cfg.listen!}`;
    } else {
      const onion = o.prepared.onion!;
      const hostname = await this.#waitHostname(onion.hostnameFile);
      listen = { kind: 'tor-onion', socketPath: onion.socketPath, onionAddress: hostname, port: onion.port };
      advertise = cfg.advertise ?? `tor:${hostname}:${onion.port}`;
    }
    this.#advertise = advertise;

    this.#mesh = new MeshNode({
      key: o.prepared.key,
      clusterSecret: o.prepared.clusterSecret,
      name: o.config.node.name,
      priority: cfg.priority,
      listen,
      advertise,
      bootstrap: cfg.peers,
      socks: { host: '127.0.0.1', port: o.socksPort },
      heartbeatMs: cfg.heartbeat_ms,
      suspectAfterMs: cfg.suspect_after_ms,
      deadAfterMs: cfg.dead_after_ms,
      leaseMs: cfg.lease_ms,
      maxSkewMs: cfg.max_skew_ms,
      timers,
      now: this.#now,
      randomBytes: systemRandomBytes,
      logger: this.#log.child({ component: 'mesh' }),
      localState: () => this.#localState(),
    });

    this.#offs.push(
      this.#mesh.onChange(() => {
        this.#reconcile(false);
      }),
      this.#collector.onChange(() => {
        this.#mesh?.broadcastIntroPoints();
        this.#reconcile(false);
      }),
      o.health.onChange(() => {
        this.#applyFailClosed();
        this.#reconcile(false);
      }),
    );
    this.#collector.start();
    this.#publisher.start();
    await this.#mesh.start();
    this.#state = 'running';
    this.#applyFailClosed();
    this.#reconcile(true);
    this.#log.info({ nodeId: this.nodeId, advertise, peers: cfg.peers.length, transport: cfg.transport }, 'cluster mesh started');
  }

  /** Leave the mesh first (peers republish without us at once), then stop the rest. Idempotent. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    for (const off of this.#offs.splice(0)) off();
    if (this.#aloneTimer !== undefined) this.#o.timers.clearTimeout(this.#aloneTimer);
    this.#aloneTimer = undefined;
    try {
      await this.#mesh?.stop(reason);
    } catch (e) {
      this.#log.warn({ err: errCode(e) }, 'mesh stop failed');
    }
    await this.#publisher?.stop().catch(() => undefined);
    this.#collector?.stop();
    this.#failClosed?.stop();
    await this.#rc?.close().catch(() => undefined);
    this.#log.info('left the cluster');
  }

  /** The cluster part of the node status. */
  status(): ClusterStatus {
    const v = this.#mesh?.view();
    const now = this.#now();
    const cur = this.#collector?.current();
    const self = this.#o.health.node();
    const role: ClusterStatus['role'] = !this.#clustered ? 'alone' : v?.selfIsPublisher === true ? 'publisher' : 'member';
    return {
      nodeId: this.nodeId,
      name: this.#o.config.node.name,
      transport: this.#o.config.cluster.transport,
      advertise: this.#advertise,
      state: this.#state,
      clustered: this.#clustered,
      torPublishes: this.#mode?.torPublishes,
      role,
      publisher: v?.publisher,
      selfIsPublisher: v?.selfIsPublisher ?? false,
      leaseUntil: v?.leaseUntil,
      electionReason: v?.electionReason ?? '',
      selfHealthy: self.healthy,
      introPoints: cur?.points.length ?? 0,
      peers: (v?.peers ?? []).map((p) => ({
        id: p.id,
        name: p.name,
        addr: p.addr,
        state: p.state,
        healthy: p.healthy,
        reasons: p.reasons,
        priority: p.priority,
        introPoints: p.introPoints.length,
        lastSeenAgoMs: p.lastSeenMs === undefined ? undefined : Math.max(0, now - p.lastSeenMs),
      })),
      publishing: this.#publishing,
      publish: this.#publisher?.status(),
      failClosed: { active: this.#failClosed?.active ?? false, closedCircuits: this.#failClosed?.closedCount ?? 0 },
      mesh: this.#mesh?.stats(),
      lastModeError: this.#lastModeError,
    };
  }

  #localState(): LocalMeshState {
    const h = this.#o.health.node();
    const cur = this.#collector?.current();
    const points: IntroPointWire[] = cur === undefined ? [] : [...cur.points];
    return { healthy: h.healthy, reasons: [...h.reasons], introPoints: points, introDigest: cur?.digest ?? introDigest([]) };
  }

  #applyFailClosed(): void {
    const t = this.#o.health.targetHealthy();
    if (t === undefined || this.#failClosed === undefined || this.#state !== 'running') return;
    this.#failClosed.setHealthy(t).catch((e: unknown) => {
      this.#log.warn({ err: errCode(e) }, 'fail-closed update failed');
    });
  }

  /** Bring tor's publish mode and the publisher's input in line with the current view. */
  #reconcile(forceMode: boolean): void {
    if (this.#state !== 'running' || this.#mesh === undefined) return;
    const v: ClusterView = this.#mesh.view();
    const live = v.peers.filter((p) => p.state === 'alive' || p.state === 'suspect');
    const clustered = live.length > 0;
    if (clustered) {
      this.#aloneSince = undefined;
    } else if (this.#clustered) {
      // alone grace: keep the clustered state until the view has been alone long enough
      const now = this.#now();
      const grace = this.#o.config.cluster.suspect_after_ms;
      this.#aloneSince ??= now;
      if (now - this.#aloneSince < grace) {
        if (this.#aloneTimer === undefined) {
          this.#aloneTimer = this.#o.timers.setTimeout(() => {
            this.#aloneTimer = undefined;
            this.#reconcile(false);
          }, grace - (now - this.#aloneSince) + 10);
        }
        return;
      }
    }
    if (clustered !== this.#clustered || forceMode) {
      if (clustered !== this.#clustered) this.#log.info({ clustered, livePeers: live.length }, clustered ? 'peers present: clustered publishing' : 'no live peers: tor publishes itself');
      this.#clustered = clustered;
      this.#mode?.setClustered(clustered).then(
        () => {
          this.#lastModeError = undefined;
        },
        (e: unknown) => {
          this.#lastModeError = errCode(e);
          this.#log.warn({ err: this.#lastModeError }, 'cannot switch the publish mode (will retry on the next change)');
          this.#mode?.invalidate();
        },
      );
    }
    let nodes: { id: string; introPoints: readonly IntroPointWire[] }[] | null = null;
    if (clustered && v.selfIsPublisher) {
      nodes = [];
      const self = this.#localState();
      if (self.healthy && self.introPoints.length > 0) nodes.push({ id: v.self.id, introPoints: self.introPoints });
      for (const p of live) if (p.healthy && p.introPoints.length > 0) nodes.push({ id: p.id, introPoints: p.introPoints });
      if (nodes.length === 0) nodes = null;
    }
    const key = nodes === null ? 'null' : nodes.map((n) => `${n.id}:${introDigest([...n.introPoints])}`).join(',');
    if (key === this.#publishKey) return;
    this.#publishKey = key;
    this.#publishing = nodes === null ? [] : nodes.map((n) => n.id);
    this.#log.info({ publishing: this.#publishing, selfIsPublisher: v.selfIsPublisher, clustered }, nodes === null ? 'not publishing' : 'publishing for nodes');
    this.#publisher?.update(nodes === null ? null : { nodes });
  }

  async #waitHostname(file: string): Promise<string> {
    const end = this.#now() + 60_000;
    for (;;) {
      try {
        return parseMeshHostname(await readFile(file, 'utf8'));
      } catch (e) {
        if (this.#now() > end) {
          throw new TorbalanceError('TB_ERR_CLUSTER_MESH_ONION', 'tor', `tor did not write the coordination onion service's hostname ${file}: ${errCode(e)}`);
        }
      }
      await new Promise<void>((r) => {
        this.#o.timers.setTimeout(r, 250);
      });
    }
  }
}
