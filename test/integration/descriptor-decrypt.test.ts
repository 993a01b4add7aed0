/**
 * Our descriptor decoder (core/hsdesc/descriptor.ts: outer layer, certificates, both
 * encryption layers, intro points) on descriptors real tor 0.4.9 made, in the shared network:
 *
 * 1. `GETINFO hs/service/desc/id/<addr>` of the plain service hs0 (desc_current only,
 *    tor-facts §1.4) decodes with just the identity public key, and its intro points'
 *    legacy-id link specifiers are the last hops of hs0's established intro circuits
 *    (`GETINFO circuit-status`, PURPOSE=HS_SERVICE_INTRO, HS_STATE=HSSI_ESTABLISHED).
 * 2. The client's `HSFETCH` result (HS_DESC_CONTENT) decodes too. The client fetches the
 *    descriptor of its current period (`hs_get_time_period_num(0)`), which is the service's
 *    desc_current while the consensus is between the SR-run start and the period start, and
 *    its desc_next otherwise (tor-facts §2.11). Both descriptors' intro points are
 *    established intro circuits of hs0; when the fetched one is desc_current, its intro
 *    points equal GETINFO's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TorControl } from '../../src/adapters/tor/control.js';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { decodeDescriptor } from '../../src/core/hsdesc/descriptor.js';
import { inPeriodBetweenTpAndSrv, timePeriodNum } from '../../src/core/hs/time-period.js';
import { parseHsDescContent } from '../../src/core/torctl/events.js';
import {
  blindedB64,
  cleanupTors,
  consensusValidAfter,
  hsDescOf,
  introCircuits,
  introPointRelays,
  lastHop,
  nowSeconds,
  openRecorder,
  readNetworkView,
  serviceDescriptor,
  targetsFor,
  type EventRecorder,
} from '../helpers/tor-integration.js';
import { sharedTestnet } from '../helpers/testnet.js';

const net = sharedTestnet();
const hs0 = net.services[0]!;
const identityPublicKey = decodeOnionAddress(hs0.address).publicKey;

afterAll(async () => {
  await cleanupTors();
});

/** Upper-case fingerprints of hs0's established intro points. */
async function establishedIntroPoints(ctl: TorControl): Promise<Set<string>> {
  return new Set((await introCircuits(ctl, { address: hs0.address, established: true })).map(lastHop));
}

describe('descriptors made by real tor decode with our core', () => {
  it('GETINFO hs/service/desc/id decrypts to the service\'s established intro points', async () => {
    const ctl = await TorControl.connect(hs0.control);
    try {
      const view = await readNetworkView(ctl);
      let circuits = new Set<string>();
      // Poll: between an intro point dying and its replacement, GETINFO still lists the old one.
      const d = await serviceDescriptor(ctl, hs0.address, identityPublicKey, view.periodParams, {
        minIntroPoints: 3,
        accept: async (sd) => {
          circuits = await establishedIntroPoints(ctl);
          return sd.intro.every((fp) => circuits.has(fp));
        },
      });
      const t = targetsFor(view, identityPublicKey);
      console.log(
        `[decrypt] hs0 desc_current: tp=${d.decoded.periodNum} rev=${d.decoded.revisionCounter} ` +
          `${d.text.length} bytes, intro points ${d.intro.length}; established intro circuits ${circuits.size}`,
      );
      expect(d.decoded.introPoints).toHaveLength(3); // HiddenServiceNumIntroductionPoints default
      expect(new Set(d.intro).size).toBe(3);
      for (const fp of d.intro) expect(circuits.has(fp)).toBe(true);
      // desc_current is tor's first descriptor: blinded for the plan's first period.
      expect(d.decoded.periodNum).toBe(t.descriptors[0].periodNum);
      expect(blindedB64(d.decoded.blindedPublicKey)).toBe(blindedB64(t.descriptors[0].blindedPublicKey));
      expect(d.decoded.inner.flowControl).toEqual({ versions: '1-2', sendmeInc: 31 });
      // Each intro point also names its relay by ed25519 id and address.
      for (const ip of d.decoded.introPoints) {
        expect(ip.linkSpecifiers.map((l) => l.type).sort()).toEqual([0, 2, 3]);
      }
    } finally {
      await ctl.close();
    }
  });

  it('the client\'s HSFETCH result decrypts to intro points of the service', async () => {
    const svc = await TorControl.connect(hs0.control);
    const client = await openRecorder(net.clients[0]!.control, ['HS_DESC', 'HS_DESC_CONTENT']);
    try {
      // One HSFETCH, the client's plan and the service's desc_current, retried if a boundary
      // (period or SR-run start) passed meanwhile on either tor.
      let got: Awaited<ReturnType<typeof fetchOnce>> | undefined;
      for (let attempt = 1; attempt <= 3 && got === undefined; attempt++) {
        const phase0 = await phases(client.control, svc);
        const r = await fetchOnce(client, svc);
        const phase1 = await phases(client.control, svc);
        if (new Set([...phase0, ...phase1]).size === 1) got = r;
        else console.log(`[decrypt] attempt ${attempt}: a boundary passed (${[...phase0, ...phase1].join(' ')}); retrying`);
      }
      if (got === undefined) throw new Error('a boundary passed during every attempt');
      const { content, plan, fetched, current } = got;
      // The client fetches its current period's descriptor under the key in the event.
      expect(fetched.periodNum).toBe(plan.fetch.periodNum);
      expect(blindedB64(fetched.blindedPublicKey)).toBe(content.descriptorId);
      const ips = introPointRelays(fetched);
      expect(ips).toHaveLength(3);
      const established = await waitEstablished(svc, ips);
      for (const fp of ips) expect(established.has(fp)).toBe(true);

      const sameDescriptor = current.decoded.periodNum === fetched.periodNum;
      console.log(
        `[decrypt] client fetched tp=${fetched.periodNum} rev=${fetched.revisionCounter} from ${content.hsDir?.nickname}; ` +
          `service desc_current tp=${current.decoded.periodNum} → the client's is the service's ` +
          `${sameDescriptor ? 'desc_current' : 'desc_next'} (consensus ${plan.inPeriodBetweenTpAndSrv ? 'between period start and SR run' : 'between SR run and period start'})`,
      );
      // Which of the service's descriptors clients use follows from the consensus time.
      expect(sameDescriptor).toBe(!plan.inPeriodBetweenTpAndSrv);
      if (sameDescriptor) {
        expect(ips).toEqual(current.intro);
        expect(fetched.revisionCounter).toBe(current.decoded.revisionCounter);
      }
    } finally {
      await svc.close();
    }
  });
});

/** The HSFETCH result for hs0 (decoded), the client's plan and hs0's GETINFO descriptor. */
async function fetchOnce(client: EventRecorder, svc: TorControl) {
  const since = client.mark();
  await client.control.hsFetch(hs0.address);
  const content = await client.waitFor(
    'a non-empty HS_DESC_CONTENT for hs0',
    (r) => {
      if (r.event.type === 'HS_DESC') {
        const e = hsDescOf(r);
        if (e?.action === 'FAILED' && e.address === hs0.address && e.reason === 'BAD_DESC') {
          throw new Error("the client rejected hs0's descriptor (BAD_DESC)");
        }
        return undefined;
      }
      if (r.event.type !== 'HS_DESC_CONTENT') return undefined;
      const c = parseHsDescContent(r.event);
      return c.address === hs0.address && c.descriptor !== '' ? c : undefined;
    },
    { since, timeoutMs: 60_000 },
  );
  const cview = await readNetworkView(client.control);
  const plan = targetsFor(cview, identityPublicKey).plan;
  const fetched = decodeDescriptor(content.descriptor, {
    identityPublicKey,
    periodParams: cview.periodParams,
    nowSeconds: nowSeconds(),
  });
  const current = await serviceDescriptor(svc, hs0.address, identityPublicKey, cview.periodParams);
  return { content, plan, fetched, current };
}

/** "tp/between" of the client's and the service's consensus (both must agree for a stable comparison). */
async function phases(client: TorControl, svc: TorControl): Promise<string[]> {
  const out: string[] = [];
  for (const ctl of [client, svc]) {
    const va = await consensusValidAfter(ctl);
    if (va === undefined) throw new Error('tor has no consensus');
    out.push(`${timePeriodNum(va, net.timePeriod)}/${inPeriodBetweenTpAndSrv(va, net.timePeriod)}`);
  }
  return out;
}

/** hs0's established intro points once they include all of `ips` (or whatever they are after 30 s). */
async function waitEstablished(ctl: TorControl, ips: readonly string[]): Promise<Set<string>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await establishedIntroPoints(ctl);
    if (ips.every((fp) => s.has(fp)) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}
