/**
 * The node makes no connection except to its own tor (SocksPort, control socket) and its
 * local listener.
 *
 * Two independent views while the node serves visitors (through the shared client tor and the
 * master address) and probes the target's health every second:
 * 1. the OS: `ss -tuxanpe` sampled every 150 ms; every socket owned by the node process must be
 *    - TCP to 127.0.0.1:<its tor's SocksPort> (or a TCP listener on 127.0.0.1), or
 *    - a unix socket that is one of its listeners (the proxy socket, the admin API socket) or
 *      accepted from one, or whose peer is owned
 *      by a process in the node's own process tree (its tor; the stdio pipes of its children);
 *    and there must be no UDP socket at all (no DNS). This cannot be bypassed from JS.
 * 2. the node's JS: a preload records every net.Socket#connect, every dns call and every
 *    UDP socket (test/helpers/node-harness.ts CONNECT_RECORDER); every connect must go to the
 *    control socket or the SocksPort, and dns must never be called (in particular not for a
 *    .onion name).
 * The same OS check applied to this test worker (which has a connection elsewhere) must
 * flag it, so the check can fail.
 *
 * The node is a cluster node on the tor transport (alone: its tor publishes). Meanwhile a
 * hostile cluster member — this worker, holding the cluster secret and its own node key —
 * connects to the node's mesh socket (where tor delivers coordination-onion streams) and sends
 * a hello whose `addr` is `tcp:127.0.0.1:<trap>`, a heartbeat gossiping `tcp:127.0.0.1:<trap>`
 * and `tcp:localhost:<trap>` (a name that resolves without the network), and a hello with
 * `tcp:localhost:<trap>`. Each must be refused (the node drops the connection) and the trap
 * listener must never see a connection, nor the recorder a connect to it or a lookup of the
 * name (docs/SECURITY.md, "Mesh addresses").
 */
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { readNodeSecret } from '../../src/adapters/fs/node-secrets.js';
import { concatBytes, toBase64, u32be, utf8 } from '../../src/core/bytes.js';
import { hmacSha256 } from '../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { MESH_PROTOCOL_VERSION, introDigest, nodeKeyFromSeed, signWithNodeKey } from '../../src/core/mesh/index.js';
import { meshOnionPaths } from '../../src/core/mesh-torrc.js';
import { joinSocketPath } from '../../src/node/join/paths.js';
import { handshakeClient } from '../helpers/mesh-fixtures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allSockets,
  httpViaSocks,
  nodeSocksPort,
  nodeTorPid,
  pollUntil,
  processTree,
  since,
  startNodeProcess,
  startTargetBehindOnion,
  type NodeProcess,
  type OsSocket,
  type TargetBehindOnion,
} from '../helpers/node-harness.js';
import { sharedTestnet } from '../helpers/testnet.js';

const net = sharedTestnet();
const client = net.clients[0]!;

let target: TargetBehindOnion | undefined;
let node: NodeProcess | undefined;

/** Why a socket of `pid` is not allowed (undefined = allowed). */
function stray(s: OsSocket, rules: { socksPort: number; listeners: ReadonlySet<string>; tree: ReadonlySet<number>; byInode: ReadonlyMap<string, OsSocket> }): string | undefined {
  if (s.netid === 'udp' || s.netid === 'raw' || s.netid === 'p_raw' || s.netid === 'p_dgr') return `UDP/raw socket: ${s.line}`;
  if (s.netid === 'tcp') {
    if (s.state === 'LISTEN') return s.local.startsWith('127.0.0.1:') ? undefined : `TCP listener not on loopback: ${s.line}`;
    if (s.peer === `127.0.0.1:${rules.socksPort}`) return undefined;
    return `TCP connection to ${s.peer}: ${s.line}`;
  }
  if (s.netid.startsWith('u_')) {
    if (rules.listeners.has(s.local)) return undefined;
    if (s.state === 'LISTEN') return `unix listener ${s.local}: ${s.line}`;
    const peer = s.peerInode === undefined || s.peerInode === '0' ? undefined : rules.byInode.get(s.peerInode);
    if (peer === undefined) return s.state === 'UNCONN' ? undefined : `unix socket with unknown peer ${s.peerInode}: ${s.line}`;
    if (rules.listeners.has(peer.local)) return undefined;
    if (peer.pids.length > 0 && peer.pids.every((p) => rules.tree.has(p))) return undefined;
    return `unix socket to ${peer.local} owned by ${peer.pids.join(',')}: ${s.line}`;
  }
  return `unexpected socket type ${s.netid}: ${s.line}`;
}

/** `listeners`: the node's own unix listeners (the proxy socket tor connects to; the admin API socket). */
function check(all: readonly OsSocket[], pid: number, socksPort: number, listeners: readonly string[]): { strays: string[]; mine: OsSocket[] } {
  const tree = processTree(pid);
  const byInode = new Map<string, OsSocket>();
  for (const s of all) if (s.inode !== undefined) byInode.set(s.inode, s);
  const mine = all.filter((s) => s.pids.includes(pid));
  const strays = mine.map((s) => stray(s, { socksPort, listeners: new Set(listeners), tree, byInode })).filter((x): x is string => x !== undefined);
  return { strays, mine };
}

/** A length-prefixed mesh frame around any body, MACed with `secret` and signed by a key of our own (what a hostile member can send). */
const HOSTILE_KEY = nodeKeyFromSeed(new Uint8Array(32).fill(0x66));
function hostileFrame(macKey: Uint8Array, type: 'hello' | 'heartbeat', body: unknown, seq: number): Uint8Array {
  const key = HOSTILE_KEY;
  const nonce = new Uint8Array(16);
  nonce.set(utf8(String(seq).padStart(16, '0')));
  const p = utf8(JSON.stringify({ v: MESH_PROTOCOL_VERSION, type, from: key.nodeId, pub: toBase64(key.publicKey), ts: Date.now(), nonce: toBase64(nonce), body }));
  return concatBytes(u32be(p.length + 96), p, hmacSha256(macKey, p), signWithNodeKey(key, p));
}

/**
 * On a fresh connection to the node's mesh socket, complete the handshake as the hostile member,
 * then send `frame(link MAC key)`; resolves with what happens first: the node drops us, or
 * something connects to the trap.
 */
async function attack(meshSocket: string, secret: Uint8Array, trap: Server, frame: (macKey: Uint8Array) => Uint8Array): Promise<'refused' | 'dialled'> {
  const c = await handshakeClient(meshSocket, HOSTILE_KEY, secret);
  return new Promise((resolve, reject) => {
    const sock = c.sock;
    const onTrap = (): void => {
      sock.destroy();
      resolve('dialled');
    };
    trap.once('connection', onTrap);
    sock.on('data', () => undefined); // the node's own hello and intro points
    sock.once('error', (e) => {
      trap.off('connection', onTrap);
      reject(e);
    });
    void c.closed.then(() => {
      trap.off('connection', onTrap);
      resolve('refused');
    });
    sock.write(frame(c.nextKey()));
  });
}

beforeAll(async () => {
  const t0 = Date.now();
  target = await startTargetBehindOnion(net);
  node = await startNodeProcess({
    target: target.onion,
    recordConnects: true,
    cluster: { transport: 'tor' },
    extraToml: ['[health]', 'kind = "http"', 'path = "/"', 'interval_ms = 1000', 'timeout_ms = 20000', '[log]', 'level = "info"', 'format = "json"', '[drain]', 'timeout_ms = 1000'].join('\n'),
  });
  await pollUntil(
    'the master address to serve the target page',
    async () => {
      if (node!.proc.exitCode !== null) throw new Error(`node exited: ${node!.log().slice(-3000)}`);
      return (await httpViaSocks(client.socksPort, node!.masterAddress, '/', '', 30_000)).status === 200 ? true : undefined;
    },
    240_000,
    1500,
  );
  console.log(`[no-stray] node serving after ${since(t0)}`);
}, 400_000);

afterAll(async () => {
  await node?.stop();
  await target?.stop();
});

describe('the node connects only to its own tor and its listener', () => {
  it('the OS check flags a stray connection (this worker connected elsewhere)', async () => {
    const server: Server = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const sock: Socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => sock.once('connect', r));
    try {
      const { strays } = check(await allSockets(), process.pid, 1, ['/nonexistent']);
      expect(strays.some((s) => s.includes(`127.0.0.1:${port}`))).toBe(true);
    } finally {
      sock.destroy();
      await new Promise<void>((r) => server.close(() => { r(); }));
    }
  });

  it('while serving visitors and probing health, every socket of the node leads to its tor or is its listener', async () => {
    const n = node!;
    const socksPort = nodeSocksPort(n);
    expect(socksPort).toBeDefined();
    const proxySocket = join(n.dir, 'data', 'proxy.sock');
    const adminSocket = join(n.dir, 'data', 'admin.sock');
    const meshSocket = meshOnionPaths({ dataDir: join(n.dir, 'data') }).socketPath;
    const joinSocket = joinSocketPath(join(n.dir, 'data'));
    const torPid = nodeTorPid(n);
    expect(torPid).toBeDefined();
    expect(processTree(n.pid).has(torPid!)).toBe(true);

    let trapConnections = 0;
    let trapPort = 0;
    const outcomes: string[] = [];
    let sampling = true;
    let samples = 0;
    const strays = new Set<string>();
    const seen = { socks: 0, torUnix: 0, proxy: 0 };
    const sampler = (async () => {
      while (sampling) {
        const all = await allSockets();
        const r = check(all, n.pid, socksPort!, [proxySocket, adminSocket, meshSocket, joinSocket]);
        samples++;
        for (const s of r.strays) strays.add(s);
        for (const s of r.mine) {
          if (s.netid === 'tcp' && s.peer === `127.0.0.1:${socksPort}`) seen.socks++;
          if (s.local === proxySocket) seen.proxy++;
          if (s.netid.startsWith('u_') && s.peerInode !== undefined) {
            const peer = all.find((x) => x.inode === s.peerInode);
            if (peer?.pids.includes(torPid!) === true) seen.torUnix++;
          }
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const t0 = Date.now();
    try {
      // visitors: pages, a 2 MiB body, concurrent requests; health probes run every second meanwhile
      for (let round = 0; round < 3; round++) {
        const rs = await Promise.all([
          httpViaSocks(client.socksPort, n.masterAddress, '/'),
          httpViaSocks(client.socksPort, n.masterAddress, '/redirect'),
          httpViaSocks(client.socksPort, n.masterAddress, `/big?size=${2 * 1024 * 1024}`, '', 120_000),
          httpViaSocks(client.socksPort, n.masterAddress, '/gzip', 'Accept-Encoding: gzip\r\n'),
        ]);
        expect(rs.map((r) => r.status)).toEqual([200, 302, 200, 200]);
      }
      // a hostile member offers tcp: addresses (see the module doc)
      const secret = await readNodeSecret('cluster-secret', join(n.dir, 'cluster', 'secret'));
      const trap = createServer((s) => {
        trapConnections++;
        s.destroy();
      });
      await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
      trapPort = (trap.address() as { port: number }).port;
      try {
        const fakeOnion = `tor:${encodeOnionAddress(new Uint8Array(32).fill(0x67))}:7700`;
        const hello = (addr: string): Record<string, unknown> => ({ name: 'intruder', addr, priority: 1000, health: { healthy: true, reasons: [] }, introDigest: introDigest([]) });
        const frames = [
          (k: Uint8Array) => hostileFrame(k, 'hello', hello(`tcp:127.0.0.1:${trapPort}`), 1),
          (k: Uint8Array) => hostileFrame(k, 'heartbeat', { ...hello(fakeOnion), peers: [{ id: 'a1'.repeat(16), addr: `tcp:127.0.0.1:${trapPort}`, lastSeenAgoMs: 0 }, { id: 'b2'.repeat(16), addr: `tcp:localhost:${trapPort}`, lastSeenAgoMs: 0 }] }, 2),
          (k: Uint8Array) => hostileFrame(k, 'hello', hello(`tcp:localhost:${trapPort}`), 3),
        ];
        for (const f of frames) outcomes.push(await attack(meshSocket, secret, trap, f));
        secret.fill(0);
      } finally {
        await new Promise<void>((r) => trap.close(() => { r(); }));
      }
      // let a few more health probes happen
      const probesBefore = target!.app.requests.filter((q) => q.headers['user-agent'] === 'torbalance-health').length;
      await pollUntil('two more health probes', () => (target!.app.requests.filter((q) => q.headers['user-agent'] === 'torbalance-health').length >= probesBefore + 2 ? true : undefined), 60_000, 200);
    } finally {
      sampling = false;
      await sampler;
    }
    console.log(`[no-stray] ${samples} socket samples in ${since(t0)}; seen: ${JSON.stringify(seen)}`);
    expect([...strays]).toEqual([]);
    // the check saw the connections it allows (so it was looking at the right process)
    expect(seen.socks).toBeGreaterThan(0);
    expect(seen.torUnix).toBeGreaterThan(0);
    expect(seen.proxy).toBeGreaterThan(0);

    // the JS view: every connect went to the control socket or the SocksPort; no DNS, no UDP
    const recs = n.connects();
    expect(recs.some((r) => r.kind === 'preload' && r.pid === n.pid)).toBe(true);
    const controlSocket = join(n.dir, 'data', 'tor', 'control.sock');
    const connects = recs.filter((r) => r.kind === 'connect');
    // tsx (the node runs from source in tests) tries its parent's IPC pipe /tmp/tsx-<uid>/<ppid>.pipe: a harness artifact
    const tsxPipe = /^\/tmp\/tsx-\d+\/\d+\.pipe$/;
    const bad = connects.filter((r) => !(r.path === controlSocket || (r.host === '127.0.0.1' && r.port === socksPort) || (r.path !== undefined && tsxPipe.test(r.path))));
    console.log(`[no-stray] ${connects.length} connects recorded (${connects.filter((r) => r.path !== undefined).length} to the control socket)`);
    expect(bad).toEqual([]);
    expect(connects.some((r) => r.port === socksPort)).toBe(true);
    expect(connects.some((r) => r.path === controlSocket)).toBe(true);
    // dns: only IP literals may pass through dns.lookup (getaddrinfo answers those without a query); never a name
    expect(recs.filter((r) => r.kind === 'udp' || (r.kind === 'lookup' && isIP(r.host ?? '') === 0))).toEqual([]);
    expect(recs.some((r) => r.kind === 'lookup' && (r.host ?? '').endsWith('.onion'))).toBe(false);
    // the hostile member's tcp: addresses: refused, never dialled, never resolved
    console.log(`[no-stray] hostile frames: ${outcomes.join(', ')}; trap connections: ${trapConnections}`);
    expect(outcomes).toEqual(['refused', 'refused', 'refused']);
    expect(trapConnections).toBe(0);
    expect(connects.filter((r) => r.port === trapPort)).toEqual([]);
    expect(recs.filter((r) => r.kind === 'lookup' && r.host === 'localhost')).toEqual([]);
  });
});
