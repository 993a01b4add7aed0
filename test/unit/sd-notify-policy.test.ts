/** src/core/sd-notify.ts: when READY=1 and STOPPING=1 are due, the watchdog interval, message checks. */
import { describe, expect, it } from 'vitest';
import { ReadinessPolicy, notifyAssignments, watchdogIntervalMs } from '../../src/core/sd-notify.js';

describe('ReadinessPolicy', () => {
  it('READY=1 once, when the proxy listens and tor has reached 100 %, in either order', () => {
    const a = new ReadinessPolicy();
    expect(a.on({ kind: 'tor-progress', percent: 50 })).toEqual([]);
    expect(a.on({ kind: 'listening' })).toEqual([]);
    expect(a.on({ kind: 'tor-progress', percent: 100 })).toEqual([['READY', '1'], ['STATUS', 'tor bootstrapped; proxy listening']]);
    expect(a.ready).toBe(true);
    expect(a.on({ kind: 'tor-progress', percent: 100 })).toEqual([]);
    expect(a.on({ kind: 'tor-progress', percent: 10 })).toEqual([]); // a tor restart does not un-ready
    const b = new ReadinessPolicy();
    expect(b.on({ kind: 'tor-progress', percent: 100 })).toEqual([]);
    expect(b.ready).toBe(false);
    expect(b.on({ kind: 'listening' })[0]).toEqual(['READY', '1']);
  });

  it('STOPPING=1 once; no READY=1 after it', () => {
    const p = new ReadinessPolicy();
    p.on({ kind: 'listening' });
    expect(p.on({ kind: 'stopping' })).toEqual([['STOPPING', '1'], ['STATUS', 'draining']]);
    expect(p.on({ kind: 'stopping' })).toEqual([]);
    expect(p.on({ kind: 'tor-progress', percent: 100 })).toEqual([]);
    expect(p.ready).toBe(false);
  });
});

describe('watchdogIntervalMs', () => {
  it('half of WATCHDOG_USEC, only for this pid', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 5)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '5' }, 5)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '6' }, 5)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '1000' }, 5)).toBe(1);
    for (const v of [undefined, '', '0', '-5', '1e6', 'abc', '30000000 ']) expect(watchdogIntervalMs({ WATCHDOG_USEC: v }, 5), String(v)).toBeUndefined();
  });
});

describe('notifyAssignments', () => {
  it('KEY=VALUE lines; refuses bad keys and multi-line values', () => {
    expect(notifyAssignments([['READY', '1'], ['STATUS', 'a b']])).toEqual(['READY=1', 'STATUS=a b']);
    expect(() => notifyAssignments([['ready', '1']])).toThrow(RangeError);
    expect(() => notifyAssignments([['STATUS', 'a\nREADY=1']])).toThrow(RangeError);
  });
});
