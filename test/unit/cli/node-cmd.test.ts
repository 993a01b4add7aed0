/**
 * `torbalance node …` (src/cli/commands/node.ts) and the admin routes behind it
 * (src/node/members.ts): request validation, the printed table, and the file the node keeps.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fromNode } from '../../../src/cli/commands/admin-call.js';
import { formatNodeTable } from '../../../src/cli/commands/node.js';
import type { MembersLedger } from '../../../src/core/mesh/index.js';
import { MembersService, type MembersGossip } from '../../../src/node/members.js';
import { captureLogger } from '../../helpers/mesh-fixtures.js';

const SELF = 'a'.repeat(32);
const PEER = 'b'.repeat(32);
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function fakeMesh(): MembersGossip & { set: MembersLedger[] } {
  const set: MembersLedger[] = [];
  return { set, setMembers: (l) => set.push(l), onMembers: () => () => undefined, alivePeers: () => [PEER] };
}

async function service(): Promise<{ svc: MembersService; mesh: ReturnType<typeof fakeMesh>; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tbn-'));
  dirs.push(dir);
  const svc = new MembersService({ dataDir: dir, nodeId: SELF, logger: captureLogger().logger, now: () => 1_765_000_000_000 });
  const mesh = fakeMesh();
  await svc.start(mesh);
  return { svc, mesh, dir };
}

describe('torbalance node', () => {
  it('routes: add/remove need a node id; enforce lists self and live peers; every change is on disk before the mesh gets it', async () => {
    const { svc, mesh } = await service();
    const route = (path: string) => svc.adminRoutes().find((r) => r.path === path)!;
    const req = (body: unknown) => ({ body }) as never;
    expect(await route('/nodes/remove').handler(req({ id: 'nope' }))).toMatchObject({ status: 400 });
    expect(await route('/nodes/remove').handler(req({ id: 'c'.repeat(32) }))).toMatchObject({ status: 200, json: { node: { id: 'c'.repeat(32), state: 'removed', by: SELF } } });
    expect(await route('/nodes/add').handler(req({ id: 'c'.repeat(32) }))).toMatchObject({ status: 200, json: { node: { state: 'removed' } } });
    const r = await route('/nodes/enforce').handler(req({}));
    expect(r).toMatchObject({ status: 200, json: { self: SELF, enforced: true } });
    const disk = JSON.parse(await readFile(svc.path, 'utf8')) as { version: number; enforced: boolean; entries: { id: string; state: string }[] };
    expect(disk).toMatchObject({ version: 1, enforced: true });
    expect(disk.entries.map((e) => [e.id, e.state])).toEqual([[SELF, 'member'], [PEER, 'member'], ['c'.repeat(32), 'removed']]);
    expect(mesh.set.at(-1)).toEqual(svc.ledger());
    expect(route('/nodes').privileged).toBe(true);
  });

  it('a malformed allowlist file stops the node rather than forget removals', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tbn-'));
    dirs.push(dir);
    await writeFile(join(dir, 'members.json'), '{"version":1,"enforced":true,"entries":[{"id":"x"}]}', { mode: 0o600 });
    const svc = new MembersService({ dataDir: dir, nodeId: SELF, logger: captureLogger().logger });
    await expect(svc.start(fakeMesh())).rejects.toThrow(/TB_ERR_MEMBERS|not a torbalance node allowlist/);
  });

  it('prints the list and the mode', () => {
    const t = formatNodeTable(SELF, false, [{ id: SELF, state: 'member', at: 1_765_000_000, by: SELF }, { id: PEER, state: 'removed', at: 1_765_000_060, by: SELF }]);
    expect(t).toContain('allowlist: not enforced');
    expect(t).toMatch(new RegExp(`${SELF} \\(this node\\)\\s+member\\s+2025-12-06T05:46:40Z`));
    expect(t).toMatch(new RegExp(`${PEER}\\s+removed`));
  });
});

describe('the node commands and the admin API', () => {
  it('a refusal carries the command\'s code and the node\'s own code and message; a 200 is its JSON object', () => {
    expect(fromNode({ status: 200, json: { self: SELF }, text: '' }, 'list nodes', 'TB_ERR_MEMBERS_ADMIN')).toEqual({ self: SELF });
    expect(() => fromNode({ status: 400, json: { error: { code: 'TB_ERR_MEMBERS_ID', message: 'bad id' } }, text: '' }, 'add the node', 'TB_ERR_MEMBERS_ADMIN')).toThrow(
      expect.objectContaining({ code: 'TB_ERR_MEMBERS_ADMIN', message: expect.stringContaining('the node refused to add the node: TB_ERR_MEMBERS_ID: bad id') as unknown }),
    );
    // a 404 without an error object: the route is missing, i.e. no cluster on that node
    expect(() => fromNode({ status: 404, json: undefined, text: 'not found' }, 'list nodes', 'TB_ERR_JOIN_ADMIN')).toThrow(
      expect.objectContaining({ code: 'TB_ERR_JOIN_ADMIN', message: expect.stringContaining('HTTP 404: not found (is [cluster] enabled on this node?)') as unknown }),
    );
  });

  it('spawned: --config is optional like every command\'s; without it TORBALANCE_CONFIG names the file', async () => {
    const run = (args: string[], env: NodeJS.ProcessEnv) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        const p = spawn(process.execPath, ['--import', 'tsx', resolve('src/cli/main.ts'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        p.on('exit', (code) => {
          res({ code, stdout, stderr });
        });
      });
    const help = await run(['node', 'list', '--help'], process.env);
    expect(help.stdout).toMatch(/--config <file>\s+the running node's config file; default \$TORBALANCE_CONFIG/);
    const missing = join(tmpdir(), `tbn-missing-${process.pid}.toml`);
    for (const args of [['node', 'list'], ['node', 'enforce'], ['node', 'remove', 'c'.repeat(32)]]) {
      const r = await run(args, { ...process.env, TORBALANCE_CONFIG: missing });
      expect(r.code).toBe(78); // EX_CONFIG, as for every command
      expect(r.stderr).toContain('TB_ERR_CONFIG_NOT_FOUND');
      expect(r.stderr).toContain(missing);
      expect(r.stderr).not.toMatch(/required option/);
    }
  });
});
