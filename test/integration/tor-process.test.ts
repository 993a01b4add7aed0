/**
 * TorProcess against a real tor (DisableNetwork 1: no network needed): reaches the control
 * port, is restarted after `kill -9` and usable again, stop() ends it, TAKEOWNERSHIP makes tor
 * exit when our control connection closes (and a frozen tor that cannot is SIGKILLed after the
 * grace and restarted), and a bad torrc fails the start with tor's words.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TorProcess, type TorProcessEvents } from '../../src/adapters/tor/process.js';
import { isProcessAlive } from '../../src/adapters/tor/testnet.js';
import { hasCode } from '../../src/core/errors.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dirs: string[] = [];
const procs: TorProcess[] = [];

async function dataDir(): Promise<string> {
  const d = await mkdtemp(join(REPO, '.torlab', 'tp-'));
  dirs.push(d);
  return d;
}

const alive = isProcessAlive;

function once<K extends keyof TorProcessEvents>(
  p: TorProcess,
  event: K,
  timeoutMs = 30_000,
): Promise<TorProcessEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = p.on(event, (e) => {
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

const BASE = [
  ['DisableNetwork', '1'],
  ['SocksPort', '0'],
] as const;

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('TorProcess with a real tor', () => {
  it('reaches control, restarts after kill -9, and stop() ends it', async () => {
    const p = new TorProcess({
      dataDir: await dataDir(),
      torrc: BASE,
      readiness: 'control',
      backoff: { initialDelayMs: 200 },
    });
    procs.push(p);
    await p.start();
    expect(p.state).toBe('ready');
    const pid1 = p.pid!;
    expect(await p.control.getInfo('version')).toMatch(/^0\.4\./);

    const exit = once(p, 'exit');
    const restart = once(p, 'restart');
    const ready = once(p, 'ready');
    process.kill(pid1, 'SIGKILL');
    const ex = await exit;
    expect(ex).toMatchObject({ pid: pid1, signal: 'SIGKILL', expected: false });
    expect((await restart).attempt).toBe(1);
    const r = await ready;
    expect(r.pid).not.toBe(pid1);
    expect(r.restarts).toBe(1);
    expect(p.pid).toBe(r.pid);
    expect(await p.control.getInfo('version')).toMatch(/^0\.4\./);
    expect(alive(pid1)).toBe(false);

    const pid2 = p.pid!;
    await p.stop();
    expect(p.state).toBe('stopped');
    expect(p.pid).toBeUndefined();
    expect(alive(pid2)).toBe(false);
    expect(p.output().join('\n')).toMatch(/Tor 0\.4\.\d+/);
  });

  it('TAKEOWNERSHIP: tor exits when our control connection closes', async () => {
    const p = new TorProcess({
      dataDir: await dataDir(),
      torrc: BASE,
      readiness: 'control',
      owned: false,
      takeOwnership: true,
      restart: false,
    });
    procs.push(p);
    await p.start();
    const pid = p.pid!;
    const exit = once(p, 'exit');
    await p.control.close();
    const ex = await exit;
    expect(ex.pid).toBe(pid);
    expect(ex.expected).toBe(false);
    expect(p.state).toBe('failed');
    expect(alive(pid)).toBe(false);
  });

  it('TAKEOWNERSHIP: a frozen tor (SIGSTOP) whose owning connection closed is SIGKILLed after the grace, then restarted', async () => {
    const p = new TorProcess({
      dataDir: await dataDir(),
      torrc: BASE,
      readiness: 'control',
      owned: false,
      takeOwnership: true,
      ownerExitGraceMs: 1000,
      restart: true,
      backoff: { initialDelayMs: 100, maxDelayMs: 100, factor: 1, resetAfterMs: 60_000, maxRestarts: 3 },
    });
    procs.push(p);
    await p.start();
    const pid = p.pid!;
    process.kill(pid, 'SIGSTOP');
    const exit = once(p, 'exit');
    const ready = once(p, 'ready');
    const t0 = performance.now();
    // what a command timeout does to the connection: it is torn down while tor cannot answer
    await p.control.close();
    const ex = await exit;
    const ms = performance.now() - t0;
    console.log(`[tor-process] frozen owned tor killed ${Math.round(ms)} ms after its owning connection closed`);
    expect(ex.pid).toBe(pid);
    expect(ex.signal).toBe('SIGKILL');
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(alive(pid)).toBe(false);
    const r = await ready;
    expect(r.pid).not.toBe(pid);
    await p.control.getInfo('version');
  });

  it('a torrc tor rejects fails the start with tor output in the error', async () => {
    const p = new TorProcess({
      dataDir: await dataDir(),
      torrc: [...BASE, ['NoSuchOption', '1']],
      readiness: 'control',
    });
    procs.push(p);
    const e = await p.start().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(hasCode(e, 'TB_ERR_TOR_PROCESS_EXITED')).toBe(true);
    expect((e as Error).message).toMatch(/NoSuchOption/);
    expect(p.state).toBe('failed');
  });

  it('a missing tor binary fails with TB_ERR_TOR_PROCESS_SPAWN', async () => {
    const p = new TorProcess({
      dataDir: await dataDir(),
      torrc: BASE,
      torBinary: '/nonexistent/tor',
    });
    const e = await p.start().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(hasCode(e, 'TB_ERR_TOR_PROCESS_SPAWN')).toBe(true);
  });
});
