/**
 * Per-HSDir placement against real tor (docs/DESIGN.md "Placement: PoW and more than 20 intro
 * points"): three node processes of one cluster in the private network, each tor with 7 intro
 * points (21 in all, more than one descriptor holds) and PoW defences on with a queue rate of
 * 1 request/s.
 *
 * (1) More than 20: the HSDirs hold different variants of the client-current descriptor; each
 *     lists ≤ 20 intro points from all three nodes, together they list more than 20, and visits
 *     over fresh circuits are served by every node.
 * (2) A bounded intro flood on loopback (≤ 24 concurrent visits through the client tor, at most
 *     7 minutes, stopped as soon as a node's tor suggests an effort above 0) raises a node's
 *     suggested effort; the publisher switches to per-node placement, and each fetched variant
 *     lists ONE node's intro points with THAT node's pow-params (its tor's seed).
 * (3) For each node: its variant fetched from one of its HSDirs into the client's cache
 *     (`HSFETCH SERVER=`; equal revision counters replace the cached one), then a visit on a
 *     fresh circuit: served by that node, the client solving that node's puzzle where its
 *     effort is above 0 — whose tor then logs a dequeued request with effort > 0. No node's
 *     tor logs a dropped solution (seed mismatch, unsolicited, failed verification).
 *
 * `cluster.publish.rotation_safe = false` here, and that is the one thing this file steps
 * around: tor suggests an effort only every 300 s after its PoW state was created, and every
 * harvest's SETCONF creates it anew (docs/DESIGN.md, same section); the private network's SR
 * runs are 4 minutes, so a rotation-safe node's effort would never rise. Without harvests the
 * nodes' desc_current sets are listed under both periods, so pow-params (bound to their
 * period's blinded key) are published in the descriptor of desc_current's period only: the
 * checks in (3) run while that period is the client-current one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGetThroughTor } from '../../src/adapters/net/onion-http.js';
import { TorControl } from '../../src/adapters/tor/control.js';
import { toBase64 } from '../../src/core/bytes.js';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { decodeOwnServiceDescriptor, type DecodedDescriptor } from '../../src/core/hsdesc/descriptor.js';
import { parseHsDesc, parseHsDescContent } from '../../src/core/torctl/events.js';
import type { PublishRecord } from '../../src/node/publisher/publisher.js';
import { TestCluster, TEST_TIMINGS } from '../helpers/cluster-harness.js';
import { startTargetBehindOnion, type TargetBehindOnion } from '../helpers/node-harness.js';
import { sharedTestnet } from '../helpers/testnet.js';
import { cleanupTors, openRecorder, secs, waitUntil, type EventRecorder } from '../helpers/tor-integration.js';

const net = sharedTestnet();
const INTRO_POINTS = 7;
let target: TargetBehindOnion;
let cluster: TestCluster;
let client: EventRecorder;
let label: string;
let identityPublicKey: Uint8Array;

function log(msg: string): void {
  console.log(`[pow-placement] ${msg}`);
}

const torInfoLog = (i: number): string => join(cluster.nodes[i]!.dir, 'tor-info.log');

beforeAll(async () => {
  target = await startTargetBehindOnion(net);
  cluster = await TestCluster.start({
    net,
    target: target.onion,
    timings: TEST_TIMINGS,
    tor: (_i, dir) => ({
      keys: `num_intro_points = ${INTRO_POINTS}\n`,
      extraConfig: [`Log info file ${join(dir, 'tor-info.log')}`],
    }),
    extraToml: () => '[tor.pow]\nenabled = true\nqueue_rate = 1\nqueue_burst = 1\n\n[cluster.publish]\nrotation_safe = false\n',
  });
  label = decodeOnionAddress(cluster.masterAddress).label;
  identityPublicKey = decodeOnionAddress(cluster.masterAddress).publicKey;
  client = await openRecorder(net.clients[0]!.control, ['HS_DESC', 'HS_DESC_CONTENT']);
}, 180_000);

afterAll(async () => {
  await (cluster as TestCluster | undefined)?.close();
  await (target as TargetBehindOnion | undefined)?.stop();
  await cleanupTors();
}, 120_000);

/** Node i's own intro points' auth keys (its tor's desc_current). */
async function ownAuthKeys(i: number): Promise<Set<string>> {
  const ctl = await TorControl.connect({ kind: 'unix', path: cluster.controlSocket(i) });
  try {
    const d = decodeOwnServiceDescriptor(await ctl.getInfo(`hs/service/desc/id/${label}`), identityPublicKey, Math.floor(Date.now() / 1000));
    return new Set(d.introPoints.map((p) => toBase64(p.authKey)));
  } finally {
    await ctl.close().catch(() => undefined);
  }
}

/** HSFETCH from one HSDir into the client's cache: the decoded descriptor, or undefined if that HSDir has none. */
async function fetchFrom(server: string): Promise<DecodedDescriptor | undefined> {
  const since = client.mark();
  await client.control.hsFetch(label, [server]);
  const text = await client.waitFor(
    `HSFETCH SERVER=${server}`,
    (r) => {
      if (r.event.type === 'HS_DESC_CONTENT') {
        const c = parseHsDescContent(r.event);
        if (c.address === label && c.hsDir?.fingerprint === server) return c.descriptor;
      }
      if (r.event.type === 'HS_DESC') {
        const e = parseHsDesc(r.event);
        if (e.action === 'FAILED' && e.address === label && e.hsDir?.fingerprint === server) return '';
      }
      return undefined;
    },
    { since, timeoutMs: 30_000 },
  );
  return text === '' ? undefined : decodeOwnServiceDescriptor(text, identityPublicKey, Math.floor(Date.now() / 1000));
}

async function getPage(tag: string, timeoutMs = 45_000): Promise<number> {
  const r = await httpGetThroughTor({ host: '127.0.0.1', port: net.clients[0]!.socksPort, isolation: tag }, { host: cluster.masterAddress, port: 80, path: '/' }, { timeoutMs });
  return r.status;
}

const requestCounts = (): number[] => cluster.nodes.map((_, i) => cluster.status(i)?.proxy.requests ?? 0);

/** The publisher's latest record, once every node is published. */
function publisherRecord(): PublishRecord | undefined {
  const st = cluster.nodes.map((_, i) => cluster.status(i));
  const pubs = new Set(st.map((s) => s?.cluster?.publisher));
  if (pubs.size !== 1) return undefined;
  const p = cluster.indexOf([...pubs][0]);
  const rec = p < 0 ? undefined : st[p]?.cluster?.publish?.lastPublish;
  return rec !== undefined && Object.keys(rec.perNode).length === cluster.nodes.length ? rec : undefined;
}

/** Every HSDir named in the last record, with the node whose pow-params its variant carries (per-node). */
function hsdirsOf(rec: PublishRecord): { fp: string; powNode: string | undefined }[] {
  return rec.descriptors.flatMap((d) => (d.groups ?? [{ servers: d.servers }]).flatMap((g) => g.servers.map((fp) => ({ fp, powNode: 'powNode' in g ? g.powNode : undefined }))));
}

describe('per-HSDir placement: more than 20 intro points, PoW across nodes', () => {
  it('publishes > 20 intro points across the HSDirs, every node reached; an intro flood switches to per-node PoW, served by every node with its own seed', async () => {
    const ids = await waitUntil('node ids', () => (cluster.nodeIds().every((x) => x !== undefined) ? (cluster.nodeIds() as string[]) : undefined), { timeoutMs: 120_000 });
    // Each node's tor has built its 7 intro points, and the publisher lists them all.
    const rec1 = await waitUntil(
      'a spread publish of all 21 intro points',
      () => {
        const r = publisherRecord();
        return r !== undefined && r.descriptors.some((d) => d.placement === 'spread' && (d.introPoints ?? 0) > 20) ? r : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    // (1) What clients can fetch: the variants of the client-current descriptor. The nodes'
    // desc_current sets are read before and after (a rotation, every 4 minutes here, replaces them).
    const ownBefore = await Promise.all(cluster.nodes.map((_, i) => ownAuthKeys(i)));
    const fetched: string[][] = [];
    for (const { fp } of hsdirsOf(rec1)) {
      const d = await fetchFrom(fp);
      if (d === undefined) continue;
      expect(d.inner.powParams).toBeUndefined(); // effort is 0 everywhere: no pow-params yet
      fetched.push(d.introPoints.map((p) => toBase64(p.authKey)));
    }
    const ownAfter = await Promise.all(cluster.nodes.map((_, i) => ownAuthKeys(i)));
    const ownerOf = (authKey: string): number => ownBefore.findIndex((s, j) => s.has(authKey) || ownAfter[j]!.has(authKey));
    const union = new Set<string>();
    for (const keys of fetched) {
      expect(keys.length).toBeLessThanOrEqual(20);
      expect(new Set(keys.map(ownerOf))).toEqual(new Set([0, 1, 2]));
      for (const k of keys) union.add(k);
    }
    const variants = fetched.length;
    log(`spread: ${variants} variants fetched, ${union.size} distinct intro points`);
    expect(variants).toBeGreaterThan(1);
    expect(union.size).toBeGreaterThan(20);

    await client.control.signal('NEWNYM');
    const before = requestCounts();
    let ok = 0;
    for (let k = 0; k < 24; k++) {
      const status = await getPage(`spread-${k}-${Date.now()}`).catch(() => 0);
      if (status === 200) ok++;
    }
    await new Promise((r) => setTimeout(r, 1500));
    const served = requestCounts().map((a, i) => a - before[i]!);
    log(`spread: ${ok}/24 visits ok, served per node ${JSON.stringify(served)}`);
    expect(ok).toBe(24);
    for (const n of served) expect(n).toBeGreaterThan(0);

    // (2) A bounded flood until some node's tor suggests an effort above 0.
    const floodStart = Date.now();
    let stop = false;
    let floodVisits = 0;
    const flooders = Array.from({ length: 24 }, async (_, w) => {
      for (let k = 0; !stop && Date.now() - floodStart < 420_000; k++) {
        floodVisits++;
        await getPage(`flood-${w}-${k}-${Date.now()}`, 20_000).catch(() => 0);
      }
    });
    const raised = await waitUntil(
      'a node suggesting a PoW effort above 0',
      () => {
        const e = cluster.nodes.map((_, i) => cluster.status(i)?.cluster?.pow?.effort ?? 0);
        return e.some((x) => x > 0) ? e : undefined;
      },
      { timeoutMs: 430_000, intervalMs: 1000 },
    ).finally(() => {
      stop = true;
    });
    await Promise.all(flooders);
    log(`flood: ${floodVisits} visits over ${secs(Date.now() - floodStart)}; suggested efforts ${JSON.stringify(raised)}`);

    // The publisher switches to per-node placement.
    const rec2 = await waitUntil(
      'a per-node publish with pow-params',
      () => {
        const r = publisherRecord();
        return r?.descriptors.some((d) => d.placement === 'per-node' && (d.groups ?? []).some((g) => (g.powEffort ?? 0) > 0)) === true ? r : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // Let the flood's queued requests (≤ 15 s old are kept) drain at 1/s.
    await new Promise((r) => setTimeout(r, 20_000));

    // (3) Each node, through its own variant, while pow-params are in the client-current descriptor.
    const efforts = new Map<number, number>();
    const deadline = Date.now() + 240_000;
    for (let i = 0; i < cluster.nodes.length; i++) {
      for (;;) {
        const rec = publisherRecord() ?? rec2;
        const mine = hsdirsOf(rec).filter((h) => h.powNode === ids[i]);
        // Each rotation (every 4 minutes here) gives the nodes new desc_current intro points:
        // read them just before and after the fetch, so a fetch across a rotation is judged right.
        const before = await Promise.all(cluster.nodes.map((_, j) => ownAuthKeys(j)));
        let d: DecodedDescriptor | undefined;
        for (const h of mine) {
          d = await fetchFrom(h.fp);
          if (d?.inner.powParams !== undefined) break;
        }
        if (d?.inner.powParams !== undefined) {
          const after = await Promise.all(cluster.nodes.map((_, j) => ownAuthKeys(j)));
          const owners = new Set(d.introPoints.map((p) => before.findIndex((set, j) => set.has(toBase64(p.authKey)) || after[j]!.has(toBase64(p.authKey)))));
          expect(owners).toEqual(new Set([i])); // never one node's pow-params over another node's intro points
          efforts.set(i, d.inner.powParams.suggestedEffort);
          const c0 = requestCounts();
          const t0 = Date.now();
          const status = await getPage(`pow-${i}-${Date.now()}`);
          await new Promise((r) => setTimeout(r, 1500));
          const delta = requestCounts().map((a, j) => a - c0[j]!);
          log(`node${i}: effort ${d.inner.powParams.suggestedEffort}, visit ${status} in ${secs(Date.now() - t0)}, served ${JSON.stringify(delta)}`);
          expect(status).toBe(200);
          expect(delta[i]).toBeGreaterThan(0);
          break;
        }
          if (Date.now() > deadline) throw new Error(`node${i}: no variant with pow-params in the client-current descriptor`);
        await new Promise((r) => setTimeout(r, 5000)); // the other period is client-current: wait for desc_current's
      }
    }
    expect([...efforts.values()].some((e) => e > 0)).toBe(true);

    for (let i = 0; i < cluster.nodes.length; i++) {
      const text = readFileSync(torInfoLog(i), 'utf8');
      const dequeued = [...text.matchAll(/Dequeued pending rendezvous request with effort: (\d+)\./g)].map((m) => Number(m[1]));
      const dropped = text.match(/Seed head didn't match either seed|Unsolicited PoW solution|Verification of (challenge effort|EquiX solution) in PoW failed/g) ?? [];
      log(`node${i}: tor dequeued ${dequeued.length} requests, ${dequeued.filter((e) => e > 0).length} with effort > 0 (max ${Math.max(0, ...dequeued)}); dropped solutions: ${dropped.length}`);
      expect(dropped).toEqual([]);
      if ((efforts.get(i) ?? 0) > 0) expect(dequeued.some((e) => e > 0)).toBe(true);
    }
  }, 1_500_000);
});
