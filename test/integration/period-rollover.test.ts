/**
 * Reachability across time-period roll-overs in the shared private network, where a period
 * is 24 voting intervals (4 min at 10 s) and starts 12 voting intervals after an SR run
 * (tor-facts §2.11; core/hs/time-period.ts). Two boundaries matter and alternate every
 * 2 minutes:
 * - the **period start**: clients switch to the next period's blinded key (our "second"
 *   descriptor); the publisher's plan does not change;
 * - the **SR-run start**: tor rotates (desc_next becomes desc_current, a new desc_next is
 *   built, the old desc_current's intro circuits are closed) and the plan moves on one
 *   period; a publisher must post the new second descriptor and re-post the first with the
 *   surviving intro points (higher revision counter, same HSDirs).
 *
 * The plain service hs0 (tor publishes) and an OB-self service published only by our
 * {@link TestPublisher} (HSPOST of descriptors we build, republished whenever the plan or the
 * intro points change) are fetched through SOCKS before, after the next boundary and after
 * the one after it (each after `SIGNAL NEWNYM`), so both kinds are crossed within one period
 * plus margin. Times are taken from the consensus valid-after, never the wall clock alone.
 * After the rotation, hs0's upload of its new desc_next is also checked against our ring
 * (with whatever SRV the network has by then).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { nextTimePeriodStart, srRunSeconds, srRunStart } from '../../src/core/hs/time-period.js';
import {
  blindedB64,
  cleanupTors,
  consensusValidAfter,
  hms,
  hsDescOf,
  maybeSaveRingFixture,
  openRecorder,
  readNetworkView,
  secs,
  serviceDescriptor,
  startObSelfService,
  targetsFor,
  TestPublisher,
  uploadMismatches,
  waitForNetworkView,
  waitUntil,
  type EventRecorder,
} from '../helpers/tor-integration.js';
import { fetchOnionUntil, sharedHttp, sharedTestnet } from '../helpers/testnet.js';

const net = sharedTestnet();
const http = sharedHttp();
const hs0 = net.services[0]!;
const hs0Key = decodeOnionAddress(hs0.address).publicKey;
let publisher: TestPublisher | undefined;

afterAll(async () => {
  await publisher?.stop();
  await cleanupTors();
});

/** NEWNYM, then fetch both services; returns the ms each fetch took. */
async function fetchBoth(
  client: EventRecorder,
  svcOnion: string,
  svcAddress: string,
): Promise<{ hs0Ms: number; svcMs: number; svcKeys: string[] }> {
  const since = client.mark();
  await client.control.signal('NEWNYM');
  const socks = net.clients[0]!.socksPort;
  const [a, b] = await Promise.all([
    fetchOnionUntil(socks, hs0.onion, { deadlineMs: 90_000, intervalMs: 1000 }),
    fetchOnionUntil(socks, svcOnion, { deadlineMs: 90_000, intervalMs: 1000 }),
  ]);
  expect(a.body).toBe(http.body);
  expect(b.body).toBe(http.body);
  const evs = client
    .hsDesc(since)
    .map((x) => x.ev)
    .filter((e) => e.address === svcAddress);
  expect(evs.filter((e) => e.action === 'FAILED' && e.reason === 'BAD_DESC')).toEqual([]);
  const svcKeys = [
    ...new Set(evs.filter((e) => e.action === 'RECEIVED').map((e) => e.descriptorId ?? '')),
  ];
  return { hs0Ms: a.elapsedMs, svcMs: b.elapsedMs, svcKeys };
}

describe('time-period roll-over', () => {
  it('both services stay reachable across the next period start and SR-run rotation', async () => {
    const svc = await startObSelfService(http);
    const sctl = svc.recorder.control;
    const hs0rec = await openRecorder(hs0.control, ['HS_DESC']);
    const client = await openRecorder(net.clients[0]!.control, ['HS_DESC']);
    const view0 = await waitForNetworkView(sctl, {
      minRelays: net.authorities.length + net.relays.length,
    });
    await serviceDescriptor(sctl, svc.node.info.address, svc.identity.publicKey, view0.periodParams, {
      minIntroPoints: 3,
    });
    publisher = new TestPublisher(svc);
    publisher.start();
    const pub = publisher;
    await waitUntil('the first publication', () => (pub.rounds.length > 0 ? true : undefined), {
      timeoutMs: 60_000,
    });

    const before = await fetchBoth(client, svc.node.info.onion, svc.node.info.address);
    const view = await readNetworkView(sctl);
    const params = view.periodParams;
    const va = view.consensus.validAfter;
    const boundaries = [
      { at: nextTimePeriodStart(va, params), kind: 'period start' as const },
      { at: srRunStart(va, params) + srRunSeconds(params), kind: 'SR-run start (rotation)' as const },
    ].sort((x, y) => x.at - y.at);
    console.log(
      `[rollover] consensus ${hms(va)}, period ${params.lengthMinutes} min; before: hs0 ${before.hs0Ms}ms, ` +
        `ours ${before.svcMs}ms; next: ${boundaries.map((b) => `${b.kind} ${hms(b.at)}`).join(', ')}`,
    );

    let rotationIntro: { before: readonly string[]; after: readonly string[] } | undefined;
    let hs0Since = 0;
    for (const b of boundaries) {
      const roundsBefore = pub.rounds.length;
      const introBefore = pub.rounds[pub.rounds.length - 1]!.intro;
      if (b.kind !== 'period start') hs0Since = hs0rec.mark();
      const waitMs = Math.max(0, b.at * 1000 - Date.now()) + 90_000;
      await waitUntil(
        `the client's consensus for ${hms(b.at)}`,
        async () => ((await consensusValidAfter(client.control)) ?? 0) >= b.at || undefined,
        { timeoutMs: waitMs, intervalMs: 1000 },
      );
      const tConsensus = Date.now();
      await pub.settledAt(b.at, 60_000);
      const newRounds = pub.rounds.slice(roundsBefore);
      const after = await fetchBoth(client, svc.node.info.onion, svc.node.info.address);
      // The client used the descriptor we posted for its current period.
      const cview = await readNetworkView(client.control);
      const fetchKey = blindedB64(
        targetsFor(cview, svc.identity.publicKey).descriptors.find(
          (d) => d.periodNum === targetsFor(cview, svc.identity.publicKey).plan.fetch.periodNum,
        )!.blindedPublicKey,
      );
      expect(after.svcKeys).toContain(fetchKey);
      console.log(
        `[rollover] ${b.kind} ${hms(b.at)}: client consensus +${secs(tConsensus - b.at * 1000)}; ` +
          (newRounds.length === 0
            ? 'nothing to republish'
            : newRounds
                .map((r) => `republished (${r.reason}) +${secs(r.at - b.at * 1000)}`)
                .join(', ')) +
          `; after NEWNYM: hs0 ${after.hs0Ms}ms, ours ${after.svcMs}ms`,
      );
      if (b.kind !== 'period start') {
        expect(newRounds.length).toBeGreaterThan(0);
        rotationIntro = { before: introBefore, after: pub.rounds[pub.rounds.length - 1]!.intro };
      }
    }

    // Every HSPOST was accepted by every HSDir.
    for (const r of pub.rounds) {
      for (const p of r.posts) {
        expect(p.failed, `${r.reason} ${p.descriptor}`).toEqual([]);
        expect(p.silent, `${r.reason} ${p.descriptor}`).toEqual([]);
      }
    }
    console.log(
      `[rollover] publisher rounds: ${pub.rounds.map((r) => `${hms(r.at / 1000)} ${r.reason}`).join('; ')}` +
        (pub.errors.length > 0 ? `; transient errors: ${pub.errors.slice(0, 3).join(' | ')}` : ''),
    );
    // Tor closed the old desc_current's intro circuits at the rotation; we republished new ones.
    expect(rotationIntro).toBeDefined();
    expect(rotationIntro!.after).not.toEqual(rotationIntro!.before);

    // hs0 uploaded its new desc_next after the rotation exactly where our ring says.
    const rview = await readNetworkView(hs0rec.control);
    const second = targetsFor(rview, hs0Key).descriptors[1];
    const key = blindedB64(second.blindedPublicKey);
    await hs0rec.waitFor(
      "hs0's upload of its new desc_next",
      (r) => {
        const e = hsDescOf(r);
        return e?.action === 'UPLOAD' && e.descriptorId === key ? true : undefined;
      },
      { since: hs0Since, timeoutMs: 60_000 },
    );
    const ups = hs0rec.hsDesc(hs0Since).map((x) => x.ev);
    console.log(
      `[rollover] hs0 new desc_next tp=${second.periodNum} with ${second.srvSource} SRV → ${second.hsdirs.length} HSDirs`,
    );
    expect(uploadMismatches(ups, second, rview.periodParams.lengthMinutes)).toEqual([]);
    if (second.srvSource !== 'disaster') {
      await maybeSaveRingFixture('real-testnet-srv', rview, hs0.address, ups, 'test/integration/period-rollover.test.ts');
    }
  });
});
