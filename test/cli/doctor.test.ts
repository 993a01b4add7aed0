/**
 * `torbalance doctor` (src/node/doctor.ts, src/cli/commands/doctor.ts) with fake programs on
 * PATH (tor printing a version, timedatectl / chronyc printing sync states), bad file modes,
 * a broken config, and a fake admin API answering /status like a running node.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { AdminServer } from '../../src/adapters/admin/server.js';
import { initNode } from '../../src/cli/commands/init.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { checkClock, checkTor, formatDoctor, parseTorVersion, runDoctor, versionAtLeast, type DoctorCheck } from '../../src/node/doctor.js';
import { requireBuilt } from '../helpers/built.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/torbalance.js');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(5)).address;

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-doc-'));
  dirs.push(d);
  return d;
}

/** A directory of fake programs; PATH = only it (plus /bin for sh). */
async function fakeBin(programs: Record<string, string>): Promise<NodeJS.ProcessEnv> {
  const d = await tmp();
  for (const [name, body] of Object.entries(programs)) {
    await writeFile(join(d, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return { PATH: `${d}:/nonexistent` };
}

const TOR_OK = 'echo "Tor version 0.4.9.11."; echo "This build of Tor is covered by the GNU General Public License"';
const byId = (cs: readonly DoctorCheck[], id: string): DoctorCheck | undefined => cs.find((c) => c.id === id);

describe('tor version', () => {
  it('parses tor --version first lines', () => {
    expect(parseTorVersion('Tor version 0.4.9.11.\nThis build…')).toEqual({ text: '0.4.9.11', parts: [0, 4, 9, 11] });
    expect(parseTorVersion('Tor version 0.4.8.1-alpha.\n')).toEqual({ text: '0.4.8.1-alpha', parts: [0, 4, 8, 1] });
    expect(parseTorVersion('Tor version 0.4.7.16 (git-abc).')).toEqual({ text: '0.4.7.16', parts: [0, 4, 7, 16] });
    expect(parseTorVersion('tor 1.0')).toBeUndefined();
    expect(versionAtLeast([0, 4, 8, 0], [0, 4, 8])).toBe(true);
    expect(versionAtLeast([0, 4, 7, 99], [0, 4, 8])).toBe(false);
    expect(versionAtLeast([0, 5, 0, 0], [0, 4, 8])).toBe(true);
  });

  it('ok for 0.4.9, fail for 0.4.7, missing, or garbage — each with a fix', async () => {
    expect(await checkTor('tor', await fakeBin({ tor: TOR_OK }))).toEqual({ id: 'tor', status: 'ok', message: 'tor 0.4.9.11' });
    const old = await checkTor('tor', await fakeBin({ tor: 'echo "Tor version 0.4.7.16."' }));
    expect(old).toMatchObject({ status: 'fail', message: 'tor 0.4.7.16 is older than 0.4.8' });
    expect(old.fix).toContain('apt-get install tor');
    expect(await checkTor('tor', await fakeBin({}))).toMatchObject({ status: 'fail', message: 'tor not found (tor)' });
    expect(await checkTor('tor', await fakeBin({ tor: 'echo hello; exit 0' }))).toMatchObject({ status: 'fail', message: '`tor --version` did not print a tor version' });
  });
});

describe('clock', () => {
  it('timedatectl yes → ok, no → fail; chronyc as fallback; neither → warn "cannot tell"', async () => {
    expect((await checkClock(await fakeBin({ timedatectl: 'echo yes' }))).status).toBe('ok');
    const no = await checkClock(await fakeBin({ timedatectl: 'echo no' }));
    expect(no.status).toBe('fail');
    expect(no.fix).toContain('timedatectl set-ntp true');
    // timedatectl without systemd fails: chronyc answers.
    const chrony = await fakeBin({ timedatectl: 'echo "System has not been booted with systemd" >&2; exit 1', chronyc: 'echo "Reference ID    : 0A000001"; echo "Leap status     : Normal"' });
    expect(await checkClock(chrony)).toEqual({ id: 'clock', status: 'ok', message: 'clock synchronised (chronyc)' });
    expect((await checkClock(await fakeBin({ chronyc: 'echo "Leap status     : Not synchronised"' }))).status).toBe('fail');
    const none = await checkClock(await fakeBin({}));
    expect(none.status).toBe('warn');
    expect(none.message).toContain('cannot tell');
  });
});

describe('runDoctor on a node directory', () => {
  let dir: string;
  let configPath: string;
  let env: NodeJS.ProcessEnv;

  beforeEach(async () => {
    dir = join(await tmp(), 'n');
    const r = await initNode({ dir, target: TARGET, name: 'doc1' });
    configPath = r.configPath;
    env = await fakeBin({ tor: TOR_OK, timedatectl: 'echo yes' });
  });

  it('a fresh node: files ok, node not running → admin fails with how to start it', async () => {
    const cs = await runDoctor({ configPath, env });
    expect(byId(cs, 'tor')?.status).toBe('ok');
    expect(byId(cs, 'config')?.status).toBe('ok');
    expect(byId(cs, 'master-key')?.status).toBe('ok');
    for (const id of ['mode:config', 'mode:master-dir', 'mode:master-secret', 'mode:master-public', 'mode:master-hostname']) expect(byId(cs, id)?.status, id).toBe('ok');
    expect(byId(cs, 'mode:data-dir')?.status).toBe('warn'); // created by the first run
    expect(byId(cs, 'clock')?.status).toBe('ok');
    const admin = byId(cs, 'admin')!;
    expect(admin.status).toBe('fail');
    expect(admin.message).toContain('TB_ERR_ADMIN_UNREACHABLE');
    expect(admin.fix).toContain('systemctl start torbalance');
    const text = formatDoctor(cs);
    expect(text).toMatch(/^FAIL {2}admin +the admin API at unix:.*admin\.sock does not answer/m);
    expect(text).toContain('fix: start the node');
    expect(text.trimEnd().split('\n').at(-1)).toBe('1 check failed');
  });

  it('bad modes: each is named with the chmod that fixes it', async () => {
    await chmod(join(dir, 'master'), 0o755);
    await chmod(join(dir, 'master', 'hs_ed25519_secret_key'), 0o644);
    await chmod(configPath, 0o644);
    await mkdir(join(dir, 'data'), { mode: 0o750 });
    await chmod(join(dir, 'data'), 0o750);
    const cs = await runDoctor({ configPath, env });
    expect(byId(cs, 'master-key')?.status).toBe('fail');
    expect(byId(cs, 'mode:master-dir')).toMatchObject({ status: 'fail', fix: `chmod 700 ${join(dir, 'master')}` });
    expect(byId(cs, 'mode:master-secret')).toMatchObject({ status: 'fail', message: `${join(dir, 'master', 'hs_ed25519_secret_key')} has mode 0644, expected 0600` });
    expect(byId(cs, 'mode:config')).toMatchObject({ status: 'warn', fix: `chmod 600 ${configPath} (or 640 with group torbalance)` });
    expect(byId(cs, 'mode:data-dir')).toMatchObject({ status: 'fail', fix: `chmod 700 ${join(dir, 'data')}` });
    await chmod(configPath, 0o666);
    expect(byId(await runDoctor({ configPath, env }), 'config')).toMatchObject({ status: 'fail', message: expect.stringContaining(`chmod 600 '${configPath}'`) });
  });

  it('a path that exists but cannot be examined fails with the reason (it is not reported as "does not exist")', async () => {
    // data_dir under a regular file: stat fails with ENOTDIR, which used to read as "absent"
    const text = await readFile(configPath, 'utf8');
    await writeFile(configPath, text.replace('data_dir = "data"', 'data_dir = "torbalance.toml/data"'), { mode: 0o600 });
    const cs = await runDoctor({ configPath, env });
    expect(byId(cs, 'config')?.status).toBe('ok');
    expect(byId(cs, 'mode:data-dir')).toMatchObject({ status: 'fail', message: expect.stringContaining('ENOTDIR') });
  });

  it('files owned by another uid are reported with chown', async () => {
    const cs = await runDoctor({ configPath, env, uid: 4242 });
    expect(byId(cs, 'mode:master-dir')).toMatchObject({ status: 'fail', fix: `run doctor as the node's user, or \`chown 4242 ${join(dir, 'master')}\`` });
  });

  it('a broken config fails with the config check hint (tor and clock still checked)', async () => {
    await writeFile(configPath, '[target]\naddres = "x"\n', { mode: 0o600 });
    const cs = await runDoctor({ configPath, env });
    expect(cs.map((c) => c.id)).toEqual(['tor', 'config', 'clock']);
    expect(byId(cs, 'config')?.message).toContain('TB_ERR_CONFIG_INVALID');
    expect(byId(cs, 'config')?.fix).toContain('torbalance config check');
  });

  it('a running node (fake admin API): healthy + bootstrapped → ok; unhealthy → the reasons', async () => {
    await mkdir(join(dir, 'data'), { mode: 0o700 });
    // The shape of src/node/admin/status.ts's StatusDocument (the parts doctor reads).
    let status: unknown = { version: 1, node: { name: 'doc1', state: 'running' }, tor: { state: 'ready', bootstrap: 100 }, health: { healthy: true, reasons: [] } };
    const server = new AdminServer({
      listen: { kind: 'unix', path: join(dir, 'data', 'admin.sock') },
      routes: [{ method: 'GET', path: '/status', handler: () => ({ status: 200, json: status }) }],
    });
    await server.start();
    try {
      const cs = await runDoctor({ configPath, env });
      expect(byId(cs, 'admin')?.status).toBe('ok');
      expect(byId(cs, 'node-health')?.status).toBe('ok');
      expect(byId(cs, 'tor-bootstrap')?.status).toBe('ok');
      expect(cs.filter((c) => c.status === 'fail')).toEqual([]);
      status = { tor: { bootstrap: 45 }, health: { healthy: false, reasons: ['target unreachable', 'no intro points'] } };
      const bad = await runDoctor({ configPath, env });
      expect(byId(bad, 'node-health')).toMatchObject({ status: 'fail', message: 'the node is not healthy: target unreachable; no intro points' });
      expect(byId(bad, 'tor-bootstrap')).toMatchObject({ status: 'fail', message: 'tor is not bootstrapped (45%)' });
      // --reachability: without the node's torrc the SOCKS port is unknown; through a port
      // nobody listens on (read from the torrc the daemon writes) it fails with a fix.
      status = { tor: { bootstrap: 100 }, health: { healthy: true, reasons: [] } };
      const unknown = await runDoctor({ configPath, env, reachability: true, reachabilityTimeoutMs: 2000 });
      expect(byId(unknown, 'reachability')?.message).toContain('SOCKS port (from <data_dir>/tor/torrc) is unknown');
      await mkdir(join(dir, 'data', 'tor'), { mode: 0o700 });
      await writeFile(join(dir, 'data', 'tor', 'torrc'), 'DataDirectory /x\nSocksPort "127.0.0.1:1 OnionTrafficOnly"\n');
      const reach = await runDoctor({ configPath, env, reachability: true, reachabilityTimeoutMs: 2000 });
      expect(byId(reach, 'reachability')?.status).toBe('fail');
      expect(byId(reach, 'reachability')?.message).toMatch(/^[a-z2-7]{56}\.onion:80 is not reachable through the node's tor/);
      expect(byId(reach, 'reachability')?.fix).toContain('torbalance status');
    } finally {
      await server.stop();
    }
  });

  it('spawned: table and --json; exit 1 when a check fails', () => {
    requireBuilt('dist/src/cli/main.js', 'dist/src/cli/commands/doctor.js');
    const r = spawnSync(process.execPath, [BIN, 'doctor', '--config', configPath, '--json'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout) as { ok: boolean; checks: DoctorCheck[] };
    expect(j.ok).toBe(false);
    expect(byId(j.checks, 'admin')?.status).toBe('fail');
    expect(r.stderr).toContain('TB_ERR_DOCTOR_FAILED');
    const t = spawnSync(process.execPath, [BIN, 'doctor', '--config', configPath], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
    expect(t.status).toBe(1);
    expect(t.stdout).toMatch(/^OK {4}tor +tor 0\.4\.9\.11$/m);
  });
});
