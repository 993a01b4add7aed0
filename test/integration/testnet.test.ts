/**
 * The shared private network (global-setup.ts) is usable: its client fetches a page from the
 * plain onion service through SOCKS5 (torlab.md §2–3), the description matches the running
 * network, and tors added from a test (test/helpers/testnet.ts) join it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TorControl } from '../../src/adapters/tor/control.js';
import { fetchConsensusRouterCount } from '../../src/adapters/tor/testnet.js';
import { readCachedDescriptor } from '../../src/cli/commands/demo-cluster.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { testingNetworkPeriodParams } from '../../src/core/hs/time-period.js';
import {
  addClient,
  addService,
  fetchOnionUntil,
  sharedHttp,
  sharedTestnet,
  stopAdded,
} from '../helpers/testnet.js';

const net = sharedTestnet();
const http = sharedHttp();

afterAll(async () => {
  await stopAdded();
});

describe('shared private Tor network', () => {
  it('the client fetches a page from the onion service through its SOCKS port', async () => {
    const client = net.clients[0]!;
    const hs = net.services[0]!;
    const r = await fetchOnionUntil(client.socksPort, hs.onion, {
      deadlineMs: 120_000,
      intervalMs: 1500,
    });
    console.log(
      `[testnet] first .onion fetch OK ${((Date.now() - net.startedAtMs) / 1000).toFixed(1)}s after network start, ` +
        `${(r.elapsedMs / 1000).toFixed(1)}s after the first attempt (${r.attempts} attempts)`,
    );
    expect(r.status).toBe(200);
    expect(r.body).toBe(http.body);
    // Warm fetch (torlab: 0.4–0.7 s).
    const warm = await fetchOnionUntil(client.socksPort, hs.onion, { deadlineMs: 30_000 });
    console.log(`[testnet] warm fetch ${warm.elapsedMs} ms`);
    expect(warm.body).toBe(http.body);
    // What the demo reads to tell a visitor's stale descriptor: the client's cached one.
    const now = Math.floor(Date.now() / 1000);
    const cached = await readCachedDescriptor(client.control, hs.onion, now);
    expect(cached?.introPoints).toBeGreaterThan(0);
    expect(cached!.revisionCounter).toBeGreaterThan(0n);
    const never = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3)).address;
    expect(await readCachedDescriptor(client.control, never, now)).toBeUndefined();
  });

  it('describes the running network', async () => {
    expect(net.timePeriod).toEqual(testingNetworkPeriodParams(net.votingIntervalSeconds));
    expect(net.dirAuthorities).toHaveLength(net.authorities.length);
    for (const a of net.authorities) {
      expect(a.fingerprint).toMatch(/^[0-9A-F]{40}$/);
      expect(a.v3ident).toMatch(/^[0-9A-F]{40}$/);
    }
    const ports = [...net.authorities, ...net.relays]
      .flatMap((r) => [r.orPort, r.dirPort])
      .concat(net.clients.map((c) => c.socksPort));
    expect(new Set(ports).size).toBe(ports.length);
    const count = await fetchConsensusRouterCount(net.authorities[0]!.dirPort);
    expect(count).toBe(net.authorities.length + net.relays.length);
    const hs = net.services[0]!;
    expect(hs.onion).toBe(`${hs.address}.onion`);
    const ctl = await TorControl.connect(hs.control);
    try {
      // GETINFO hs/service/desc/id/<addr> returns the service's current outer descriptor (torlab §4).
      const desc = await ctl.getInfo(`hs/service/desc/id/${hs.address}`);
      expect(desc).toMatch(/^hs-descriptor 3$/m);
    } finally {
      await ctl.close();
    }
    const c = await TorControl.connect(net.clients[0]!.control);
    try {
      expect(await c.getInfo('status/bootstrap-phase')).toMatch(/PROGRESS=100/);
    } finally {
      await c.close();
    }
  });

  it('a service and a client added to the running network work together', async () => {
    const t = Date.now();
    const [svc, client] = await Promise.all([
      addService({ target: { host: '127.0.0.1', port: http.port }, waitForUpload: true }),
      addClient(),
    ]);
    const r = await fetchOnionUntil(client.info.socksPort, svc.info.onion, { deadlineMs: 120_000 });
    console.log(
      `[testnet] added service+client: page fetched ${((Date.now() - t) / 1000).toFixed(1)}s after starting them (${r.attempts} attempts)`,
    );
    expect(r.body).toBe(http.body);
    expect(svc.info.address).not.toBe(net.services[0]!.address);
  });
});
