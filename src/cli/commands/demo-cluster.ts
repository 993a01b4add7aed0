/**
 * The cluster behind `torbalance demo` (src/cli/commands/demo.ts): N torbalance nodes as child
 * processes (`node bin/torbalance.js run --config …`) on a private tor network, sharing one
 * master key and one cluster secret, each with its own node key, meshing over loopback TCP —
 * the same set-up as the test harness (test/helpers/cluster-harness.ts), as product code.
 *
 * Set-up per node ({@link initTestnetNode}: the code path of `torbalance init --cluster`): node 1
 * generates the master key and the cluster secret; the others copy node 1's key files and get
 * the secret with `secretFrom`, plus their own node key. Each config gets the network's torrc
 * lines, short health intervals and the demo's cluster timings ({@link DEMO_TIMINGS}).
 *
 * Which node served a request: each node's proxy request counter (`NodeStatus.proxy.requests`),
 * read from the status snapshot every node writes once a second (`TORBALANCE_STATUS_FILE`,
 * src/node/status-file.ts; the same object as `/status` of the admin API). The visitor loop sends one
 * request at a time, so the node whose counter grew served it ({@link attributeServed}).
 *
 * Process control: {@link DemoCluster.kill9} (SIGKILL of the node process and its tor: nothing
 * can say goodbye), {@link DemoCluster.stopAll} (SIGTERM, SIGKILL after a grace period, then
 * the node tors by their PidFile), {@link DemoCluster.killAllSync} (last resort on process exit).
 *
 * The pure parts (attribution, convergence, output lines) are exported for unit tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { adminRequest } from '../../adapters/admin/client.js';
import { errnoCode, isErrno } from '../../adapters/system/errno.js';
import { loadConfig } from '../../adapters/config/load.js';
import type { ListenAddress } from '../../adapters/config/schema.js';
import { keyDirectoryPaths } from '../../adapters/fs/key-store.js';
import { httpGetThroughTor } from '../../adapters/net/onion-http.js';
import { ControlReplyError, TorControl, type ControlEndpoint } from '../../adapters/tor/control.js';
import { allocatePorts, isProcessAlive, testnetCommonTorrc, type TestnetDescription } from '../../adapters/tor/testnet.js';
import { toBase64NoPad } from '../../core/bytes.js';
import { TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { decodeOwnServiceDescriptor } from '../../core/hsdesc/descriptor.js';
import { srRunSeconds, type TimePeriodParams } from '../../core/hs/time-period.js';
import { rotationPhase } from '../../core/publish/rotation.js';
import type { NodeStatus } from '../../node/node-status.js';
import type { PublishRecord } from '../../node/publisher/publisher.js';
import { initNode, type InitOptions, type InitResult } from './init.js';

/** Cluster timings written into every demo node's `[cluster]` table. */
export interface DemoTimings {
  readonly heartbeat_ms: number;
  readonly suspect_after_ms: number;
  readonly dead_after_ms: number;
  readonly lease_ms: number;
}

/** Fast failure detection, so a failover is visible within a minute. */
export const DEMO_TIMINGS: DemoTimings = { heartbeat_ms: 500, suspect_after_ms: 1500, dead_after_ms: 5000, lease_ms: 6000 };

/** The status snapshot a node writes (NodeStatus + pid + time). */
export type StatusSnapshot = NodeStatus & { readonly pid: number; readonly atMs: number };

/** Display name of node `i` (0-based): node-1, node-2, … */
export function demoNodeName(i: number): string {
  return `node-${i + 1}`;
}

// ---------------------------------------------------------------------------------------------
// Pure parts

/**
 * Indices of the nodes whose proxy request counter grew between two readings (undefined: no
 * reading, never counted). One request at a time → normally exactly one index.
 */
export function attributeServed(before: readonly (number | undefined)[], after: readonly (number | undefined)[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < after.length; i++) {
    const a = after[i];
    const b = before[i] ?? 0;
    if (a !== undefined && a > b) out.push(i);
  }
  return out;
}

/** "node-2", "node-1 and node-3", "node-1, node-2 and node-3", or "an unknown node". */
export function formatNodeList(names: readonly string[]): string {
  if (names.length === 0) return 'an unknown node';
  if (names.length === 1) return names[0]!;
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]!}`;
}

/** One visitor request's outcome. */
export interface VisitLine {
  readonly n: number;
  readonly status: number;
  readonly ms: number;
  /** Names of the nodes that served it (empty: unknown). */
  readonly servedBy: readonly string[];
  readonly namesMaster: boolean;
  readonly leaksTarget: boolean;
  /** Appended after an em dash, e.g. "the cluster recovered in 23 s". */
  readonly note?: string;
}

/**
 * What happened between two visits (unix seconds) on the network's schedule: the nodes' tor
 * rotated their descriptors (SR-run start) and/or a new time period began (every client's cached
 * descriptor expires). One line for the demo, or undefined.
 */
export function scheduleEvents(prevS: number, nowS: number, params: TimePeriodParams): string | undefined {
  const a = rotationPhase(prevS, params);
  const b = rotationPhase(nowS, params);
  const out: string[] = [];
  if (b.runStart !== a.runStart) out.push('every node\'s tor rotated its descriptors (SR-run start): the intro points of the old desc_current are closed');
  if ([a.periodStart, a.periodStart + srRunSeconds(params), b.periodStart].some((p) => p > prevS && p <= nowS)) {
    out.push('a new time period began: every visitor\'s cached descriptor expired and is fetched again');
  }
  return out.length === 0 ? undefined : `  — ${out.join('; ')}`;
}

/** "#12 200 in 140 ms — served by node-2 (…)". */
export function formatVisit(v: VisitLine): string {
  const checks = v.leaksTarget ? 'TARGET ADDRESS VISIBLE (bug)' : v.namesMaster ? 'links name the master address' : 'page does not name the master address';
  return `  #${v.n} ${v.status} in ${Math.round(v.ms)} ms — served by ${formatNodeList(v.servedBy)} (${checks})${v.note === undefined ? '' : ` — ${v.note}`}`;
}

/** What a publish round achieved, for output. */
export interface PublishSummary {
  /** Revision counters of the descriptors (deduplicated, in order). */
  readonly revisions: readonly string[];
  /** Distinct HSDirs that accepted / were tried. */
  readonly accepted: number;
  readonly tried: number;
  /** Names of the nodes whose intro points are in it, with their counts. */
  readonly nodes: readonly { readonly name: string; readonly introPoints: number }[];
}

/**
 * Summarise a publish record; node ids are shown by name (`names`: node id → name; unknown
 * ids by their first 8 characters). An HSDir counts as accepting when any of its uploads in
 * the round succeeded.
 */
export function summarisePublish(rec: PublishRecord, names: ReadonlyMap<string, string>): PublishSummary {
  const revisions = [...new Set(rec.descriptors.map((d) => d.revisionCounter))];
  const tried = new Set<string>();
  const ok = new Set<string>();
  for (const h of rec.hsdirs) {
    tried.add(h.fp);
    if (h.result === 'uploaded') ok.add(h.fp);
  }
  for (const d of rec.descriptors) for (const s of d.servers) tried.add(s);
  const nodes = Object.entries(rec.perNode)
    .map(([id, count]) => ({ name: names.get(id) ?? id.slice(0, 8), introPoints: count }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { revisions, accepted: ok.size, tried: tried.size, nodes };
}

/** "revision 1234, 8/8 HSDirs accepted, nodes node-2, node-3". */
export function formatPublish(s: PublishSummary, withCounts = false): string {
  const rev = s.revisions.length === 1 ? `revision ${s.revisions[0]!}` : `revisions ${s.revisions.join(' and ')}`;
  const nodes = s.nodes.map((n) => (withCounts ? `${n.name} (${n.introPoints} intro points)` : n.name)).join(', ');
  return `${rev}, ${s.accepted}/${s.tried} HSDirs accepted, nodes ${nodes}`;
}

/** The cluster view once it has formed. */
export interface Converged {
  /** Index of the publishing node. */
  readonly publisher: number;
  readonly record: PublishRecord;
}

/**
 * The cluster has formed when every listed node reports a cluster status, all agree on the
 * publisher, and the publisher's last publish carries intro points of `expected` nodes.
 * `statuses[i]` undefined: no snapshot yet (or the node is excluded).
 */
export function clusterConverged(statuses: readonly (StatusSnapshot | undefined)[], expected: number): Converged | undefined {
  const cl = statuses.map((s) => s?.cluster);
  if (cl.length === 0 || cl.some((c) => c === undefined)) return undefined;
  const pubId = cl[0]!.publisher;
  if (pubId === undefined || cl.some((c) => c!.publisher !== pubId)) return undefined;
  const p = cl.findIndex((c) => c!.nodeId === pubId);
  if (p < 0) return undefined;
  const record = cl[p]!.publish?.lastPublish;
  if (record === undefined || Object.keys(record.perNode).length !== expected) return undefined;
  return { publisher: p, record };
}

/** Node id → name, from the snapshots (own ids and peers' names). */
export function nodeNames(statuses: readonly (StatusSnapshot | undefined)[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of statuses) {
    if (s?.cluster === undefined) continue;
    m.set(s.cluster.nodeId, s.cluster.name);
    for (const p of s.cluster.peers) if (!m.has(p.id)) m.set(p.id, p.name);
  }
  return m;
}

/** Times (ms after the kill) at which the demo first saw each failover step. */
export interface FailoverTimes {
  silent?: number;
  dead?: number;
  elected?: number;
  republished?: number;
  recovered?: number;
}

/** A survivor of the kill, as {@link FailoverWatch} follows it. */
export interface FailoverSurvivor {
  /** Its index in the snapshot list. */
  readonly index: number;
  readonly name: string;
  /** Its publisher's publish count before the kill (a republish is a later one). */
  readonly publishesBefore: number;
}

/** Options of {@link FailoverWatch}. */
export interface FailoverWatchOptions {
  readonly victimId: string;
  readonly victimName: string;
  readonly survivors: readonly FailoverSurvivor[];
  /** Wall-clock time of the kill (publish records carry wall-clock times). */
  readonly killedAtWallMs: number;
}

/**
 * What the demo reports about a failover, read from the survivors' status snapshots after the
 * kill: a survivor notices the silence, every survivor declares the node dead, they agree on a
 * new publisher, the publisher republishes without the dead node. Each node writes its snapshot
 * once a second on its own clock, so the steps need not be seen in that order — typically the
 * new publisher declares the node dead and republishes before the other survivor's snapshot
 * shows the node dead. Each step is therefore reported once, whenever it is first seen, and
 * the watch is {@link complete} only when all four were seen; {@link missing} says plainly which
 * were never seen.
 */
export class FailoverWatch {
  readonly times: FailoverTimes = {};
  readonly #o: FailoverWatchOptions;
  /** Each survivor's latest view of the victim (undefined: no snapshot yet). */
  #view: (string | undefined)[];

  constructor(o: FailoverWatchOptions) {
    this.#o = o;
    this.#view = o.survivors.map(() => undefined);
  }

  /** All four steps seen. */
  get complete(): boolean {
    const t = this.times;
    return t.silent !== undefined && t.dead !== undefined && t.elected !== undefined && t.republished !== undefined;
  }

  /** Take in one round of snapshots (`agoMs` after the kill); returns the lines to print for steps seen now. */
  observe(statuses: readonly (StatusSnapshot | undefined)[], agoMs: number): string[] {
    const { victimId, victimName, survivors } = this.#o;
    const t = this.times;
    const out: string[] = [];
    const cls = survivors.map((s) => statuses[s.index]?.cluster);
    // A survivor without a snapshot keeps its last view; one whose peer list lacks the victim forgot it.
    this.#view = cls.map((cl, k) => (cl === undefined ? this.#view[k] : (cl.peers.find((p) => p.id === victimId)?.state ?? 'gone')));
    const view = this.#view;
    if (t.silent === undefined) {
      const k = view.findIndex((v) => v !== undefined && v !== 'alive' && v !== 'known');
      if (k >= 0) {
        t.silent = agoMs;
        out.push(`  ${survivors[k]!.name} noticed ${victimName} went silent (${secs(agoMs)} after the kill)`);
      }
    }
    if (t.dead === undefined && view.every((v) => v === 'dead' || v === 'gone')) {
      t.dead = agoMs;
      const late = t.republished === undefined ? '' : '; the descriptor republished above had already left it out';
      out.push(`  ${formatNodeList(survivors.map((s) => s.name))} declared ${victimName} dead (${secs(agoMs)} after the kill${late})`);
    }
    const pubs = cls.map((cl) => cl?.publisher);
    const pub = pubs[0];
    if (t.elected === undefined && pub !== undefined && pub !== victimId && pubs.every((p) => p === pub)) {
      t.elected = agoMs;
      const k = cls.findIndex((cl) => cl?.nodeId === pub);
      out.push(`  ${k < 0 ? 'a new node' : survivors[k]!.name} is now the publisher (elected ${secs(agoMs)} after the kill)`);
    }
    if (t.republished === undefined) {
      for (const [k, s] of survivors.entries()) {
        const cl = cls[k];
        const rec = cl?.publish?.lastPublish;
        if (
          cl?.selfIsPublisher === true &&
          rec !== undefined &&
          (cl.publish?.publishes ?? 0) > s.publishesBefore &&
          rec.atMs >= this.#o.killedAtWallMs &&
          !(victimId in rec.perNode)
        ) {
          t.republished = agoMs;
          out.push(`  descriptor republished by ${s.name} ${secs(agoMs)} after the kill: ${formatPublish(summarisePublish(rec, nodeNames(statuses)))}`);
          break;
        }
      }
    }
    return out;
  }

  /** Lines saying which steps were never seen by `agoMs` after the kill (none once complete). */
  missing(agoMs: number): string[] {
    const { victimName, survivors } = this.#o;
    const t = this.times;
    const within = `within ${secs(agoMs)} of the kill`;
    const views = survivors.map((s, k) => `${s.name}: ${this.#view[k] ?? 'no status'}`).join(', ');
    const out: string[] = [];
    if (t.silent === undefined) out.push(`  no survivor noticed ${victimName} went silent ${within} (${views})`);
    if (t.dead === undefined) out.push(`  ${victimName} was not declared dead by every survivor ${within} (${views})`);
    if (t.elected === undefined) out.push(`  the survivors did not agree on a new publisher ${within}`);
    if (t.republished === undefined) out.push(`  no survivor republished the descriptor without ${victimName} ${within}`);
    return out;
  }
}

/** `proxy.requests` of an admin API `/status` document (undefined if absent or not a count). */
export function proxyRequestsOf(doc: unknown): number | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const proxy = (doc as { proxy?: unknown }).proxy;
  if (typeof proxy !== 'object' || proxy === null) return undefined;
  const n = (proxy as { requests?: unknown }).requests;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Seconds with one decimal: "5.2 s". */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------
// Visitor requests

/** A response of {@link visitThroughTor}. */
export interface VisitResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  readonly ms: number;
}

/**
 * GET `http://<host>/` through tor's SocksPort on its own circuit: the SOCKS username
 * `isolation` is new per request, so every request builds a new rendezvous circuit through
 * an intro point picked at random from the descriptor — which is how visits spread over nodes.
 * Body bounded to 1 MiB.
 */
/** The descriptor of `master` a visitor's tor holds in its cache. */
export interface CachedDescriptor {
  readonly blindedKey: string;
  readonly revisionCounter: bigint;
  readonly introPoints: number;
}

/**
 * Whether the visitor's cached descriptor is older than the newest one published for its
 * blinded key: `stale` (a tor client keeps a cached descriptor until the next time period or
 * until every intro point in it failed, so a visitor that fetched an early descriptor never
 * sees intro points published later), `current`, or `unknown` (nothing cached, or that
 * blinded key not in the last publish).
 */
export function cachedDescriptorAge(cached: CachedDescriptor | undefined, last: PublishRecord | undefined): 'stale' | 'current' | 'unknown' {
  if (cached === undefined || last === undefined) return 'unknown';
  const mine = last.descriptors.filter((d) => d.blindedKey === cached.blindedKey && d.revisionCounter !== '');
  if (mine.length === 0) return 'unknown';
  const newest = mine.map((d) => BigInt(d.revisionCounter)).reduce((a, b) => (a > b ? a : b));
  return cached.revisionCounter < newest ? 'stale' : 'current';
}

/** Read the visitor tor's cached descriptor of `master` (undefined if none). */
export async function readCachedDescriptor(endpoint: ControlEndpoint, master: string, nowSeconds: number): Promise<CachedDescriptor | undefined> {
  const { label, publicKey } = decodeOnionAddress(master);
  const c = await TorControl.connect(endpoint);
  try {
    let text: string;
    try {
      text = await c.getInfo(`hs/client/desc/id/${label}`);
    } catch (e) {
      // tor answers 551 "Not found in cache" when it holds no descriptor of the address.
      if (e instanceof ControlReplyError && (e.status === 551 || e.status === 552) && /not found in cache/i.test(e.message)) return undefined;
      throw e;
    }
    const d = decodeOwnServiceDescriptor(text, publicKey, nowSeconds);
    return { blindedKey: toBase64NoPad(d.blindedPublicKey), revisionCounter: d.revisionCounter, introPoints: d.introPoints.length };
  } finally {
    await c.close();
  }
}

/** `SIGNAL NEWNYM` to the visitor's tor: it forgets cached descriptors and circuits, as a new visitor would start. */
export async function newVisitor(endpoint: ControlEndpoint): Promise<void> {
  const c = await TorControl.connect(endpoint);
  try {
    await c.signal('NEWNYM');
  } finally {
    await c.close();
  }
}

export async function visitThroughTor(socksPort: number, host: string, isolation: string, timeoutMs: number, signal: AbortSignal): Promise<VisitResponse> {
  const r = await httpGetThroughTor({ host: '127.0.0.1', port: socksPort, isolation }, { host, port: 80, path: '/' }, { timeoutMs, signal });
  return { status: r.status, headers: r.headers, body: r.body, ms: r.elapsedMs };
}

// ---------------------------------------------------------------------------------------------
// Processes

function killQuietly(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch (e) {
    if (!isErrno(e, 'ESRCH')) throw e; // already gone
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** The `bin/torbalance.js` of this installation (from src/ or dist/src/). */
export function torbalanceBin(): string {
  for (const up of [['..', '..', '..'], ['..', '..', '..', '..']]) {
    const p = resolve(import.meta.dirname, ...up, 'bin', 'torbalance.js');
    if (existsSync(p)) return p;
  }
  throw new TorbalanceError('TB_ERR_DEMO_FAILED', 'config', 'cannot find bin/torbalance.js next to this installation');
}

/** Options of {@link initTestnetNode}. */
export interface TestnetNodeOptions {
  /** `initNode`'s options: the node's directory, name, target and `[cluster]` table. */
  readonly init: InitOptions;
  /** Key directory of the node that generated the master key: its files are copied in (undefined: this is that node). */
  readonly masterKeyFrom?: string | undefined;
  readonly net: TestnetDescription;
  /** The node tor's nickname (≤ 19 alphanumerics, unique in the network). */
  readonly nickname: string;
  /** Written into the `[cluster]` table (undefined: leave it as init wrote it, or there is none). */
  readonly timings?: DemoTimings | undefined;
  readonly logLevel?: string | undefined;
  /** Appended to the config (e.g. an `[admin]` table). */
  readonly extraToml?: string | undefined;
  /** More of the `[tor]` table: TOML key lines, and lines for `tor.extra_config` (e.g. a `Log` line). */
  readonly tor?: { readonly keys?: string | undefined; readonly extraConfig?: readonly string[] | undefined } | undefined;
}

/**
 * Set up one node of a cluster on a private tor network: `initNode` (the code path of
 * `torbalance init [--cluster]`), the master key files of the node that generated it copied
 * in, and the config completed with the network's torrc lines (tor's own SafeLogging), the
 * cluster timings, a TCP health check every 2 s, a 1 s drain and JSON logs. Used by
 * {@link DemoCluster.create} and the real-tor test harness (test/helpers/cluster-harness.ts).
 */
export async function initTestnetNode(o: TestnetNodeOptions): Promise<InitResult> {
  const init = await initNode(o.init);
  if (o.masterKeyFrom !== undefined) {
    const from = keyDirectoryPaths(o.masterKeyFrom);
    const to = keyDirectoryPaths(init.keyDir);
    for (const f of ['secretKey', 'publicKey', 'hostname'] as const) await copyFile(from[f], to[f]);
  }
  const torrc = testnetCommonTorrc(o.net, o.nickname, join(o.init.dir, 'data', 'tor'))
    .filter(([k]) => k !== 'SafeLogging')
    .map(([k, v]) => (v === '' ? k : `${k} ${v}`));
  let text = await readFile(init.configPath, 'utf8');
  const t = o.timings;
  if (t !== undefined) {
    text = text.replace(
      /^\[cluster\]\n/m,
      `[cluster]\nheartbeat_ms = ${t.heartbeat_ms}\nsuspect_after_ms = ${t.suspect_after_ms}\ndead_after_ms = ${t.dead_after_ms}\nlease_ms = ${t.lease_ms}\n`,
    );
  }
  const lines = [...torrc, ...(o.tor?.extraConfig ?? [])];
  text += `\n[tor]\n${o.tor?.keys === undefined ? '' : `${o.tor.keys.trimEnd()}\n`}extra_config = [\n${lines.map((l) => `  ${JSON.stringify(l)},`).join('\n')}\n]\n`;
  text += `\n[health]\nkind = "tcp"\ninterval_ms = 2000\ntimeout_ms = 20000\n\n[drain]\ntimeout_ms = 1000\n\n[log]\nlevel = ${JSON.stringify(o.logLevel ?? 'info')}\nformat = "json"\n`;
  if (o.extraToml !== undefined) text += `\n${o.extraToml}\n`;
  await writeFile(init.configPath, text, { mode: 0o600 });
  return init;
}

/** One node of a {@link DemoCluster}. */
export interface DemoNode {
  readonly index: number;
  readonly name: string;
  readonly dir: string;
  readonly configPath: string;
  readonly logFile: string;
  readonly statusFile: string;
  proc: ChildProcess | undefined;
  /** Set when the process exited (code or signal). */
  exit: string | undefined;
  /** Exit expected (killed or stopped by us). */
  expectedExit: boolean;
  /** Last tor pid seen (snapshot or PidFile). */
  torPid: number | undefined;
  /** Whether the node's admin API answers `/status` (undefined: not asked yet). */
  admin: 'yes' | 'no' | undefined;
  /** Where its admin API listens, from its config (read once). */
  adminListen?: ListenAddress;
}

/** Options of {@link DemoCluster.create}. */
export interface DemoClusterOptions {
  readonly root: string;
  readonly net: TestnetDescription;
  /** The target onion address. */
  readonly target: string;
  readonly nodes: number;
  readonly timings?: DemoTimings;
  readonly logLevel?: string;
}

/** N node processes; see the module doc. */
export class DemoCluster {
  readonly masterAddress: string;
  readonly nodes: readonly DemoNode[];

  private constructor(masterAddress: string, nodes: readonly DemoNode[]) {
    this.masterAddress = masterAddress;
    this.nodes = nodes;
  }

  /** Create the node directories (keys, secrets, configs); starts nothing. */
  static async create(o: DemoClusterOptions): Promise<DemoCluster> {
    const n = o.nodes;
    const clustered = n > 1;
    const t = o.timings ?? DEMO_TIMINGS;
    const ports = clustered ? await allocatePorts(n) : [];
    const nodes: DemoNode[] = [];
    let master = '';
    let secretFile = '';
    let keyDir = '';
    for (let i = 0; i < n; i++) {
      const name = demoNodeName(i);
      const dir = join(o.root, name);
      const init = await initTestnetNode({
        init: {
          dir,
          target: o.target,
          name,
          ...(clustered
            ? {
                cluster: {
                  listen: `127.0.0.1:${ports[i]!}`,
                  peers: ports.filter((_, j) => j !== i).map((p) => `tcp:127.0.0.1:${p}`),
                  ...(i === 0 ? {} : { secretFrom: secretFile }),
                },
              }
            : {}),
        },
        masterKeyFrom: i === 0 ? undefined : keyDir,
        net: o.net,
        nickname: `demo${i + 1}p${process.pid % 100000}`.slice(0, 19),
        timings: clustered ? t : undefined,
        logLevel: o.logLevel,
      });
      if (i === 0) {
        master = init.masterAddress;
        secretFile = init.cluster?.secretFile ?? '';
        keyDir = init.keyDir;
      }
      nodes.push({
        index: i,
        name,
        dir,
        configPath: init.configPath,
        logFile: join(dir, 'node.log'),
        statusFile: join(dir, 'status.json'),
        proc: undefined,
        exit: undefined,
        expectedExit: false,
        torPid: undefined,
        admin: undefined,
      });
    }
    return new DemoCluster(master, nodes);
  }

  /** Start node i's process (`node bin/torbalance.js run --config …`, log to `<dir>/node.log`). */
  async spawn(i: number, bin: string = torbalanceBin()): Promise<number> {
    const node = this.nodes[i]!;
    await rm(node.statusFile, { force: true });
    const out = openSync(node.logFile, 'a', 0o600);
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [bin, 'run', '--exit-with-parent', '--config', node.configPath], {
        stdio: ['ignore', out, out],
        env: { ...process.env, TORBALANCE_STATUS_FILE: node.statusFile },
      });
    } finally {
      closeSync(out);
    }
    node.proc = proc;
    node.exit = undefined;
    node.expectedExit = false;
    node.admin = undefined;
    proc.once('exit', (code, signal) => {
      node.exit = signal === null ? `exit code ${String(code)}` : signal;
    });
    proc.once('error', (e) => {
      node.exit = e.message;
    });
    return proc.pid ?? -1;
  }

  /** Node i's latest status snapshot (undefined if none yet, from an older process, or the node is gone). */
  status(i: number): StatusSnapshot | undefined {
    const node = this.nodes[i]!;
    if (node.exit !== undefined || node.proc?.pid === undefined) return undefined;
    try {
      const s = JSON.parse(readFileSync(node.statusFile, 'utf8')) as StatusSnapshot;
      if (s.pid !== node.proc.pid) return undefined;
      if (s.tor.pid !== undefined) node.torPid = s.tor.pid;
      return s;
    } catch (e) {
      // not written yet, or caught mid-write (the node replaces it atomically, but a reader
      // may still see an older process's file vanish)
      if (isErrno(e, 'ENOENT') || e instanceof SyntaxError) return undefined;
      throw e;
    }
  }

  /** Snapshots of all nodes (undefined for dead ones). */
  statuses(): (StatusSnapshot | undefined)[] {
    return this.nodes.map((_, i) => this.status(i));
  }

  /**
   * Proxy request counters (undefined: unknown). Per node from the admin API's live `/status`
   * (`proxy.requests`) when the node answers on its admin socket, else from its snapshot file
   * (up to a second old). The source is fixed per node once the admin API answered, so two
   * readings always compare like with like.
   */
  async requestCounters(): Promise<(number | undefined)[]> {
    return Promise.all(
      this.nodes.map(async (node, i) => {
        if (node.exit !== undefined) return undefined;
        if (node.admin !== 'no') {
          try {
            // The node's own default (its data directory, or the runtime directory: loadConfig).
            node.adminListen ??= (await loadConfig(node.configPath)).admin.listen;
            const r = await adminRequest(node.adminListen, 'GET', '/status', undefined, 2000);
            const n = proxyRequestsOf(r.status === 200 ? r.json : undefined);
            if (n !== undefined) {
              node.admin = 'yes';
              return n;
            }
          } catch (e) {
            // not (yet) answering: no socket yet, refused, timed out
            if (!(e instanceof TorbalanceError) && errnoCode(e) === undefined) throw e;
          }
          if (node.admin === 'yes') return undefined;
          node.admin = 'no';
        }
        return this.status(i)?.proxy.requests;
      }),
    );
  }

  /** The node tor's pid (snapshot or its PidFile). */
  torPid(i: number): number | undefined {
    const node = this.nodes[i]!;
    try {
      const n = Number(readFileSync(join(node.dir, 'data', 'tor', 'pid'), 'utf8').trim());
      if (Number.isInteger(n) && n > 0) node.torPid = n;
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e; // not written yet
    }
    return node.torPid;
  }

  /** The nodes that exited without being asked to. */
  unexpectedExits(): DemoNode[] {
    return this.nodes.filter((n) => n.exit !== undefined && !n.expectedExit);
  }

  /** SIGKILL node i's process and its tor; resolves when both are gone (≤ 5 s). */
  async kill9(i: number): Promise<{ pid: number | undefined; torPid: number | undefined }> {
    const node = this.nodes[i]!;
    node.expectedExit = true;
    const pid = node.proc?.pid;
    const tor = this.torPid(i);
    killQuietly(pid, 'SIGKILL');
    killQuietly(tor, 'SIGKILL');
    for (let k = 0; k < 100 && ((pid !== undefined && isProcessAlive(pid)) || (tor !== undefined && isProcessAlive(tor))); k++) await sleep(50);
    return { pid, torPid: tor };
  }

  /**
   * Stop every node: SIGTERM (the node leaves the mesh and drains), SIGKILL after `graceMs`,
   * then make sure each node's tor is gone too (it exits with its node; SIGKILL after 5 s).
   */
  async stopAll(graceMs = 8000): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node, i) => {
        node.expectedExit = true;
        const p = node.proc;
        const tor = this.torPid(i);
        if (p?.pid !== undefined && isProcessAlive(p.pid)) {
          killQuietly(p.pid, 'SIGTERM');
          for (let k = 0; k < graceMs / 50 && isProcessAlive(p.pid); k++) await sleep(50);
          killQuietly(p.pid, 'SIGKILL');
          for (let k = 0; k < 100 && isProcessAlive(p.pid); k++) await sleep(50);
        }
        const torNow = this.torPid(i) ?? tor;
        if (torNow !== undefined) {
          for (let k = 0; k < 100 && isProcessAlive(torNow); k++) await sleep(50);
          killQuietly(torNow, 'SIGKILL');
        }
      }),
    );
  }

  /** Every pid we know of (nodes and their tors) that is still alive. */
  livePids(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.nodes.length; i++) {
      const p = this.nodes[i]!.proc?.pid;
      const t = this.torPid(i);
      for (const x of [p, t]) if (x !== undefined && isProcessAlive(x)) out.push(x);
    }
    return out;
  }

  /** SIGKILL everything at once (synchronous: for `process.on('exit')` and a second Ctrl-C). */
  killAllSync(): void {
    for (let i = 0; i < this.nodes.length; i++) {
      this.nodes[i]!.expectedExit = true;
      killQuietly(this.nodes[i]!.proc?.pid, 'SIGKILL');
      killQuietly(this.torPid(i), 'SIGKILL');
    }
  }
}
