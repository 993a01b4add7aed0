/**
 * Graceful shutdown hands off publishing: three MeshNodes on loopback TCP (real sockets, the
 * real mesh code) share one manually advanced clock. When the elected publisher stops
 * (`leave`), the next-ranked node becomes publisher and the third agrees BEFORE any further
 * heartbeat tick — the clock moves only the 50 ms `stop()` waits for the leave to be written —
 * although the leaver's lease (15 s) is unexpired and nobody could have declared it suspect
 * (3 s) or dead (10 s). A crash (no leave), by contrast, is not replaced within that time.
 * Plus the pure rule behind it: a `left` holder's lease is ignored (election.ts rule 4).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { electPublisher, introDigest, Membership } from '../../src/core/mesh/index.js';
import type { TimerHandle, Timers } from '../../src/adapters/system/timers.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import type { MeshNode } from '../../src/node/mesh/index.js';
import { makeNode, type TestNode } from '../helpers/mesh-fixtures.js';

const HEARTBEAT = 1000;

/** A clock that moves only when told to; due timers fire in order. */
class ManualClock implements Timers {
  #now = Date.now();
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.#now;
  setTimeout = (fn: () => void, ms: number): TimerHandle => {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  };
  clearTimeout = (h: TimerHandle): void => {
    this.#timers.delete(h as unknown as number);
  };
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = end;
  }
}

/** Let real socket I/O happen (the fake clock stands still). */
const io = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => boolean, clock?: ManualClock, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    if (clock !== undefined) clock.advance(HEARTBEAT);
    await io();
  }
}

const running: MeshNode[] = [];
afterEach(async () => {
  for (const n of running.splice(0)) n.crash();
  await io(50);
});

async function cluster(labels: readonly string[]): Promise<{ nodes: TestNode[]; clock: ManualClock }> {
  const clock = new ManualClock();
  const ports = await allocatePorts(labels.length);
  const addr = (i: number): string => `tcp:127.0.0.1:${ports[i]!}`;
  const nodes = labels.map((l, i) =>
    makeNode(l, {
      listen: { kind: 'tcp', host: '127.0.0.1', port: ports[i]! },
      advertise: addr(i),
      bootstrap: labels.map((_, j) => addr(j)).filter((_, j) => j !== i),
      heartbeatMs: HEARTBEAT,
      suspectAfterMs: 3000,
      deadAfterMs: 10_000,
      leaseMs: 15_000,
      timers: clock,
      now: clock.now,
    }),
  );
  for (const n of nodes) {
    running.push(n.node);
    await n.node.start();
  }
  // Heartbeats until everyone sees everyone alive with intro points and agrees on a publisher.
  await waitFor(
    'an agreed publisher',
    () => {
      const vs = nodes.map((n) => n.node.view());
      const full = vs.every((v) => v.peers.length === nodes.length - 1 && v.peers.every((p) => p.state === 'alive' && p.introPoints.length > 0));
      return full && vs.filter((v) => v.selfIsPublisher).length === 1 && new Set(vs.map((v) => v.publisher)).size === 1 && vs.every((v) => v.leaseUntil !== undefined || !v.selfIsPublisher);
    },
    clock,
  );
  // One more round so every node has seen the publisher's lease in a heartbeat.
  clock.advance(HEARTBEAT);
  await io(100);
  return { nodes, clock };
}

describe('graceful shutdown hands off publishing', () => {
  it('a leaving publisher is replaced before the next heartbeat tick', async () => {
    const { nodes, clock } = await cluster(['hoa', 'hob', 'hoc']);
    const publisherId = nodes[0]!.node.view().publisher!;
    const pub = nodes.find((n) => n.node.id === publisherId)!;
    const rest = nodes.filter((n) => n !== pub);
    // The next-ranked node (same priority: lowest id) must take over.
    const next = rest.map((n) => n.node.id).sort()[0]!;
    for (const n of rest) expect(n.node.view().publisher).toBe(publisherId);
    // Everyone else is blocked by the publisher's lease (it outranks them).
    for (const n of rest) expect(n.node.view().selfIsPublisher).toBe(false);

    const t0 = clock.now();
    const stopping = pub.node.stop('upgrade');
    clock.advance(50); // stop() waits 50 ms (on the injected clock) for the leave to be written
    await stopping;
    running.splice(running.indexOf(pub.node), 1);
    await waitFor('the next node publishing, agreed by the third', () =>
      rest.every((n) => {
        const v = n.node.view();
        return v.peers.find((p) => p.id === publisherId)?.state === 'left' && v.publisher === next && v.selfIsPublisher === (n.node.id === next);
      }),
    );
    const elapsed = clock.now() - t0;
    console.log(`[mesh-handoff] publisher replaced after ${elapsed} ms of mesh time (heartbeat ${HEARTBEAT} ms, lease 15000 ms)`);
    expect(elapsed).toBeLessThan(HEARTBEAT);
    // The new publisher claims its lease at its next tick and advertises it.
    clock.advance(HEARTBEAT);
    await io(100);
    const nv = rest.find((n) => n.node.id === next)!.node.view();
    expect(nv.selfIsPublisher).toBe(true);
    expect(nv.leaseUntil).toBeGreaterThan(clock.now());
  });

  it('a crashed publisher (no leave) is NOT replaced in that time: its lease still blocks', async () => {
    const { nodes, clock } = await cluster(['hca', 'hcb', 'hcc']);
    const publisherId = nodes[0]!.node.view().publisher!;
    const pub = nodes.find((n) => n.node.id === publisherId)!;
    const rest = nodes.filter((n) => n !== pub);
    pub.node.crash();
    running.splice(running.indexOf(pub.node), 1);
    clock.advance(50);
    await io(300);
    for (const n of rest) {
      const v = n.node.view();
      expect(v.peers.find((p) => p.id === publisherId)?.state).toBe('alive');
      expect(v.selfIsPublisher).toBe(false);
    }
  });
});

describe('election rule: a left holder does not block', () => {
  it('a left holder\'s unexpired lease is ignored and self is elected at once (suspect: still blocks)', () => {
    const now = 1_000_000;
    const self = { id: 'b'.repeat(64), priority: 100, healthy: true, hasIntroPoints: true };
    const holder = { id: 'a'.repeat(64), priority: 100, healthy: true, hasIntroPoints: true, leaseUntilMs: now + 14_000 };
    expect(electPublisher({ self, peers: [{ ...holder, state: 'alive' }], nowMs: now })).toMatchObject({ selfShouldPublish: false, publisher: holder.id, reason: 'other-winner' });
    // suspect: not a winner, but its lease still blocks
    expect(electPublisher({ self, peers: [{ ...holder, state: 'suspect' }], nowMs: now })).toMatchObject({ selfShouldPublish: false, reason: 'waiting-for-lease' });
    // left: the membership drops it from the election's peers at once, lease and all
    const m = new Membership({ selfId: self.id, heartbeatMs: 1000 });
    const body = { name: 'a', addr: 'tcp:10.0.0.2:7700', priority: 100, health: { healthy: true, reasons: [] }, introDigest: introDigest([]), peers: [], lease: { holder: holder.id, until: now + 14_000 } };
    m.receive({ from: holder.id, ts: now, msg: { type: 'heartbeat', body } }, now);
    expect(electPublisher({ self, peers: m.electionPeers(), nowMs: now })).toMatchObject({ selfShouldPublish: false, leaseHolder: holder.id, reason: 'waiting-for-lease' });
    m.receive({ from: holder.id, ts: now + 1, msg: { type: 'leave', body: { reason: 'shutdown' } } }, now + 1);
    expect(electPublisher({ self, peers: m.electionPeers(), nowMs: now + 1 })).toMatchObject({ selfShouldPublish: true, publisher: self.id, reason: 'elected' });
  });
});
