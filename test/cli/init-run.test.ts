/**
 * `torbalance init` → files and modes → `config check` → `run` with an offline tor
 * (`extra_config = ["DisableNetwork 1"]`) starts, and stops cleanly (exit 0) on SIGTERM;
 * the master key's secret bytes appear in no output and in no file other than 0600 ones.
 * Also `startNode` in-process: status() and stop().
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/adapters/config/load.js';
import { writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { createLogger } from '../../src/adapters/log/logger.js';
import { checkConfig } from '../../src/cli/commands/config-check.js';
import { initNode } from '../../src/cli/commands/init.js';
import { decodeSecretKeyFile, HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { startNode } from '../../src/node/daemon.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/torbalance.js');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const OFFLINE = '\n[tor]\nextra_config = ["DisableNetwork 1"]\n\n[drain]\ntimeout_ms = 500\n\n[log]\nlevel = "debug"\n';

const built = existsSync(join(ROOT, 'dist/src/cli/commands/run.js'));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-ir-'));
  dirs.push(d);
  return d;
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

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

describe.skipIf(!built)('torbalance init / config check / run (spawned binary)', () => {
  let dir: string;
  let master: string;
  let secret: Uint8Array;

  beforeAll(async () => {
    dir = join(await tmp(), 'node');
    const r = cli(['init', '--dir', dir, '--target', TARGET, '--name', 'n1']);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    master = r.stdout.trim();
    secret = decodeSecretKeyFile(await readFile(join(dir, 'master', 'hs_ed25519_secret_key')));
  });

  it('init writes the config and the key with safe modes and prints the master address', async () => {
    expect(master).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, 'torbalance.toml'))).toBe(0o600);
    expect(await mode(join(dir, 'master'))).toBe(0o700);
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) expect(await mode(join(dir, 'master', f)), f).toBe(0o600);
    expect((await readFile(join(dir, 'master', 'hostname'), 'utf8')).trim()).toBe(master);
    const c = await loadConfig(join(dir, 'torbalance.toml'));
    expect(c.node.name).toBe('n1');
    expect(c.target.address).toBe(TARGET);
    expect(c.master.key_dir).toBe(join(dir, 'master'));
  });

  it('config check prints OK, and the errors for a bad file', async () => {
    const ok = cli(['config', 'check', join(dir, 'torbalance.toml')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`OK ${join(dir, 'torbalance.toml')} (master ${master}) target ${TARGET}\n`);
    const badFile = join(await tmp(), 'bad.toml');
    await appendFile(badFile, `[target]\naddress = "${TARGET}"\nprot = 80\n`);
    const bad = cli(['config', 'check', '--no-keys', badFile]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('TB_ERR_CONFIG_INVALID');
    expect(bad.stderr).toContain('target.prot (line 3): unknown key (did you mean "port"?)');
  });

  it('init refuses to overwrite, refuses a bad target, imports an existing HiddenServiceDir', async () => {
    const again = cli(['init', '--dir', dir, '--target', TARGET]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TB_ERR_INIT_EXISTS');
    const badTarget = cli(['init', '--dir', join(await tmp(), 'x'), '--target', 'nope.onion']);
    expect(badTarget.code).toBe(1);
    expect(badTarget.stderr).toContain('TB_ERR_INIT_TARGET');
    const hs = join(await tmp(), 'hs');
    const kp = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3));
    await writeKeyDirectory(hs, kp);
    const imported = cli(['init', '--dir', join(await tmp(), 'imp'), '--target', TARGET, '--import-hs-dir', hs]);
    expect(imported.code).toBe(0);
    expect(imported.stdout.trim()).toBe(kp.address);
    const self = cli(['init', '--dir', join(await tmp(), 'self'), '--target', kp.address, '--import-hs-dir', hs]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('TB_ERR_CONFIG_TARGET_IS_MASTER');
  });

  it('run starts tor and the proxy, and SIGTERM drains and exits 0; no secret leaks', async () => {
    await appendFile(join(dir, 'torbalance.toml'), OFFLINE);
    const child = spawn(process.execPath, [BIN, 'run', '--config', join(dir, 'torbalance.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    const running = new Promise<void>((res, rej) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('latin1');
        if (stderr.includes('"msg":"node running"')) res();
      });
      child.once('exit', () => {
        rej(new Error(`run exited early: ${stderr}`));
      });
    });
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => { res(code); }));
    await running;
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
    const torPid = Number((/"pid":(\d+),"restarts":0,"msg":"tor is up"/.exec(stderr) ?? [])[1]);
    expect(torPid).toBeGreaterThan(0);
    expect(() => process.kill(torPid, 0)).not.toThrow();

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('"msg":"stopped"');
    expect(() => process.kill(torPid, 0)).toThrow(); // tor is gone

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
});

describe.skipIf(!built)('torbalance run --exit-with-parent (spawned binary)', () => {
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
    const torPid = Number((/"pid":(\d+),"restarts":0,"msg":"tor is up"/.exec(err) ?? [])[1]);
    expect(nodePid).toBeGreaterThan(0);
    expect(torPid).toBeGreaterThan(0);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
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

  it('refuses to start with a group-readable master key', async () => {
    const d = await tmp();
    const r = await initNode({ dir: join(d, 'n'), target: TARGET });
    const { chmod } = await import('node:fs/promises');
    await chmod(join(d, 'n', 'master', 'hs_ed25519_secret_key'), 0o640);
    const config = await loadConfig(r.configPath);
    await expect(startNode({ config, logger: createLogger({ level: 'silent' }) })).rejects.toMatchObject({ code: 'TB_ERR_KEYSTORE_FILE_PERMISSIONS' });
    expect(existsSync(join(d, 'n', 'data'))).toBe(false);
  });
});
