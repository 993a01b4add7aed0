/**
 * Two MeshNodes that reach each other only through onion services, in the shared private
 * Tor network: each node's tor (a testnet client with a SocksPort) hosts a coordination
 * onion service from meshTorrcEntries (`HiddenServiceDir <data>/mesh-hs`,
 * `HiddenServicePort 7700 unix:<data>/mesh.sock`); peers dial `tor:<onion>:7700` through
 * their own tor's SocksPort.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { meshOnionPaths, meshTorrcEntries, parseMeshHostname } from '../../src/core/mesh-torrc.js';
import { MeshNode } from '../../src/node/mesh/index.js';
import { addClient, sharedTestnet, stopAdded, uniqueNickname } from '../helpers/testnet.js';
import { makeNode, stateOf, until } from '../helpers/mesh-fixtures.js';

const nodes: MeshNode[] = [];

afterAll(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop('test over')));
  await stopAdded();
});

async function torWithMeshService(): Promise<{ socksPort: number; socketPath: string; onion: string }> {
  const net = sharedTestnet();
  const nickname = uniqueNickname('mesh');
  const dataDir = join(net.baseDir, nickname); // where startTestnetClient puts this tor's DataDirectory
  const paths = meshOnionPaths({ dataDir });
  const client = await addClient({ nickname, extraTorrc: meshTorrcEntries({ dataDir }) });
  let onion = '';
  const deadline = Date.now() + 30_000;
  while (onion === '') {
    try {
      onion = parseMeshHostname(await readFile(paths.hostnameFile, 'utf8'));
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { socksPort: client.info.socksPort, socketPath: paths.socketPath, onion };
}

describe('mesh over Tor onion services', () => {
  it('two nodes mesh through onion addresses only, and a leave propagates', async () => {
    const [ta, tb] = await Promise.all([torWithMeshService(), torWithMeshService()]);
    const addr = (t: { onion: string }): string => `tor:${t.onion}:7700`;
    const mk = (label: string, t: typeof ta, bootstrap: string[]): ReturnType<typeof makeNode> =>
      makeNode(label, {
        listen: { kind: 'tor-onion', socketPath: t.socketPath, onionAddress: t.onion, port: 7700 },
        advertise: addr(t),
        bootstrap,
        socks: { host: '127.0.0.1', port: t.socksPort },
        heartbeatMs: 1000,
        suspectAfterMs: 5000,
        deadAfterMs: 30_000,
        leaseMs: 15_000,
        backoff: { initialMs: 1000, maxMs: 5000 },
      });
    const a = mk('tora', ta, []);
    const b = mk('torb', tb, [addr(ta)]);
    nodes.push(a.node, b.node);
    const t0 = Date.now();
    await a.node.start();
    await b.node.start();
    await until('mesh over tor', () => stateOf(a.node, b.node.id) === 'alive' && stateOf(b.node, a.node.id) === 'alive', 300_000);
    console.log(`[mesh-tor] 2-node mesh over onion services formed in ${Date.now() - t0} ms (from MeshNode start; tors already bootstrapped)`);
    expect(a.node.view().peers.find((p) => p.id === b.node.id)!.addr).toBe(addr(tb));
    // Only onion dials happened: every outgoing connection went to a tor: address.
    for (const n of [a.node, b.node]) for (const d of n.transport.dialed()) expect(d.startsWith('tor:')).toBe(true);
    await b.node.stop('done');
    nodes.splice(nodes.indexOf(b.node), 1);
    await until('a sees b left', () => stateOf(a.node, b.node.id) === 'left', 60_000);
  });
});
