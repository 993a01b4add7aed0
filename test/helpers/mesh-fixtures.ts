/**
 * Helpers for mesh tests: deterministic node keys, fake (well-formed) intro points, a
 * capturing logger, and MeshNode construction with short intervals on loopback TCP.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { concatBytes, toBase64, u32be } from '../../src/core/bytes.js';
import { encodeLinkSpecifiers } from '../../src/core/hsdesc/link-specifiers.js';
import {
  FrameDecoder,
  HANDSHAKE_MAX_FRAME_BYTES,
  HANDSHAKE_NONCE_BYTES,
  InitiatorHandshake,
  introDigest,
  linkFrameKey,
  nodeKeyFromSeed,
  type IntroPointWire,
  type MeshLink,
  type NodeKey,
} from '../../src/core/mesh/index.js';
import { createLogger, type Logger } from '../../src/adapters/log/logger.js';
import { realTimers } from '../../src/adapters/system/timers.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import { MeshNode, type ClusterView, type LocalMeshState, type MeshOptions } from '../../src/node/mesh/index.js';

export function seeded(label: string, n = 32): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).digest()).slice(0, n);
}

export function testKey(label: string): NodeKey {
  return nodeKeyFromSeed(seeded(`node key ${label}`));
}

/** A well-formed intro point (link specifiers: one legacy id) derived from `label`. */
export function fakeIntroPoint(label: string): IntroPointWire {
  return {
    ls: toBase64(encodeLinkSpecifiers([{ type: 2, data: seeded(`ls ${label}`, 20) }])),
    onionKey: toBase64(seeded(`onion ${label}`)),
    authKey: toBase64(seeded(`auth ${label}`)),
    encKey: toBase64(seeded(`enc ${label}`)),
  };
}

export class MutableLocalState {
  healthy = true;
  reasons: string[] = [];
  points: IntroPointWire[];
  constructor(label: string) {
    this.points = [fakeIntroPoint(`${label}-1`), fakeIntroPoint(`${label}-2`)];
  }
  get = (): LocalMeshState => ({ healthy: this.healthy, reasons: this.reasons, introPoints: this.points, introDigest: introDigest(this.points) });
}

/** A logger whose JSON lines are kept in `lines`. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.length > 0) lines.push(l);
      cb();
    },
  });
  return { logger: createLogger({ level, destination: dest }), lines };
}

export const CLUSTER_SECRET = seeded('cluster secret for tests');

export interface TestNode {
  node: MeshNode;
  state: MutableLocalState;
  lines: string[];
  /** Every state each peer went through, in order (from onChange). */
  history: Map<string, string[]>;
}

export function makeNode(label: string, o: Partial<MeshOptions> & Pick<MeshOptions, 'listen' | 'advertise' | 'bootstrap'>): TestNode {
  const state = new MutableLocalState(label);
  const { logger, lines } = captureLogger();
  const node = new MeshNode({
    key: testKey(label),
    clusterSecret: CLUSTER_SECRET,
    name: label,
    priority: 100,
    heartbeatMs: 100,
    suspectAfterMs: 400,
    deadAfterMs: 2000,
    leaseMs: 1500,
    maxSkewMs: 30_000,
    timers: realTimers,
    now: () => Date.now(),
    randomBytes: systemRandomBytes,
    logger,
    localState: state.get,
    backoff: { initialMs: 50, maxMs: 500 },
    ...o,
  });
  const history = new Map<string, string[]>();
  node.onChange((v: ClusterView) => {
    for (const p of v.peers) {
      const h = history.get(p.id) ?? [];
      if (h[h.length - 1] !== p.state) h.push(p.state);
      history.set(p.id, h);
    }
  });
  return { node, state, lines, history };
}

/** Poll `check` every 20 ms until it returns true; throw with `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function stateOf(n: MeshNode, peerId: string): string | undefined {
  return n.view().peers.find((p) => p.id === peerId)?.state;
}

/** True if every node sees every other node alive. */
export function fullMesh(nodes: readonly MeshNode[]): boolean {
  return nodes.every((a) => nodes.every((b) => a === b || stateOf(a, b.id) === 'alive'));
}

/** A raw client that completed the mesh handshake (docs/mesh-protocol.md) with a node as `key`. */
export interface HandshakenClient {
  readonly sock: net.Socket;
  readonly link: MeshLink;
  /** The MAC key of our next frame (each call takes the next frame number). */
  nextKey(): Uint8Array;
  /** Resolves when the node closed the connection. */
  readonly closed: Promise<void>;
}

/** Dial 127.0.0.1:`target` (or the unix socket `target`), run the initiator handshake as `key` with `secret`, resolve with the link. */
export async function handshakeClient(target: number | string, key: NodeKey, secret: Uint8Array = CLUSTER_SECRET): Promise<HandshakenClient> {
  const sock = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target);
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.once('close', () => { r(); }));
  await new Promise<void>((r) => sock.once('connect', () => { r(); }));
  const hs = new InitiatorHandshake({ clusterSecret: secret, key, nonce: systemRandomBytes(HANDSHAKE_NONCE_BYTES) });
  const decoder = new FrameDecoder({ firstFrames: { count: 1, maxBytes: HANDSHAKE_MAX_FRAME_BYTES } });
  const link = await new Promise<MeshLink>((resolve, reject) => {
    sock.once('close', () => { reject(new Error('closed during the handshake')); });
    sock.on('data', (d: Buffer) => {
      for (const f of decoder.push(new Uint8Array(d))) {
        if (f[0] !== 0x54) continue; // after the handshake: the node's own frames, ignored
        const step = hs.receive(f);
        if (!step.ok) { reject(new Error(step.detail)); return; }
        if (step.send) sock.write(concatBytes(u32be(step.send.length), step.send));
        if (step.link) resolve(step.link);
      }
    });
    const m1 = hs.start();
    sock.write(concatBytes(u32be(m1.length), m1));
  });
  let seq = 0;
  return { sock, link, closed, nextKey: () => linkFrameKey(link.sendKey, seq++) };
}
