/**
 * The mesh over Tor while clustered, in the shared private network: two torbalance node
 * processes (test/helpers/cluster-harness.ts, `transport: 'tor'`) whose mesh runs only through
 * their coordination onion services (`tor:<mesh onion>:7700`).
 *
 * `PublishHidServDescriptors 0` is global in tor (tor-facts §1.9), so once clustered the nodes'
 * tors stop uploading the coordination onions' descriptors too; each node then publishes its
 * own (src/node/cluster.ts). Checked:
 * (a) the two nodes form the mesh over Tor and both switch their tor to
 *     `PublishHidServDescriptors 0` (GETCONF on each node's tor);
 * (b) after the switch each node's mesh descriptors are uploaded by OUR publisher: `HS_DESC
 *     UPLOADED` for the mesh address on the node's control port with no tor-own `UPLOAD` of it
 *     after the switch (tor emits UPLOAD only for its own uploads, tor-facts §1.2), and the
 *     node's status shows the mesh publisher's round; a client's HSFETCH (SERVER= each HSDir
 *     we posted to) decodes with our core to exactly the node's mesh intro points (its tor's
 *     `GETINFO hs/service/desc/id/<mesh>`);
 * (c) across time-period roll-overs (4-minute periods at voting interval 10; bounded wait):
 *     before the switch tor can have uploaded the mesh descriptors only for the periods of
 *     that moment (N, N+1), which stay valid for hours, so the check waits until clients use a
 *     period ≥ N+2 (nothing but our publisher can have uploaded it). Then a FRESH client tor
 *     reaches both mesh onions (SOCKS connect to `<mesh onion>:7700` succeeds), its HSFETCH
 *     decodes to the node's current mesh intro points, still no tor-own UPLOAD of the mesh
 *     address was seen, and the mesh stays formed.
 * Times are printed, never asserted.
 */
import { SocksClient } from 'socks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TorControl } from '../../src/adapters/tor/control.js';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { parseHsDesc, parseHsDescContent } from '../../src/core/torctl/events.js';
import { introPointsFromServiceDescriptor } from '../../src/node/publisher/intro-collector.js';
import type { IntroPointWire } from '../../src/core/intro/wire.js';
import { TestCluster, type StatusSnapshot } from '../helpers/cluster-harness.js';
import { startTargetBehindOnion, type TargetBehindOnion } from '../helpers/node-harness.js';
import { addClient, sharedTestnet, uniqueNickname } from '../helpers/testnet.js';
import { cleanupTors, openRecorder, secs, waitUntil, type EventRecorder } from '../helpers/tor-integration.js';

const net = sharedTestnet();
let target: TargetBehindOnion;
let cluster: TestCluster;
let client: EventRecorder;
let spawnedAt = 0;
let switchConfirmedAt = 0;
/** HS_DESC recorders on the nodes' control ports (opened before the nodes cluster). */
const recorders: EventRecorder[] = [];
const NODES = [0, 1] as const;

function log(msg: string): void {
  console.log(`[mesh-tor-clustered] ${msg}`);
}

beforeAll(async () => {
  target = await startTargetBehindOnion(net);
  spawnedAt = Date.now();
  // Rotation-safe harvesting pulses PublishHidServDescriptors, a global option, so tor then
  // also uploads the coordination onion's own descriptors once (valid ones of the same service
  // with the same intro points). This file checks the coordination onion's own publishing, which
  // needs tor silent; the pulses themselves are covered by next-harvest.test.ts and cluster.test.ts.
  cluster = await TestCluster.start({ net, target: target.onion, nodes: 2, transport: 'tor', extraToml: () => '[cluster.publish]\nrotation_safe = false' });
  client = await openRecorder(net.clients[0]!.control, ['HS_DESC', 'HS_DESC_CONTENT']);
}, 180_000);

afterAll(async () => {
  await (cluster as TestCluster | undefined)?.close();
  await (target as TargetBehindOnion | undefined)?.stop();
  await cleanupTors();
}, 120_000);

function meshAddr(i: number): string {
  const a = cluster.meshAddress(i);
  if (a === undefined) throw new Error(`node${i} has no mesh address`);
  return a;
}

function cs(i: number): NonNullable<StatusSnapshot['cluster']> | undefined {
  return cluster.status(i)?.cluster;
}

/** Both nodes see each other alive over tor and both say their tor no longer publishes. */
function formed(): boolean {
  return NODES.every((i) => {
    const c = cs(i);
    return c !== undefined && c.clustered && c.torPublishes === false && c.peers.length === 1 && c.peers[0]!.state === 'alive' && c.peers[0]!.addr === `tor:${meshAddr(1 - i)}:7700`;
  });
}

async function withControl<T>(i: number, f: (c: TorControl) => Promise<T>): Promise<T> {
  const ctl = await TorControl.connect({ kind: 'unix', path: cluster.controlSocket(i) });
  try {
    return await f(ctl);
  } finally {
    await ctl.close().catch(() => undefined);
  }
}

/** Node i's own mesh intro points (its tor's desc_current of the mesh service). */
async function meshIntroPoints(i: number): Promise<IntroPointWire[]> {
  const a = decodeOnionAddress(meshAddr(i));
  return withControl(i, async (ctl) => {
    const got = introPointsFromServiceDescriptor(await ctl.getInfo(`hs/service/desc/id/${a.label}`), a.publicKey, Math.floor(Date.now() / 1000));
    if (got === undefined) throw new Error(`node${i} has no mesh descriptor yet`);
    return got.points;
  });
}

const keyOf = (p: IntroPointWire): string => `${p.ls}|${p.authKey}`;
const keys = (ps: readonly IntroPointWire[]): string[] => ps.map(keyOf).sort();

/** HSFETCH `address` from `rec`'s tor with SERVER=`server`: intro points + revision counter, or 'failed'. */
async function fetchFrom(rec: EventRecorder, address: string, server: string): Promise<{ points: IntroPointWire[]; counter: string; blindedKey: string } | 'failed'> {
  const a = decodeOnionAddress(address);
  const since = rec.mark();
  await rec.control.hsFetch(a.label, [server]);
  return rec.waitFor(
    `HSFETCH ${a.label} from ${server}`,
    (r) => {
      if (r.event.type === 'HS_DESC_CONTENT') {
        const c = parseHsDescContent(r.event);
        if (c.address !== a.label || c.hsDir?.fingerprint !== server) return undefined;
        if (c.descriptor === '') return 'failed' as const;
        const got = introPointsFromServiceDescriptor(c.descriptor, a.publicKey, Math.floor(Date.now() / 1000));
        return got === undefined ? ('failed' as const) : { points: got.points, counter: got.revisionCounter.toString(), blindedKey: (c.descriptorId ?? '').replace(/=+$/, '') };
      }
      if (r.event.type === 'HS_DESC') {
        const e = parseHsDesc(r.event);
        if (e.action === 'FAILED' && e.address === a.label && e.hsDir?.fingerprint === server) return 'failed' as const;
      }
      return undefined;
    },
    { since, timeoutMs: 30_000 },
  );
}

/** The mesh publisher's last round of node i (throws if none). */
function lastMeshPublish(i: number): NonNullable<NonNullable<NonNullable<StatusSnapshot['cluster']>['meshOnion']>['publish']>['lastPublish'] {
  return cs(i)?.meshOnion?.publish?.lastPublish;
}

/**
 * Fetch node i's mesh descriptor from every HSDir its last round posted to; at least one must
 * serve it, and every served one must hold exactly the node's mesh intro points and one of
 * our revision counters.
 */
async function checkServed(rec: EventRecorder, i: number, what: string, minPeriod?: number): Promise<void> {
  const before = lastMeshPublish(i);
  if (before === undefined) throw new Error(`node${i}: no mesh publish`);
  const want = keys(await meshIntroPoints(i));
  const servers = [...new Set(before.descriptors.flatMap((d) => d.servers))];
  const results: string[] = [];
  let served = 0;
  for (const s of servers) {
    const fetch = (): Promise<Exclude<Awaited<ReturnType<typeof fetchFrom>>, 'failed'> | string> => fetchFrom(rec, meshAddr(i), s).catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
    let r = await fetch();
    // a rotation of the node's intro points between our GETINFO and the HSDir's copy: the
    // publisher republishes within seconds; fetch again (bounded) before judging
    for (let k = 0; k < 4 && typeof r !== 'string' && JSON.stringify(keys(r.points)) !== JSON.stringify(want); k++) {
      await new Promise((res) => setTimeout(res, 10_000));
      want.splice(0, want.length, ...keys(await meshIntroPoints(i)));
      r = await fetch();
    }
    if (typeof r === 'string') {
      results.push(`${s.slice(0, 6)}:${r.slice(0, 20)}`);
      continue;
    }
    served++;
    const after = lastMeshPublish(i);
    const ours = new Set([...before.descriptors, ...(after?.descriptors ?? []), ...history[i]!].map((d) => typeof d === 'string' ? d : d.revisionCounter));
    expect(keys(r.points)).toEqual(want);
    if (minPeriod !== undefined) {
      // the descriptor the client fetched is for a period tor never uploaded (see the module doc)
      const period = blindedPeriods[i]!.get(r.blindedKey);
      expect(period).toBeDefined();
      expect(period!).toBeGreaterThanOrEqual(minPeriod);
    }
    // provenance by counter is logged only: the status snapshot (1/s) can miss a round
    results.push(`${s.slice(0, 6)}:ok${ours.has(r.counter) ? '' : '(counter of an unseen round)'}`);
  }
  log(`${what}: node${i} mesh descriptor served by ${served}/${servers.length} HSDirs we posted to (${results.join(' ')}); ${want.length} intro points`);
  expect(served).toBeGreaterThan(0);
}

/** Revision counters of every mesh round seen in the nodes' status snapshots. */
const history: Set<string>[] = [new Set(), new Set()];
/** Blinded key (base64, no padding) → period number, of every mesh round seen. */
const blindedPeriods: Map<string, number>[] = [new Map(), new Map()];
const historyTimer = setInterval(() => {
  if ((cluster as TestCluster | undefined) === undefined) return;
  for (const i of NODES) {
    for (const d of lastMeshPublish(i)?.descriptors ?? []) {
      if (d.revisionCounter !== '') history[i]!.add(d.revisionCounter);
      blindedPeriods[i]!.set(d.blindedKey.replace(/=+$/, ''), d.periodNum);
    }
  }
}, 250);
afterAll(() => {
  clearInterval(historyTimer);
});

/** No tor-own UPLOAD of node i's mesh address was recorded after its tor said PublishHidServDescriptors=0. */
function noTorUploads(rec: EventRecorder, i: number): void {
  const label = decodeOnionAddress(meshAddr(i)).label;
  expect(rec.events.filter((r) => { const e = parseHsDesc(r.event); return r.at > switchConfirmedAt && e.action === 'UPLOAD' && e.address === label; }).length).toBe(0);
}

/** SOCKS connect through `socksPort` to `<onion>:7700` (stream to the mesh listener). */
async function reach(socksPort: number, onion: string, tag: string): Promise<number> {
  const t0 = Date.now();
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5, userId: tag, password: 'x' },
    command: 'connect',
    destination: { host: onion, port: 7700 },
    timeout: 90_000,
  });
  socket.destroy();
  return Date.now() - t0;
}

describe('mesh over Tor while clustered', () => {
  let switchedAt = 0;
  const firstPeriods: number[][] = [];

  it('(a) two nodes mesh over their coordination onions and switch to PublishHidServDescriptors 0', async () => {
    // HS_DESC recorders on both nodes' tors as soon as their control sockets answer (our first
    // mesh round follows the switch within about a second)
    for (const i of NODES) {
      recorders[i] = await waitUntil(`node${i} control socket`, () => openRecorder({ kind: 'unix', path: cluster.controlSocket(i) }, ['HS_DESC']), { timeoutMs: 120_000, intervalMs: 100 });
    }
    await waitUntil('the mesh over tor, both clustered', () => (formed() ? true : undefined), { timeoutMs: 420_000, intervalMs: 500 });
    switchedAt = Date.now();
    log(`mesh formed over tor and both clustered ${secs(switchedAt - spawnedAt)} after node0 was spawned (tor bootstrap included)`);
    for (const i of NODES) {
      const reply = await withControl(i, (c) => c.request('GETCONF PublishHidServDescriptors'));
      expect(reply.status).toBe(250);
      expect(reply.lines.map((l) => l.text)).toContain('PublishHidServDescriptors=0');
    }
    switchConfirmedAt = Date.now();
  }, 480_000);

  it('(b) each node uploads its own mesh descriptors after the switch; the HSDirs serve exactly its mesh intro points', async () => {
    expect(switchedAt).toBeGreaterThan(0);
    for (const i of NODES) {
      const label = decodeOnionAddress(meshAddr(i)).label;
      const rec = recorders[i]!;
      const t0 = Date.now();
      // our round after the switch (status) …
      const rec0 = await waitUntil(
        `node${i} mesh publish after the switch`,
        () => {
          const m = cs(i)?.meshOnion;
          const last = m?.publish?.lastPublish;
          if (m === undefined || !m.publishing || last === undefined || last.atMs < switchedAt - 60_000) return undefined;
          return last.hsdirs.some((h) => h.result === 'uploaded') ? last : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      // … and an UPLOADED for the mesh address on the node's control port (ours: HSPOST; the
      // recorder was opened after the switch, and tor's own UPLOAD never appears).
      await waitUntil(
        `node${i} HS_DESC UPLOADED for the mesh address`,
        () => (rec.events.some((r) => { const e = parseHsDesc(r.event); return r.at >= rec0.atMs && e.action === 'UPLOADED' && e.address === label; }) ? true : undefined),
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      noTorUploads(rec, i);
      log(
        `node${i}: mesh publish (${rec0.reason}) periods ${rec0.descriptors.map((d) => d.periodNum).join(',')}, ` +
          `uploaded ${rec0.hsdirs.filter((h) => h.result === 'uploaded').length}/${rec0.hsdirs.length}, ${rec0.introPoints} intro points; seen ${secs(Date.now() - t0)} into (b)`,
      );
      expect(cs(i)!.meshOnion!.address).toBe(meshAddr(i));
      firstPeriods[i] = rec0.descriptors.map((d) => d.periodNum);
      await checkServed(client, i, 'after the switch');
    }
  }, 600_000);

  it('(c) a fresh client still reaches both mesh onions across a time-period roll-over, and the mesh stays formed', async () => {
    const periods0 = NODES.map((i) => firstPeriods[i]!);
    const t0 = Date.now();
    for (const i of NODES) {
      // clients on a period tor never uploaded: the current period beyond every period of the first round
      await waitUntil(
        `node${i} mesh publish for periods after ${periods0[i]!.join(',')}`,
        () => {
          const d = lastMeshPublish(i)?.descriptors ?? [];
          // the 'first' slot is the consensus's current period, the one clients fetch
          return d.some((x) => x.descriptor === 'first' && x.periodNum > Math.max(...periods0[i]!) && x.revisionCounter !== '') ? true : undefined;
        },
        { timeoutMs: 600_000, intervalMs: 1000 },
      );
      const last = lastMeshPublish(i)!;
      log(`node${i}: mesh periods ${periods0[i]!.join(',')} → ${last.descriptors.map((d) => d.periodNum).join(',')} after ${secs(Date.now() - t0)} (reason ${last.reason}, uploaded ${last.hsdirs.filter((h) => h.result === 'uploaded').length}/${last.hsdirs.length})`);
    }
    // let the new round settle (uploads done), then a tor that never saw these onions
    await waitUntil('mesh publishes settled', () => (NODES.every((i) => (lastMeshPublish(i)?.hsdirs.some((h) => h.result === 'uploaded') ?? false)) ? true : undefined), {
      timeoutMs: 120_000,
    });
    const fresh = await addClient({ nickname: uniqueNickname('mfc') });
    const freshRec = await openRecorder(fresh.info.control, ['HS_DESC', 'HS_DESC_CONTENT']);
    for (const i of NODES) {
      const ms = await waitUntil(`fresh client reaches node${i}'s mesh onion`, () => reach(fresh.info.socksPort, meshAddr(i), `fresh${i}-${Date.now()}`), { timeoutMs: 240_000, intervalMs: 2000 });
      log(`fresh client reached node${i}'s mesh onion after the roll-overs (SOCKS connect ${ms} ms)`);
      await checkServed(freshRec, i, 'after the roll-overs', Math.max(...periods0[i]!) + 1);
      noTorUploads(recorders[i]!, i);
    }
    expect(formed()).toBe(true);
    for (const i of NODES) expect(cs(i)!.meshOnion!.publishing).toBe(true);
  }, 900_000);
});
