/**
 * `torbalance run` with a real, offline tor (`extra_config = ["DisableNetwork 1"]`; the private
 * network is not used): it starts tor and the proxy and stops cleanly (exit 0, tor gone) on
 * SIGTERM, also when the SIGTERM arrives while the node is still starting; the master key's
 * secret bytes appear in no output and in no file other than 0600 ones; `--exit-with-parent`
 * stops it (and its tor) when the parent is SIGKILLed. Also `startNode` in-process: status()
 * and stop(). (`init` and `config check` alone: test/cli/init.test.ts.)
 */
import { spawn } from 'node:child_process';
import { appendFile, chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/adapters/config/load.js';
import { createLogger } from '../../src/adapters/log/logger.js';
import { checkConfig } from '../../src/cli/commands/config-check.js';
import { initNode } from '../../src/cli/commands/init.js';
import { decodeSecretKeyFile, HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { startNode } from '../../src/node/daemon.js';
import { REPO_ROOT, requireBuilt } from '../helpers/built.js';

const BIN = join(REPO_ROOT, 'bin/torbalance.js');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const OFFLINE = '\n[tor]\nextra_config = ["DisableNetwork 1"]\n\n[drain]\ntimeout_ms = 500\n\n[log]\nlevel = "debug"\n';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-run-'));
  dirs.push(d);
  return d;
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Forms in which the secret could leak: raw bytes, hex, base64 (of the whole key and of each half). */
function secretForms(expanded: Uint8Array): { raw: Buffer[]; text: string[] } {
  const parts = [expanded, expanded.subarray(0, 32), expanded.subarray(32)].map((p) => Buffer.from(p));
  return {
    raw: parts,
    text: parts.flatMap((p) => [p.toString('hex'), p.toString('base64').replace(/=+$/, ''), p.toString('base64url')]),
  };
}

/** A spawned `torbalance run`: its output so far, a wait for a log line, and its exit. */
function spawnRun(configPath: string): {
  readonly kill: (s: NodeJS.Signals) => void;
  readonly output: () => { stdout: string; stderr: string };
  /** Resolves once stderr contains `needle`; rejects if the process exits first. */
  readonly logged: (needle: string) => Promise<void>;
  /** The exit: code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const child = spawn(process.execPath, [BIN, 'run', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { needle: string; res: () => void; rej: (e: Error) => void }[] = [];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('latin1');
    for (const w of waiters.splice(0)) {
      if (stderr.includes(w.needle)) w.res();
      else waiters.push(w);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      for (const w of waiters.splice(0)) w.rej(new Error(`run exited (code ${String(code)}, signal ${String(signal)}) before logging ${w.needle}: ${stderr}`));
      res({ code, signal });
    }),
  );
  return {
    kill: (s) => {
      child.kill(s);
    },
    output: () => ({ stdout, stderr }),
    logged: (needle) =>
      new Promise<void>((res, rej) => {
        if (stderr.includes(needle)) res();
        else if (child.exitCode !== null || child.signalCode !== null) rej(new Error(`run exited before logging ${needle}: ${stderr}`));
        else waiters.push({ needle, res, rej });
      }),
    exited,
  };
}

const torPidIn = (stderr: string): number => Number((/"pid":(\d+),"restarts":0,"msg":"tor is up"/.exec(stderr) ?? [])[1]);

beforeAll(() => {
  requireBuilt('dist/src/cli/main.js', 'dist/src/cli/commands/run.js');
});

describe('torbalance run (spawned binary, offline tor)', () => {
  it('starts tor and the proxy, and SIGTERM drains and exits 0; no secret leaks', async () => {
    const dir = join(await tmp(), 'node');
    const init = await initNode({ dir, target: TARGET, name: 'n1' });
    const master = init.masterAddress;
    const secret = decodeSecretKeyFile(await readFile(join(dir, 'master', 'hs_ed25519_secret_key')));
    await appendFile(init.configPath, OFFLINE);
    const run = spawnRun(init.configPath);
    await run.logged('"msg":"node running"');
    const data = join(dir, 'data');
    expect(await mode(data)).toBe(0o700);
    expect(await mode(join(data, 'hs'))).toBe(0o700);
    expect(await mode(join(data, 'hs', 'hs_ed25519_secret_key'))).toBe(0o600);
    expect(await readFile(join(data, 'hs', 'ob_config'), 'utf8')).toBe(`MasterOnionAddress ${master}\n`);
    expect((await stat(join(data, 'proxy.sock'))).isSocket()).toBe(true);
    const torrc = await readFile(join(data, 'tor', 'torrc'), 'utf8');
    expect(torrc).toContain(`HiddenServiceDir ${join(data, 'hs')}\n`);
    expect(torrc).toContain(`HiddenServicePort "80 unix:${join(data, 'proxy.sock')}"\n`);
    expect(torrc).toContain('HiddenServiceOnionBalanceInstance 1\n');
    expect(torrc).toContain('HiddenServiceExportCircuitID haproxy\n');
    expect(torrc).toContain('PublishHidServDescriptors 1\n');
    expect(torrc).toContain('DisableNetwork 1\n');
    const torPid = torPidIn(run.output().stderr);
    expect(torPid).toBeGreaterThan(0);
    expect(alive(torPid)).toBe(true);

    run.kill('SIGTERM');
    const exit = await run.exited;
    const { stdout, stderr } = run.output();
    expect(exit, stderr).toEqual({ code: 0, signal: null });
    expect(stderr).toContain('"msg":"stopped"');
    expect(alive(torPid)).toBe(false); // tor is gone

    const forms = secretForms(secret);
    const outBytes = Buffer.from(stdout + stderr, 'latin1');
    for (const r of forms.raw) expect(outBytes.includes(r)).toBe(false);
    for (const t of forms.text) expect(stdout + stderr).not.toContain(t);
    const holders: string[] = [];
    for (const f of await walk(dir)) {
      const bytes = await readFile(f);
      const hasRaw = forms.raw.some((r) => bytes.includes(r));
      const text = bytes.toString('latin1');
      const hasText = forms.text.some((t) => text.includes(t));
      expect(hasText, `${f} contains the secret key in text form`).toBe(false);
      if (hasRaw) expect(await mode(f), `${f} holds the secret key`).toBe(0o600);
      if (hasRaw) holders.push(f);
    }
    // exactly the two key files (the scan is able to find the key)
    expect(holders.sort()).toEqual([join(dir, 'data', 'hs', 'hs_ed25519_secret_key'), join(dir, 'master', 'hs_ed25519_secret_key')]);
  });

  it('a SIGTERM while the node starts is not lost: it finishes starting, drains and exits 0', async () => {
    const d = await tmp();
    const init = await initNode({ dir: join(d, 'n'), target: TARGET });
    // tor held at a gate: it starts only once the test opens it, so the SIGTERM surely
    // arrives while startNode waits for tor (`exec` keeps the pid, so it is tor's).
    const gate = join(d, 'gate');
    const wrapper = join(d, 'tor-gated');
    // (It gives up if the node is gone, so a failing run leaves nothing behind.)
    await writeFile(wrapper, `#!/bin/sh\nwhile [ ! -e ${JSON.stringify(gate)} ]; do kill -0 $PPID 2>/dev/null || exit 1; sleep 0.05; done\nexec tor "$@"\n`);
    await chmod(wrapper, 0o700);
    await appendFile(init.configPath, OFFLINE.replace('[tor]\n', `[tor]\nbinary = ${JSON.stringify(wrapper)}\n`));
    const run = spawnRun(init.configPath);
    await run.logged('"msg":"starting tor"');
    run.kill('SIGTERM');
    await run.logged('"msg":"signal received while starting; stopping once started"');
    await writeFile(gate, '');
    const exit = await run.exited;
    const { stderr } = run.output();
    expect(exit, stderr).toEqual({ code: 0, signal: null });
    expect(stderr).toContain('"msg":"node running"');
    expect(stderr).toContain('"msg":"started after a stop signal; draining"');
    expect(stderr).toContain('"msg":"stopped"');
    const torPid = torPidIn(stderr);
    expect(torPid).toBeGreaterThan(0);
    expect(alive(torPid)).toBe(false);
  });
});

describe('torbalance run --exit-with-parent (spawned binary, offline tor)', () => {
  it('stops, and its tor with it, when the parent process is SIGKILLed', async () => {
    const d = await tmp();
    const r = await initNode({ dir: join(d, 'n'), target: TARGET });
    await appendFile(r.configPath, OFFLINE);
    // A parent that starts the node and is then killed without a chance to clean up.
    const script =
      `const { spawn } = require('node:child_process');` +
      `const c = spawn(process.execPath, [${JSON.stringify(BIN)}, 'run', '--exit-with-parent', '--config', ${JSON.stringify(r.configPath)}], { stdio: ['ignore', 'ignore', 'inherit'] });` +
      `process.stdout.write(String(c.pid) + '\\n'); setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    parent.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')));
    const running = new Promise<void>((res, rej) => {
      parent.stderr.on('data', (c: Buffer) => {
        err += c.toString('latin1');
        if (err.includes('"msg":"node running"')) res();
      });
      parent.once('exit', () => { rej(new Error(`parent exited early: ${err}`)); });
    });
    await running;
    const nodePid = Number(out.trim());
    const torPid = torPidIn(err);
    expect(nodePid).toBeGreaterThan(0);
    expect(torPid).toBeGreaterThan(0);
    expect(alive(nodePid) && alive(torPid)).toBe(true);
    parent.kill('SIGKILL');
    const end = Date.now() + 60_000;
    while ((alive(nodePid) || alive(torPid)) && Date.now() < end) await new Promise((res) => setTimeout(res, 200));
    try {
      expect(alive(nodePid), 'the node outlived its parent').toBe(false);
      expect(alive(torPid), 'the node\'s tor outlived it').toBe(false);
    } finally {
      for (const pid of [nodePid, torPid]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    expect(err).toContain('parent process gone; stopping');
  });
});

describe('startNode in-process (offline tor)', () => {
  it('reports status and stops cleanly', async () => {
    const d = await tmp();
    const r = await initNode({ dir: join(d, 'n'), target: TARGET });
    await appendFile(r.configPath, OFFLINE);
    expect((await checkConfig(r.configPath)).masterAddress).toBe(r.masterAddress);
    const out = new PassThrough();
    let logs = '';
    out.on('data', (c: Buffer) => (logs += c.toString('utf8')));
    const config = await loadConfig(r.configPath);
    const node = await startNode({ config, logger: createLogger({ level: 'debug', destination: out }) });
    try {
      expect(node.masterAddress).toBe(r.masterAddress);
      const s = await node.status();
      expect(s.state).toBe('running');
      expect(s.tor.state).toBe('ready');
      expect(s.tor.pid).toBeGreaterThan(0);
      expect(s.tor.socksPort).toBe(node.socksPort);
      expect(s.health.tor.progress).toBeLessThan(100); // DisableNetwork 1
      expect(s.health.healthy).toBe(false);
      expect(s.proxy.open).toBe(0);
    } finally {
      await node.stop(0);
    }
    await node.stopped;
    expect((await node.status()).state).toBe('stopped');
    expect(logs).toContain('"msg":"node running"');
  });
});
