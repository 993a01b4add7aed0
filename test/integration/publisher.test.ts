/**
 * The cluster publisher against real tor 0.4.9 in the shared private network:
 *
 * 1. two onion-service tors hold the SAME master key (HiddenServiceDir key files),
 *    `PublishHidServDescriptors 0`, OB-self (`ob_config` names the master itself), each
 *    forwarding to its own HTTP server that answers with its node name;
 * 2. an IntroCollector per tor harvests its intro points (GETINFO hs/service/desc/id);
 * 3. ONE Publisher (on node A's control port) publishes both merged descriptors with the
 *    intro points of both nodes; every HSDir answers UPLOADED;
 * 4. a client's HSFETCH of the master address returns a descriptor that our core decrypts
 *    and that lists the intro points of BOTH tors; many fresh client circuits (SOCKS
 *    isolation: a new username per request) are served by both HTTP servers;
 * 5. node B's tor is stopped and the publisher updated with node A only: we measure the
 *    time until the HSDirs serve a descriptor without B's intro points, and fresh clients get
 *    pages from A;
 * 6. across the next period roll-over the publisher republishes both descriptors for the new
 *    periods by itself.
 * Printed: publish latency, HSPOST → all UPLOADED, failover time, roll-over republish delay.
 */
import { createServer, type Server } from 'node:http';
import { pino } from 'pino';
import { SocksClient } from 'socks';
import { afterAll, describe, expect, it } from 'vitest';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import { realTimers } from '../../src/adapters/system/timers.js';
import { encodeTorKeyFiles, HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { decodeDescriptor } from '../../src/core/hsdesc/descriptor.js';
import { parseHsDescContent } from '../../src/core/torctl/events.js';
import { IntroCollector } from '../../src/node/publisher/intro-collector.js';
import { Publisher, type PublishRecord } from '../../src/node/publisher/publisher.js';
import { introPointToWire } from '../../src/core/intro/wire.js';
import { sharedTestnet } from '../helpers/testnet.js';
import {
  cleanupTors,
  openRecorder,
  readNetworkView,
  secs,
  startRecordedService,
  waitUntil,
  type EventRecorder,
} from '../helpers/tor-integration.js';

const net = sharedTestnet();
const logger = pino({ level: process.env['TORBALANCE_TEST_LOG'] ?? 'silent' });
const servers: Server[] = [];
const stoppers: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const s of stoppers.splice(0).reverse()) await s();
  for (const s of servers) s.close();
  await cleanupTors();
});

async function nameServer(name: string): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name), connection: 'close' });
    res.end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no port');
  return a.port;
}

/** GET / through SOCKS with a fresh isolation username (→ a fresh rendezvous circuit). */
async function getIsolated(socksPort: number, onion: string, tag: string): Promise<string> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5, userId: tag, password: 'x' },
    command: 'connect',
    destination: { host: onion, port: 80 },
    timeout: 60_000,
  });
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('HTTP timeout'));
    }, 30_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const t = Buffer.concat(chunks).toString('utf8');
      resolve(t.slice(t.indexOf('\r\n\r\n') + 4));
    });
    socket.write(`GET / HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
  });
}

/** HSFETCH through the client and return the auth keys (b64) of the descriptor an HSDir served. */
async function fetchAuthKeys(client: EventRecorder, identity: HsIdentityKeypair): Promise<{ keys: string[]; revision: bigint }> {
  const since = client.mark();
  await client.control.hsFetch(identity.label);
  const text = await client.waitFor(
    'HS_DESC_CONTENT',
    (r) => {
      if (r.event.type !== 'HS_DESC_CONTENT') return undefined;
      const c = parseHsDescContent(r.event);
      return c.address === identity.label && c.descriptor !== '' ? c.descriptor : undefined;
    },
    { since, timeoutMs: 30_000 },
  );
  const view = await readNetworkView(client.control);
  const d = decodeDescriptor(text, { identityPublicKey: identity.publicKey, periodParams: view.periodParams, nowSeconds: Math.floor(Date.now() / 1000) });
  return { keys: d.introPoints.map((ip) => introPointToWire(ip).authKey), revision: d.revisionCounter };
}

describe('Publisher with two OB-self nodes sharing the master key', () => {
  const identity = HsIdentityKeypair.generate(systemRandomBytes);
  const files = encodeTorKeyFiles(identity);
  const hsFiles = { hs_ed25519_secret_key: files.secretKeyFile, hs_ed25519_public_key: files.publicKeyFile, hostname: files.hostnameFile };
  let publisher: Publisher;
  const records: PublishRecord[] = [];
  let colA: IntroCollector;
  let colB: IntroCollector;
  let nodeB: Awaited<ReturnType<typeof startRecordedService>>;
  let client: EventRecorder;
  let bAlive = true;

  it('publishes both nodes’ intro points; clients reach both nodes', async () => {
    const [portA, portB] = await Promise.all([nameServer('node-A'), nameServer('node-B')]);
    const spec = (port: number) => ({
      target: { host: '127.0.0.1', port },
      publishDescriptors: false,
      onionBalanceMaster: identity.label,
      hiddenServiceFiles: hsFiles,
    });
    const [nodeA, b] = await Promise.all([startRecordedService(spec(portA), ['HS_DESC', 'CIRC']), startRecordedService(spec(portB), ['HS_DESC', 'CIRC'])]);
    nodeB = b;
    expect(nodeA.node.info.address).toBe(identity.label);
    expect(nodeB.node.info.address).toBe(identity.label);

    const mk = (r: EventRecorder): IntroCollector =>
      new IntroCollector({ control: r.control, masterAddress: identity.address, identityPublicKey: identity.publicKey, now: Date.now, timers: realTimers, logger, pollMs: 2000 });
    colA = mk(nodeA.recorder);
    colB = mk(nodeB.recorder);
    colA.start();
    colB.start();
    stoppers.push(
      () => {
        colA.stop();
      },
      () => {
        colB.stop();
      },
    );
    const tCollect = Date.now();
    await waitUntil('both nodes’ intro points', () => ((colA.current()?.points.length ?? 0) >= 3 && (colB.current()?.points.length ?? 0) >= 3 ? true : undefined), {
      timeoutMs: 120_000,
    });
    console.log(`[publisher] intro points harvested after ${secs(Date.now() - tCollect)}: A=${colA.current()!.points.length} B=${colB.current()!.points.length}`);
    const keysA = colA.current()!.points.map((p) => p.authKey);
    const keysB = colB.current()!.points.map((p) => p.authKey);
    expect(keysA.filter((k) => keysB.includes(k))).toEqual([]);

    publisher = new Publisher({
      control: nodeA.recorder.control,
      identity: { expandedSecretKey: identity.expandedSecretKey, publicKey: identity.publicKey },
      masterAddress: identity.address,
      now: Date.now,
      timers: realTimers,
      randomBytes: systemRandomBytes,
      logger,
      refreshMs: 30 * 60_000,
      uploadTimeoutMs: 30_000,
      testingTorNetwork: true,
      consensusPollMs: 2000,
      retryMs: 3000,
    });
    publisher.onPublish((r) => records.push(r));
    stoppers.push(() => publisher.stop());
    const push = (): void => {
      const nodes = [
        { id: 'A', introPoints: colA.current()?.points ?? [] },
        ...(!bAlive ? [] : [{ id: 'B', introPoints: colB.current()?.points ?? [] }]),
      ];
      publisher.update({ nodes });
    };
    colA.onChange(push);
    colB.onChange(push);
    publisher.start();
    const tUpdate = Date.now();
    push();
    const first = await waitUntil('the first publish', () => records[0], { timeoutMs: 120_000, intervalMs: 100 });
    const uploadedMs = Math.max(...first.hsdirs.map((h) => h.ms));
    console.log(
      `[publisher] first publish: update → round done ${secs(first.endMs - tUpdate)}; ` +
        `HSPOST→250 ${first.descriptors.map((d) => `${d.postMs.toFixed(0)}ms`).join('+')}; slowest HSPOST→UPLOADED ${uploadedMs.toFixed(0)}ms; ` +
        `HSDirs per descriptor ${first.descriptors.map((d) => d.servers.length).join('+')}; ` +
        `periods ${first.descriptors.map((d) => d.periodNum).join(',')}; per node ${JSON.stringify(first.perNode)}; ` +
        `results ${first.hsdirs.map((h) => h.result[0]).join('')}`,
    );
    expect(first.hsdirs.length).toBeGreaterThan(0);
    expect(first.hsdirs.filter((h) => h.result !== 'uploaded')).toEqual([]);
    expect(first.descriptors.map((d) => d.descriptor)).toEqual(['first', 'second']);

    client = await openRecorder(net.clients[0]!.control, ['HS_DESC', 'HS_DESC_CONTENT']);
    const fetched = await fetchAuthKeys(client, identity);
    expect(fetched.keys.some((k) => keysA.includes(k))).toBe(true);
    expect(fetched.keys.some((k) => keysB.includes(k))).toBe(true);

    await client.control.signal('NEWNYM');
    const counts = new Map<string, number>();
    const errors: string[] = [];
    for (let i = 0; i < 24; i++) {
      try {
        const body = await getIsolated(net.clients[0]!.socksPort, identity.address, `iso${i}-${Date.now()}`);
        counts.set(body, (counts.get(body) ?? 0) + 1);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    console.log(`[publisher] 24 isolated fetches: ${JSON.stringify(Object.fromEntries(counts))}; errors ${errors.length} ${errors.slice(0, 2).join(' | ')}`);
    expect(counts.get('node-A') ?? 0).toBeGreaterThan(0);
    expect(counts.get('node-B') ?? 0).toBeGreaterThan(0);
  });

  it('after node B’s tor stops, the HSDirs serve a descriptor without B and clients reach A', async () => {
    const keysB = colB.current()!.points.map((p) => p.authKey);
    const n0 = records.length;
    colB.stop();
    const tKill = Date.now();
    bAlive = false;
    await nodeB.node.process.stop();
    publisher.update({ nodes: [{ id: 'A', introPoints: colA.current()!.points }] });
    const rec = await waitUntil('the republish without B', () => records.slice(n0).find((r) => r.perNode['B'] === undefined), { timeoutMs: 60_000, intervalMs: 100 });
    const tPublished = rec.endMs;
    let polls = 0;
    const clean = await waitUntil(
      'a fetched descriptor without B’s intro points',
      async () => {
        polls++;
        const f = await fetchAuthKeys(client, identity);
        return f.keys.some((k) => keysB.includes(k)) ? undefined : f;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const tClean = Date.now();
    console.log(
      `[publisher] failover: stop B → republished (all UPLOADED ${rec.hsdirs.every((h) => h.result === 'uploaded')}) ${secs(tPublished - tKill)}; ` +
        `stop B → HSDir serves a descriptor without B ${secs(tClean - tKill)} (${polls} HSFETCHes; ${clean.keys.length} intro points)`,
    );
    await client.control.signal('NEWNYM');
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) bodies.push(await getIsolated(net.clients[0]!.socksPort, identity.address, `post${i}-${Date.now()}`));
    console.log(`[publisher] after failover: ${bodies.join(',')}; first page ${secs(Date.now() - tClean)} after the clean descriptor`);
    expect(new Set(bodies)).toEqual(new Set(['node-A']));
  });

  it('republishes both descriptors for the new periods at the next period roll-over', async () => {
    const periods0 = records.at(-1)!.descriptors.map((d) => d.periodNum);
    const n0 = records.length;
    const rec = await waitUntil(
      'a republish for new periods',
      () => records.slice(n0).find((r) => r.descriptors.length === 2 && r.descriptors[0]!.periodNum !== periods0[0]),
      { timeoutMs: 330_000, intervalMs: 500 },
    );
    console.log(
      `[publisher] roll-over: periods ${periods0.join(',')} → ${rec.descriptors.map((d) => d.periodNum).join(',')} (reason ${rec.reason}); ` +
        `uploaded ${rec.hsdirs.filter((h) => h.result === 'uploaded').length}/${rec.hsdirs.length}`,
    );
    expect(rec.reason).toContain('plan');
    // Every responsible HSDir of both new descriptors must accept them, retries included: an
    // upload can time out on a real network (seen at a roll-over: 3 of 8 HSDirs silent for
    // 30 s), and the publisher re-posts to exactly the HSDirs that failed.
    const key = (h: { descriptor: string; fp: string }): string => `${h.descriptor}:${h.fp}`;
    const wanted = new Set(rec.hsdirs.map(key));
    const newPeriods = rec.descriptors.map((d) => d.periodNum).join(',');
    const iRec = records.indexOf(rec);
    await waitUntil(
      'every HSDir of both new descriptors accepted them (with retries)',
      () => {
        const ok = new Set(
          records
            .slice(iRec)
            .filter((r) => r.descriptors.map((d) => d.periodNum).join(',') === newPeriods || r.reason.includes('retry'))
            .flatMap((r) => r.hsdirs.filter((h) => h.result === 'uploaded').map(key)),
        );
        return [...wanted].every((k) => ok.has(k)) ? true : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    const retries = records.length - 1 - iRec;
    console.log(`[publisher] roll-over: all ${wanted.size} HSDir uploads accepted after ${retries} retry round(s)`);
    const f = await fetchAuthKeys(client, identity);
    expect(f.keys.length).toBeGreaterThan(0);
  });
});
