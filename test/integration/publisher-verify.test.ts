/**
 * Publisher HSFETCH verification against real tor 0.4.9 in the shared private network: one
 * OB-self service tor (PublishHidServDescriptors 0) whose intro points a Publisher publishes.
 * The network view is narrowed to a subset S1 of the HSDirs, so the publisher posts only
 * there; its verification round must report every fetched HSDir `verified` (served counter =
 * posted counter). Then the view switches to a disjoint subset S2 (a plan change: HSDirs
 * that never held this descriptor) and the verification after the republish must report
 * every HSDir of S2 verified. Printed: publish → verification latency per round.
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import { realTimers } from '../../src/adapters/system/timers.js';
import { encodeTorKeyFiles, HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { IntroCollector } from '../../src/node/publisher/intro-collector.js';
import { ControlNetworkSource, Publisher, type NetworkSnapshot, type PublishRecord, type VerificationRecord } from '../../src/node/publisher/publisher.js';
import { cleanupTors, secs, startRecordedService, waitUntil } from '../helpers/tor-integration.js';

const logger = pino({ level: process.env['TORBALANCE_TEST_LOG'] ?? 'silent' });
const stoppers: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const s of stoppers.splice(0).reverse()) await s();
  await cleanupTors();
});

describe('Publisher verification with real HSDirs', () => {
  it('verifies what the HSDirs serve after a publish, and again on a fresh HSDir set after a plan change', async () => {
    const identity = HsIdentityKeypair.generate(systemRandomBytes);
    const files = encodeTorKeyFiles(identity);
    const { recorder } = await startRecordedService(
      {
        target: { host: '127.0.0.1', port: 9 },
        publishDescriptors: false,
        onionBalanceMaster: identity.label,
        hiddenServiceFiles: { hs_ed25519_secret_key: files.secretKeyFile, hs_ed25519_public_key: files.publicKeyFile, hostname: files.hostnameFile },
      },
      ['HS_DESC', 'HS_DESC_CONTENT', 'CIRC'],
    );
    const col = new IntroCollector({ control: recorder.control, masterAddress: identity.address, identityPublicKey: identity.publicKey, now: Date.now, timers: realTimers, logger, pollMs: 2000 });
    col.start();
    stoppers.push(() => {
      col.stop();
    });
    await waitUntil('intro points', () => ((col.current()?.points.length ?? 0) >= 3 ? true : undefined), { timeoutMs: 120_000 });

    // A network view limited to a subset of the HSDirs (the real ring has all of them).
    const inner = new ControlNetworkSource(recorder.control);
    let allowed: ReadonlySet<string> | undefined;
    const network = {
      async read(): Promise<NetworkSnapshot> {
        const s = await inner.read();
        return allowed === undefined ? s : { consensus: s.consensus, relays: s.relays.filter((r) => allowed!.has(r.rsaFingerprint)) };
      },
    };
    const all = (await inner.read()).relays.map((r) => r.rsaFingerprint);
    expect(all.length).toBeGreaterThanOrEqual(6);
    const half = Math.floor(all.length / 2);
    const s1 = new Set(all.slice(0, half));
    const s2 = new Set(all.slice(half));
    allowed = s1;

    const publisher = new Publisher({
      control: recorder.control,
      network,
      identity: { expandedSecretKey: identity.expandedSecretKey, publicKey: identity.publicKey },
      masterAddress: identity.address,
      now: Date.now,
      timers: realTimers,
      randomBytes: systemRandomBytes,
      logger,
      refreshMs: 30 * 60_000,
      uploadTimeoutMs: 30_000,
      testingTorNetwork: true,
      consensusPollMs: 1000,
      retryMs: 3000,
      verify: { minIntervalMs: 1000, timeoutMs: 20_000 },
    });
    const records: PublishRecord[] = [];
    publisher.onPublish((r) => records.push(r));
    stoppers.push(() => publisher.stop());
    publisher.start();
    publisher.update({ nodes: [{ id: 'A', introPoints: col.current()!.points }] });

    const report = (label: string, rec: PublishRecord, v: VerificationRecord): void => {
      console.log(
        `[publisher-verify] ${label}: publish done → verification done ${secs(v.endMs - rec.endMs)}; HSFETCH → answers ${v.hsdirs.map((h) => `${h.ms.toFixed(0)}ms`).join(',')}; ` +
          `round ${secs(v.endMs - v.atMs)}; results ${v.hsdirs.map((h) => h.result).join(',')}`,
      );
    };

    const rec1 = await waitUntil('the first publish', () => records[0], { timeoutMs: 60_000, intervalMs: 100 });
    expect(rec1.hsdirs.filter((h) => h.result !== 'uploaded')).toEqual([]);
    const v1 = await waitUntil('the first verification', () => publisher.status().lastVerification, { timeoutMs: 40_000, intervalMs: 100 });
    report('S1', rec1, v1);
    expect(v1.hsdirs.length).toBeGreaterThan(0);
    for (const h of v1.hsdirs) {
      expect(s1.has(h.fp)).toBe(true);
      expect(h.result).toBe('verified');
      expect(h.servedCounter).toBe(v1.expected[h.fp]);
    }
    expect(v1.reposted).toEqual([]);

    // Plan change: a disjoint HSDir set that has never held this descriptor.
    allowed = s2;
    const rec2 = await waitUntil('the republish to S2', () => records.find((r) => r.reason.includes('plan')), { timeoutMs: 30_000, intervalMs: 100 });
    expect(rec2.hsdirs.filter((h) => h.result !== 'uploaded')).toEqual([]);
    const v2 = await waitUntil('the verification of S2', () => {
      const v = publisher.status().lastVerification;
      return v !== undefined && v !== v1 ? v : undefined;
    }, { timeoutMs: 40_000, intervalMs: 100 });
    report('S2', rec2, v2);
    expect(v2.hsdirs.length).toBeGreaterThan(0);
    for (const h of v2.hsdirs) {
      expect(s2.has(h.fp)).toBe(true);
      expect(h.result).toBe('verified');
    }
    expect(publisher.status().staleFound).toBe(0);
  });
});
