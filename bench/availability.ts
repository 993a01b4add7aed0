/**
 * Availability benchmark: `npm run bench -- availability [--settle-s N]`.
 *
 * One run in its own private tor network (3 authorities, 5 relays, one client, 10 s voting
 * interval: 4-minute periods, every node rotates at each SR-run start, all together — the worst
 * case) with a 3-node torbalance cluster as processes in front of a local HTTP app, and the same
 * app behind a plain tor onion service of the same network as the baseline. Two visitors run
 * side by side through the one long-lived client tor (never NEWNYMed): a visit every 2 s on a
 * fresh circuit to the master address, and the same to the plain onion service
 * (test/helpers/visitor-loop.ts). Phases:
 * 1. rotations: until two SR-run starts and two period starts have passed (+30 s);
 * 2. member kill: SIGKILL of a non-publisher (process and tor), then 60 s;
 * 3. publisher kill: SIGKILL of the publisher, then 60 s.
 * Printed per phase and overall, master beside plain: failed visits, longest outage, slowest
 * and median visit. Nothing is asserted.
 *
 * Every tor of the run — the visitor's, the nodes', the plain service's — pins its circuit
 * build timeout to 1 s (`LearnCircuitBuildTimeout 0`), a live network's order: a timeout
 * learned on loopback is tens of milliseconds and, on a loaded machine, abandons builds and
 * rendezvous circuits that would have succeeded (docs/DESIGN.md "Losing a node"). Both sides
 * get the same torrc, so the comparison stays fair.
 */
import { createServer } from 'node:http';
import { startTestnet } from '../src/adapters/tor/testnet.js';
import { srRunSeconds } from '../src/core/hs/time-period.js';
import { rotationPhase } from '../src/core/publish/rotation.js';
import { TestCluster } from '../test/helpers/cluster-harness.js';
import { formatVisits, summarizeVisits, visitLoop, type Visit } from '../test/helpers/visitor-loop.js';

/** The torrc lines every tor of the run gets (module doc). */
const PINNED_CBT: [string, string][] = [
  ['LearnCircuitBuildTimeout', '0'],
  ['CircuitBuildTimeout', '1'],
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function arg(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

export async function main(args: readonly string[]): Promise<void> {
  const settleMs = Number(arg(args, '--settle-s', '60')) * 1000;
  const http = createServer((_q, r) => {
    r.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    r.end('ok');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as { port: number }).port;
  const net = await startTestnet({
    baseDir: `/tmp/tba-${process.pid}`,
    clients: 0,
    votingIntervalSeconds: 10,
    services: [{ nickname: 'hs0', target: { host: '127.0.0.1', port }, extraTorrc: PINNED_CBT }],
    onProgress: (m) => {
      console.log(`[testnet] ${m}`);
    },
  });
  let cluster: TestCluster | undefined;
  try {
    const visitor = await net.addClient({ nickname: 'client0', extraTorrc: PINNED_CBT });
    const desc = net.description;
    const plain = desc.services[0]!.onion;
    cluster = await TestCluster.start({ net: desc, target: plain, tor: () => ({ extraConfig: PINNED_CBT.map(([k, v]) => `${k} ${v}`) }) });
    const c = cluster;
    const alive = new Set([0, 1, 2]);
    /** The publisher all live nodes agree on, once it published for all of them. */
    const publisher = async (): Promise<number> => {
      for (;;) {
        const st = [...alive].map((i) => c.status(i)?.cluster);
        const first = st[0];
        const p = first === undefined ? -1 : c.indexOf(first.publisher);
        if (p >= 0 && alive.has(p) && st.every((x) => x?.publisher === first!.publisher) && Object.keys(c.status(p)?.cluster?.publish?.lastPublish?.perNode ?? {}).length === alive.size) return p;
        await sleep(500);
      }
    };
    let pub = await publisher();
    console.log(`[availability] cluster converged; publisher node${pub}`);
    await sleep(settleMs);

    let running = true;
    const socksPort = visitor.socksPort;
    const [host, vport] = plain.includes(':') ? [plain.split(':')[0]!, Number(plain.split(':')[1])] : [plain, 80];
    const loops = Promise.all([
      visitLoop({ socksPort, host: c.masterAddress, port: 80, tag: 'm', running: () => running }),
      visitLoop({ socksPort, host, port: vport, tag: 'p', running: () => running }),
    ]);
    const tp = desc.timePeriod;
    const t0 = Date.now();
    const ph = rotationPhase(t0 / 1000, tp);
    const run = srRunSeconds(tp);
    const ahead = [0, 1, 2, 3].flatMap((k) => [
      { kind: 'rotation', at: ph.runStart + k * run },
      { kind: 'period start', at: ph.periodStart + k * run },
    ]);
    const crossed = [...ahead.filter((b) => b.kind === 'rotation' && b.at > t0 / 1000 + 5).slice(0, 2), ...ahead.filter((b) => b.kind === 'period start' && b.at > t0 / 1000 + 5).slice(0, 2)].sort((a, b) => a.at - b.at);
    const tRotEnd = (Math.max(...crossed.map((b) => b.at)) + 30) * 1000;
    console.log(`[availability] phase 1: ${crossed.map((b) => `${b.kind} at +${Math.round(b.at - t0 / 1000)} s`).join(', ')}`);
    await sleep(tRotEnd - Date.now());
    pub = await publisher();
    const member = (pub + 1) % 3;
    const tMember = Date.now();
    await c.kill9(member);
    alive.delete(member);
    console.log(`[availability] phase 2: SIGKILL member node${member}`);
    await sleep(60_000);
    pub = await Promise.race([publisher(), sleep(60_000).then(() => -1)]);
    const tPub = Date.now();
    if (pub >= 0) {
      await c.kill9(pub);
      console.log(`[availability] phase 3: SIGKILL publisher node${pub}`);
    } else console.log('[availability] phase 3: no converged publisher after the member kill; killing nothing');
    await sleep(60_000);
    running = false;
    const [m, p] = await loops;
    const end = Date.now();
    const row = (name: string, from: number, to: number): void => {
      console.log(`[availability] ${name}`);
      for (const [who, vs] of [['  torbalance', m], ['  plain onion', p]] as [string, Visit[]][]) console.log(`[availability] ${formatVisits(who, summarizeVisits(vs, from, to))}`);
    };
    row('rotations (2 SR-run starts, 2 period starts)', t0, tMember);
    row('member kill → +60 s', tMember, tPub);
    row('publisher kill → +60 s', tPub, end);
    row('overall', t0, end);
    const failed = m.filter((v) => !v.ok);
    if (failed.length > 0) console.log(`[availability] torbalance failures at ${failed.map((v) => `+${Math.round((v.at - t0) / 1000)} s (${v.err ?? ''})`).join(', ')}`);
    for (const i of [0, 1, 2]) console.log(`[availability] node${i} rotation: ${JSON.stringify({ ...c.status(i)?.cluster?.rotation, next: undefined })}`);
  } finally {
    await cluster?.close().catch(() => undefined);
    await net.stop();
    http.close();
  }
}
