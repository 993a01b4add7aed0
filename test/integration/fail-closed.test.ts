/**
 * Fail closed against real tor (docs/DESIGN.md "Fail closed without spending tor's
 * intro-circuit budget"): a one-node cluster (its tor hosts only the master service: the mesh
 * runs over loopback TCP) in the shared private network, its target the test app behind its
 * own onion service. The target app stops → the node pauses the master service: its intro
 * circuits on the node's tor are gone within a bound, and during a 60 s unhealthy spell the
 * node's tor launches NO intro circuit for the master (CIRC events recorded on the node's
 * control port; the older way — closing the circuits again and again — made tor relaunch
 * each one, without limit under TestingTorNetwork). A fresh visitor (NEWNYM) is refused, not
 * served (every intro point NACKs; with no other node its tor refetches and retries until its
 * SocksTimeout, 120 s — measured 119.7 s — so this checks the refusal and prints the time).
 * The app back → the node has intro points again and serves a visit within a bound. Prints:
 * intro circuits launched at start-up, in a healthy minute and during the spell, time to
 * pause, time to refuse the fresh visitor, time to recover.
 */
import { SocksClient } from 'socks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { parseCirc, type CircEvent } from '../../src/core/torctl/events.js';
import { TorControl } from '../../src/adapters/tor/control.js';
import { introPointsFromServiceDescriptor } from '../../src/node/publisher/intro-collector.js';
import { TestCluster } from '../helpers/cluster-harness.js';
import { httpViaSocks, startTargetBehindOnion, type TargetBehindOnion } from '../helpers/node-harness.js';
import { sharedTestnet } from '../helpers/testnet.js';
import { circuitStatus, cleanupTors, EventRecorder, secs, waitUntil } from '../helpers/tor-integration.js';

const net = sharedTestnet();
const client = net.clients[0]!;
const SPELL_MS = 60_000;
let target: TargetBehindOnion;
let cluster: TestCluster;
let rec: EventRecorder;
let ctl: TorControl;
/** The shared client tor's control port (NEWNYM between visits). */
let clientCtl: TorControl;
let label = '';
let identityPublicKey: Uint8Array;

function log(msg: string): void {
  console.log(`[fail-closed] ${msg}`);
}

/**
 * A master-service intro circuit: PURPOSE=HS_SERVICE_INTRO with the master's REND_QUERY — or
 * none (tor emits LAUNCHED before it attaches the service identity; this tor hosts no other
 * service).
 */
function isMasterIntro(c: CircEvent): boolean {
  return c.purpose === 'HS_SERVICE_INTRO' && (c.rendQuery === undefined || c.rendQuery === label);
}

/** Circuit ids of master intro circuits first seen in the recorded CIRC events from index `from` to `to`. */
function launchedBetween(from: number, to = rec.events.length): Set<string> {
  const parsed = rec.events.map((r) => {
    try {
      return parseCirc(r.event);
    } catch {
      return undefined;
    }
  });
  const before = new Set(parsed.slice(0, from).map((c) => c?.id));
  const out = new Set<string>();
  for (const c of parsed.slice(from, to)) {
    if (c !== undefined && isMasterIntro(c) && !before.has(c.id) && c.status !== 'CLOSED' && c.status !== 'FAILED') out.add(c.id);
  }
  return out;
}

async function liveMasterIntroCircuits(): Promise<CircEvent[]> {
  return (await circuitStatus(ctl)).filter((c) => isMasterIntro(c) && c.status !== 'CLOSED' && c.status !== 'FAILED');
}

async function visit(timeoutMs: number): Promise<number> {
  const r = await httpViaSocks(client.socksPort, cluster.masterAddress, '/', '', timeoutMs);
  return r.status;
}

beforeAll(async () => {
  const t0 = Date.now();
  target = await startTargetBehindOnion(net);
  cluster = await TestCluster.start({ net, target: target.onion, nodes: 1 });
  ({ label, publicKey: identityPublicKey } = decodeOnionAddress(cluster.masterAddress));
  await waitUntil('the node’s control socket', async () => (await TorControl.connect({ kind: 'unix', path: cluster.controlSocket(0) }).then((c) => c.close().then(() => true), () => undefined)), {
    timeoutMs: 180_000,
  });
  ctl = await TorControl.connect({ kind: 'unix', path: cluster.controlSocket(0) });
  clientCtl = await TorControl.connect(client.control);
  rec = await EventRecorder.open({ kind: 'unix', path: cluster.controlSocket(0) }, ['CIRC']);
  await waitUntil(
    'a first visit through the master',
    async () => {
      if (!cluster.running(0)) throw new Error('node0 exited');
      return (await visit(30_000).catch(() => undefined)) === 200 ? true : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 1500 },
  );
  log(`first visit after ${secs(Date.now() - t0)}`);
}, 600_000);

afterAll(async () => {
  await (rec as EventRecorder | undefined)?.close();
  await (ctl as TorControl | undefined)?.close().catch(() => undefined);
  await (clientCtl as TorControl | undefined)?.close().catch(() => undefined);
  await (cluster as TestCluster | undefined)?.close();
  await (target as TargetBehindOnion | undefined)?.stop();
  await cleanupTors();
}, 120_000);

describe('fail closed pauses the master service', () => {
  it('closes its intro circuits, launches none while the target is down, refuses a fresh visitor, and recovers', async () => {
    // Start-up (recorder open → first visit), then a healthy minute: intro circuits launched.
    const startupLaunched = launchedBetween(0).size;
    const steadyFrom = rec.mark();
    const tSteady = Date.now();
    await waitUntil('a healthy minute', () => (Date.now() - tSteady >= 60_000 ? true : undefined), { timeoutMs: 120_000, intervalMs: 1000 });
    const steadyLaunched = launchedBetween(steadyFrom).size;
    const steadyMin = (Date.now() - tSteady) / 60_000;
    expect((await liveMasterIntroCircuits()).length).toBeGreaterThan(0);

    const tDown = Date.now();
    await target.app.stop();
    await waitUntil('the node to report fail-closed active', () => (cluster.status(0)?.cluster?.failClosed.active === true ? true : undefined), { timeoutMs: 60_000 });
    const tPaused = Date.now();
    await waitUntil('the master intro circuits to be gone', async () => ((await liveMasterIntroCircuits()).length === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 200 });
    const tGone = Date.now();
    log(`target down → paused in ${secs(tPaused - tDown)}, intro circuits gone ${secs(tGone - tPaused)} later`);
    const spellFrom = rec.mark();

    // A fresh visitor (no cached descriptor, no intro-failure memory) is refused.
    await clientCtl.signal('NEWNYM');
    const tv = Date.now();
    // SOCKS connect only, with a deadline past tor's SocksTimeout (120 s): how long tor takes to refuse.
    const got = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: client.socksPort, type: 5 }, command: 'connect', destination: { host: cluster.masterAddress, port: 80 }, timeout: 130_000 }).then(
      (c) => {
        c.socket.destroy();
        return 'connected';
      },
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    const visitMs = Date.now() - tv;
    log(`fresh visitor during the spell: ${got} after ${secs(visitMs)}`);
    expect(got).not.toBe('connected');

    // The rest of the spell: the node's tor must launch no intro circuit for the master.
    await waitUntil('the unhealthy spell to last', () => (Date.now() - tGone >= SPELL_MS ? true : undefined), { timeoutMs: SPELL_MS + 120_000, intervalMs: 1000 });
    const spellLaunched = launchedBetween(spellFrom);
    const spellMin = (Date.now() - tGone) / 60_000;
    expect((await liveMasterIntroCircuits()).length).toBe(0);
    expect(cluster.status(0)?.cluster?.failClosed.active).toBe(true);
    expect([...spellLaunched]).toEqual([]);

    // Back up: intro points again, a visit served.
    const tUp = Date.now();
    await target.app.start();
    await waitUntil('the node to restore the master service', () => (cluster.status(0)?.cluster?.failClosed.active === false ? true : undefined), { timeoutMs: 60_000 });
    const tRestored = Date.now();
    const points = await waitUntil(
      'the node’s tor to have intro points again',
      async () => {
        const text = await ctl.getInfo(`hs/service/desc/id/${label}`);
        const n = introPointsFromServiceDescriptor(text, identityPublicKey, Math.floor(Date.now() / 1000))?.points.length ?? 0;
        return n > 0 ? n : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const tIntro = Date.now();
    await clientCtl.signal('NEWNYM');
    await waitUntil('a visit served again', async () => ((await visit(30_000).catch(() => undefined)) === 200 ? true : undefined), { timeoutMs: 180_000, intervalMs: 1000 });
    const tServed = Date.now();
    expect(cluster.status(0)?.cluster?.failClosed.pauses).toBe(1);
    log(
      `intro circuits launched: start-up ${startupLaunched}, healthy ${steadyLaunched} in ${steadyMin.toFixed(1)} min, ` +
        `during the spell ${spellLaunched.size} in ${spellMin.toFixed(1)} min`,
    );
    log(`target up → restored in ${secs(tRestored - tUp)}, ${points} intro points ${secs(tIntro - tRestored)} later, visit served ${secs(tServed - tUp)} after the target came back`);
  }, 900_000);
});
