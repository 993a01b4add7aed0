/**
 * Issue 6 "Done when": a second and third node join a running cluster with join tokens through
 * the master onion, on the shared private network.
 *
 * Node 1: `init --cluster` (tcp mesh on 127.0.0.1) and `run`, as a process. Two tokens via the
 * spawned `torbalance token create`. Node 2 joins through the network's client SOCKS port,
 * node 3 through a temporary tor `join` starts itself with the network's torrc lines; both are
 * then run and the test waits until all three see each other alive and agree on one
 * publisher. The used token is refused ("used"); a revoked one is refused ("revoked"); a
 * 60-second token (the shortest TTL) used after it expired is refused ("expired"); the expiry
 * boundary itself is covered with an injected clock in test/adapters/join-service.test.ts. Finally the master key — raw 64-byte expanded key, its 32-byte halves, hex and base64
 * forms — is searched in every started process's /proc/<pid>/cmdline (and the argv we
 * passed), in every captured stdout/stderr/log, and in every file under the test directory:
 * a file containing it must be mode 0600 (logs must not contain it at all). A planted 0644
 * copy proves the check can fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { decodeJoinToken } from '../../src/core/join/token.js';
import { allocatePorts, testnetCommonTorrc } from '../../src/adapters/tor/testnet.js';
import { initNode } from '../../src/cli/commands/init.js';
import type { NodeStatus } from '../../src/node/node-status.js';
import { pollUntil, processTree, startTargetBehindOnion, type TargetBehindOnion } from '../helpers/node-harness.js';
import { sharedTestnet, uniqueNickname } from '../helpers/testnet.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const net = sharedTestnet();

type Snapshot = NodeStatus & { pid: number };

interface Spawned {
  readonly args: readonly string[];
  readonly proc: ChildProcess;
}

const spawned: Spawned[] = [];
/** Every captured stdout/stderr of short-lived CLI runs. */
const captured: string[] = [];
let root = '';
let target: TargetBehindOnion | undefined;
const nodes: { dir: string; config: string; proc: ChildProcess | undefined; log: string; status: string }[] = [];

afterAll(async () => {
  for (const n of nodes) {
    const p = n.proc;
    if (p !== undefined && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once('exit', () => { r(); }));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
  }
  await target?.stop();
  if (root !== '') {
    const keep = join(REPO, '.torlab', 'node-logs');
    await mkdir(keep, { recursive: true });
    for (const [i, n] of nodes.entries()) await writeFile(join(keep, `join-${Date.now()}-node${i + 1}.log`), await readFile(n.log, 'utf8').catch(() => ''));
    await rm(root, { recursive: true, force: true });
  }
});

/** Run the CLI to completion (from source), capturing its output. */
function cli(args: string[], timeoutMs = 600_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveP) => {
    const full = ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args];
    const p = spawn(process.execPath, full, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    spawned.push({ args: full, proc: p });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      captured.push(stdout, stderr);
      resolveP({ code, stdout, stderr });
    });
  });
}

/** Start `torbalance run` for node i (logs to a file, status snapshot every second). */
function run(i: number): void {
  const n = nodes[i]!;
  const out = openSync(n.log, 'a');
  try {
    const args = ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'run', '--config', n.config];
    n.proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', out, out], env: { ...process.env, TORBALANCE_STATUS_FILE: n.status } });
    spawned.push({ args, proc: n.proc });
  } finally {
    closeSync(out);
  }
}

function status(i: number): Snapshot | undefined {
  try {
    const s = JSON.parse(readFileSync(nodes[i]!.status, 'utf8')) as Snapshot;
    return s.pid === nodes[i]!.proc?.pid ? s : undefined;
  } catch {
    return undefined;
  }
}

/** The network's torrc lines for a node whose tor lives in `torDir`. */
function networkLines(torDir: string): string[] {
  return testnetCommonTorrc(net, uniqueNickname('tbj'), torDir)
    .filter(([k]) => k !== 'SafeLogging')
    .map(([k, v]) => (v === '' ? k : `${k} ${v}`));
}

async function createToken(config: string, out: string, ttl = '30m'): Promise<void> {
  await pollUntil(
    'token create',
    async () => {
      const r = await cli(['token', 'create', '--config', config, '--ttl', ttl, '--out', out]);
      if (r.code !== 0) throw new Error(r.stderr.trim().split('\n').at(-1));
      return true;
    },
    180_000,
    2000,
  );
}

// ---------------------------------------------------------------------------------------
// The secret search

/** Every encoding of the key (and its halves) the search looks for. */
function secretForms(expanded: Uint8Array): { name: string; bytes: Buffer }[] {
  const parts: [string, Buffer][] = [
    ['key', Buffer.from(expanded)],
    ['scalar half', Buffer.from(expanded.subarray(0, 32))],
    ['prefix half', Buffer.from(expanded.subarray(32, 64))],
  ];
  const out: { name: string; bytes: Buffer }[] = [];
  for (const [n, b] of parts) {
    out.push({ name: `${n} raw`, bytes: b });
    out.push({ name: `${n} hex`, bytes: Buffer.from(b.toString('hex')) });
    out.push({ name: `${n} HEX`, bytes: Buffer.from(b.toString('hex').toUpperCase()) });
    const b64 = b.toString('base64');
    out.push({ name: `${n} base64`, bytes: Buffer.from(b64.replace(/=+$/, '')) });
    out.push({ name: `${n} base64url`, bytes: Buffer.from(b.toString('base64url')) });
  }
  return out;
}

function findForm(data: Buffer, forms: readonly { name: string; bytes: Buffer }[]): string | undefined {
  return forms.find((f) => data.includes(f.bytes))?.name;
}

/** Files under `dir` that contain a form and are not 0600 (or are logs), as "path (form, mode)". */
async function scanTree(dir: string, forms: readonly { name: string; bytes: Buffer }[]): Promise<{ violations: string[]; holders: string[] }> {
  const violations: string[] = [];
  const holders: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e);
      let st;
      try {
        st = await lstat(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) {
        let data: Buffer;
        try {
          data = await readFile(p);
        } catch {
          continue;
        }
        const form = findForm(data, forms);
        if (form === undefined) continue;
        holders.push(p);
        const mode = (st.mode & 0o777).toString(8);
        if ((st.mode & 0o077) !== 0 || /\.log$|log$/i.test(e)) violations.push(`${p} (${form}, mode ${mode})`);
      }
    }
  };
  await walk(dir);
  return { violations, holders };
}

describe('join: two nodes join a running cluster with tokens through the master onion', () => {
  let master = '';
  let expanded: Uint8Array = new Uint8Array(0);
  const tokens: string[] = [];
  let shortToken = '';
  let shortTokenExpires = 0;

  it('node 1 (init --cluster, tcp mesh) runs; two tokens are created with the CLI', async () => {
    root = await mkdtemp('/tmp/tbj-');
    target = await startTargetBehindOnion(net);
    const ports = await allocatePorts(3);
    for (let i = 0; i < 3; i++) nodes.push({ dir: join(root, `n${i + 1}`), config: join(root, `n${i + 1}`, 'torbalance.toml'), proc: undefined, log: join(root, `node${i + 1}.log`), status: join(root, `status${i + 1}.json`) });
    const init = await initNode({ dir: nodes[0]!.dir, target: target.onion, name: 'node1', cluster: { listen: `127.0.0.1:${ports[0]!}`, peers: [] } });
    master = init.masterAddress;
    expanded = (await readKeyDirectory(init.keyDir)).keypair.expandedSecretKey;
    let text = await readFile(init.configPath, 'utf8');
    text = text.replace(/^\[cluster\]\n/m, '[cluster]\nheartbeat_ms = 500\nsuspect_after_ms = 2000\ndead_after_ms = 6000\nlease_ms = 8000\n');
    text += `\n[tor]\nextra_config = [\n${networkLines(join(nodes[0]!.dir, 'data', 'tor')).map((l) => `  ${JSON.stringify(l)},`).join('\n')}\n]\n`;
    text += '\n[health]\nkind = "tcp"\ninterval_ms = 2000\ntimeout_ms = 20000\n\n[drain]\ntimeout_ms = 1000\n\n[log]\nformat = "json"\n';
    await writeFile(init.configPath, text, { mode: 0o600 });
    run(0);
    // The join port stays closed until the node has a token outstanding (docs/SECURITY.md).
    await pollUntil('node 1 cluster running with the join service', () => (status(0)?.cluster?.join?.enabled === true ? true : undefined), 240_000, 1000);
    expect(status(0)?.cluster?.join?.listening).toBe(false);
    for (let i = 0; i < 2; i++) {
      const out = join(root, `token${i + 2}`);
      await createToken(nodes[0]!.config, out);
      expect((await lstat(out)).mode & 0o777).toBe(0o600);
      tokens.push(out);
    }
    // A token with the shortest lifetime (60 s): used after it expired, further down.
    shortToken = join(root, 'token-short');
    await createToken(nodes[0]!.config, shortToken, '60s');
    shortTokenExpires = Date.now() + 60_000;
    const list = await cli(['token', 'list', '--config', nodes[0]!.config, '--json']);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { state: string }[];
    expect(listed.filter((t) => t.state === 'issued')).toHaveLength(3);
    await pollUntil('node 1 opens its join port', () => (status(0)?.cluster?.join?.listening === true ? true : undefined), 30_000, 500);
  });

  it('node 2 joins through the network client\'s SOCKS port, node 3 through a temporary tor; all three mesh with one publisher', async () => {
    const meshPorts = await allocatePorts(2);
    const joins = [1, 2].map(async (i) => {
      const n = nodes[i]!;
      const torDir = join(n.dir, 'data', 'tor');
      await mkdir(torDir, { recursive: true, mode: 0o700 });
      await chmod(n.dir, 0o700);
      const extra = join(root, `extra${i + 1}`);
      await writeFile(extra, `${networkLines(torDir).join('\n')}\n`);
      const args = ['join', '--token-file', tokens[i - 1]!, '--dir', n.dir, '--name', `node${i + 1}`, '--tor-extra-file', extra, '--listen', `127.0.0.1:${meshPorts[i - 1]!}`, '--timeout', '480'];
      if (i === 1) args.push('--socks', `127.0.0.1:${net.clients[0]!.socksPort}`);
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(master);
      expect(r.stderr).toContain(`torbalance run --config ${n.config}`);
      // the status snapshot is only for the test
      run(i);
    });
    await Promise.all(joins);
    const view = await pollUntil(
      'all three nodes alive to each other with one agreed publisher',
      () => {
        const s = [0, 1, 2].map((i) => status(i));
        if (s.some((x) => x?.cluster === undefined)) return undefined;
        const ids = s.map((x) => x!.cluster!.nodeId);
        for (const x of s) {
          const alive = x!.cluster!.peers.filter((p) => p.state === 'alive').map((p) => p.id);
          if (ids.filter((id) => id !== x!.cluster!.nodeId).some((id) => !alive.includes(id))) return undefined;
        }
        const pubs = new Set(s.map((x) => x!.cluster!.publisher));
        if (pubs.size !== 1 || s.filter((x) => x!.cluster!.selfIsPublisher).length !== 1) return undefined;
        return s;
      },
      300_000,
      1000,
    );
    expect(view.map((x) => x!.masterAddress)).toEqual([master, master, master]);
    // node 1's ledger: both tokens used, by the joiners
    const list = await cli(['token', 'list', '--config', nodes[0]!.config, '--json']);
    const listed = JSON.parse(list.stdout) as { state: string; joiner?: string }[];
    expect(listed.filter((t) => t.state === 'used').map((t) => t.joiner).sort()).toEqual([view[1]!.cluster!.nodeId, view[2]!.cluster!.nodeId].sort());
  });

  it('the used token is refused ("used"); a revoked token is refused ("revoked"); an expired one ("expired")', async () => {
    const extra = join(root, 'extra-x');
    await writeFile(extra, `${networkLines(join(root, 'x', 'data', 'tor')).join('\n')}\n`);
    // Keep the join ports of nodes 1 and 2 open (each has a token of its own outstanding); node
    // 3's stays closed, so a joiner whose circuit reaches it retries on a fresh circuit.
    await createToken(nodes[0]!.config, join(root, 'token-keep1'));
    await createToken(nodes[1]!.config, join(root, 'token-keep2'));
    await pollUntil('nodes 1 and 2 listen, node 3 does not', () => (status(0)?.cluster?.join?.listening === true && status(1)?.cluster?.join?.listening === true && status(2)?.cluster?.join?.listening === false ? true : undefined), 30_000, 500);
    const again = await cli(['join', '--token-file', tokens[0]!, '--dir', join(root, 'x'), '--name', 'x', '--socks', `127.0.0.1:${net.clients[0]!.socksPort}`, '--listen', '127.0.0.1:1', '--timeout', '300']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TB_ERR_JOIN_REFUSED');
    expect(again.stderr).toContain('used');
    const rt = join(root, 'token-revoked');
    const listIssued = async (): Promise<{ id: string; state: string }[]> =>
      (JSON.parse((await cli(['token', 'list', '--config', nodes[0]!.config, '--json'])).stdout) as { id: string; state: string }[]).filter((t) => t.state === 'issued');
    await createToken(nodes[1]!.config, rt); // issued on node 2: the ledger is cluster-wide
    const rtId = decodeJoinToken(await readFile(rt, 'utf8')).claims.id;
    await pollUntil('node 1 sees the token issued on node 2', async () => (await listIssued()).find((t) => t.id === rtId), 60_000, 1000).then(async (t) => {
      const rv = await cli(['token', 'revoke', t.id, '--config', nodes[0]!.config]);
      expect(rv.code, rv.stderr).toBe(0);
    });
    // the revocation spreads to the other nodes
    await pollUntil('node 2 and 3 see the revocation', () => ([1, 2].every((i) => (status(i)?.cluster?.join?.tokens.revoked ?? 0) >= 1) ? true : undefined), 60_000, 1000);
    const revoked = await cli(['join', '--token-file', rt, '--dir', join(root, 'y'), '--name', 'y', '--socks', `127.0.0.1:${net.clients[0]!.socksPort}`, '--listen', '127.0.0.1:1', '--timeout', '300']);
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain('TB_ERR_JOIN_REFUSED');
    expect(revoked.stderr).toContain('revoked');
    // the 60-second token, once its expiry has passed (by now it normally has): `join` refuses
    // it before dialing (the node side of the expiry is covered in test/adapters/join-service.test.ts)
    const wait = shortTokenExpires + 2000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const expired = await cli(['join', '--token-file', shortToken, '--dir', join(root, 'z'), '--name', 'z', '--socks', `127.0.0.1:${net.clients[0]!.socksPort}`, '--listen', '127.0.0.1:1', '--timeout', '300']);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toContain('TB_ERR_JOIN_TOKEN');
    expect(expired.stderr).toContain('expired');
    // counted on whichever node tor's client reached
    await pollUntil('refusals counted', () => {
      const refused = [0, 1, 2].map((i) => status(i)?.cluster?.join?.refused ?? {});
      const sum = (k: string): number => refused.reduce((a, r) => a + (r[k] ?? 0), 0);
      return sum('used') >= 1 && sum('revoked') >= 1 ? true : undefined;
    }, 30_000, 1000);
    expect([0, 1, 2].reduce((a, i) => a + (status(i)?.cluster?.join?.accepted ?? 0), 0)).toBe(2);
  });

  it('the master key never appears in argv, logs or captured output, and only in 0600 files', async () => {
    const forms = secretForms(expanded);
    expect(forms.length).toBe(15);
    // argv of every process we started, and /proc/<pid>/cmdline of the running ones and their children (tor)
    for (const s of spawned) expect(findForm(Buffer.from(s.args.join('\0')), forms), s.args.join(' ')).toBeUndefined();
    const pids = new Set<number>();
    for (const n of nodes) if (n.proc?.pid !== undefined) for (const p of processTree(n.proc.pid)) pids.add(p);
    expect(pids.size).toBeGreaterThanOrEqual(6); // three nodes and their tors
    for (const pid of pids) {
      let cmd: Buffer;
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`);
      } catch {
        continue;
      }
      expect(findForm(cmd, forms), `/proc/${pid}/cmdline`).toBeUndefined();
    }
    for (const c of captured) expect(findForm(Buffer.from(c, 'latin1'), forms)).toBeUndefined();
    for (const n of nodes) expect(findForm(await readFile(n.log), forms), n.log).toBeUndefined();
    const { violations, holders } = await scanTree(root, forms);
    expect(violations).toEqual([]);
    // the key files themselves are found (so the scan looks at the right bytes)
    for (const n of nodes) expect(holders).toContain(join(n.dir, 'master', 'hs_ed25519_secret_key'));
  });

  it('the scan flags a planted copy in a 0644 file', async () => {
    const d = await mkdtemp('/tmp/tbj-plant-');
    try {
      const forms = secretForms(expanded);
      await writeFile(join(d, 'innocent.txt'), `x ${Buffer.from(expanded.subarray(32)).toString('base64')} y\n`, { mode: 0o644 });
      await chmod(join(d, 'innocent.txt'), 0o644);
      await writeFile(join(d, 'ok.key'), Buffer.from(expanded), { mode: 0o600 });
      const r = await scanTree(d, forms);
      expect(r.violations).toHaveLength(1);
      expect(r.violations[0]).toContain('innocent.txt');
      expect(r.holders).toHaveLength(2);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
