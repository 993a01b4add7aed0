/**
 * Harness for real-tor cluster tests (test/integration/cluster.test.ts, bench/failover.ts):
 * N torbalance nodes as separate processes (`torbalance run`, from source with tsx) in a
 * private tor network, sharing one master key and one cluster secret, each with its own node
 * key, meshing over loopback TCP — or, with `transport: 'tor'`, over the nodes' coordination
 * onion services (`init --cluster --cluster-transport tor`): node 0 starts with no peers and
 * generates its mesh key; once its `<data>/mesh-hs/hostname` exists the others get
 * `peers = ["tor:<node 0's mesh onion>:7700"]` and start (gossip does the rest).
 *
 * Set-up per node: the demo's `initTestnetNode` (src/cli/commands/demo-cluster.ts; the code
 * path of `torbalance init --cluster`): node 0 generates the master key and the cluster secret;
 * the others copy node 0's key directory and secret (`--cluster-secret`) and get their own node
 * key. Their configs get the network's torrc lines, short health intervals and the cluster timings.
 *
 * Which node served a request: the proxy's request counter of each node, read from the status
 * snapshot each node writes once a second when `TORBALANCE_STATUS_FILE` is set (src/node/status-file.ts;
 * the same object as `NodeHandle.status()`, which also carries the cluster view: peers,
 * publisher, last publish record with the HSDirs it uploaded to).
 *
 * Process control: `kill9` (SIGKILL the node process AND its tor: nothing can say goodbye),
 * `stop` (SIGTERM: the node leaves the mesh first), `pause`/`resume` (SIGSTOP/SIGCONT of the
 * node process only: its tor keeps running, its mesh goes silent), `restart` (start again
 * from the same directory: same node key, tor state kept).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocatePorts, isProcessAlive, type TestnetDescription } from '../../src/adapters/tor/testnet.js';
import { initTestnetNode, type DemoTimings, type StatusSnapshot } from '../../src/cli/commands/demo-cluster.js';

let nick = 0;
/** A tor nickname unique in this process (≤ 19 alphanumerics; no vitest import: bench/ uses this file too). */
function uniqueNickname(prefix: string): string {
  nick += 1;
  return `${prefix}${process.pid % 100000}n${nick}`.slice(0, 19);
}

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** Cluster timings written into every node's `[cluster]` table (the demo's type). */
export type ClusterTimings = DemoTimings;

/** Defaults for tests: fast detection (death after 6 s, lease 8 s). */
export const TEST_TIMINGS: ClusterTimings = { heartbeat_ms: 500, suspect_after_ms: 2000, dead_after_ms: 6000, lease_ms: 8000 };

/** The status snapshot a node writes (NodeStatus + pid + time). */
export type { StatusSnapshot };

/** One node of a {@link TestCluster}. */
export interface ClusterNodeProc {
  readonly index: number;
  readonly name: string;
  readonly dir: string;
  readonly configPath: string;
  readonly meshPort: number;
  /** The current node process (replaced by restart). */
  proc: ChildProcess | undefined;
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  readonly net: TestnetDescription;
  readonly target: string;
  readonly nodes?: number;
  readonly timings?: ClusterTimings;
  /** Priorities per node (default all 100: lowest node id publishes). */
  readonly priorities?: readonly number[];
  readonly logLevel?: string;
  /** Mesh transport. Default 'tcp' (loopback). */
  readonly transport?: 'tcp' | 'tor';
  /** Extra TOML appended to node i's config (e.g. an `[admin]` table). Default: nothing. */
  readonly extraToml?: (index: number) => string;
  /** More of node i's `[tor]` table (key lines, `extra_config` lines); `dir` is the node's directory. */
  readonly tor?: (index: number, dir: string) => { readonly keys?: string; readonly extraConfig?: readonly string[] };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** A running test cluster; see the module doc. */
export class TestCluster {
  readonly root: string;
  readonly masterAddress: string;
  readonly nodes: ClusterNodeProc[];
  readonly #keep: string;

  private constructor(root: string, masterAddress: string, nodes: ClusterNodeProc[]) {
    this.root = root;
    this.masterAddress = masterAddress;
    this.nodes = nodes;
    this.#keep = join(REPO, '.torlab', 'node-logs');
  }

  /** init all nodes and start them. */
  static async start(o: StartClusterOptions): Promise<TestCluster> {
    const n = o.nodes ?? 3;
    const tor = o.transport === 'tor';
    const t = o.timings ?? TEST_TIMINGS;
    const root = await mkdtemp('/tmp/tbc-');
    const ports = await allocatePorts(n);
    const nodes: ClusterNodeProc[] = [];
    let master = '';
    let secretFile = '';
    let keyDir = '';
    for (let i = 0; i < n; i++) {
      const dir = join(root, `n${i}`);
      const peers = ports.filter((_, j) => j !== i).map((p) => `tcp:127.0.0.1:${p}`);
      const init = await initTestnetNode({
        init: {
          dir,
          target: o.target,
          name: `node${i}`,
          cluster: {
            ...(tor ? { transport: 'tor' as const, peers: [] } : { listen: `127.0.0.1:${ports[i]!}`, peers }),
            priority: o.priorities?.[i] ?? 100,
            ...(i === 0 ? {} : { secretFrom: secretFile }),
          },
        },
        masterKeyFrom: i === 0 ? undefined : keyDir,
        net: o.net,
        nickname: uniqueNickname(`tbc${i}`),
        timings: t,
        logLevel: o.logLevel,
        extraToml: o.extraToml?.(i),
        tor: o.tor?.(i, dir),
      });
      if (i === 0) {
        master = init.masterAddress;
        secretFile = init.cluster!.secretFile;
        keyDir = init.keyDir;
      }
      nodes.push({ index: i, name: `node${i}`, dir, configPath: init.configPath, meshPort: ports[i]!, proc: undefined });
    }
    const c = new TestCluster(root, master, nodes);
    if (!tor) {
      for (const node of nodes) c.spawn(node.index);
      return c;
    }
    c.spawn(0);
    let first: string | undefined;
    // up to 180 s: node 0 starts from source (tsx) and its tor writes the hostname; slow under load
    for (let k = 0; k < 1800 && first === undefined; k++) {
      first = c.meshAddress(0);
      if (first === undefined) await sleep(100);
    }
    if (first === undefined) throw new Error('node0 did not write its coordination onion hostname');
    for (const node of nodes.slice(1)) {
      const text = await readFile(node.configPath, 'utf8');
      if (!/^peers = \[\]$/m.test(text)) throw new Error('unexpected [cluster] peers line');
      await writeFile(node.configPath, text.replace(/^peers = \[\]$/m, `peers = [${JSON.stringify(`tor:${first}:7700`)}]`), { mode: 0o600 });
      c.spawn(node.index);
    }
    return c;
  }

  /** Node i's coordination onion address (`<56>.onion`, from `<data>/mesh-hs/hostname`), if written yet. */
  meshAddress(i: number): string | undefined {
    try {
      const t = readFileSync(join(this.nodes[i]!.dir, 'data', 'mesh-hs', 'hostname'), 'utf8').trim();
      return /^[a-z2-7]{56}\.onion$/.test(t) ? t : undefined;
    } catch {
      return undefined;
    }
  }

  /** Node i's tor control socket. */
  controlSocket(i: number): string {
    return join(this.nodes[i]!.dir, 'data', 'tor', 'control.sock');
  }

  statusFile(i: number): string {
    return join(this.nodes[i]!.dir, 'status.json');
  }

  logFile(i: number): string {
    return join(this.nodes[i]!.dir, 'node.log');
  }

  /** Start node i's process (again). */
  spawn(i: number): void {
    const node = this.nodes[i]!;
    try {
      readFileSync(this.statusFile(i));
      // a stale snapshot from the previous process must not be read as current
      void rm(this.statusFile(i), { force: true });
    } catch {
      // none
    }
    const out = openSync(this.logFile(i), 'a');
    try {
      node.proc = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'run', '--config', node.configPath], {
        cwd: REPO,
        stdio: ['ignore', out, out],
        env: { ...process.env, TORBALANCE_STATUS_FILE: this.statusFile(i) },
      });
    } finally {
      closeSync(out);
    }
  }

  /** Node i's latest status snapshot (undefined if none, or from an older process). */
  status(i: number): StatusSnapshot | undefined {
    try {
      const s = JSON.parse(readFileSync(this.statusFile(i), 'utf8')) as StatusSnapshot;
      return s.pid === this.nodes[i]!.proc?.pid ? s : undefined;
    } catch {
      return undefined;
    }
  }

  /** Node ids by index (from the snapshots). */
  nodeIds(): (string | undefined)[] {
    return this.nodes.map((_, i) => this.status(i)?.cluster?.nodeId);
  }

  /** Index of the node whose id is `id`. */
  indexOf(id: string | undefined): number {
    return this.nodeIds().findIndex((x) => x !== undefined && x === id);
  }

  /** The node tor's pid (its PidFile). */
  torPid(i: number): number | undefined {
    try {
      const n = Number(readFileSync(join(this.nodes[i]!.dir, 'data', 'tor', 'pid'), 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Running = its process is up. */
  running(i: number): boolean {
    const p = this.nodes[i]!.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** SIGKILL the node process and its tor. Resolves when both are gone. */
  async kill9(i: number): Promise<void> {
    const p = this.nodes[i]!.proc;
    const tor = this.torPid(i);
    if (p?.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (tor !== undefined) {
      try {
        process.kill(tor, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (let k = 0; k < 100 && ((p?.pid !== undefined && isProcessAlive(p.pid)) || (tor !== undefined && isProcessAlive(tor))); k++) await sleep(50);
  }

  /** SIGTERM (graceful: mesh leave, drain) and wait for the process and its tor. */
  async stop(i: number, graceMs = 20_000): Promise<void> {
    const p = this.nodes[i]!.proc;
    const tor = this.torPid(i);
    if (p !== undefined && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once('exit', () => { r(); }));
      p.kill('SIGCONT');
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    }
    if (tor !== undefined) {
      for (let k = 0; k < 200 && isProcessAlive(tor); k++) await sleep(100);
      if (isProcessAlive(tor)) process.kill(tor, 'SIGKILL');
    }
  }

  pause(i: number): void {
    this.nodes[i]!.proc?.kill('SIGSTOP');
  }

  resume(i: number): void {
    this.nodes[i]!.proc?.kill('SIGCONT');
  }

  /** Start a stopped/killed node again from its directory. */
  async restart(i: number): Promise<void> {
    if (this.running(i)) await this.stop(i);
    this.spawn(i);
  }

  /** Stop everything, keep the logs under .torlab/node-logs/, remove the directories. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.stop(i, 5000).catch(() => undefined)));
    await mkdir(this.#keep, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (let i = 0; i < this.nodes.length; i++) await copyFile(this.logFile(i), join(this.#keep, `cluster-${stamp}-node${i}.log`)).catch(() => undefined);
    await rm(this.root, { recursive: true, force: true });
  }
}
