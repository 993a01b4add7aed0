/**
 * The first proof that descriptors we build work in real tor 0.4.9: an onion service that
 * does not publish (`PublishHidServDescriptors 0`) and is an OnionBalance instance of its own
 * address (`HiddenServiceOnionBalanceInstance 1`, ob_config naming itself, both in the torrc
 * before start; tor-facts §1.9, §4) becomes reachable only through descriptors we make:
 *
 * 1. its identity is read back from its HiddenServiceDir with our key store;
 * 2. its intro points come from `GETINFO hs/service/desc/id/<addr>` (after the revision
 *    counter is set; torlab pitfall 3), decoded with our core;
 * 3. we build BOTH descriptors (first = desc_current slot, second = desc_next slot, tor-facts
 *    §2.11) with buildDescriptor and revision-counter.ts, compute each one's HSDirs with our
 *    ring, and HSPOST each to its own HSDirs; every HSDir answers UPLOADED;
 * 4. the shared client, after `SIGNAL NEWNYM`, fetches the page through SOCKS; its HS_DESC
 *    events show RECEIVED for the address and no FAILED BAD_DESC.
 * Timings printed: build per descriptor, HSPOST → all UPLOADED, HSPOST → first page.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readKeyDirectory } from '../../src/adapters/fs/key-store.js';
import {
  blindedB64,
  cleanupTors,
  describePosts,
  openRecorder,
  publishDescriptors,
  readNetworkView,
  secs,
  serviceDescriptor,
  startObSelfService,
  targetsFor,
  waitForNetworkView,
} from '../helpers/tor-integration.js';
import { fetchOnionUntil, sharedHttp, sharedTestnet } from '../helpers/testnet.js';

const net = sharedTestnet();
const http = sharedHttp();

afterAll(async () => {
  await cleanupTors();
});

describe('descriptors built and published by torbalance', () => {
  it('make a non-publishing OB-self service reachable through real tor', async () => {
    const tStart = Date.now();
    const svc = await startObSelfService(http);
    const address = svc.node.info.address;
    const ctl = svc.recorder.control;

    // Our key store reads the key tor is using.
    const loaded = await readKeyDirectory(svc.node.info.hiddenServiceDir);
    expect(loaded.keypair.address).toBe(svc.node.info.onion);
    expect(loaded.keypair.samePublicKey(svc.identity)).toBe(true);
    const identity = loaded.keypair;

    const view = await waitForNetworkView(ctl, { minRelays: net.authorities.length + net.relays.length });
    const desc = await serviceDescriptor(ctl, address, identity.publicKey, view.periodParams, {
      minIntroPoints: 3,
    });
    const tReady = Date.now();
    // Tor publishes nothing itself.
    expect(svc.recorder.hsDesc().filter((x) => x.ev.action === 'UPLOAD')).toHaveLength(0);

    const targets = targetsFor(view, identity.publicKey);
    const client = await openRecorder(net.clients[0]!.control, ['HS_DESC']);
    const posts = await publishDescriptors({
      control: ctl,
      recorder: svc.recorder,
      identity,
      targets,
      introPoints: desc.decoded.introPoints,
      flowControl: desc.decoded.inner.flowControl,
    });
    console.log(`[hspost] ${address.slice(0, 16)}… ${describePosts(posts)}`);
    for (const p of posts) {
      expect(p.failed).toEqual([]);
      expect(p.silent).toEqual([]);
      expect([...p.uploaded].sort()).toEqual([...p.servers].sort());
    }
    const firstPost = posts[0]!.postedAt;

    // Client: forget cached state, then fetch the page through SOCKS (retried until a deadline).
    const since = client.mark();
    await client.control.signal('NEWNYM');
    const page = await fetchOnionUntil(net.clients[0]!.socksPort, svc.node.info.onion, {
      deadlineMs: 90_000,
      intervalMs: 1000,
    });
    const tPage = Date.now();
    expect(page.status).toBe(200);
    expect(page.body).toBe(http.body);

    const evs = client.hsDesc(since).map((x) => x.ev).filter((e) => e.address === address);
    const received = evs.filter((e) => e.action === 'RECEIVED');
    const badDesc = evs.filter((e) => e.action === 'FAILED' && e.reason === 'BAD_DESC');
    expect(badDesc).toEqual([]);
    expect(received.length).toBeGreaterThan(0);
    // The client took the descriptor for its current period: one of the two we posted.
    const postedKeys = posts.map((p) => p.blindedKey);
    for (const r of received) expect(postedKeys).toContain(r.descriptorId);
    // …namely the one for the period the client's consensus says is current.
    const cview = await readNetworkView(client.control);
    const ctargets = targetsFor(cview, identity.publicKey);
    const fetchKey = blindedB64(
      ctargets.descriptors.find((d) => d.periodNum === ctargets.plan.fetch.periodNum)!
        .blindedPublicKey,
    );
    expect(received[0]!.descriptorId).toBe(fetchKey);

    console.log(
      `[hspost] timings: service start → intro points ready ${secs(tReady - tStart)}; ` +
        `build ${posts.map((p) => `${p.buildMs.toFixed(0)}ms`).join(' + ')}; ` +
        `HSPOST → all UPLOADED ${posts.map((p) => `${p.uploadMs}ms`).join(' + ')}; ` +
        `first HSPOST → first page ${secs(tPage - firstPost)} (${page.attempts} SOCKS attempts; ` +
        `client HS_DESC: ${evs.map((e) => e.action + (e.reason === undefined ? '' : `:${e.reason}`)).join(',')})`,
    );
  });
});
