/**
 * Our HSDir hash ring (core/hs/hashring.ts: periods, SRVs, hs_index/hsdir_index, replica
 * walk; tor-facts §2.11–2.12) against real tor 0.4.9 in the shared private network.
 *
 * A fresh onion service is added with a control connection subscribed to HS_DESC from the
 * moment its control port is up, so its first uploads are seen. Tor's `HS_DESC UPLOAD`
 * events (`$FP~nick`, blinded key, `HSDIR_INDEX=`) are emitted in the order of
 * `hs_get_responsible_hsdirs` (`upload_descriptor_to_all`). From the consensus and
 * microdescriptors the service's tor holds (consensus-feed over its control port) we compute
 * both descriptors' blinded keys and HSDirs and require: the same two blinded keys; per key
 * exactly tor's HSDirs in tor's order; every HSDIR_INDEX equal to ours (which pins the SRV
 * and period choice of `node_set_hsdir_index`). The schedule is the TestingTorNetwork one
 * (24 voting intervals per period) from the consensus valid-after, never the wall clock.
 *
 * The shared network votes hsdir_spread_store=2 and hsdir_spread_fetch=2 (global-setup.ts):
 * each descriptor goes to 4 of the 8 HSDirs, so the set itself is checked, and with it tor's
 * order and HSDIR_INDEX values. A client HSFETCH adds a fetch-side check: its REQUESTED HSDirs
 * must lie in our 2 × hsdir_spread_fetch fetch set, with our fetch index.
 *
 * TORBALANCE_SAVE_FIXTURES=1 also writes the consensus, microdescriptors and tor's uploads to
 * test/fixtures/consensus/real-testnet-* (used by test/unit/regressions-f.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TorControl } from '../../src/adapters/tor/control.js';
import { toHex } from '../../src/core/bytes.js';
import {
  buildRing,
  hsdirIndex,
  responsibleHsdirs,
} from '../../src/core/hs/hashring.js';
import { blindPublicKey } from '../../src/core/hs/blinding.js';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import type { HsDescEvent } from '../../src/core/torctl/events.js';
import {
  blindedB64,
  cleanupTors,
  hms,
  hsDescOf,
  maybeSaveRingFixture,
  openRecorder,
  planKey,
  readNetworkView,
  secs,
  startRecordedService,
  targetsFor,
  type NetworkView,
} from '../helpers/tor-integration.js';
import { sharedHttp, sharedTestnet } from '../helpers/testnet.js';

const net = sharedTestnet();
const http = sharedHttp();

afterAll(async () => {
  await cleanupTors();
});

interface Observed {
  readonly address: string;
  readonly identityPublicKey: Uint8Array;
  readonly uploads: HsDescEvent[];
  readonly before: NetworkView;
  readonly after: NetworkView;
  readonly elapsedMs: number;
}

/** Start a service and collect its first uploads of both descriptors. */
async function observeFirstUploads(): Promise<Observed> {
  const hs0 = net.services[0]!;
  const probe = await TorControl.connect(hs0.control);
  let before: NetworkView;
  try {
    before = await readNetworkView(probe);
  } finally {
    await probe.close();
  }
  const t0 = Date.now();
  const { node, recorder } = await startRecordedService({ target: http });
  const address = node.info.address;
  // Both descriptors uploaded (two blinded keys) and every upload answered.
  await recorder.waitFor(
    'UPLOAD events for two blinded keys, all answered',
    () => {
      const evs = recorder.hsDesc().map((x) => x.ev).filter((e) => e.address === address);
      const ups = evs.filter((e) => e.action === 'UPLOAD');
      const keys = new Set(ups.map((e) => e.descriptorId));
      const answered = evs.filter((e) => e.action === 'UPLOADED' || e.action === 'FAILED').length;
      return keys.size >= 2 && answered >= ups.length ? true : undefined;
    },
    { timeoutMs: 120_000 },
  );
  const uploads = recorder
    .hsDesc()
    .map((x) => x.ev)
    .filter((e) => e.address === address && e.action === 'UPLOAD');
  const after = await readNetworkView(recorder.control);
  return {
    address,
    identityPublicKey: decodeOnionAddress(address).publicKey,
    uploads,
    before,
    after,
    elapsedMs: Date.now() - t0,
  };
}

describe('HSDir hash ring against real tor', () => {
  it('computes exactly the HSDirs (and order, indexes, blinded keys) tor uploads both descriptors to', async () => {
    let o: Observed | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const got = await observeFirstUploads();
      const same =
        planKey(targetsFor(got.before, got.identityPublicKey)) ===
        planKey(targetsFor(got.after, got.identityPublicKey));
      console.log(
        `[hashring] attempt ${attempt}: ${got.uploads.length} UPLOAD events ${secs(got.elapsedMs)} after start; ` +
          `consensus valid-after ${hms(got.before.consensus.validAfter)} → ${hms(got.after.consensus.validAfter)}` +
          (same ? '' : ' (descriptor plan changed meanwhile: retrying with a new service)'),
      );
      if (same) {
        o = got;
        break;
      }
    }
    if (o === undefined) throw new Error('the descriptor plan changed during every attempt');

    const t = targetsFor(o.after, o.identityPublicKey);
    const len = t.plan.periodParams.lengthMinutes;
    expect(len).toBe(net.timePeriod.lengthMinutes);
    console.log(
      `[hashring] ring of ${o.after.relays.length} HSDirs; tp=${t.plan.currentPeriodNum} ` +
        `between=${t.plan.inPeriodBetweenTpAndSrv}; first tp=${t.descriptors[0].periodNum} (${t.descriptors[0].srvSource} SRV), ` +
        `second tp=${t.descriptors[1].periodNum} (${t.descriptors[1].srvSource} SRV)`,
    );
    expect(o.after.relays.length).toBe(net.authorities.length + net.relays.length);

    // Blinded keys: ours for both periods are exactly the ones in tor's events.
    const ours = t.descriptors.map((d) => blindedB64(d.blindedPublicKey));
    const theirs = [...new Set(o.uploads.map((e) => e.descriptorId))];
    expect(theirs.sort()).toEqual([...ours].sort());

    for (const d of t.descriptors) {
      const key = blindedB64(d.blindedPublicKey);
      // The first upload round (a later one would follow an intro-point change).
      const ups = o.uploads.filter((e) => e.descriptorId === key).slice(0, d.hsdirs.length);
      // The same HSDirs, in tor's order (replica 1's picks, then replica 2's).
      expect(ups.map((e) => e.hsDir?.fingerprint)).toEqual(d.hsdirs.map((h) => h.rsaFingerprint));
      expect(d.hsdirs.length).toBe(
        Math.min(t.hsdirParams.replicas * t.hsdirParams.spreadStore, o.after.relays.length),
      );
      // HSDIR_INDEX is the HSDir's index for this descriptor's (SRV, period).
      for (const e of ups) {
        const relay = d.hsdirs.find((h) => h.rsaFingerprint === e.hsDir?.fingerprint)!;
        expect(e.hsDirIndex?.toUpperCase()).toBe(
          toHex(hsdirIndex(relay.ed25519Id, d.srv, d.periodNum, len)).toUpperCase(),
        );
      }
    }
    await maybeSaveRingFixture('real-testnet', o.after, o.address, o.uploads, 'test/integration/hashring.test.ts');

    // A client's fetches go to HSDirs in our fetch set (2 × hsdir_spread_fetch), with our fetch index.
    const client = await openRecorder(net.clients[0]!.control, ['HS_DESC']);
    const cview = await readNetworkView(client.control);
    const fetchSlot = targetsFor(cview, o.identityPublicKey).plan.fetch;
    const fetchKey = blindPublicKey(o.identityPublicKey, fetchSlot.periodNum, len);
    const fetchSet = responsibleHsdirs({
      blindedPublicKey: fetchKey,
      periodNum: fetchSlot.periodNum,
      periodLengthMinutes: len,
      ring: buildRing(cview.relays, fetchSlot.srv, fetchSlot.periodNum, len),
      replicas: t.hsdirParams.replicas,
      spread: t.hsdirParams.spreadFetch,
    }).hsdirs;
    const requested: HsDescEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const since = client.mark();
      await client.control.hsFetch(o.address);
      const req = await client.waitFor(
        'HS_DESC REQUESTED for the service',
        (r) => {
          const e = hsDescOf(r);
          return e?.action === 'REQUESTED' && e.address === o.address ? e : undefined;
        },
        { since, timeoutMs: 30_000 },
      );
      requested.push(req);
      await client.waitFor(
        'the fetch result',
        (r) => {
          const e = hsDescOf(r);
          return (e?.action === 'RECEIVED' || e?.action === 'FAILED') && e.address === o.address
            ? true
            : undefined;
        },
        { since, timeoutMs: 30_000 },
      );
    }
    console.log(
      `[hashring] client fetch set ${fetchSet.map((h) => h.nickname).join(',')}; requested ${requested
        .map((e) => e.hsDir?.nickname)
        .join(',')}`,
    );
    expect(fetchSet.length).toBe(
      Math.min(t.hsdirParams.replicas * t.hsdirParams.spreadFetch, cview.relays.length),
    );
    for (const e of requested) {
      expect(e.descriptorId).toBe(blindedB64(fetchKey));
      const relay = fetchSet.find((h) => h.rsaFingerprint === e.hsDir?.fingerprint);
      expect(relay, `requested HSDir ${e.hsDir?.nickname} is in our fetch set`).toBeDefined();
      expect(e.hsDirIndex?.toUpperCase()).toBe(
        toHex(hsdirIndex(relay!.ed25519Id, fetchSlot.srv, fetchSlot.periodNum, len)).toUpperCase(),
      );
    }
  });
});
