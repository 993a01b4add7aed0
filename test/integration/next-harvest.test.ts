/**
 * Harvesting `desc_next` from real tor 0.4.9 (src/node/publisher/next-harvest.ts,
 * docs/DESIGN.md "Rotation-safe intro points"): two node tors hold the SAME master key (PoW
 * defenses on, OnionBalance instance of itself, PublishHidServDescriptors 0), as two cluster
 * nodes do. In the window where `desc_next` is the client-current period (the period start →
 * the nodes' rotation; 2 minutes of every 4 in this network), both harvest AT ONCE, so their
 * uploads race on the same HSDirs: each must end with ITS OWN `desc_next` (PoW-seed
 * attribution), never the other node's. Then the network rotates, and each node's new
 * `desc_current` (read with GETINFO, the only thing tor shows) must list exactly the intro
 * points harvested for it — the ones that survive a rotation.
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import { realTimers } from '../../src/adapters/system/timers.js';
import { toBase64NoPad } from '../../src/core/bytes.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { blindPublicKey } from '../../src/core/hs/blinding.js';
import { encodeTorKeyFiles, HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { srRunSeconds, srRunStart, timePeriodNum } from '../../src/core/hs/time-period.js';
import { decodeOwnServiceDescriptor } from '../../src/core/hsdesc/descriptor.js';
import { PublishModeSwitch } from '../../src/node/publisher/mode-switch.js';
import { NextPeriodHarvester, type HarvestedNextSet } from '../../src/node/publisher/next-harvest.js';
import { introPointToWire } from '../../src/core/intro/wire.js';
import { cleanupTors, nowSeconds, readNetworkView, startRecordedService, waitUntil, type EventRecorder } from '../helpers/tor-integration.js';

const logger = pino({ level: process.env['TORBALANCE_TEST_LOG'] ?? 'silent' });

afterAll(async () => {
  await cleanupTors();
});

describe('desc_next harvest (two nodes, one master key)', () => {
  it('each node harvests its own desc_next during a concurrent harvest, and that set is its desc_current after the rotation', async () => {
    const identity = HsIdentityKeypair.generate(systemRandomBytes);
    const files = encodeTorKeyFiles(identity);
    const start = (): Promise<{ recorder: EventRecorder }> =>
      startRecordedService(
        {
          target: { host: '127.0.0.1', port: 9 },
          publishDescriptors: false,
          onionBalanceMaster: identity.label,
          hiddenServiceFiles: { hs_ed25519_secret_key: files.secretKeyFile, hs_ed25519_public_key: files.publicKeyFile, hostname: files.hostnameFile },
          extraTorrc: [['HiddenServicePoWDefensesEnabled', '1']],
        },
        NextPeriodHarvester.EVENTS,
      );
    const nodes = await Promise.all([start(), start()]);
    const ctl = nodes.map((n) => n.recorder.control);
    const current = async (i: number): Promise<{ key: string; auth: string[] } | undefined> => {
      const d = decodeOwnServiceDescriptor(await ctl[i]!.getInfo(`hs/service/desc/id/${identity.label}`), identity.publicKey, nowSeconds());
      if (d.revisionCounter === 0n) return undefined;
      return { key: toBase64NoPad(d.blindedPublicKey), auth: d.introPoints.map((p) => introPointToWire(p).authKey).sort() };
    };
    for (const i of [0, 1]) await waitUntil(`node ${i} descriptor`, () => current(i), { timeoutMs: 120_000 });

    // The window, as BOTH nodes see it: desc_next's period is client-current, each node's
    // desc_current is the previous period's (what tor built for this phase; a node whose
    // descriptors were built under an older consensus would rotate as soon as it notices),
    // with ≥ 45 s left before the rotation.
    const params = (await readNetworkView(ctl[0]!)).periodParams;
    const seen = new Set<string>();
    const inWindow = async (): Promise<true | undefined> => {
      for (const i of [0, 1]) {
        const va = (await readNetworkView(ctl[i]!)).consensus.validAfter;
        const tp = timePeriodNum(va, params);
        const clientKey = toBase64NoPad(blindPublicKey(identity.publicKey, tp, params.lengthMinutes));
        const prevKey = toBase64NoPad(blindPublicKey(identity.publicKey, tp - 1, params.lengthMinutes));
        const rotation = srRunStart(va, params) + srRunSeconds(params);
        const cur = await current(i);
        if (cur === undefined || rotation - nowSeconds() < 45) return undefined;
        if (cur.key !== prevKey) {
          const state = `node ${i} va=${va} tp=${tp} desc_current=${cur.key === clientKey ? 'tp' : 'other'}`;
          if (cur.key !== clientKey && !seen.has(state)) console.log(`[next-harvest] ${state}: not a period tor builds for this consensus; waiting`);
          seen.add(state);
          return undefined;
        }
      }
      return true;
    };
    await waitUntil('the desc_next window', inWindow, { timeoutMs: 300_000, intervalMs: 2000 });
    const before = [await current(0), await current(1)];

    const harvesters = ctl.map(
      (c) =>
        new NextPeriodHarvester({
          control: c,
          mode: new PublishModeSwitch({ control: c, logger }),
          masterAddress: identity.address,
          identityPublicKey: identity.publicKey,
          now: Date.now,
          timers: realTimers,
          logger,
        }),
    );
    // Concurrent: the two uploads race on the same HSDirs. A node whose HSDirs all hold the
    // other node's descriptor by the time it fetches gets TB_ERR_HARVEST_NOT_OURS and harvests
    // again (what the product does); it must never return the other node's set.
    let collisions = 0;
    const harvestOwn = async (h: NextPeriodHarvester): Promise<HarvestedNextSet> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await h.harvest();
        } catch (e) {
          if (!(e instanceof TorbalanceError) || e.code !== 'TB_ERR_HARVEST_NOT_OURS' || attempt >= 3) throw e;
          collisions++;
        }
      }
    };
    const got = await Promise.all(harvesters.map(harvestOwn));
    console.log(
      `[next-harvest] harvested ${got.map((g) => `${g.points.length} intro points in ${g.tookMs} ms`).join('; ')}; collisions retried: ${collisions}`,
    );
    for (const [i, g] of got.entries()) {
      expect(g.points.length).toBeGreaterThanOrEqual(3);
      // desc_next's own set: none of desc_current's intro points
      for (const p of g.points) expect(before[i]!.auth).not.toContain(p.authKey);
      expect(g.blindedKey).not.toBe(before[i]!.key);
    }
    expect(got[0]!.blindedKey).toBe(got[1]!.blindedKey);
    const a0 = new Set(got[0]!.points.map((p) => p.authKey));
    for (const p of got[1]!.points) expect(a0.has(p.authKey)).toBe(false);

    // The rotation: each node's new desc_current is exactly what was harvested for it.
    for (const i of [0, 1]) {
      const after = await waitUntil(
        `node ${i} rotation`,
        async () => {
          const c = await current(i);
          return c !== undefined && c.key === got[i]!.blindedKey ? c : undefined;
        },
        { timeoutMs: 240_000, intervalMs: 1000 },
      );
      expect(after.auth).toEqual(got[i]!.points.map((p) => p.authKey).sort());
    }
  });
});
