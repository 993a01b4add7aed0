/**
 * SIGHUP reload of a real `torbalance run` process (spawned binary; its tor runs offline with
 * `DisableNetwork 1`, so no network is needed): a visitor connection held open through the
 * proxy's unix socket (PROXY v1 header sent, no request yet) survives the reload and is served
 * afterwards; the new log level and connection limit are in effect; a restart-only key is
 * named in a warning and not applied; a broken file leaves the node running with the old
 * values.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initNode } from '../../src/cli/commands/init.js';
import { runDoctor } from '../../src/node/doctor.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { requireBuilt } from '../helpers/built.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/torbalance.js');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9)).address;
/** tor's header for circuit 666 (core/proxy-protocol.ts). */
const PROXY_HEADER = 'PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 80\r\n';

function configText(o: { level: string; maxConnections: number; targetPort: number }): string {
  return [
    '[node]',
    'name = "reload1"',
    'data_dir = "data"',
    '[master]',
    'key_dir = "master"',
    '[target]',
    `address = "${TARGET}"`,
    `port = ${o.targetPort}`,
    '[proxy.limits]',
    `max_connections = ${o.maxConnections}`,
    'connect_timeout_ms = 1500',
    'header_timeout_ms = 600000',
    '[tor]',
    'extra_config = ["DisableNetwork 1"]',
    '[drain]',
    'timeout_ms = 500',
    '[log]',
    `level = "${o.level}"`,
    'format = "json"',
    '',
  ].join('\n');
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A visitor connection: collects what the proxy sends and whether it closed. */
interface Visitor {
  readonly sock: net.Socket;
  data: string;
  closed: boolean;
}

function visit(path: string): Promise<Visitor> {
  return new Promise((res, rej) => {
    const sock = net.connect(path);
    const v: Visitor = { sock, data: '', closed: false };
    sock.on('data', (c: Buffer) => (v.data += c.toString('latin1')));
    sock.on('close', () => (v.closed = true));
    sock.on('error', () => undefined);
    sock.once('connect', () => {
      res(v);
    });
    sock.once('error', rej);
  });
}

const dirs: string[] = [];
let child: ChildProcess | undefined;
afterAll(async () => {
  if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('SIGHUP reload (torbalance run, offline tor)', () => {
  it('applies the new log level and limit without dropping a held connection; restart keys are named; a broken file is refused', async () => {
    requireBuilt('dist/src/cli/main.js', 'dist/src/cli/commands/run.js');
    const base = await mkdtemp(join(tmpdir(), 'tb-reload-'));
    dirs.push(base);
    const dir = join(base, 'n');
    const r = await initNode({ dir, target: TARGET });
    await writeFile(r.configPath, configText({ level: 'info', maxConnections: 100, targetPort: 80 }), { mode: 0o600 });
    const statusFile = join(base, 'status.json');
    const proc = spawn(process.execPath, [BIN, 'run', '--config', r.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TORBALANCE_STATUS_FILE: statusFile },
    });
    child = proc;
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<number | null>((res) => proc.once('exit', (code) => {
      res(code);
    }));
    const alive = (): boolean => proc.exitCode === null && proc.signalCode === null;
    const lines = (): Record<string, unknown>[] =>
      stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const logged = (msg: string): Record<string, unknown>[] => lines().filter((l) => l['msg'] === msg);
    const status = async (): Promise<{ proxy: { open: number; rejected: number; accepted: number } }> =>
      JSON.parse(await readFile(statusFile, 'utf8')) as { proxy: { open: number; rejected: number; accepted: number } };

    await until('node running', () => {
      if (!alive()) throw new Error(`run exited early: ${stderr}`);
      return stderr.includes('"msg":"node running"');
    });
    const sockPath = join(dir, 'data', 'proxy.sock');

    // doctor against the real node: its admin API answers; offline tor is not bootstrapped.
    const doc = await runDoctor({ configPath: r.configPath, reachability: true, reachabilityTimeoutMs: 3000 });
    const docOf = (id: string): string | undefined => doc.find((c) => c.id === id)?.status;
    expect(docOf('admin')).toBe('ok');
    expect(docOf('tor-bootstrap')).toBe('fail');
    expect(docOf('node-health')).toBe('fail');
    expect(docOf('master-key')).toBe('ok');
    expect(docOf('mode:data-dir')).toBe('ok');
    expect(docOf('reachability')).toBe('fail'); // through the node's own SOCKS port (from its torrc)
    expect(doc.find((c) => c.id === 'reachability')?.message).not.toContain('unknown');

    // Before: level info — a failing upstream request is not logged (it is a debug line).
    const before = await visit(sockPath);
    before.sock.write(`${PROXY_HEADER}GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
    await until('a 5xx answer before the reload', () => /^HTTP\/1\.1 50[24] /.test(before.data));
    before.sock.destroy();
    expect(logged('upstream request failed')).toEqual([]);

    // The held connection: PROXY header sent, no request yet.
    const held = await visit(sockPath);
    held.sock.write(PROXY_HEADER);
    await until('held connection counted', async () => existsSync(statusFile) && (await status()).proxy.open === 1);

    // Reload: debug level, max_connections 1 (live) and target.port (restart only).
    await writeFile(r.configPath, configText({ level: 'debug', maxConnections: 1, targetPort: 8080 }), { mode: 0o600 });
    proc.kill('SIGHUP');
    await until('reloaded', () => logged('configuration reloaded').length === 1);
    const done = logged('configuration reloaded')[0]!;
    expect(done['applied']).toEqual(['log.level', 'proxy.limits.max_connections']);
    const warn = logged('config keys changed that need a restart; not applied until the node restarts');
    expect(warn.map((w) => w['keys'])).toEqual([['target.port']]);
    expect(held.closed).toBe(false);

    // The new limit: with the held connection open, a second one is refused.
    const rejectedBefore = (await status()).proxy.rejected;
    const extra = await visit(sockPath);
    extra.sock.write(PROXY_HEADER);
    await until('second connection refused', () => extra.closed);
    expect(extra.data).toBe('');
    await until('rejection counted', async () => (await status()).proxy.rejected === rejectedBefore + 1);

    // The held connection is still served, and the new level shows the debug line.
    held.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('a 5xx answer on the held connection', () => /^HTTP\/1\.1 50[24] /.test(held.data));
    await until('debug line after the reload', () => logged('upstream request failed').length > 0);
    expect(held.closed).toBe(false); // keep-alive: still open after the error page
    held.sock.destroy();
    await until('no connection open', async () => (await status()).proxy.open === 0);

    // A broken file is refused; the node keeps running with max_connections = 1.
    await writeFile(r.configPath, '[proxy.limits]\nmax_connections = "many"\n', { mode: 0o600 });
    proc.kill('SIGHUP');
    await until('reload refused', () => logged('reload refused: the config file is invalid; keeping the running configuration').length === 1);
    const refused = logged('reload refused: the config file is invalid; keeping the running configuration')[0]!;
    expect(JSON.stringify(refused['err'])).toContain('TB_ERR_CONFIG_INVALID');
    expect(alive()).toBe(true);
    const one = await visit(sockPath);
    one.sock.write(PROXY_HEADER);
    await until('one connection open', async () => (await status()).proxy.open === 1);
    const rejected2 = (await status()).proxy.rejected;
    const two = await visit(sockPath);
    two.sock.write(PROXY_HEADER);
    await until('second refused under the old limit', () => two.closed);
    await until('rejection counted', async () => (await status()).proxy.rejected === rejected2 + 1);
    expect(one.closed).toBe(false);
    one.sock.destroy();

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('"msg":"stopped"');
  });
});
