/**
 * MeshNodes in two network namespaces joined by a veth pair, talking only over userspace
 * WireGuard (wireguard-go) tunnel addresses (/work/shared/torlab.md §8). Interface names
 * differ per namespace: wireguard-go's UAPI sockets (/var/run/wireguard/<if>.sock) are shared
 * across network namespaces. Each MeshNode runs in a child process under `ip netns exec`.
 *
 * Skips (with a printed reason) only when network namespaces cannot be created here; in CI a
 * missing wireguard-go/wg fails instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/core/bytes.js';
import { generateWgKeyFile, wgSetPeer, wgSetPrivateKey, wgShow } from '../../src/adapters/mesh/wireguard.js';
import { MeshChild } from '../helpers/mesh-child-process.js';
import { CLUSTER_SECRET, seeded } from '../helpers/mesh-fixtures.js';

const tag = String(process.pid % 100000);
const NS = [`tbwgA${tag}`, `tbwgB${tag}`];
const IF = [`tbwa${tag}`, `tbwb${tag}`];
const VETH = [`tbva${tag}`, `tbvb${tag}`];
const UNDER = ['10.98.77.1', '10.98.77.2'];
const WGIP = ['10.199.77.1', '10.199.77.2'];
const WGPORT = [51820, 51821];

function sh(cmd: string, args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: `${r.stderr}${r.error?.message ?? ''}`.trim() };
}
function must(cmd: string, ...args: string[]): void {
  const r = sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.err}`);
}
function has(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

let skipReason: string | undefined;
{
  const probe = `tbprobe${tag}`;
  const r = sh('ip', ['netns', 'add', probe]);
  if (!r.ok) skipReason = `network namespaces not permitted here (ip netns add: ${r.err || 'failed'})`;
  else sh('ip', ['netns', 'del', probe]);
  if (skipReason === undefined && (!has('wireguard-go') || !has('wg'))) {
    if (process.env['CI'] !== undefined) throw new Error('wireguard-go and wg (Debian: wireguard-go, wireguard-tools) are required in CI');
    skipReason = 'wireguard-go or wg is not installed (apt-get install --no-install-recommends wireguard-go wireguard-tools)';
  }
  if (skipReason !== undefined) console.log(`[mesh-wireguard] SKIPPED: ${skipReason}`);
}

const wgProcs: ChildProcess[] = [];
const children: MeshChild[] = [];
let tmp = '';

async function cleanup(): Promise<void> {
  await Promise.all(children.splice(0).map((c) => c.stop().catch(() => undefined)));
  for (const p of wgProcs.splice(0)) {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => { p.kill('SIGKILL'); r(undefined); }, 3000);
        p.once('exit', () => { clearTimeout(t); r(undefined); });
      });
    }
  }
  for (const ns of NS) sh('ip', ['netns', 'del', ns]);
  if (tmp !== '') await rm(tmp, { recursive: true, force: true });
}

describe.skipIf(skipReason !== undefined && process.env['CI'] === undefined)('mesh over WireGuard between network namespaces', () => {
  beforeAll(async () => {
    await cleanup(); // leftovers of an interrupted run with the same pid suffix
    tmp = await mkdtemp(join(tmpdir(), 'tb-wg-'));
    for (const ns of NS) {
      must('ip', 'netns', 'add', ns);
      must('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    must('ip', 'link', 'add', VETH[0]!, 'type', 'veth', 'peer', 'name', VETH[1]!);
    const keys: { publicKey: string }[] = [];
    for (let i = 0; i < 2; i++) {
      must('ip', 'link', 'set', VETH[i]!, 'netns', NS[i]!);
      must('ip', '-n', NS[i]!, 'addr', 'add', `${UNDER[i]!}/24`, 'dev', VETH[i]!);
      must('ip', '-n', NS[i]!, 'link', 'set', VETH[i]!, 'up');
      const p = spawn('ip', ['netns', 'exec', NS[i]!, 'wireguard-go', IF[i]!], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' }, stdio: 'ignore' });
      wgProcs.push(p);
      keys.push(await generateWgKeyFile(join(tmp, `wg${i}`, 'private.key')));
    }
    // wireguard-go creates the interface asynchronously: wait for it.
    for (let i = 0; i < 2; i++) {
      const deadline = Date.now() + 10_000;
      while (!sh('ip', ['-n', NS[i]!, 'link', 'show', IF[i]!]).ok) {
        if (Date.now() > deadline) throw new Error(`wireguard-go did not create ${IF[i]!}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (let i = 0; i < 2; i++) {
      const j = 1 - i;
      await wgSetPrivateKey(IF[i]!, join(tmp, `wg${i}`, 'private.key'), WGPORT[i], { netns: NS[i]! });
      await wgSetPeer(IF[i]!, { publicKey: keys[j]!.publicKey, endpoint: `${UNDER[j]!}:${WGPORT[j]!}`, allowedIps: [`${WGIP[j]!}/32`], persistentKeepalive: 1 }, { netns: NS[i]! });
      must('ip', '-n', NS[i]!, 'addr', 'add', `${WGIP[i]!}/24`, 'dev', IF[i]!);
      must('ip', '-n', NS[i]!, 'link', 'set', IF[i]!, 'up');
    }
    const shown = await wgShow(IF[0]!, { netns: NS[0]! });
    expect(shown.publicKey).toBe(keys[0]!.publicKey);
  }, 60_000);

  afterAll(async () => {
    await cleanup();
  }, 60_000);

  it('forms the mesh over the tunnel addresses and propagates a leave', async () => {
    const cfg = (i: number): ConstructorParameters<typeof MeshChild>[0] => ({
      label: `wg${i}`,
      seedHex: toHex(seeded(`wg node ${i}`)),
      secretHex: toHex(CLUSTER_SECRET),
      listen: { kind: 'tcp', host: WGIP[i]!, port: 7700 },
      advertise: `tcp:${WGIP[i]!}:7700`,
      bootstrap: i === 0 ? [] : [`tcp:${WGIP[0]!}:7700`],
      heartbeatMs: 200,
      suspectAfterMs: 1000,
      deadAfterMs: 5000,
    });
    const t0 = Date.now();
    const a = new MeshChild(cfg(0), NS[0]);
    const b = new MeshChild(cfg(1), NS[1]);
    children.push(a, b);
    await a.until('a listening', () => a.id !== '', 20_000);
    await b.until('b listening', () => b.id !== '', 20_000);
    await a.until('a sees b alive', () => a.stateOf(b.id) === 'alive', 30_000);
    await b.until('b sees a alive', () => b.stateOf(a.id) === 'alive', 30_000);
    console.log(`[mesh-wireguard] 2-node mesh over WireGuard formed ${Date.now() - t0} ms after spawning the children`);
    expect(a.view!.peers.find((p) => p.id === b.id)!.addr).toBe(`tcp:${WGIP[1]!}:7700`);
    // Handshake happened: traffic really went through the tunnel.
    const st = await wgShow(IF[0]!, { netns: NS[0]! });
    expect(st.peers[0]!.latestHandshake).toBeGreaterThan(0);
    expect(st.peers[0]!.rxBytes).toBeGreaterThan(0);
    await b.stop();
    await a.until('a sees b left', () => a.stateOf(b.id) === 'left', 10_000);
    const seen = a.views.map((v) => v.peers.find((p) => p.id === b.id)?.state).filter((s) => s !== undefined);
    expect(seen).not.toContain('suspect');
  });
});
