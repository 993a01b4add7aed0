/**
 * Publisher scheduling against a fake TorControl (records HSPOSTs, answers with scripted
 * HS_DESC events), a fake network (synthetic ring, test-network schedule: 4-minute periods)
 * and a fake clock: each descriptor goes to exactly its own HSDirs and decrypts to the
 * selected intro points; republish triggers; retries; strictly increasing revision counters,
 * also across two Publisher instances (failover).
 */
import type { PlacementSetting } from '../../../src/core/publish/placement.js';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64, toBase64NoPad } from '../../../src/core/bytes.js';
import { ControlReplyError } from '../../../src/adapters/tor/control.js';
import { descriptorTargets, type DescriptorTargets } from '../../../src/core/hs/hashring.js';
import { HsIdentityKeypair } from '../../../src/core/hs/keys.js';
import { testingNetworkPeriodParams, timePeriodStart } from '../../../src/core/hs/time-period.js';
import { decodeDescriptor, type DecodedDescriptor } from '../../../src/core/hsdesc/descriptor.js';
import { Publisher, type PublishRecord } from '../../../src/node/publisher/publisher.js';
import { introPointToWire, type IntroPointWire } from '../../../src/core/intro/wire.js';
import { FakeClock, FakeControl, FakeNetwork, makeIntroPoints, makeRelays, seededRandom, silentLogger } from './fakes.js';

const PARAMS = testingNetworkPeriodParams(10);
const P = 7_300_000; // a period number in 2025 for 4-minute periods
const T0 = timePeriodStart(P, PARAMS) + 10; // 10 s into period P (between TP and SRV)

const identity = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3));

interface Rig {
  clock: FakeClock;
  control: FakeControl;
  network: FakeNetwork;
  publisher: Publisher;
  records: PublishRecord[];
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.publisher.stop();
});

function rig(opts: { wallS?: number; network?: FakeNetwork; retryMs?: number; seed?: number; refreshMs?: number; placement?: PlacementSetting; publishPow?: boolean; now?: (clock: FakeClock) => number } = {}): Rig {
  const wallS = opts.wallS ?? T0 + 2;
  const clock = new FakeClock(wallS * 1000);
  const control = new FakeControl(clock);
  const rnd = seededRandom(opts.seed ?? 11);
  const network = opts.network ?? new FakeNetwork(T0, makeRelays(rnd, 12), rnd(32), rnd(32));
  const publisher = new Publisher({
    control,
    network,
    identity: { expandedSecretKey: identity.expandedSecretKey, publicKey: identity.publicKey },
    masterAddress: identity.address,
    now: opts.now === undefined ? () => clock.wallMs : () => opts.now!(clock),
    timers: clock,
    randomBytes: seededRandom((opts.seed ?? 11) + 1000),
    logger: silentLogger,
    refreshMs: opts.refreshMs ?? 3_600_000,
    uploadTimeoutMs: 20_000,
    testingTorNetwork: true,
    consensusPollMs: 5_000,
    retryMs: opts.retryMs ?? 5_000,
    ...(opts.placement === undefined ? {} : { placement: opts.placement }),
    ...(opts.publishPow === undefined ? {} : { publishPow: opts.publishPow }),
  });
  const records: PublishRecord[] = [];
  publisher.onPublish((r) => records.push(r));
  const r = { clock, control, network, publisher, records };
  rigs.push(r);
  return r;
}

function targets(net: FakeNetwork): DescriptorTargets {
  return descriptorTargets(net.consensus, identity.publicKey, { relays: net.relays, testingTorNetwork: true });
}

function decode(text: string, wallMs: number): DecodedDescriptor {
  return decodeDescriptor(text, { identityPublicKey: identity.publicKey, periodParams: PARAMS, nowSeconds: Math.floor(wallMs / 1000) });
}

const rnd = seededRandom(5);
const A = makeIntroPoints(rnd, 6, 0);
const B = makeIntroPoints(rnd, 6, 100);
const C = makeIntroPoints(rnd, 6, 200);

function authKeys(d: DecodedDescriptor): string[] {
  return d.introPoints.map((ip) => introPointToWire(ip).authKey).sort();
}
const keysOf = (ps: readonly IntroPointWire[]): string[] => ps.map((p) => p.authKey).sort();

describe('Publisher', () => {
  it('posts each of the two descriptors to exactly its own HSDirs, decrypting to the selected intro points', async () => {
    const { clock, control, network, publisher, records } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }, { id: 'n2', introPoints: B }] });
    await clock.advance(100);
    expect(control.posts).toHaveLength(2);
    const t = targets(network);
    for (const [i, d] of t.descriptors.entries()) {
      const post = control.posts[i]!;
      expect(post.hsAddress).toBe(identity.label);
      expect(post.servers).toEqual(d.hsdirs.map((h) => h.rsaFingerprint));
      expect(post.servers).toHaveLength(8);
      const dec = decode(post.text, post.wallMs);
      expect(dec.periodNum).toBe(d.periodNum);
      expect(toBase64NoPad(dec.blindedPublicKey)).toBe(toBase64NoPad(d.blindedPublicKey));
      expect(authKeys(dec)).toEqual(keysOf([...A, ...B]));
      expect(dec.inner.powParams).toBeUndefined();
      expect(dec.inner.flowControl).toEqual({ versions: '1-2', sendmeInc: 31 });
    }
    // The two descriptors are for different periods (first/second slot).
    expect(t.descriptors[0].periodNum).not.toBe(t.descriptors[1].periodNum);
    expect(records).toHaveLength(1);
    expect(records[0]!.reason).toBe('initial');
    expect(records[0]!.hsdirs.every((h) => h.result === 'uploaded')).toBe(true);
    expect(records[0]!.perNode).toEqual({ n1: 6, n2: 6 });
    expect(publisher.status()).toMatchObject({ active: true, introPoints: 12, publishes: 1, retryPending: 0 });
  });

  it('republishes when the selected intro points change (node change or a node’s points), not on a reorder', async () => {
    const { clock, control, publisher, records } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(2);
    publisher.update({ nodes: [{ id: 'n1', introPoints: [...A].reverse() }] });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(2);
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }, { id: 'n2', introPoints: B }] }); // node joins
    await clock.advance(2000);
    expect(control.posts).toHaveLength(4);
    expect(records.at(-1)!.reason).toBe('intro-points');
    publisher.update({ nodes: [{ id: 'n2', introPoints: B }] }); // node dies
    await clock.advance(2000);
    expect(control.posts).toHaveLength(6);
    expect(authKeys(decode(control.posts[5]!.text, control.posts[5]!.wallMs))).toEqual(keysOf(B));
    publisher.update({ nodes: [{ id: 'n2', introPoints: [...B.slice(1), C[0]!] }] }); // a node's intro point changes
    await clock.advance(2000);
    expect(control.posts).toHaveLength(8);
    expect(authKeys(decode(control.posts[7]!.text, control.posts[7]!.wallMs))).toEqual(keysOf([...B.slice(1), C[0]!]));
  });

  it('merged placement caps at 20 intro points with a fair share per node', async () => {
    const { clock, control, publisher } = rig({ placement: 'merged' });
    publisher.start();
    const many = makeIntroPoints(seededRandom(9), 30, 500);
    publisher.update({ nodes: [{ id: 'a', introPoints: many.slice(0, 10) }, { id: 'b', introPoints: many.slice(10, 20) }, { id: 'c', introPoints: many.slice(20, 30) }] });
    await clock.advance(100);
    expect(control.posts).toHaveLength(2);
    expect(decode(control.posts[0]!.text, control.posts[0]!.wallMs).introPoints).toHaveLength(20);
    expect(publisher.status().lastPublish!.perNode).toEqual({ a: 7, b: 7, c: 6 });
  });

  it('more than 20 intro points: every HSDir gets a variant of ≤ 20 from every node, together listing all of them', async () => {
    const { clock, control, network, publisher } = rig();
    publisher.start();
    const many = makeIntroPoints(seededRandom(9), 30, 500);
    const owner = new Map(many.map((p, i) => [p.authKey, ['a', 'b', 'c'][Math.floor(i / 10)]!]));
    publisher.update({ nodes: [{ id: 'a', introPoints: many.slice(0, 10) }, { id: 'b', introPoints: many.slice(10, 20) }, { id: 'c', introPoints: many.slice(20, 30) }] });
    await clock.advance(100);
    const t = targets(network);
    const rec = publisher.status().lastPublish!;
    expect(rec.perNode).toEqual({ a: 10, b: 10, c: 10 });
    for (const d of t.descriptors) {
      const posts = control.posts.filter((p) => d.hsdirs.some((h) => h.rsaFingerprint === p.servers[0]) && decode(p.text, p.wallMs).blindedPublicKey.every((b, i) => b === d.blindedPublicKey[i]));
      expect(posts.length).toBeGreaterThan(1);
      // The variants partition the descriptor's HSDirs, each HSDir once.
      expect(posts.flatMap((p) => p.servers).sort()).toEqual(d.hsdirs.map((h) => h.rsaFingerprint).sort());
      const seen = new Set<string>();
      const counters = new Set<bigint>();
      for (const p of posts) {
        const dec = decode(p.text, p.wallMs);
        counters.add(dec.revisionCounter);
        expect(dec.introPoints.length).toBeLessThanOrEqual(20);
        const nodes = new Set(dec.introPoints.map((ip) => owner.get(toBase64(ip.authKey))));
        expect([...nodes].sort()).toEqual(['a', 'b', 'c']);
        expect(dec.inner.powParams).toBeUndefined();
        for (const ip of dec.introPoints) seen.add(toBase64(ip.authKey));
      }
      expect(counters.size).toBe(1);
      expect(seen.size).toBe(30);
      expect(rec.descriptors.find((x) => x.descriptor === d.descriptor)!.placement).toBe('spread');
    }
  });

  it('PoW: with a node under load, each HSDir gets ONE node\'s intro points with that node\'s pow-params; back to merged when effort is 0', async () => {
    const { clock, control, network, publisher } = rig({ publishPow: true });
    publisher.start();
    const [cur, nxt] = [toBase64NoPad(targets(network).descriptors[0].blindedPublicKey), toBase64NoPad(targets(network).descriptors[1].blindedPublicKey)];
    const harvestedAtMs = clock.wallMs - 5000;
    const expires = T0 + 7200;
    const seeds = { a: toBase64(new Uint8Array(32).fill(1)), b: toBase64(new Uint8Array(32).fill(2)), c: toBase64(new Uint8Array(32).fill(3)) };
    const [A2, B2, C2] = [makeIntroPoints(rnd, 3, 300), makeIntroPoints(rnd, 3, 400), makeIntroPoints(rnd, 3, 500)];
    const node = (id: 'a' | 'b' | 'c', current: IntroPointWire[], next: IntroPointWire[], effort: number): NonNullable<Parameters<Publisher['update']>[0]>['nodes'][number] => ({
      id,
      introPoints: current,
      currentKey: cur,
      rotationSafe: true,
      next: { blindedKey: nxt, points: next, harvestedAtMs },
      pow: { seed: seeds[id], effort, expires },
    });
    const sets = (effortB: number): NonNullable<Parameters<Publisher['update']>[0]>['nodes'] => [node('a', A, A2, 0), node('b', B, B2, effortB), node('c', C, C2, 0)];
    const owner = new Map<string, 'a' | 'b' | 'c'>(
      ([['a', [...A, ...A2]], ['b', [...B, ...B2]], ['c', [...C, ...C2]]] as const).flatMap(([id, pts]) => pts.map((p) => [p.authKey, id] as const)),
    );
    publisher.update({ nodes: sets(0) });
    await clock.advance(100);
    expect(control.posts).toHaveLength(2);
    for (const p of control.posts) expect(decode(p.text, p.wallMs).inner.powParams).toBeUndefined();

    publisher.update({ nodes: sets(40) });
    await clock.advance(2000);
    const posts = control.posts.slice(2);
    expect(posts.length).toBeGreaterThanOrEqual(6);
    const t = targets(network);
    const fetchOwners = new Set<string>();
    for (const p of posts) {
      const dec = decode(p.text, p.wallMs);
      const nodes = new Set(dec.introPoints.map((ip) => owner.get(toBase64(ip.authKey))));
      expect(nodes.size).toBe(1); // never one node's pow-params over another node's intro points
      const node = [...nodes][0]!;
      expect(dec.inner.powParams).toBeDefined();
      expect(toBase64(dec.inner.powParams!.seed)).toBe(seeds[node]);
      expect(dec.inner.powParams!.suggestedEffort).toBe(node === 'b' ? 40 : 0);
      expect(dec.inner.powParams!.expirationSeconds).toBe(expires);
      fetchOwners.add(node);
    }
    expect([...fetchOwners].sort()).toEqual(['a', 'b', 'c']);
    for (const d of t.descriptors) {
      const mine = posts.filter((p) => p.servers.every((fp) => d.hsdirs.some((h) => h.rsaFingerprint === fp)) && decode(p.text, p.wallMs).blindedPublicKey.every((b, i) => b === d.blindedPublicKey[i]));
      expect(mine.flatMap((p) => p.servers).sort()).toEqual(d.hsdirs.map((h) => h.rsaFingerprint).sort());
    }
    expect(publisher.status().lastPublish!.descriptors.every((d) => d.placement === 'per-node' && (d.groups?.length ?? 0) >= 3)).toBe(true);

    publisher.update({ nodes: sets(0) });
    await clock.advance(2000);
    const back = control.posts.slice(2 + posts.length);
    expect(back).toHaveLength(2);
    for (const p of back) expect(decode(p.text, p.wallMs).inner.powParams).toBeUndefined();
  });

  it('PoW: pow-params leave the descriptor before they expire (a timer re-plans), and expired ones are never posted', async () => {
    const { clock, control, network, publisher } = rig({ placement: 'per-node', publishPow: true });
    publisher.start();
    const now = Math.floor(clock.wallMs / 1000);
    const seed = toBase64(new Uint8Array(32).fill(7));
    const [cur, nxt] = [toBase64NoPad(targets(network).descriptors[0].blindedPublicKey), toBase64NoPad(targets(network).descriptors[1].blindedPublicKey)];
    const next = (points: IntroPointWire[]): { blindedKey: string; points: IntroPointWire[]; harvestedAtMs: number } => ({ blindedKey: nxt, points, harvestedAtMs: clock.wallMs - 5000 });
    publisher.update({
      nodes: [
        { id: 'a', introPoints: A, currentKey: cur, rotationSafe: true, next: next(C), pow: { seed, effort: 5, expires: now + 60 } },
        { id: 'b', introPoints: B, currentKey: cur, rotationSafe: true, next: next(makeIntroPoints(rnd, 3, 600)), pow: { seed, effort: 5, expires: now + 1 } },
      ],
    });
    await clock.advance(100);
    const first = control.posts.map((p) => decode(p.text, p.wallMs));
    expect(first.some((d) => d.inner.powParams !== undefined)).toBe(true);
    // b's expire within the margin: b's variants carry none.
    for (const d of first) if (d.inner.powParams !== undefined) expect(d.inner.powParams.expirationSeconds).toBe(now + 60);
    const n = control.posts.length;
    // Test-network periods are short: the margin is a thirty-second of a period (≥ 2 s).
    await clock.advance(60_000);
    const later = control.posts.slice(n).map((p) => decode(p.text, p.wallMs));
    expect(later.length).toBeGreaterThan(0);
    for (const d of later) expect(d.inner.powParams).toBeUndefined();
    for (const p of control.posts) {
      const d = decode(p.text, p.wallMs);
      if (d.inner.powParams !== undefined) expect(d.inner.powParams.expirationSeconds).toBeGreaterThan(Math.floor(p.wallMs / 1000));
    }
  });

  it('republishes on a new HSDir set (consensus change) but not on a new consensus with the same plan', async () => {
    const { clock, control, network, publisher, records } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    expect(control.posts).toHaveLength(2);
    network.setValidAfter(T0 + 10); // next consensus, same period and SRVs
    await clock.advance(5000);
    expect(control.posts).toHaveLength(2);
    const extra = makeRelays(seededRandom(77), 30);
    network.relays = [...network.relays, ...extra]; // relays join: the responsible HSDirs change
    await clock.advance(5000);
    expect(control.posts).toHaveLength(4);
    expect(records.at(-1)!.reason).toBe('plan');
    const t = targets(network);
    expect(control.posts[2]!.servers).toEqual(t.descriptors[0].hsdirs.map((h) => h.rsaFingerprint));
    expect(control.posts[3]!.servers).toEqual(t.descriptors[1].hsdirs.map((h) => h.rsaFingerprint));
  });

  it('republishes both descriptors for the new periods at a period roll-over', async () => {
    const { clock, control, network, publisher, records } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    const before = targets(network).descriptors.map((d) => d.periodNum);
    const next = timePeriodStart(P + 1, PARAMS);
    await clock.advance((next - Math.floor(clock.wallMs / 1000)) * 1000 + 500);
    network.setValidAfter(next);
    await clock.advance(5000);
    const after = targets(network).descriptors.map((d) => d.periodNum);
    expect(after).not.toEqual(before);
    const last = control.posts.slice(-2).map((p) => decode(p.text, p.wallMs).periodNum);
    expect(last).toEqual(after);
    expect(records.at(-1)!.reason).toContain('plan');
    for (const [i, p] of control.posts.slice(-2).entries()) expect(p.servers).toEqual(targets(network).descriptors[i]!.hsdirs.map((h) => h.rsaFingerprint));
  });

  it('republishes every refreshMs with higher revision counters', async () => {
    const { clock, control, publisher, records } = rig({ refreshMs: 60_000 });
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    await clock.advance(60_000);
    expect(records.map((r) => r.reason)).toEqual(['initial', 'refresh']);
    const counters = control.posts.map((p) => decode(p.text, p.wallMs).revisionCounter);
    expect(counters[2]!).toBeGreaterThan(counters[0]!);
    expect(counters[3]!).toBeGreaterThan(counters[1]!);
  });

  it('counters strictly increase across successive publishes within the same second (waits for the next second)', async () => {
    const { clock, control, publisher } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(10);
    publisher.update({ nodes: [{ id: 'n1', introPoints: B }] });
    await clock.advance(10);
    publisher.update({ nodes: [{ id: 'n1', introPoints: C }] });
    await clock.advance(3000);
    expect(control.posts).toHaveLength(6);
    for (const slot of [0, 1]) {
      const cs = control.posts.filter((_, i) => i % 2 === slot).map((p) => decode(p.text, p.wallMs).revisionCounter);
      for (let i = 1; i < cs.length; i++) expect(cs[i]!).toBeGreaterThan(cs[i - 1]!);
    }
  });

  it('counters strictly increase when the timer for the next second fires before the wall clock reaches it', async () => {
    // The wall clock reads a millisecond short at every whole second, as when a timer fires
    // early: the publisher must wait again rather than reuse the second (HSDirs would refuse).
    const { clock, control, publisher } = rig({ wallS: T0 + 2.5, now: (c) => c.wallMs - (c.wallMs % 1000 === 0 ? 1 : 0) });
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(10);
    publisher.update({ nodes: [{ id: 'n1', introPoints: B }] });
    await clock.advance(3000);
    expect(control.posts).toHaveLength(4);
    for (const slot of [0, 1]) {
      const cs = control.posts.filter((_, i) => i % 2 === slot).map((p) => decode(p.text, p.wallMs).revisionCounter);
      expect(cs[1]!).toBeGreaterThan(cs[0]!);
    }
  });

  it('a second Publisher instance later (failover) publishes higher counters for the same blinded keys', async () => {
    const r1 = rig();
    r1.publisher.start();
    r1.publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await r1.clock.advance(100);
    await r1.publisher.stop();
    const r2 = rig({ wallS: Math.floor(r1.clock.wallMs / 1000) + 7, network: r1.network });
    r2.publisher.start();
    r2.publisher.update({ nodes: [{ id: 'n2', introPoints: B }] });
    await r2.clock.advance(100);
    for (const i of [0, 1]) {
      const a = decode(r1.control.posts[i]!.text, r1.control.posts[i]!.wallMs);
      const b = decode(r2.control.posts[i]!.text, r2.control.posts[i]!.wallMs);
      expect(toBase64NoPad(b.blindedPublicKey)).toBe(toBase64NoPad(a.blindedPublicKey));
      expect(b.revisionCounter).toBeGreaterThan(a.revisionCounter);
    }
  });

  it('retries only the HSDirs that FAILED, with a new counter', async () => {
    const { clock, control, network, publisher, records } = rig();
    const t = targets(network);
    const bad = t.descriptors[0].hsdirs[2]!.rsaFingerprint;
    control.answer = (fp, idx) => (fp === bad && idx === 0 ? { failed: 'UNEXPECTED' } : 'ok');
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    expect(records[0]!.hsdirs.find((h) => h.fp === bad && h.descriptor === 'first')).toMatchObject({ result: 'failed', reason: 'UNEXPECTED' });
    expect(publisher.status().retryPending).toBe(1);
    expect(publisher.status().lastError?.code).toBe('TB_ERR_PUBLISHER_UPLOAD');
    await clock.advance(5000);
    expect(control.posts).toHaveLength(3);
    expect(control.posts[2]!.servers).toEqual([bad]);
    expect(records.at(-1)!.reason).toBe('retry');
    expect(decode(control.posts[2]!.text, control.posts[2]!.wallMs).revisionCounter).toBeGreaterThan(
      decode(control.posts[0]!.text, control.posts[0]!.wallMs).revisionCounter,
    );
    expect(publisher.status().retryPending).toBe(0);
  });

  it('times out silent HSDirs and retries them with backoff until they answer', async () => {
    const { clock, control, network, publisher, records } = rig();
    const t = targets(network);
    const silent = t.descriptors[1].hsdirs[0]!.rsaFingerprint;
    control.answer = (fp, idx) => (fp === silent && idx < 3 ? 'silent' : 'ok');
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(20_000 + 100);
    expect(records[0]!.hsdirs.find((h) => h.fp === silent)).toMatchObject({ result: 'timeout', descriptor: 'second' });
    await clock.advance(5000 + 20_000); // retry 1 (5 s), times out again
    expect(control.posts.at(-1)!.servers).toEqual([silent]);
    const n = control.posts.length;
    await clock.advance(9000); // backoff is now 10 s: nothing yet
    expect(control.posts).toHaveLength(n);
    await clock.advance(1000 + 100);
    expect(control.posts).toHaveLength(n + 1);
    expect(records.at(-1)!.hsdirs).toEqual([expect.objectContaining({ fp: silent, result: 'uploaded' })]);
    expect(publisher.status().retryPending).toBe(0);
  });

  it('retries when HSPOST is rejected (e.g. 552 Server not found) and when the network is unreadable', async () => {
    const { clock, control, network, publisher } = rig();
    control.hsPostError = new ControlReplyError('HSPOST', { status: 552, lines: [{ status: 552, separator: ' ', text: 'Server "x" not found' }] });
    network.error = new Error('no consensus');
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    expect(publisher.status().lastError?.code).toBe('TB_ERR_PUBLISHER_INTERNAL');
    network.error = undefined;
    await clock.advance(10_000);
    expect(publisher.status().lastError?.code).toBe('TB_ERR_PUBLISHER_UPLOAD');
    expect(publisher.status().lastPublish!.descriptors[0]!.error).toBe('TB_ERR_TOR_CONTROL_REPLY');
    expect(control.posts).toHaveLength(0);
    control.hsPostError = undefined;
    await clock.advance(60_000);
    expect(control.posts.length).toBeGreaterThanOrEqual(2);
    expect(publisher.status().retryPending).toBe(0);
  });

  it('publishes nothing while update(null) or without intro points, and stops on stop()', async () => {
    const { clock, control, publisher } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: [] }] });
    await clock.advance(10_000);
    expect(control.posts).toHaveLength(0);
    expect(publisher.status().active).toBe(false);
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    expect(control.posts).toHaveLength(2);
    publisher.update(null);
    await clock.advance(3_700_000);
    expect(control.posts).toHaveLength(2);
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    expect(control.posts).toHaveLength(4);
    await publisher.stop();
    expect(control.listenerCount('HS_DESC')).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('drops malformed intro points from peers', async () => {
    const { clock, control, publisher } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: [...A.slice(0, 2), { ...A[2]!, authKey: 'bad' }] }] });
    await clock.advance(100);
    expect(decode(control.posts[0]!.text, control.posts[0]!.wallMs).introPoints).toHaveLength(2);
  });
});

/**
 * Rotation-safe publishing (docs/DESIGN.md "Rotation-safe intro points"): T0 is in the `next`
 * phase (between the period start and the SR run start), so the first descriptor is the
 * nodes' desc_current period and the second — the client-current one — their desc_next.
 */
describe('Publisher, rotation-safe nodes', () => {
  const keys = (net: FakeNetwork): [string, string] => {
    const t = targets(net);
    return [toBase64NoPad(t.descriptors[0].blindedPublicKey), toBase64NoPad(t.descriptors[1].blindedPublicKey)];
  };

  it('lists desc_current sets under their own period and harvested desc_next sets under the client period; a node without a harvest is left out there', async () => {
    const { clock, control, network, publisher } = rig();
    const [cur, next] = keys(network);
    const t = targets(network);
    expect(t.plan.inPeriodBetweenTpAndSrv).toBe(true);
    expect(t.descriptors[1].periodNum).toBe(t.plan.currentPeriodNum);
    publisher.start();
    publisher.update({
      nodes: [
        { id: 'n1', introPoints: A, currentKey: cur, rotationSafe: true, next: { blindedKey: next, points: C, harvestedAtMs: clock.wallMs - 5000 } },
        { id: 'n2', introPoints: B, currentKey: cur, rotationSafe: true },
      ],
    });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(2);
    const byPeriod = new Map(control.posts.map((p) => [decode(p.text, p.wallMs).periodNum, authKeys(decode(p.text, p.wallMs))]));
    expect(byPeriod.get(t.descriptors[0].periodNum)).toEqual(keysOf([...A, ...B]));
    expect(byPeriod.get(t.descriptors[1].periodNum)).toEqual(keysOf(C));
    expect(publisher.status().introPoints).toBe(C.length);
  });

  it('posts no client-period descriptor until some node harvested (the HSDirs keep tor\'s own), then only that one', async () => {
    const { clock, control, network, publisher, records } = rig();
    const [cur, next] = keys(network);
    const t = targets(network);
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A, currentKey: cur, rotationSafe: true }] });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(1);
    expect(decode(control.posts[0]!.text, control.posts[0]!.wallMs).periodNum).toBe(t.descriptors[0].periodNum);
    expect(control.posts[0]!.servers).toEqual(t.descriptors[0].hsdirs.map((h) => h.rsaFingerprint));
    publisher.update({ nodes: [{ id: 'n1', introPoints: A, currentKey: cur, rotationSafe: true, next: { blindedKey: next, points: B, harvestedAtMs: clock.wallMs } }] });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(2);
    const second = control.posts[1]!;
    expect(decode(second.text, second.wallMs).periodNum).toBe(t.descriptors[1].periodNum);
    expect(authKeys(decode(second.text, second.wallMs))).toEqual(keysOf(B));
    expect(records.at(-1)!.descriptors.map((d) => d.sources)).toEqual([{ n1: 'next' }]);
  });

  it('a fresh harvest of the same points posts the client descriptor again, in a later second than the harvest', async () => {
    const { clock, control, network, publisher } = rig();
    const [cur, next] = keys(network);
    publisher.start();
    const n = (at: number): Parameters<Publisher['update']>[0] => ({ nodes: [{ id: 'n1', introPoints: A, currentKey: cur, rotationSafe: true, next: { blindedKey: next, points: B, harvestedAtMs: at } }] });
    publisher.update(n(clock.wallMs - 10_000));
    await clock.advance(3000);
    expect(control.posts).toHaveLength(2);
    const harvestAt = clock.wallMs;
    publisher.update(n(harvestAt));
    await clock.advance(3000);
    expect(control.posts).toHaveLength(3);
    const p = control.posts[2]!;
    expect(decode(p.text, p.wallMs).periodNum).toBe(targets(network).descriptors[1].periodNum);
    expect(Math.floor(p.wallMs / 1000)).toBeGreaterThan(Math.floor(harvestAt / 1000));
  });

  it('reassert() posts every descriptor again in a later second than tor\'s own upload', async () => {
    const { clock, control, network, publisher, records } = rig();
    const [cur, next] = keys(network);
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A, currentKey: cur, rotationSafe: true, next: { blindedKey: next, points: B, harvestedAtMs: clock.wallMs - 10_000 } }] });
    await clock.advance(3000);
    expect(control.posts).toHaveLength(2);
    const uploadedAt = clock.wallMs;
    publisher.reassert(uploadedAt);
    await clock.advance(3000);
    expect(control.posts).toHaveLength(4);
    expect(records.at(-1)!.reason).toBe('reassert');
    for (const p of control.posts.slice(2)) expect(Math.floor(p.wallMs / 1000)).toBeGreaterThan(Math.floor(uploadedAt / 1000));
  });

  it('a node that does not harvest (older version, no PoW) is listed with desc_current in both descriptors, as before', async () => {
    const { clock, control, network, publisher } = rig();
    const [cur] = keys(network);
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A, currentKey: cur, rotationSafe: true }, { id: 'old', introPoints: B }] });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(2);
    const t = targets(network);
    const byPeriod = new Map(control.posts.map((p) => [decode(p.text, p.wallMs).periodNum, authKeys(decode(p.text, p.wallMs))]));
    expect(byPeriod.get(t.descriptors[0].periodNum)).toEqual(keysOf([...A, ...B]));
    expect(byPeriod.get(t.descriptors[1].periodNum)).toEqual(keysOf(B));
  });
});
