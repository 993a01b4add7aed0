/**
 * `torbalance join` and `torbalance token` without tor: the whole join over loopback (a node's
 * JoinService on its unix socket, reached through a fake SOCKS port that records the CONNECT:
 * the master onion name goes to the proxy as a domain name, never resolved), the node
 * directory it writes (modes, tor key format, a config that loadConfig accepts), refusals,
 * checks done before the token is spent, option errors (there is no option taking the token),
 * and the TTL parser. The join client's retry loop runs on {@link StepTimers}: a wait between
 * attempts ends when the test advances the clock, never by sleeping.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject, loadConfig } from '../../src/adapters/config/load.js';
import { readKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { readNodeSecret } from '../../src/adapters/fs/node-secrets.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import type { Config } from '../../src/adapters/config/schema.js';
import type { TimerHandle, Timers } from '../../src/adapters/system/timers.js';
import { joinCluster, joinConfigText, parseTorExtraText, RETRY_LATER_MS, RETRY_UNREACHABLE_MS } from '../../src/node/join/client.js';
import { formatTokenTable, parseTtl } from '../../src/cli/commands/token.js';
import { toHex } from '../../src/core/bytes.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { formatTorProxyHeader } from '../../src/core/proxy-protocol.js';
import { joinSocketPath } from '../../src/node/join/paths.js';
import { JoinService } from '../../src/node/join/service.js';
import { MembersService, type MembersGossip } from '../../src/node/members.js';
import { FakeSocksServer } from '../helpers/fake-socks-server.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(5));
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const SECRET = new Uint8Array(32).fill(0x24);
const dirs: string[] = [];
let svc: JoinService;
/** The first node's allowlist (src/node/members.ts), enforced, as the cluster service wires it. */
let members: MembersService;
const noMesh: MembersGossip = { setMembers: () => undefined, onMembers: () => () => undefined, alivePeers: () => [] };
const relays: net.Server[] = [];
/** Onion port → loopback port of the relay standing in for tor's stream to that node's join port. */
const joinPorts = new Map<number, number>();
let socks: FakeSocksServer;
let root: string;
let circuitId = 0;

/**
 * Virtual clock and timers: a timer runs only when {@link StepTimers.fire} advances the clock
 * past it, and `fire(ms)` first waits (for the event, not for time) until a timer of `ms` is
 * scheduled, i.e. until the client is waiting before its next attempt.
 */
class StepTimers implements Timers {
  #now = 0;
  readonly #pending = new Set<{ at: number; ms: number; fn: () => void }>();
  #onSchedule: (() => void) | undefined;
  /** Delays of every timer scheduled, in order. */
  readonly delays: number[] = [];

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = { at: this.#now + ms, ms, fn };
    this.#pending.add(t);
    this.delays.push(ms);
    this.#onSchedule?.();
    return t;
  }

  clearTimeout(h: TimerHandle): void {
    this.#pending.delete(h as { at: number; ms: number; fn: () => void });
  }

  async fire(ms: number): Promise<void> {
    const waiting = (): boolean => [...this.#pending].some((t) => t.ms === ms);
    while (!waiting()) await new Promise<void>((r) => (this.#onSchedule = r));
    this.#onSchedule = undefined;
    const target = this.#now + ms;
    for (;;) {
      const next = [...this.#pending].filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      this.#pending.delete(next);
      this.#now = next.at;
      next.fn();
    }
    this.#now = target;
  }
}

/**
 * tor's role: the onion stream to the join port ends on the node's unix socket. Each stream
 * gets its own circuit id in the PROXY header (the client isolates every attempt, so tor builds
 * a fresh circuit for each), and a close on either side closes the other, as tor does.
 */
async function startRelay(dataDir: string, onionPort: number): Promise<void> {
  const relay = net.createServer((c) => {
    const u = net.connect({ path: joinSocketPath(dataDir) });
    u.write(formatTorProxyHeader(++circuitId, onionPort)); // as tor does (HiddenServiceExportCircuitID haproxy)
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
    c.on('close', () => u.destroy());
    u.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relays.push(relay);
  joinPorts.set(onionPort, (relay.address() as net.AddressInfo).port);
}

async function startService(config: Config, now?: () => number): Promise<{ service: JoinService; members: MembersService }> {
  await mkdir(config.node.data_dir, { recursive: true, mode: 0o700 });
  const m = new MembersService({ dataDir: config.node.data_dir, nodeId: 'a'.repeat(32), logger: pino({ level: 'silent' }) });
  await m.start(noMesh);
  await m.enforce();
  const s = new JoinService({
    admit: (id) => m.admit(id),
    members: () => m.ledger(),
    config,
    clusterSecret: SECRET,
    masterAddress: MASTER.address,
    masterSecretKey: () => MASTER.expandedSecretKey,
    nodeId: 'a'.repeat(32),
    peers: () => ['tcp:127.0.0.1:7700', 'tcp:127.0.0.1:7702'],
    randomBytes: systemRandomBytes,
    logger: pino({ level: 'silent' }),
    ...(now === undefined ? {} : { now }),
  });
  await s.start();
  await startRelay(config.node.data_dir, config.cluster.join.onion_port);
  return { service: s, members: m };
}

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tbjc-'));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  root = await tmp();
  const config = configFromObject(
    {
      node: { data_dir: join(root, 'data'), name: 'first' },
      target: { address: TARGET, port: 8080 },
      tor: { extra_config: ['TestingTorNetwork 1', 'Nickname first', 'PidFile /x/pid', 'Log info file /x/info.log'] },
      health: { kind: 'http', path: '/h', interval_ms: 2000 },
      cluster: { enabled: true, listen: '127.0.0.1:7700', heartbeat_ms: 500, suspect_after_ms: 2000, dead_after_ms: 6000 },
    },
    { baseDir: root },
  );
  ({ service: svc, members } = await startService(config));
  socks = new FakeSocksServer({
    route: (host, port) => {
      const relayPort = host === MASTER.address ? joinPorts.get(port) : undefined;
      return relayPort === undefined ? undefined : { host: '127.0.0.1', port: relayPort };
    },
  });
  await socks.start();
});

afterAll(async () => {
  await svc.stop();
  await socks.stop();
  for (const r of relays) r.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tokenFile(ttl = 600, from: JoinService = svc): Promise<{ path: string; id: string }> {
  const t = await from.issue(ttl);
  const d = await tmp();
  const path = join(d, 'token');
  await writeFile(path, `${t.token}\n`, { mode: 0o600 });
  return { path, id: t.id };
}

const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o777).toString(8);

describe('joinCluster over loopback', () => {
  it('writes a node directory that loads, with the cluster\'s key, secret and settings', async () => {
    const t = await tokenFile();
    const dir = join(await tmp(), 'node2');
    const extra = join(await tmp(), 'extra');
    await writeFile(extra, '# the network\nTestingTorNetwork 1\n\nNickname second\n');
    const r = await joinCluster({ tokenFile: t.path, dir, name: 'second', socks: `127.0.0.1:${socks.port}`, torExtraFile: extra, listen: '127.0.0.1:7702', priority: 50, progress: () => undefined });
    expect(r.masterAddress).toBe(MASTER.address);
    expect(r.clusterEnabled).toBe(true);
    // the onion name went to the proxy as a name (ATYP 3)
    expect(socks.requests.at(-1)).toMatchObject({ atyp: 3, host: MASTER.address, port: 7101 });
    expect(await mode(dir)).toBe('700');
    expect(await mode(join(dir, 'master'))).toBe('700');
    expect(await mode(join(dir, 'master', 'hs_ed25519_secret_key'))).toBe('600');
    expect(await mode(join(dir, 'cluster', 'secret'))).toBe('600');
    expect(await mode(join(dir, 'cluster', 'node_key'))).toBe('600');
    expect(await mode(r.configPath)).toBe('600');
    const key = await readKeyDirectory(join(dir, 'master'));
    expect(key.keypair.address).toBe(MASTER.address);
    expect(toHex(key.keypair.expandedSecretKey)).toBe(toHex(MASTER.expandedSecretKey));
    expect(toHex(await readNodeSecret('cluster-secret', join(dir, 'cluster', 'secret')))).toBe(toHex(SECRET));
    const config = await loadConfig(r.configPath);
    expect(config.node.name).toBe('second');
    expect(config.target).toMatchObject({ address: TARGET, port: 8080, mode: 'http' });
    expect(config.health).toMatchObject({ kind: 'http', path: '/h', interval_ms: 2000 });
    expect(config.cluster).toMatchObject({ enabled: true, transport: 'tcp', listen: '127.0.0.1:7702', peers: ['tcp:127.0.0.1:7700'], priority: 50, heartbeat_ms: 500, suspect_after_ms: 2000, dead_after_ms: 6000 });
    expect(config.cluster.join.onion_port).toBe(7101);
    expect(config.tor.extra_config).toEqual([['TestingTorNetwork', '1'], ['Nickname', 'second']]);
    expect(config.master.key_dir).toBe(join(dir, 'master'));
    // the config has no secret in it
    const text = await readFile(r.configPath, 'utf8');
    expect(text).not.toContain(toHex(MASTER.expandedSecretKey).slice(0, 32));
    expect(svc.list().find((e) => e.id === t.id)).toMatchObject({ state: 'used', joiner: r.nodeId });
    // The joiner is on the cluster's allowlist, and starts with it (enforced) from its bundle.
    expect(members.ledger().entries.map((e) => [e.id, e.state])).toContainEqual([r.nodeId, 'member']);
    expect(await mode(join(config.node.data_dir, 'members.json'))).toBe('600');
    const own = new MembersService({ dataDir: config.node.data_dir, nodeId: r.nodeId, logger: pino({ level: 'silent' }) });
    await own.start(noMesh);
    expect(own.ledger()).toEqual(members.ledger());
  });

  it('a used token is refused ("used") and nothing is written', async () => {
    const t = await tokenFile();
    const dir1 = join(await tmp(), 'n');
    await tokenFile(); // another outstanding token keeps the node's join port open
    await joinCluster({ tokenFile: t.path, dir: dir1, name: 'x', socks: `127.0.0.1:${socks.port}`, listen: '127.0.0.1:7703', progress: () => undefined });
    const dir2 = join(await tmp(), 'n');
    await expect(joinCluster({ tokenFile: t.path, dir: dir2, name: 'y', socks: `127.0.0.1:${socks.port}`, listen: '127.0.0.1:7704', progress: () => undefined })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_REFUSED', reason: 'used' });
    await expect(stat(dir2)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('without --listen (tcp transport) the files are written with the cluster disabled', async () => {
    const t = await tokenFile();
    const dir = join(await tmp(), 'n');
    const before = socks.requests.length;
    const r = await joinCluster({ tokenFile: t.path, dir, name: 'z', socks: `127.0.0.1:${socks.port}`, progress: () => undefined });
    expect(socks.requests.length - before).toBe(1); // admitted at the first attempt
    expect(r.clusterEnabled).toBe(false);
    const config = await loadConfig(r.configPath);
    expect(config.cluster.enabled).toBe(false);
    // the cluster's per-node tor lines are not inherited
    expect(config.tor.extra_config).toEqual([['TestingTorNetwork', '1']]);
    expect(config.cluster.peers).toEqual(['tcp:127.0.0.1:7700', 'tcp:127.0.0.1:7702']);
  });

  it('checks options, the directory and the token file before spending the token', async () => {
    const t = await tokenFile();
    const base = { tokenFile: t.path, name: 'n', socks: `127.0.0.1:${socks.port}`, listen: '127.0.0.1:7705', progress: () => undefined };
    const d = await tmp();
    await writeFile(join(d, 'torbalance.toml'), '');
    await expect(joinCluster({ ...base, dir: d })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_EXISTS' });
    await expect(joinCluster({ ...base, dir: join(d, 'a'), listen: 'localhost:1' })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_OPTION' });
    await expect(joinCluster({ ...base, dir: join(d, 'a'), socks: '10.0.0.1:9050' })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_OPTION' });
    await expect(joinCluster({ ...base, dir: join(d, 'a'), name: 'bad name' })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_OPTION' });
    await expect(joinCluster({ ...base, dir: join(d, 'a'), priority: 1001 })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_OPTION' });
    const extra = join(d, 'extra');
    await writeFile(extra, 'HiddenServiceDir /x\n');
    await expect(joinCluster({ ...base, dir: join(d, 'a'), torExtraFile: extra })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_OPTION' });
    const garbage = join(d, 'garbage');
    await writeFile(garbage, 'tbjoin1-notatoken\n');
    await expect(joinCluster({ ...base, dir: join(d, 'a'), tokenFile: garbage })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_TOKEN' });
    await writeFile(garbage, 'x'.repeat(5000));
    await expect(joinCluster({ ...base, dir: join(d, 'a'), tokenFile: garbage })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_TOKEN_FILE' });
    await expect(joinCluster({ ...base, dir: join(d, 'a'), tokenFile: join(d, 'missing') })).rejects.toMatchObject({ code: 'TB_ERR_JOIN_TOKEN_FILE' });
    expect(svc.list().find((e) => e.id === t.id)?.state).toBe('issued');
  });

  it('an unreachable join port is retried every 3 s and fails with TB_ERR_JOIN_UNREACHABLE at the deadline', async () => {
    const t = await tokenFile();
    const timers = new StepTimers();
    const before = socks.requests.length;
    socks.replyOverride = 0xf0;
    try {
      const outcome = joinCluster({ tokenFile: t.path, dir: join(await tmp(), 'n'), name: 'n', socks: `127.0.0.1:${socks.port}`, listen: '127.0.0.1:7706', timeoutS: 10, progress: () => undefined, timers }).then(
        () => undefined,
        (e: unknown) => e,
      );
      // attempts at 0, 3, 6 and 9 s; after the wait that ends at 12 s the deadline (10 s) has passed
      for (let i = 0; i < 4; i++) await timers.fire(RETRY_UNREACHABLE_MS);
      expect(await outcome).toMatchObject({ code: 'TB_ERR_JOIN_UNREACHABLE' });
      expect(socks.requests.length - before).toBe(4);
      expect(timers.delays).toEqual([RETRY_UNREACHABLE_MS, RETRY_UNREACHABLE_MS, RETRY_UNREACHABLE_MS, RETRY_UNREACHABLE_MS]);
    } finally {
      socks.replyOverride = undefined;
    }
  });

  it('a rate-limited attempt is retried after 15 s until the node admits it', async () => {
    // A second node with a budget of one proven attempt per minute, on the test's clock.
    const timers = new StepTimers();
    const wall0 = Date.now();
    const d = await tmp();
    const config = configFromObject(
      { node: { data_dir: join(d, 'data'), name: 'limited' }, target: { address: TARGET, port: 8080 }, cluster: { enabled: true, listen: '127.0.0.1:7710', join: { onion_port: 7102, max_attempts_per_minute: 1 } } },
      { baseDir: d },
    );
    const limited = (await startService(config, () => wall0 + timers.now())).service;
    try {
      const first = await tokenFile(600, limited);
      const second = await tokenFile(600, limited);
      const common = { socks: `127.0.0.1:${socks.port}`, listen: '127.0.0.1:7711', progress: () => undefined, timers };
      await joinCluster({ ...common, tokenFile: first.path, dir: join(await tmp(), 'n'), name: 'first' }); // spends the minute's budget
      const outcome = joinCluster({ ...common, tokenFile: second.path, dir: join(await tmp(), 'n'), name: 'second' });
      // refused at 0, 15, 30 and 45 s; at 60 s the first attempt has left the node's window
      for (let i = 0; i < 4; i++) await timers.fire(RETRY_LATER_MS);
      const r = await outcome;
      expect(r.clusterEnabled).toBe(true);
      expect(limited.status()).toMatchObject({ accepted: 2, refused: { 'rate-limited': 4 } });
      expect(timers.delays.filter((ms) => ms === RETRY_LATER_MS)).toHaveLength(4); // the other timers are answer timeouts
      expect(limited.list().find((e) => e.id === second.id)).toMatchObject({ state: 'used', joiner: r.nodeId });
    } finally {
      await limited.stop();
    }
  });
});

describe('helpers', () => {
  it('parseTtl', () => {
    expect(parseTtl('1h')).toBe(3600);
    expect(parseTtl('60s')).toBe(60);
    expect(parseTtl('90')).toBe(90);
    expect(parseTtl('1d')).toBe(86_400);
    expect(parseTtl('24h')).toBe(86_400);
    expect(parseTtl('30m')).toBe(1800);
    for (const bad of ['59s', '2d', '25h', '8d', '1.5h', '', 'h', '-1h', '1w']) expect(() => parseTtl(bad), bad).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_TTL' }));
  });

  it('parseTorExtraText and joinConfigText', () => {
    expect(parseTorExtraText('# c\n\nDisableNetwork 1\r\nUseBridges 0')).toEqual([['DisableNetwork', '1'], ['UseBridges', '0']]);
    expect(() => parseTorExtraText('SocksPort 9050')).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_OPTION' }));
    const { text } = joinConfigText({
      name: 'n',
      onionPort: 7101,
      torLines: [],
      listen: undefined,
      bundle: { masterSecretKey: new Uint8Array(64), clusterSecret: new Uint8Array(32), peers: ['tor:' + 'a'.repeat(56) + '.onion:7700', 'tcp:127.0.0.1:1'], settings: { transport: 'tor', target: { address: TARGET, port: 80, mode: 'http' }, torExtraConfig: [], cluster: { heartbeat_ms: 1000, suspect_after_ms: 3000, dead_after_ms: 10000, lease_ms: 15000, max_skew_ms: 30000 }, health: { kind: 'tcp', path: '/', interval_ms: 30000, timeout_ms: 10000 } } },
    });
    expect(text).toContain('transport = "tor"');
    expect(text).toContain('enabled = true');
    expect(text).not.toContain('tcp:127.0.0.1:1');
  });

  it('formatTokenTable', () => {
    const t = formatTokenTable([{ id: '1'.repeat(32), state: 'used', effective: 'used', expiresAt: 0, by: 'a'.repeat(32), joiner: 'b'.repeat(32) }]);
    expect(t.split('\n')[0]).toMatch(/^ID\s+STATE\s+EXPIRES \(UTC\)\s+BY\s+JOINER$/);
    expect(t).toContain('1970-01-01T00:00:00Z');
  });
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveP) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('exit', (code) => {
      resolveP({ code, stdout, stderr });
    });
  });
}

describe('CLI option errors (spawned)', () => {
  it('join has no option that takes the token; token create needs --out', async () => {
    const j = await cli(['join', '--token-file', '/dev/null', '--token', 'tbjoin1-xyz', '--dir', '/tmp/x', '--name', 'n']);
    expect(j.code).toBe(2);
    expect(j.stderr).toMatch(/unknown option '--token'/);
    const m = await cli(['join', '--dir', '/tmp/x', '--name', 'n']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--token-file/);
    const help = await cli(['join', '--help']);
    expect(help.stdout).toContain('--token-file');
    expect(help.stdout).not.toMatch(/--token[ =<]/);
    const c = await cli(['token', 'create', '--config', '/nonexistent.toml']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--out/);
    const ttl = await cli(['token', 'create', '--config', '/nonexistent.toml', '--out', '-', '--ttl', '10s']);
    expect(ttl.code).toBe(1);
    expect(ttl.stderr).toContain('TB_ERR_JOIN_TTL');
  });
});
