/**
 * Publisher HSFETCH verification against the fake control (fake HSDirs store what was
 * UPLOADED and serve it back to HSFETCH as RECEIVED + HS_DESC_CONTENT, or NOT_FOUND): only the
 * client-current descriptor's fetch HSDirs are asked; an older descriptor or none → a fresh
 * post to that HSDir alone; equal → verified; timeouts → error without re-posts; at most one
 * round per minIntervalMs; periodic rounds; and the FetchVerifier/UploadTracker event filters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64NoPad } from '../../../src/core/bytes.js';
import { descriptorTargets, type DescriptorTarget } from '../../../src/core/hs/hashring.js';
import { HsIdentityKeypair } from '../../../src/core/hs/keys.js';
import { testingNetworkPeriodParams, timePeriodStart } from '../../../src/core/hs/time-period.js';
import { decodeDescriptor } from '../../../src/core/hsdesc/descriptor.js';
import { parseHsDesc, parseHsDescContent } from '../../../src/core/torctl/events.js';
import { FetchVerifier } from '../../../src/node/publisher/fetch-verifier.js';
import { Publisher, type PublishRecord, type VerifyOptions } from '../../../src/node/publisher/publisher.js';
import { UploadTracker } from '../../../src/node/publisher/upload-tracker.js';
import { dataEvent, FakeClock, FakeControl, FakeNetwork, makeIntroPoints, makeRelays, seededRandom, silentLogger } from './fakes.js';

const PARAMS = testingNetworkPeriodParams(10);
const P = 7_300_000;
const T0 = timePeriodStart(P, PARAMS) + 10;
const identity = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3));
const rnd = seededRandom(5);
const A = makeIntroPoints(rnd, 6, 0);
const B = makeIntroPoints(rnd, 6, 100);

interface Rig {
  clock: FakeClock;
  control: FakeControl;
  network: FakeNetwork;
  publisher: Publisher;
  records: PublishRecord[];
  /** The client-current descriptor and the index of its post in each full round. */
  current: DescriptorTarget;
  slot: number;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.publisher.stop();
});

function rig(verify: VerifyOptions | false = {}): Rig {
  const clock = new FakeClock((T0 + 2) * 1000);
  const control = new FakeControl(clock);
  const r = seededRandom(11);
  const network = new FakeNetwork(T0, makeRelays(r, 12), r(32), r(32));
  const publisher = new Publisher({
    control,
    network,
    identity: { expandedSecretKey: identity.expandedSecretKey, publicKey: identity.publicKey },
    masterAddress: identity.address,
    now: () => clock.wallMs,
    timers: clock,
    randomBytes: seededRandom(1011),
    logger: silentLogger,
    refreshMs: 3_600_000,
    uploadTimeoutMs: 20_000,
    testingTorNetwork: true,
    consensusPollMs: 5_000,
    retryMs: 5_000,
    verify,
  });
  const records: PublishRecord[] = [];
  publisher.onPublish((x) => records.push(x));
  const t = descriptorTargets(network.consensus, identity.publicKey, { relays: network.relays, testingTorNetwork: true });
  const slot = t.descriptors.findIndex((d) => d.periodNum === t.plan.currentPeriodNum);
  const x = { clock, control, network, publisher, records, current: t.descriptors[slot]!, slot };
  rigs.push(x);
  return x;
}

const counterOf = (text: string, wallMs: number): bigint =>
  decodeDescriptor(text, { identityPublicKey: identity.publicKey, periodParams: PARAMS, nowSeconds: Math.floor(wallMs / 1000) }).revisionCounter;

describe('Publisher verification (HSFETCH)', () => {
  it('after a publish, fetches the client-current descriptor from its fetch HSDirs and reports them verified', async () => {
    const { clock, control, publisher, current, slot } = rig();
    expect(slot).toBeGreaterThanOrEqual(0);
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    expect(control.posts).toHaveLength(2);
    expect(control.fetches).toHaveLength(1);
    const f = control.fetches[0]!;
    expect(f.address).toBe(identity.label);
    // hsdir_n_replicas (2) × hsdir_spread_fetch (3), all among the HSDirs we posted to.
    expect(f.servers).toHaveLength(6);
    const stored = current.hsdirs.map((h) => h.rsaFingerprint);
    for (const fp of f.servers) expect(stored).toContain(fp);
    const v = publisher.status().lastVerification!;
    expect(v.blindedKey).toBe(toBase64NoPad(current.blindedPublicKey));
    expect(v.periodNum).toBe(current.periodNum);
    expect(v.hsdirs.map((h) => h.fp)).toEqual(f.servers);
    expect(v.hsdirs.map((h) => h.result)).toEqual(Array(6).fill('verified'));
    const posted = counterOf(control.posts[slot]!.text, control.posts[slot]!.wallMs).toString();
    for (const h of v.hsdirs) {
      expect(h.servedCounter).toBe(posted);
      expect(v.expected[h.fp]).toBe(posted);
      expect(typeof h.atMs).toBe('number');
    }
    expect(v.reposted).toEqual([]);
    expect(publisher.status()).toMatchObject({ verifications: 1, staleFound: 0 });
    await clock.advance(50_000);
    expect(control.posts).toHaveLength(2);
    expect(control.fetches).toHaveLength(1);
  });

  it('an HSDir serving an older descriptor (lower counter) gets a fresh, higher one — only that HSDir', async () => {
    const { clock, control, publisher, slot } = rig();
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    const old = control.posts[slot]!;
    publisher.update({ nodes: [{ id: 'n1', introPoints: B }] });
    await clock.advance(2000);
    expect(control.posts).toHaveLength(4);
    const victim = control.fetches[0]!.servers[2]!;
    control.fetchAnswer = (fp, i) => (i === 1 && fp === victim ? { text: old.text } : 'store');
    // Rate limit: the round after the republish waits for minIntervalMs (60 s) after the first.
    await clock.advance(50_000);
    expect(control.fetches).toHaveLength(1);
    await clock.advance(10_000);
    expect(control.fetches).toHaveLength(2);
    const v = publisher.status().lastVerification!;
    const bad = v.hsdirs.find((h) => h.fp === victim)!;
    expect(bad).toMatchObject({ result: 'stale', servedCounter: counterOf(old.text, old.wallMs).toString() });
    expect(v.hsdirs.filter((h) => h.fp !== victim).every((h) => h.result === 'verified')).toBe(true);
    expect(v.reposted).toEqual([victim]);
    expect(control.posts).toHaveLength(5);
    const repost = control.posts[4]!;
    expect(repost.servers).toEqual([victim]);
    expect(counterOf(repost.text, repost.wallMs)).toBeGreaterThan(BigInt(v.expected[victim]!));
    expect(records(publisher).reason).toBe('verify');
    expect(publisher.status().staleFound).toBe(1);
    // The re-post is verified by the next (rate-limited) round.
    await clock.advance(60_000);
    expect(control.fetches).toHaveLength(3);
    expect(publisher.status().lastVerification!.hsdirs.every((h) => h.result === 'verified')).toBe(true);
    expect(control.posts).toHaveLength(5);
  });

  it('NOT_FOUND → not-found and a re-post to that HSDir only', async () => {
    const { clock, control, publisher } = rig();
    let victim: string | undefined;
    control.fetchAnswer = (fp, i) => {
      victim ??= fp;
      return i === 0 && fp === victim ? { failed: 'NOT_FOUND' } : 'store';
    };
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(1100); // the re-post waits for the next second (a higher counter)
    const v = publisher.status().lastVerification!;
    expect(v.hsdirs.find((h) => h.fp === victim)).toMatchObject({ result: 'not-found', reason: 'NOT_FOUND' });
    expect(v.hsdirs.filter((h) => h.result === 'verified')).toHaveLength(5);
    expect(control.posts).toHaveLength(3);
    expect(control.posts[2]!.servers).toEqual([victim]);
    expect(publisher.status().lastPublish!.reason).toBe('verify');
    // A verify re-post does not postpone the refresh nor count as a new plan.
    expect(publisher.status().retryPending).toBe(0);
  });

  it('timeouts and other FAILED reasons → error, without re-posts; no storm of rounds', async () => {
    const { clock, control, publisher } = rig({ timeoutMs: 30_000, minIntervalMs: 60_000, everyMs: 600_000 });
    let first: string | undefined;
    control.fetchAnswer = (fp) => {
      first ??= fp;
      return fp === first ? { failed: 'QUERY_REJECTED' } : 'silent';
    };
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(29_000);
    expect(publisher.status().lastVerification).toBeUndefined();
    await clock.advance(1_100);
    const v = publisher.status().lastVerification!;
    expect(v.hsdirs.find((h) => h.fp === first)).toMatchObject({ result: 'error', reason: 'QUERY_REJECTED' });
    expect(v.hsdirs.filter((h) => h.fp !== first).every((h) => h.result === 'error' && h.reason === 'timeout')).toBe(true);
    expect(v.reposted).toEqual([]);
    await clock.advance(500_000);
    expect(control.posts).toHaveLength(2);
    expect(control.fetches).toHaveLength(1);
    await clock.advance(100_000); // everyMs: one periodic round
    expect(control.fetches).toHaveLength(2);
    expect(control.posts).toHaveLength(2);
  });

  it('an intro-point change (failover) cuts a verification round waiting on silent HSDirs short', async () => {
    const { clock, control, publisher } = rig({ timeoutMs: 30_000, minIntervalMs: 60_000, everyMs: 600_000 });
    control.fetchAnswer = () => 'silent';
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }, { id: 'n2', introPoints: B }] });
    await clock.advance(1_000);
    expect(control.posts).toHaveLength(2);
    expect(control.fetches).toHaveLength(1); // the round is open, its HSDirs silent
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] }); // n2 died
    await clock.advance(1_500); // well inside the 30 s verification timeout
    expect(control.posts).toHaveLength(4);
    expect(publisher.status().lastVerification?.hsdirs.every((h) => h.result === 'error')).toBe(true);
  });

  it('HSFETCH rejected by tor → error (hsfetch) for every HSDir', async () => {
    const { clock, control, publisher } = rig();
    control.hsFetchError = new Error('552 boom');
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(100);
    const v = publisher.status().lastVerification!;
    expect(v.hsdirs.length).toBe(6);
    expect(v.hsdirs.every((h) => h.result === 'error' && h.reason === 'hsfetch')).toBe(true);
    expect(control.posts).toHaveLength(2);
  });

  it('rate-limits rounds after rapid republishes to one per minIntervalMs', async () => {
    const { clock, control, publisher } = rig({ minIntervalMs: 60_000 });
    publisher.start();
    for (let i = 0; i < 5; i++) {
      publisher.update({ nodes: [{ id: 'n1', introPoints: i % 2 === 0 ? A : B }] });
      await clock.advance(5_000);
    }
    expect(control.posts.length).toBeGreaterThanOrEqual(10);
    expect(control.fetches).toHaveLength(1);
    await clock.advance(40_000);
    expect(control.fetches).toHaveLength(2);
    await clock.advance(120_000);
    expect(control.fetches).toHaveLength(2);
  });

  it('verify: false sends no HSFETCH', async () => {
    const { clock, control, publisher } = rig(false);
    publisher.start();
    publisher.update({ nodes: [{ id: 'n1', introPoints: A }] });
    await clock.advance(700_000);
    expect(control.fetches).toHaveLength(0);
    expect(publisher.status().verifications).toBe(0);
  });
});

function records(p: Publisher): PublishRecord {
  return p.status().lastPublish!;
}

describe('FetchVerifier event filtering', () => {
  const clock = new FakeClock(0);
  const label = identity.label;
  const fp1 = 'A'.repeat(40);
  const fp2 = 'B'.repeat(40);
  const key = 'K'.repeat(43);
  const other = 'L'.repeat(43);

  it('credits only the open round’s address, blinded key and pending HSDirs; RECEIVED waits for the content', async () => {
    const v = new FetchVerifier({ timers: clock, now: () => clock.wallMs, address: label, identityPublicKey: identity.publicKey });
    v.handleHsDesc(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${key} REASON=NOT_FOUND`)); // no round: ignored
    const round = v.begin({ hsdirs: [fp1, fp2], blindedKey: key, periodNum: P, periodLengthMinutes: PARAMS.lengthMinutes, expected: new Map(), timeoutMs: 1000 });
    v.handleHsDesc(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${other} REASON=NOT_FOUND`)); // other key
    v.handleHsDesc(parseHsDesc(`HS_DESC FAILED ${'b'.repeat(56)} NO_AUTH $${fp1}~r ${key} REASON=NOT_FOUND`)); // other address
    v.handleHsDesc(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${'C'.repeat(40)}~r ${key} REASON=NOT_FOUND`)); // other HSDir
    v.handleHsDesc(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${key} REASON=UPLOAD_REJECTED`)); // an upload's
    v.handleHsDesc(parseHsDesc(`HS_DESC RECEIVED ${label} NO_AUTH $${fp2}~r ${key}`));
    v.handleContent(parseHsDescContent(dataEvent(`HS_DESC_CONTENT ${label} ${key} $${fp2}~r`, ''))); // empty: ignored
    v.handleContent(parseHsDescContent(dataEvent(`HS_DESC_CONTENT ${label} ${key} $${fp2}~r`, 'hs-descriptor 3\ngarbage')));
    v.handleHsDesc(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${key} REASON=NOT_FOUND`));
    const out = await round.done;
    expect(out.map((o) => [o.fp, o.result, o.reason])).toEqual([
      [fp1, 'not-found', 'NOT_FOUND'],
      [fp2, 'error', expect.stringMatching(/^TB_ERR_/)],
    ]);
    expect(v.busy).toBe(false);
  });

  it('UploadTracker ignores fetch-only FAILED reasons (a verification’s NOT_FOUND is no upload failure)', async () => {
    const t = new UploadTracker({ timers: clock, address: label });
    const round = t.begin([fp1], 1000, key);
    t.handleEvent(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${key} REASON=NOT_FOUND`));
    t.handleEvent(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${key} REASON=BAD_DESC`));
    expect(t.busy).toBe(true);
    t.handleEvent(parseHsDesc(`HS_DESC FAILED ${label} NO_AUTH $${fp1}~r ${key} REASON=UPLOAD_REJECTED`));
    expect(await round.done).toEqual([expect.objectContaining({ fp: fp1, result: 'failed', reason: 'UPLOAD_REJECTED' })]);
  });
});
