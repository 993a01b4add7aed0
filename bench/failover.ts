/**
 * Failover benchmark: `npm run bench -- failover [--kill publisher|member] [--loop-after-s N]`.
 *
 * One run in its own private tor network (src/adapters/tor/testnet.ts: 3 authorities,
 * 5 relays, one client, one onion service in front of a local HTTP app as the target; 10 s
 * voting interval) with a 3-node torbalance cluster as processes
 * (test/helpers/cluster-harness.ts, mesh over loopback TCP, heartbeat 500 ms, suspect 2 s,
 * dead 6 s, lease 8 s). A client loop runs requests to the master address over fresh
 * circuits (new SOCKS isolation username each) the whole time; one node (the publisher by
 * default) is killed with SIGKILL (process and tor). Printed:
 * - time to detect the dead node (both others mark it dead),
 * - time until another node has published without it (member kill: the publisher republished),
 * - time until every responsible HSDir serves a descriptor without its intro points
 *   (HSFETCH SERVER=<each>, decoded with our core),
 * - the client loop's success rate before, across (kill → +60 s) and after the kill.
 * Nothing is asserted.
 */
import { createServer } from 'node:http';
import { join } from 'node:path';
import { SocksClient } from 'socks';
import { TorControl, type ControlEvent } from '../src/adapters/tor/control.js';
import { startTestnet } from '../src/adapters/tor/testnet.js';
import { decodeOnionAddress } from '../src/core/hs/address.js';
import { parseHsDesc, parseHsDescContent } from '../src/core/torctl/events.js';
import { introPointsFromServiceDescriptor } from '../src/node/publisher/intro-collector.js';
import type { IntroPointWire } from '../src/core/intro/wire.js';
import { TEST_TIMINGS, TestCluster } from '../test/helpers/cluster-harness.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch {
      // retry
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

function arg(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

export async function main(args: readonly string[]): Promise<void> {
  const kill = arg(args, '--kill', 'publisher');
  const loopAfterMs = Number(arg(args, '--loop-after-s', '30')) * 1000;
  const http = createServer((_q, r) => {
    r.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    r.end('ok');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as { port: number }).port;
  const t00 = Date.now();
  const net = await startTestnet({
    baseDir: `/tmp/tbf-${process.pid}`,
    clients: 1,
    votingIntervalSeconds: 10,
    consensusParams: [
      ['hsdir_spread_store', 2],
      ['hsdir_spread_fetch', 2],
    ],
    services: [{ nickname: 'hs0', target: { host: '127.0.0.1', port } }],
    onProgress: (m) => {
      console.log(`[testnet] ${m}`);
    },
  });
  console.log(`[failover] network up in ${s(Date.now() - t00)}`);
  let cluster: TestCluster | undefined;
  let client: TorControl | undefined;
  try {
    const desc = net.description;
    cluster = await TestCluster.start({ net: desc, target: desc.services[0]!.onion });
    const c = cluster;
    const { label, publicKey } = decodeOnionAddress(c.masterAddress);
    client = await TorControl.connect(desc.clients[0]!.control);
    const events: ControlEvent[] = [];
    client.onEvent('HS_DESC', (e) => events.push(e));
    client.onEvent('HS_DESC_CONTENT', (e) => events.push(e));
    await client.setEvents(['HS_DESC', 'HS_DESC_CONTENT']);
    const ctl = client;

    const tConv = Date.now();
    const pub = await until(
      'a converged 3-node cluster',
      () => {
        const st = c.nodes.map((_, i) => c.status(i)?.cluster);
        if (st.some((x) => x === undefined)) return undefined;
        const p = c.indexOf(st[0]!.publisher);
        const last = p < 0 ? undefined : st[p]!.publish?.lastPublish;
        if (p < 0 || st.some((x) => x!.publisher !== st[0]!.publisher) || last === undefined || Object.keys(last.perNode).length !== 3) return undefined;
        return p;
      },
      600_000,
      500,
    );
    console.log(`[failover] cluster converged ${s(Date.now() - tConv)} after start; publisher node${pub}`);

    const victim = kill === 'member' ? (pub + 1) % 3 : pub;
    const others = [0, 1, 2].filter((i) => i !== victim);
    const victimId = c.status(victim)!.cluster!.nodeId;
    const hsdirs = [...new Set(c.status(pub)!.cluster!.publish!.lastPublish!.descriptors.flatMap((d) => d.servers))];
    const own = async (i: number): Promise<Set<string>> => {
      const t = await TorControl.connect({ kind: 'unix', path: join(c.nodes[i]!.dir, 'data', 'tor', 'control.sock') });
      try {
        const got = introPointsFromServiceDescriptor(await t.getInfo(`hs/service/desc/id/${label}`), publicKey, Math.floor(Date.now() / 1000));
        return new Set((got?.points ?? []).map((p) => `${p.ls}|${p.authKey}`));
      } finally {
        await t.close().catch(() => undefined);
      }
    };
    const gone = await own(victim);

    const fetchFrom = async (fp: string): Promise<IntroPointWire[] | 'failed'> => {
      const since = events.length;
      await ctl.hsFetch(label, [fp]);
      return until(
        'HSFETCH',
        () => {
          for (const e of events.slice(since)) {
            if (e.type === 'HS_DESC_CONTENT') {
              const x = parseHsDescContent(e);
              if (x.address !== label || x.hsDir?.fingerprint !== fp) continue;
              if (x.descriptor === '') return 'failed' as const;
              return introPointsFromServiceDescriptor(x.descriptor, publicKey, Math.floor(Date.now() / 1000))?.points ?? ('failed' as const);
            }
            if (e.type === 'HS_DESC') {
              const x = parseHsDesc(e);
              if (x.action === 'FAILED' && x.address === label && x.hsDir?.fingerprint === fp) return 'failed' as const;
            }
          }
          return undefined;
        },
        30_000,
        100,
      );
    };

    // client loop
    const results: { at: number; ok: boolean }[] = [];
    let looping = true;
    const loop = (async () => {
      for (let k = 0; looping; k++) {
        const at = Date.now();
        let ok = false;
        try {
          const { socket } = await SocksClient.createConnection({
            proxy: { host: '127.0.0.1', port: desc.clients[0]!.socksPort, type: 5, userId: `f${k}-${at}`, password: 'x' },
            command: 'connect',
            destination: { host: c.masterAddress, port: 80 },
            timeout: 30_000,
          });
          ok = await new Promise<boolean>((resolve) => {
            const chunks: Buffer[] = [];
            const timer = setTimeout(() => {
              socket.destroy();
              resolve(false);
            }, 30_000);
            socket.on('data', (b: Buffer) => chunks.push(b));
            socket.on('error', () => undefined);
            socket.on('close', () => {
              clearTimeout(timer);
              resolve(/^HTTP\/1\.1 200/.test(Buffer.concat(chunks).toString('latin1')));
            });
            socket.write(`GET / HTTP/1.1\r\nHost: ${c.masterAddress}\r\nConnection: close\r\n\r\n`);
          });
        } catch {
          ok = false;
        }
        results.push({ at, ok });
      }
    })();
    await sleep(20_000);

    const before = others.map((i) => c.status(i)?.cluster?.publish?.publishes ?? 0);
    const t0 = Date.now();
    await c.kill9(victim);
    console.log(`[failover] SIGKILL node${victim} (${kill}) and its tor`);
    const tDetect = until(
      'both others mark it dead',
      () => (others.every((i) => c.status(i)?.cluster?.peers.find((p) => p.id === victimId)?.state === 'dead') ? Date.now() : undefined),
      120_000,
      50,
    );
    const tPublish = until(
      'a publish without it',
      () => {
        for (const [k, i] of others.entries()) {
          const cl = c.status(i)?.cluster;
          if (cl?.selfIsPublisher === true && (cl.publish?.publishes ?? 0) > before[k]! && !cl.publishing.includes(victimId)) return Date.now();
        }
        return undefined;
      },
      120_000,
      50,
    );
    let rounds = 0;
    const tClean = until(
      'every responsible HSDir clean',
      async () => {
        rounds++;
        const res = await Promise.all(hsdirs.map((fp) => fetchFrom(fp).catch(() => 'failed' as const)));
        const served = res.filter((r): r is IntroPointWire[] => r !== 'failed');
        return served.length > 0 && served.every((pts) => !pts.some((p) => gone.has(`${p.ls}|${p.authKey}`))) ? Date.now() : undefined;
      },
      180_000,
      500,
    );
    const [d, p, cl] = await Promise.all([tDetect, tPublish, tClean]);
    console.log(`[failover] detect dead: ${s(d - t0)} (dead_after ${TEST_TIMINGS.dead_after_ms} ms, heartbeat ${TEST_TIMINGS.heartbeat_ms} ms)`);
    console.log(`[failover] new descriptor published without it: ${s(p - t0)} (lease ${TEST_TIMINGS.lease_ms} ms)`);
    console.log(`[failover] every responsible HSDir (${hsdirs.length}) serves a descriptor without it: ${s(cl - t0)} (${rounds} HSFETCH rounds)`);
    await sleep(loopAfterMs);
    looping = false;
    await loop;
    const rate = (xs: { ok: boolean }[]): string => `${xs.filter((x) => x.ok).length}/${xs.length}${xs.length === 0 ? '' : ` (${((100 * xs.filter((x) => x.ok).length) / xs.length).toFixed(0)} %)`}`;
    console.log(`[failover] client loop before the kill: ${rate(results.filter((r) => r.at < t0))}`);
    console.log(`[failover] client loop kill → +60 s: ${rate(results.filter((r) => r.at >= t0 && r.at < t0 + 60_000))}`);
    console.log(`[failover] client loop after +60 s: ${rate(results.filter((r) => r.at >= t0 + 60_000))}`);
    console.log(`[failover] client loop overall: ${rate(results)}`);
  } finally {
    await client?.close().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    await net.stop();
    http.close();
  }
}
