/**
 * The proxy benchmark (bench/proxy.ts) runs in its quick mode: both paths answer every
 * request in alternating rounds, bodies arrive whole, both reuse their SOCKS streams
 * (keep-alive), idle connections are counted by the proxy. Numbers are
 * printed, never asserted (timing is not tested).
 */
import { describe, expect, it } from 'vitest';
import { QUICK, runProxyBench } from '../../bench/proxy.js';

describe('bench proxy --quick', () => {
  it('measures both paths and the idle-connection memory', async () => {
    const lines: string[] = [];
    const r = await runProxyBench(QUICK, (l) => lines.push(l));
    console.log(lines.join('\n'));
    expect(r.direct.requests).toBe(QUICK.requests);
    expect(r.proxy.requests).toBe(QUICK.requests);
    // same-length addresses: rewriting keeps every body the same size
    expect(r.direct.bodyBytes).toBe(QUICK.bodies * QUICK.bodyBytes);
    expect(r.proxy.bodyBytes).toBe(r.direct.bodyBytes);
    // both paths alternate in the configured number of rounds
    expect(r.direct.roundRequestsPerSecond).toHaveLength(QUICK.rounds);
    expect(r.proxy.roundRequestsPerSecond).toHaveLength(QUICK.rounds);
    // keep-alive on both sides: SOCKS streams are reused, never one per request (one per client
    // connection normally; on a loaded machine an idle keep-alive socket may time out between
    // rounds and be re-dialled, so allow one per connection per round)
    expect(r.direct.socksConnects).toBeGreaterThanOrEqual(QUICK.concurrency);
    expect(r.direct.socksConnects).toBeLessThanOrEqual(QUICK.concurrency * QUICK.rounds);
    expect(r.proxy.socksConnects).toBeGreaterThan(0);
    expect(r.proxy.socksConnects).toBeLessThanOrEqual(QUICK.concurrency * QUICK.rounds);
    expect(r.proxy.socksConnects).toBeLessThan(QUICK.requests / 4);
    expect(r.requestRatio).toBeGreaterThan(0);
    expect(r.throughputRatio).toBeGreaterThan(0);
    expect(r.idle.map((i) => i.connections)).toEqual([...QUICK.idleCounts]);
    expect(r.notes).toEqual([]);
  }, 120_000);
});
