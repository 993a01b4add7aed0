/**
 * Two nodes started in-process, each with its real tor offline (`DisableNetwork 1`; the private
 * network is not used), forming a mesh over loopback TCP: each sees the other alive, one is
 * elected publisher, both switch their tor to PublishHidServDescriptors 0, and a graceful stop
 * of one makes the other go back to publishing itself (leave, not timeout). (The `[cluster]`
 * config and `init --cluster` alone: test/cli/cluster-init.test.ts.)
 */
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/adapters/config/load.js';
import { allocatePorts } from '../../src/adapters/tor/testnet.js';
import { initNode } from '../../src/cli/commands/init.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { startNode, type NodeHandle } from '../../src/node/daemon.js';

const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const dirs: string[] = [];
const handles: NodeHandle[] = [];
afterAll(async () => {
  for (const h of handles) await h.stop(0).catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tbc-'));
  dirs.push(d);
  return d;
}

describe('two offline nodes form a mesh in-process', () => {
  it('elect one publisher, switch tor publishing off, and back on after the other leaves', async () => {
    const d = await tmp();
    const [pa, pb] = await allocatePorts(2);
    const a = await initNode({ dir: join(d, 'a'), target: TARGET, name: 'na', cluster: { listen: `127.0.0.1:${pa!}`, peers: [`tcp:127.0.0.1:${pb!}`] } });
    const b = await initNode({ dir: join(d, 'b'), target: TARGET, name: 'nb', cluster: { listen: `127.0.0.1:${pb!}`, secretFrom: a.cluster!.secretFile } });
    // same master key on both
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) await copyFile(join(a.keyDir, f), join(b.keyDir, f));
    const extra = '\n[tor]\nextra_config = ["DisableNetwork 1"]\n[drain]\ntimeout_ms = 0\n';
    await appendFile(a.configPath, extra);
    await appendFile(b.configPath, extra);
    // A long "alone grace" (suspect_after_ms = 60 s): a node whose last peer LEFT must not wait
    // for it (the wait below is 30 s), only one whose peers went silent.
    for (const c of [a.configPath, b.configPath]) {
      const text = await readFile(c, 'utf8');
      await writeFile(c, text.replace(/^\[cluster\]$/m, '[cluster]\nsuspect_after_ms = 60000\ndead_after_ms = 120000'), { mode: 0o600 });
    }
    const logger = pino({ level: process.env['TORBALANCE_TEST_LOG'] ?? 'silent' });
    const ha = await startNode({ config: await loadConfig(a.configPath), logger });
    handles.push(ha);
    const hb = await startNode({ config: await loadConfig(b.configPath), logger });
    handles.push(hb);
    const until = async <T>(f: () => Promise<T | undefined>, ms = 30_000): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await f();
        if (v !== undefined) return v;
        if (Date.now() > end) throw new Error('timeout');
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const both = await until(async () => {
      const [sa, sb] = [await ha.status(), await hb.status()];
      return sa.cluster?.torPublishes === false && sb.cluster?.torPublishes === false ? ([sa, sb] as const) : undefined;
    });
    const [sa, sb] = both;
    expect(sa.cluster!.peers.map((p) => p.state)).toEqual(['alive']);
    expect(sb.cluster!.peers[0]!.id).toBe(sa.cluster!.nodeId);
    expect(sa.cluster!.clustered && sb.cluster!.clustered).toBe(true);
    // offline tors have no intro points: nobody is healthy, nobody publishes anything
    expect(sa.cluster!.publishing).toEqual([]);
    await hb.stop(0);
    const after = await until(async () => {
      const s = await ha.status();
      return s.cluster?.torPublishes === true ? s : undefined;
    }, 30_000);
    expect(after.cluster!.peers[0]!.state).toBe('left');
    expect(after.cluster!.role).toBe('alone');
  }, 120_000);
});
