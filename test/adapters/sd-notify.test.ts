/**
 * src/adapters/system/sd-notify.ts against a real unix datagram socket: a python receiver
 * (test/fixtures/sd-notify/receiver.py) bound at NOTIFY_SOCKET gets what Debian's
 * systemd-notify sends for the node — `MAINPID=`, `READY=1`, `STOPPING=1`, `WATCHDOG=1` in
 * order, each acknowledged through systemd-notify's barrier — and nothing is sent when
 * NOTIFY_SOCKET is unset.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { SdNotifier, withoutNotifyEnv } from '../../src/adapters/system/sd-notify.js';
import type { TimerHandle, Timers } from '../../src/adapters/system/timers.js';
import type { TorbalanceError } from '../../src/core/errors.js';

const NOTIFY = '/usr/bin/systemd-notify';
const RECEIVER = resolve(import.meta.dirname, '../fixtures/sd-notify/receiver.py');

interface Datagram {
  readonly msg: string;
  readonly pid: number | null;
  readonly fds: number;
}

/** The receiver process: `next()` is the next datagram other than a barrier. */
class Receiver {
  readonly path: string;
  readonly barriers: Datagram[] = [];
  readonly #proc: ChildProcess;
  readonly #queue: Datagram[] = [];
  readonly #waiters: ((d: Datagram) => void)[] = [];
  readonly bound: Promise<void>;

  constructor(path: string) {
    this.path = path;
    this.#proc = spawn('python3', [RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let onBound: () => void = () => undefined;
    this.bound = new Promise((r) => (onBound = r));
    createInterface({ input: this.#proc.stdout! }).on('line', (line) => {
      const j = JSON.parse(line) as Partial<Datagram> & { bound?: string };
      if (j.bound !== undefined) {
        onBound();
        return;
      }
      const d = j as Datagram;
      if (d.msg === 'BARRIER=1') {
        this.barriers.push(d);
        return;
      }
      const w = this.#waiters.shift();
      if (w !== undefined) w(d);
      else this.#queue.push(d);
    });
  }

  next(): Promise<Datagram> {
    const d = this.#queue.shift();
    return d !== undefined ? Promise.resolve(d) : new Promise((r) => this.#waiters.push(r));
  }

  pending(): number {
    return this.#queue.length;
  }

  stop(): void {
    this.#proc.kill('SIGKILL');
  }
}

/** Timers that fire only when told. */
class ManualTimers implements Timers {
  readonly due = new Map<TimerHandle, { fn: () => void; ms: number }>();
  now(): number {
    return 0;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const h = {};
    this.due.set(h, { fn, ms });
    return h;
  }
  clearTimeout(h: TimerHandle): void {
    this.due.delete(h);
  }
  fireAll(): void {
    const all = [...this.due.values()];
    this.due.clear();
    for (const t of all) t.fn();
  }
}

const dirs: string[] = [];
const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) r.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function receiver(): Promise<Receiver> {
  const d = await mkdtemp(join(tmpdir(), 'tb-sdn-'));
  dirs.push(d);
  const r = new Receiver(join(d, 'notify'));
  receivers.push(r);
  await r.bound;
  return r;
}

describe.skipIf(!existsSync(NOTIFY) && process.env['CI'] === undefined)('SdNotifier through systemd-notify', () => {
  it('READY=1 with MAINPID, then STOPPING=1, in order, each acknowledged (barrier)', async () => {
    const r = await receiver();
    const errors: TorbalanceError[] = [];
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: r.path }, pid: 4242, onError: (e) => errors.push(e) });
    expect(n.enabled).toBe(true);
    const ready = n.send([['READY', '1'], ['STATUS', 'tor bootstrapped; proxy listening']]);
    const stopping = n.send([['STOPPING', '1']]);
    expect(await ready).toBe(true);
    expect(await stopping).toBe(true);
    expect((await r.next()).msg).toBe('MAINPID=4242\nREADY=1\nSTATUS=tor bootstrapped; proxy listening');
    expect((await r.next()).msg).toBe('MAINPID=4242\nSTOPPING=1');
    // systemd-notify waited for the manager (here: the receiver closing the barrier's fd).
    expect(r.barriers.length).toBe(2);
    expect(r.barriers.every((b) => b.fds === 1)).toBe(true);
    expect(errors).toEqual([]);
    await n.close();
  });

  it('sends nothing when NOTIFY_SOCKET is unset (or empty)', async () => {
    const r = await receiver();
    for (const env of [{}, { NOTIFY_SOCKET: '' }, { WATCHDOG_USEC: '2000000' }]) {
      const off = new SdNotifier({ env, binary: '/nonexistent/systemd-notify', onError: () => expect.fail('no send may be attempted') });
      expect(off.enabled).toBe(false);
      expect(await off.send([['READY', '1']])).toBe(false);
      expect(off.startWatchdog()).toBeUndefined();
      await off.close();
    }
    // A marker sent afterwards is the first datagram the socket sees.
    const on = new SdNotifier({ env: { NOTIFY_SOCKET: r.path } });
    expect(await on.send([['X_MARKER', '1']])).toBe(true);
    expect((await r.next()).msg).toBe(`MAINPID=${process.pid}\nX_MARKER=1`);
    expect(r.pending()).toBe(0);
  });

  it('WATCHDOG=1 at half WATCHDOG_USEC (first ping at once), stopped by close(); off for another WATCHDOG_PID', async () => {
    const r = await receiver();
    const timers = new ManualTimers();
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: r.path, WATCHDOG_USEC: '3000000', WATCHDOG_PID: '77' }, pid: 77, timers });
    expect(n.startWatchdog()).toBe(1500);
    expect((await r.next()).msg).toBe('MAINPID=77\nWATCHDOG=1');
    expect([...timers.due.values()].map((t) => t.ms)).toEqual([1500]);
    timers.fireAll();
    expect((await r.next()).msg).toBe('MAINPID=77\nWATCHDOG=1');
    await n.close();
    expect(timers.due.size).toBe(0);
    const other = new SdNotifier({ env: { NOTIFY_SOCKET: r.path, WATCHDOG_USEC: '3000000', WATCHDOG_PID: '78' }, pid: 77, timers });
    expect(other.startWatchdog()).toBeUndefined();
    expect(timers.due.size).toBe(0);
  });

  it('a failed send is reported (TB_ERR_SD_NOTIFY), resolves false, and later sends still go out', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tb-sdn-'));
    dirs.push(d);
    const errors: TorbalanceError[] = [];
    const nobody = new SdNotifier({ env: { NOTIFY_SOCKET: join(d, 'nobody-listens') }, onError: (e) => errors.push(e) });
    expect(await nobody.send([['READY', '1']])).toBe(false);
    expect(errors[0]).toMatchObject({ code: 'TB_ERR_SD_NOTIFY', message: expect.stringContaining('READY=1') });
    const r = await receiver();
    const missing = new SdNotifier({ env: { NOTIFY_SOCKET: r.path }, binary: join(d, 'no-such-binary'), onError: (e) => errors.push(e) });
    expect(await missing.send([['READY', '1']])).toBe(false);
    expect(errors[1]).toMatchObject({ code: 'TB_ERR_SD_NOTIFY', message: expect.stringContaining('ENOENT') });
    const ok = new SdNotifier({ env: { NOTIFY_SOCKET: r.path }, onError: (e) => errors.push(e) });
    expect(await ok.send([['READY', '1']])).toBe(true);
    expect((await r.next()).msg).toBe(`MAINPID=${process.pid}\nREADY=1`);
    expect(errors).toHaveLength(2);
  });
});

describe('withoutNotifyEnv (the node\'s tor must not speak sd_notify to the unit)', () => {
  it('drops NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID and keeps the rest', () => {
    expect(withoutNotifyEnv({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '1', WATCHDOG_PID: '2', PATH: '/bin', HOME: '/h' })).toEqual({ PATH: '/bin', HOME: '/h' });
  });
});
