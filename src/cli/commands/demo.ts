/**
 * `torbalance demo`: a torbalance cluster working on a private Tor network on 127.0.0.1, in one
 * command (the README's first command, through scripts/demo.sh).
 *
 * 1. starts a private Tor network (directory authorities, HSDir relays, a client);
 * 2. a small target web application behind its own onion service (the address visitors never see);
 * 3. generates a master key and sets up `--nodes` torbalance nodes (default 3) sharing it as a
 *    cluster (src/cli/commands/demo-cluster.ts: `init --cluster` per node, mesh over 127.0.0.1
 *    TCP, heartbeat 500 ms, dead after 5 s);
 * 4. runs the nodes as child processes (`torbalance run --config …`) and shows them come up
 *    until the cluster has formed: one publisher, a merged descriptor with every node's intro
 *    points, accepted by the HSDirs;
 * 5. a visitor loop through the client tor, one fresh circuit per request, showing for each
 *    request the status, the latency and which node served it (each node's proxy request
 *    counter), and that the page names the master address and never the target. Once every
 *    node has served a request (or after 30 visits), it kills the publisher (SIGKILL of the node
 *    process and its tor) and shows the others notice, a new publisher being elected, the
 *    merged descriptor republished without the dead node (revision, HSDirs that accepted it)
 *    and requests being served again ("the cluster recovered in … s").
 * It keeps serving until Ctrl-C, SIGTERM or `--duration` (which never cuts the failover story
 * short), then stops every process it started (nodes, their tors, the network) and removes its
 * temporary directory (kept with `--keep`, or after a failure, for the logs).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ControlEndpoint } from '../../adapters/tor/control.js';
import { startTestnet, type Testnet } from '../../adapters/tor/testnet.js';
import { TorbalanceError } from '../../core/errors.js';
import {
  attributeServed,
  cachedDescriptorAge,
  clusterConverged,
  DEMO_TIMINGS,
  DemoCluster,
  FailoverWatch,
  formatNodeList,
  formatPublish,
  formatVisit,
  newVisitor,
  nodeNames,
  readCachedDescriptor,
  scheduleEvents,
  secs,
  summarisePublish,
  visitThroughTor,
  type FailoverTimes,
} from './demo-cluster.js';

interface DemoOptions {
  readonly duration?: string;
  readonly interval: string;
  readonly dir?: string;
  readonly keep?: boolean;
  readonly nodes: string;
  readonly failover: boolean;
}

/** Visits before the failover starts even if not every node has served one yet. */
const MAX_WARMUP_VISITS = 30;
/**
 * During the warm-up, every this many visits without every node having served, the demo reads
 * the visitor tor's cached descriptor: if it is older than the publisher's newest (the visitor
 * fetched it while intro points were still being built), the visitor starts afresh (NEWNYM).
 */
const WARMUP_CHECK_EVERY = 8;
/**
 * A visitor gives up on a request after this long and tries again on a fresh circuit. Right
 * after the kill, a client tor that picked one of the dead node's intro points may keep the
 * request waiting much longer than a new request on a fresh circuit needs.
 */
const VISIT_TIMEOUT_MS = 15_000;
/** Deadline for the cluster to form after the nodes were started. */
const FORM_TIMEOUT_MS = 240_000;
/** Deadline from the kill to a request served through the republished descriptor. */
const RECOVERY_TIMEOUT_MS = 180_000;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((r) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      r();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The demo's target application: its pages name its own onion address, as real sites do. */
function startTargetApp(getAddress: () => string): Promise<Server> {
  const server = createServer((req, res) => {
    const self = getAddress();
    if (req.url === '/go') {
      res.writeHead(302, { location: `http://${self}/`, 'set-cookie': `demo=1; Domain=${self}; Path=/` });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': `seen=1; Domain=${self}; Path=/` });
    res.end(
      `<!doctype html><title>target app</title><h1>Hello from the target</h1>` +
        `<p>Canonical link: <a href="http://${self}/about">http://${self}/about</a></p>\n`,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve(server);
    });
  });
}

function demoFailed(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_DEMO_FAILED', 'tor', message);
}

/** Parse and check the options. */
function parseOptions(opts: DemoOptions): { durationMs: number | undefined; intervalMs: number; nodes: number } {
  const durationMs = opts.duration === undefined ? undefined : Number(opts.duration) * 1000;
  const intervalMs = Number(opts.interval) * 1000;
  const nodes = Number(opts.nodes);
  if ((durationMs !== undefined && !(durationMs > 0)) || !(intervalMs > 0)) {
    throw new TorbalanceError('TB_ERR_DEMO_OPTIONS', 'config', '--duration and --interval must be positive numbers of seconds');
  }
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 5) {
    throw new TorbalanceError('TB_ERR_DEMO_OPTIONS', 'config', '--nodes must be a whole number from 1 to 5');
  }
  return { durationMs, intervalMs, nodes };
}

/**
 * Wait until the nodes have formed a cluster (one node: its tor has a descriptor), printing
 * each node's progress. Returns the publisher's index (0 for one node).
 */
async function waitForCluster(cluster: DemoCluster, signal: AbortSignal, t0: number): Promise<number> {
  const n = cluster.nodes.length;
  const started = new Set<number>();
  const bootstrapped = new Set<number>();
  const sees = new Map<number, string>();
  const deadline = performance.now() + FORM_TIMEOUT_MS;
  while (!signal.aborted) {
    const bad = cluster.unexpectedExits();
    if (bad.length > 0) {
      throw demoFailed(`${formatNodeList(bad.map((b) => b.name))} exited (${bad.map((b) => b.exit).join(', ')}); see ${bad.map((b) => b.logFile).join(', ')}`);
    }
    const st = cluster.statuses();
    for (const [i, s] of st.entries()) {
      if (s === undefined) continue;
      const name = cluster.nodes[i]!.name;
      if (!started.has(i)) {
        started.add(i);
        say(`      ${secs(performance.now() - t0)}  ${name} running (pid ${s.pid}; its tor: pid ${s.tor.pid ?? '?'})`);
      }
      if (!bootstrapped.has(i) && s.health.tor.progress >= 100) {
        bootstrapped.add(i);
        say(`      ${secs(performance.now() - t0)}  ${name}: its tor is bootstrapped`);
      }
      if (s.cluster !== undefined) {
        const alive = s.cluster.peers.filter((p) => p.state === 'alive').map((p) => p.name).sort();
        const text = alive.length === 0 ? 'no peer yet' : formatNodeList(alive);
        if (alive.length > 0 && sees.get(i) !== text) {
          sees.set(i, text);
          say(`      ${secs(performance.now() - t0)}  ${name} meshes with ${text}`);
        }
      }
    }
    if (n === 1) {
      const s = st[0];
      if (s !== undefined && s.health.tor.progress >= 100 && s.health.intro.introPoints > 0) {
        say(`      ${secs(performance.now() - t0)}  node-1's tor built the master descriptor (${s.health.intro.introPoints} intro points) and uploads it`);
        return 0;
      }
    } else {
      const c = clusterConverged(st, n);
      if (c !== undefined) {
        const names = nodeNames(st);
        say(`      ${secs(performance.now() - t0)}  cluster formed: ${cluster.nodes[c.publisher]!.name} is the publisher`);
        say(`      descriptor published: ${formatPublish(summarisePublish(c.record, names), true)}`);
        return c.publisher;
      }
    }
    if (performance.now() > deadline) throw demoFailed(`the cluster did not form within ${FORM_TIMEOUT_MS / 1000} s; node logs: ${cluster.nodes.map((x) => x.logFile).join(', ')}`);
    await sleep(250, signal);
  }
  return 0;
}

/**
 * Watch the survivors after the kill and print what they do (src/cli/commands/demo-cluster.ts
 * {@link FailoverWatch}: notice the silence, declare the node dead, elect a new publisher,
 * republish without it — reported in the order seen). Resolves when every step was seen, when
 * aborted, or {@link RECOVERY_TIMEOUT_MS} after the kill, then saying which steps never came.
 */
async function watchFailover(cluster: DemoCluster, watch: FailoverWatch, killedAt: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const ago = performance.now() - killedAt;
    for (const line of watch.observe(cluster.statuses(), ago)) say(line);
    if (watch.complete) return;
    if (ago > RECOVERY_TIMEOUT_MS) {
      for (const line of watch.missing(ago)) say(line);
      return;
    }
    await sleep(200, signal);
  }
}

/**
 * A node has not served yet: say which descriptor the visitor holds against the publisher's
 * newest, and start a new visitor (NEWNYM) if the visitor's is older.
 */
async function checkVisitorDescriptor(c: DemoCluster, control: ControlEndpoint, master: string, visits: number, served: ReadonlyMap<string, number>): Promise<void> {
  const missing = c.nodes.filter((x) => !served.has(x.name)).map((x) => x.name);
  const st = c.statuses();
  const pubId = st.find((s) => s?.cluster?.publisher !== undefined)?.cluster?.publisher;
  const last = st.find((s) => s?.cluster?.nodeId === pubId)?.cluster?.publish?.lastPublish;
  let cached;
  try {
    cached = await readCachedDescriptor(control, master, Math.floor(Date.now() / 1000));
  } catch (e) {
    say(`      (could not read the visitor's cached descriptor: ${errText(e)})`);
    return;
  }
  const age = cachedDescriptorAge(cached, last);
  const held = cached === undefined ? 'no cached descriptor' : `revision ${cached.revisionCounter} with ${cached.introPoints} intro points`;
  const newest = last === undefined ? '?' : last.descriptors.map((d) => d.revisionCounter).join(' and ');
  say(`      ${formatNodeList(missing)} not served after ${visits} visits; the visitor's tor holds ${held}, the publisher's newest is revision ${newest} (${formatNodeList(Object.keys(last?.perNode ?? {}).map((id) => nodeNames(st).get(id) ?? id.slice(0, 8)))})`);
  if (age === 'stale') {
    say('      the visitor fetched the descriptor before the newest publish and keeps it (a tor client refetches only when every intro point fails): starting a new visitor (NEWNYM)');
    await newVisitor(control);
  }
}

async function runDemo(opts: DemoOptions): Promise<void> {
  const { durationMs, intervalMs, nodes: nodeCount } = parseOptions(opts);
  const failover = opts.failover && nodeCount > 1;
  const baseDir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'tbdemo-')));
  const abort = new AbortController();
  const aborted = (): boolean => abort.signal.aborted;
  let net: Testnet | undefined;
  let app: Server | undefined;
  let cluster: DemoCluster | undefined;
  let signals = 0;
  let failed = false;
  const onSignal = (): void => {
    signals += 1;
    if (signals === 1) say('\nstopping… (Ctrl-C again to kill everything at once)');
    else cluster?.killAllSync();
    abort.abort();
  };
  const onExit = (): void => {
    cluster?.killAllSync();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  const t0 = performance.now();
  const elapsed = (): string => secs(performance.now() - t0);
  try {
    say(
      `torbalance demo: one master onion address in front of a hidden target, served by ${nodeCount === 1 ? 'one torbalance node' : `${nodeCount} torbalance nodes as a cluster`}, on a private Tor network (127.0.0.1 only)`,
    );
    say(`working directory: ${baseDir}`);
    let targetOnion = '';
    app = await startTargetApp(() => targetOnion);
    const appPort = (app.address() as AddressInfo).port;

    say('[1/5] starting a private Tor network: 3 directory authorities, 5 relays (HSDirs), 1 client, the target onion service');
    net = await startTestnet({
      baseDir: join(baseDir, 'net'),
      services: [{ nickname: 'target', target: { host: '127.0.0.1', port: appPort } }],
      onProgress: (m) => {
        say(`      ${elapsed()}  ${m}`);
      },
      signal: abort.signal,
      // Generous: a busy or slow machine (tor parses its GeoIP files at start-up) must not fail the demo.
      readyTimeoutMs: 300_000,
    });
    const desc = net.description;
    const target = desc.services[0]!;
    const client = desc.clients[0]!;
    targetOnion = target.onion;
    say(`      network usable after ${elapsed()}`);
    say(`[2/5] target app on 127.0.0.1:${appPort}, published only as ${target.onion} (visitors never see this address)`);

    cluster = await DemoCluster.create({ root: baseDir, net: desc, target: target.onion, nodes: nodeCount });
    const c = cluster;
    const master = c.masterAddress;
    say(`[3/5] master key generated: ${master}`);
    if (nodeCount > 1) {
      say(
        `      ${nodeCount} nodes share it, with one cluster secret and a node key each; mesh over 127.0.0.1 TCP ` +
          `(heartbeat ${DEMO_TIMINGS.heartbeat_ms} ms, suspect after ${secs(DEMO_TIMINGS.suspect_after_ms)}, dead after ${secs(DEMO_TIMINGS.dead_after_ms)})`,
      );
    }

    say(`[4/5] starting ${formatNodeList(c.nodes.map((x) => x.name))} (torbalance run --config <dir>/torbalance.toml; logs in <dir>/node.log)`);
    for (let i = 0; i < c.nodes.length; i++) await c.spawn(i);
    const tNodes = performance.now();
    let publisher = await waitForCluster(c, abort.signal, t0);
    if (!aborted()) say(`      ready ${secs(performance.now() - tNodes)} after the nodes started (${elapsed()} in all)`);

    if (!aborted()) say(`[5/5] visiting http://${master}/ through the client tor, each request on a fresh circuit${nodeCount > 1 ? ' (so each may reach another node)' : ''}`);
    const deadline = durationMs === undefined ? Infinity : performance.now() + durationMs;
    const served = new Map<string, number>();
    let base = await c.requestCounters();
    let phase: 'warmup' | 'failover' | 'recovered' = failover ? 'warmup' : 'recovered';
    let victim = -1;
    let killedAt = 0;
    let watcher: Promise<void> | undefined;
    let times: FailoverTimes = {};
    let firstPageAt: number | undefined;
    let lastVisitS = Date.now() / 1000;
    for (let i = 1; !aborted(); i++) {
      const nowS = Date.now() / 1000;
      const events = scheduleEvents(lastVisitS, nowS, desc.timePeriod);
      if (events !== undefined) say(events);
      lastVisitS = nowS;
      if (phase !== 'failover' && performance.now() >= deadline && (phase === 'recovered' || !failover)) break;
      try {
        const r = await visitThroughTor(client.socksPort, master, `demo-${process.pid}-${i}`, VISIT_TIMEOUT_MS, abort.signal);
        // The counters come from snapshots written once a second: wait for the one that moved.
        let who: number[] = [];
        let after = base;
        for (let k = 0; k < 16 && !aborted(); k++) {
          after = await c.requestCounters();
          who = attributeServed(base, after).filter((x) => x !== victim);
          if (who.length > 0) break;
          await sleep(200, abort.signal);
        }
        base = after.map((a, j) => Math.max(a ?? 0, base[j] ?? 0));
        const names = who.map((x) => c.nodes[x]!.name);
        for (const nm of names) served.set(nm, (served.get(nm) ?? 0) + 1);
        firstPageAt ??= performance.now() - tNodes;
        let note: string | undefined;
        if (phase === 'failover' && times.republished !== undefined && r.status === 200) {
          times.recovered = performance.now() - killedAt;
          note = `the cluster recovered in ${secs(times.recovered)}`;
          phase = 'recovered';
        }
        const leaksTarget = JSON.stringify(r.headers).includes(target.address) || r.body.includes(target.address);
        say(formatVisit({ n: i, status: r.status, ms: r.ms, servedBy: names, namesMaster: r.body.includes(master), leaksTarget, ...(note === undefined ? {} : { note }) }));
      } catch (e) {
        if (aborted()) break;
        say(`  #${i} failed: ${errText(e)}${served.size === 0 ? ' (the descriptor may still be on its way to the HSDirs)' : ''}`);
      }
      if (phase === 'warmup' && served.size < nodeCount && i % WARMUP_CHECK_EVERY === 0 && i < MAX_WARMUP_VISITS) {
        await checkVisitorDescriptor(c, client.control, master, i, served);
      }
      if (phase === 'warmup' && (served.size >= nodeCount || i >= MAX_WARMUP_VISITS)) {
        const st = c.statuses();
        const pubId = st.find((s) => s?.cluster?.publisher !== undefined)?.cluster?.publisher;
        const p = st.findIndex((s) => s?.cluster?.nodeId === pubId);
        publisher = p >= 0 ? p : publisher;
        victim = publisher;
        const victimStatus = st[victim];
        const victimId = victimStatus?.cluster?.nodeId ?? '';
        const name = c.nodes[victim]!.name;
        const survivors = c.nodes
          .filter((_, j) => j !== victim)
          .map((x) => ({ index: x.index, name: x.name, publishesBefore: st[x.index]?.cluster?.publish?.publishes ?? 0 }));
        say(
          served.size >= nodeCount
            ? `every node has served a request (${[...served.entries()].map(([k, v]) => `${k}: ${v}`).join(', ')})`
            : `not every node has served a request after ${i} visits (${[...served.entries()].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}); going on`,
        );
        const torPid = c.torPid(victim);
        killedAt = performance.now();
        const killedAtWallMs = Date.now();
        const k = await c.kill9(victim);
        say(`killing the publisher ${name} (pid ${k.pid ?? '?'}) and its tor (pid ${k.torPid ?? torPid ?? '?'}) with SIGKILL: no goodbye to the cluster`);
        phase = 'failover';
        const watch = new FailoverWatch({ victimId, victimName: name, survivors, killedAtWallMs });
        times = watch.times;
        watcher = watchFailover(c, watch, killedAt, abort.signal);
      }
      if (phase === 'failover' && performance.now() - killedAt > RECOVERY_TIMEOUT_MS) {
        throw demoFailed(`the cluster did not recover within ${RECOVERY_TIMEOUT_MS / 1000} s of the kill; node logs: ${c.nodes.map((x) => x.logFile).join(', ')}`);
      }
      await sleep(phase === 'failover' ? Math.min(intervalMs, 1000) : intervalMs, abort.signal);
    }
    await watcher;
    const total = [...served.values()].reduce((a, b) => a + b, 0);
    say(`${total} request(s) served through the master address (${[...served.entries()].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}).`);
    if (firstPageAt !== undefined) say(`first page ${secs(firstPageAt)} after the nodes started.`);
    if (times.recovered !== undefined) {
      say(
        `failover: silent after ${times.silent === undefined ? '?' : secs(times.silent)}, dead after ${times.dead === undefined ? '?' : secs(times.dead)}, ` +
          `new publisher after ${times.elected === undefined ? '?' : secs(times.elected)}, republished after ${secs(times.republished ?? 0)}, recovered after ${secs(times.recovered)}`,
      );
    }
    if (total === 0 && !aborted()) throw demoFailed('no request reached the target through the master address');
  } catch (e) {
    // Interrupted (Ctrl-C / SIGTERM) while starting: a normal stop, not a failure.
    if (signals === 0) {
      failed = true;
      throw e;
    }
  } finally {
    abort.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (cluster !== undefined) await cluster.stopAll().catch(() => undefined);
    if (net !== undefined) await net.stop().catch(() => undefined);
    if (app !== undefined) app.close();
    const left = cluster?.livePids() ?? [];
    process.off('exit', onExit);
    if (failed && opts.keep !== true && opts.dir === undefined) say(`logs kept in ${baseDir} (remove it when done)`);
    else if (opts.keep !== true && opts.dir === undefined) await rm(baseDir, { recursive: true, force: true });
    say(left.length === 0 ? 'demo stopped; every process it started is gone.' : `demo stopped, but processes ${left.join(', ')} are still running`);
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run a torbalance cluster on a private Tor network on 127.0.0.1, kill its publisher and watch it recover (needs tor); Ctrl-C stops it')
    .option('--duration <seconds>', 'stop after this many seconds of visits, but not before the failover has played out (default: run until Ctrl-C)')
    .option('--interval <seconds>', 'pause between visitor requests', '1')
    .option('--nodes <n>', 'torbalance nodes (1 to 5; 1: a single node, no failover)', '3')
    .option('--no-failover', 'do not kill the publisher; just serve')
    .option('--dir <path>', 'working directory (default: a new temporary directory, removed at exit)')
    .option('--keep', 'keep the temporary directory (logs) at exit')
    .action(async (o: DemoOptions) => {
      await runDemo(o);
    });
}
