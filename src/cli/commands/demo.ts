/**
 * `torbalance demo`: torbalance working on a private Tor network on 127.0.0.1, in one command.
 *
 * It starts a private Tor network (directory authorities, HSDir relays, a client), a small
 * target web application behind its own onion service (the address visitors never see),
 * generates a master key, starts a torbalance node for that master address, and runs a
 * visitor loop through the client tor, showing for each request the status, the latency,
 * which node served it, and that the page names the master address and never the target.
 * Ctrl-C (or `--duration`) stops everything it started.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { configFromObject, extraConfigLines } from '../../adapters/config/load.js';
import { writeKeyDirectory } from '../../adapters/fs/key-store.js';
import { createLogger } from '../../adapters/log/logger.js';
import { httpGetThroughTor } from '../../adapters/net/onion-http.js';
import { systemRandomBytes } from '../../adapters/system/random.js';
import { startTestnet, testnetCommonTorrc, type Testnet } from '../../adapters/tor/testnet.js';
import { TorbalanceError } from '../../core/errors.js';
import { HsIdentityKeypair } from '../../core/hs/keys.js';
import { startNode, type NodeHandle } from '../../node/daemon.js';

interface DemoOptions {
  readonly duration?: string;
  readonly interval: string;
  readonly dir?: string;
  readonly keep?: boolean;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The demo's target application: its pages name its own onion address, as real sites do. */
function startTargetApp(getAddress: () => string): Promise<Server> {
  const server = createServer((req, res) => {
    const self = getAddress();
    if (req.url === '/go') {
      res.writeHead(302, { location: `http://${self}/`, 'set-cookie': `demo=1; Domain=${self}; Path=/` });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': `seen=1; Domain=${self}; Path=/` });
    res.end(
      `<!doctype html><title>target app</title><h1>Hello from the target</h1>` +
        `<p>Canonical link: <a href="http://${self}/about">http://${self}/about</a></p>\n`,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve(server);
    });
  });
}

async function runDemo(opts: DemoOptions): Promise<void> {
  const durationMs = opts.duration === undefined ? undefined : Number(opts.duration) * 1000;
  const intervalMs = Number(opts.interval) * 1000;
  if ((durationMs !== undefined && !(durationMs > 0)) || !(intervalMs > 0)) {
    throw new TorbalanceError('TB_ERR_DEMO_OPTIONS', 'config', '--duration and --interval must be positive numbers of seconds');
  }
  const baseDir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'tbdemo-')));
  const abort = new AbortController();
  const aborted = (): boolean => abort.signal.aborted;
  let net: Testnet | undefined;
  let node: NodeHandle | undefined;
  let app: Server | undefined;
  let stopping = false;
  const onSignal = (): void => {
    if (!stopping) say('\nstopping…');
    stopping = true;
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = performance.now();
  const secs = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  try {
    say('torbalance demo: one master onion address in front of a hidden target, on a private Tor network (127.0.0.1 only)');
    say(`working directory: ${baseDir}`);
    let targetOnion = '';
    app = await startTargetApp(() => targetOnion);
    const appPort = (app.address() as AddressInfo).port;

    say('[1/4] starting a private Tor network: 3 directory authorities, 5 relays (HSDirs), 1 client, the target onion service');
    net = await startTestnet({
      baseDir: join(baseDir, 'net'),
      services: [{ nickname: 'target', target: { host: '127.0.0.1', port: appPort } }],
      onProgress: (m) => { say(`      ${secs()}  ${m}`); },
      signal: abort.signal,
    });
    const desc = net.description;
    const target = desc.services[0]!;
    const client = desc.clients[0]!;
    targetOnion = target.onion;
    say(`      network usable after ${secs()}`);
    say(`[2/4] target app on 127.0.0.1:${appPort}, published only as ${target.onion} (visitors never see this address)`);

    const master = HsIdentityKeypair.generate(systemRandomBytes);
    await writeKeyDirectory(join(baseDir, 'master'), master);
    say(`[3/4] master key generated: ${master.address}`);

    const nodeDir = join(baseDir, 'node-1');
    const config = configFromObject(
      {
        node: { name: 'node-1', data_dir: join(nodeDir, 'data') },
        master: { key_dir: join(baseDir, 'master') },
        target: { address: target.onion, port: 80, mode: 'http' },
        tor: { extra_config: extraConfigLines(testnetCommonTorrc(desc, 'node1', join(nodeDir, 'data', 'tor'))) },
        health: { kind: 'http', path: '/', interval_ms: 5000, timeout_ms: 30000 },
        log: { level: 'warn', format: 'json' },
      },
      { baseDir: nodeDir, source: 'demo' },
    );
    node = await startNode({ config, logger: createLogger({ level: 'warn' }) });
    say(`[4/4] torbalance node-1 started (its tor publishes the master descriptor); visiting http://${master.address}/ through the client tor`);

    const deadline = durationMs === undefined ? Infinity : performance.now() + durationMs;
    let served = 0;
    let lastRequests = 0;
    for (let i = 1; !aborted() && performance.now() < deadline; i++) {
      try {
        const r = await httpGetThroughTor(
          { host: '127.0.0.1', port: client.socksPort },
          { host: master.address, port: 80, path: '/' },
          { timeoutMs: 30_000, signal: abort.signal },
        );
        const st = await node.status();
        const servedBy = st.proxy.requests > lastRequests ? 'node-1' : 'unknown node';
        lastRequests = st.proxy.requests;
        const namesMaster = r.body.includes(master.address);
        const leaksTarget = JSON.stringify(r.headers).includes(target.address) || r.body.includes(target.address);
        served++;
        say(
          `  #${i} ${r.status} in ${r.elapsedMs.toFixed(0)} ms, served by ${servedBy}; ` +
            `page links name the master: ${namesMaster ? 'yes' : 'NO'}; target address visible: ${leaksTarget ? 'YES (bug)' : 'no'}`,
        );
      } catch (e) {
        if (aborted()) break;
        say(`  #${i} not reachable yet (${e instanceof Error ? e.message : String(e)}); the descriptor may still be on its way to the HSDirs`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    say(`${served} request(s) served through the master address.`);
    if (served === 0) throw new TorbalanceError('TB_ERR_DEMO_FAILED', 'tor', 'no request reached the target through the master address');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (node !== undefined) await node.stop(2000).catch(() => undefined);
    if (net !== undefined) await net.stop().catch(() => undefined);
    if (app !== undefined) app.close();
    if (opts.keep !== true && opts.dir === undefined) await rm(baseDir, { recursive: true, force: true });
    say('demo stopped; every process it started is gone.');
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run torbalance on a private Tor network on 127.0.0.1 (needs tor); Ctrl-C stops it')
    .option('--duration <seconds>', 'stop after this many seconds (default: run until Ctrl-C)')
    .option('--interval <seconds>', 'pause between visitor requests', '2')
    .option('--dir <path>', 'working directory (default: a new temporary directory, removed at exit)')
    .option('--keep', 'keep the temporary directory (logs) at exit')
    .action(async (o: DemoOptions) => {
      await runDemo(o);
    });
}
