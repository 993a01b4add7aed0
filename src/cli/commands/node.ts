/**
 * `torbalance node list|add|remove|enforce [--config FILE]`: the node allowlist through a running
 * node's admin API (docs/admin-api.md, docs/OPERATIONS.md "Node membership"; the node side is
 * src/node/members.ts). Parses and prints only.
 *
 * - `node list`: the allowlist (node id, state, when, recorded by) and whether it is enforced.
 * - `node add ID`: put a node on the list (a node joined by copying the secret, not by `join`).
 * - `node remove ID`: remove a node for good; every node refuses it from then on.
 * - `node enforce`: from now on only listed nodes may connect (the node first lists itself and
 *   every peer it sees alive). Irreversible.
 *
 * Errors: TB_ERR_MEMBERS_ADMIN (the node refused: its code and message are shown), the admin
 * client's TB_ERR_ADMIN_* codes.
 */
import type { Command } from 'commander';
import { callNode } from './admin-call.js';
import { withConfigOption } from './config-option.js';

interface ListedNode {
  id: string;
  state: string;
  at: number;
  by: string;
}

/** The text `node list` prints. */
export function formatNodeTable(self: string, enforced: boolean, nodes: readonly ListedNode[]): string {
  const rows = [['NODE ID', 'STATE', 'SINCE (UTC)', 'BY']];
  for (const n of nodes) rows.push([`${n.id}${n.id === self ? ' (this node)' : ''}`, n.state, new Date(n.at * 1000).toISOString().replace(/\.000Z$/, 'Z'), n.by.slice(0, 16)]);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const head = enforced ? 'allowlist: enforced (only listed members may connect)\n' : 'allowlist: not enforced (every holder of the cluster secret may connect, except removed nodes)\n';
  return head + rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

function call(configPath: string | undefined, method: 'GET' | 'POST', path: string, body: unknown, what: string): Promise<Record<string, unknown>> {
  return callNode(configPath, method, path, body, what, 'TB_ERR_MEMBERS_ADMIN');
}

function listed(j: Record<string, unknown>): { self: string; enforced: boolean; nodes: ListedNode[] } {
  return { self: typeof j['self'] === 'string' ? j['self'] : '', enforced: j['enforced'] === true, nodes: Array.isArray(j['entries']) ? (j['entries'] as ListedNode[]) : [] };
}

/** Register `node`. */
export function register(program: Command): void {
  const node = program.command('node').description('the cluster\'s node allowlist (through a running node\'s admin API)');
  const running = "the running node's config file";
  withConfigOption(node.command('list').description('list the nodes on the allowlist and whether it is enforced'), running)
    .option('--json', 'print JSON', false)
    .action(async (opts: { config?: string; json: boolean }) => {
      const l = listed(await call(opts.config, 'GET', '/nodes', undefined, 'list nodes'));
      process.stdout.write(opts.json ? `${JSON.stringify(l, null, 2)}\n` : formatNodeTable(l.self, l.enforced, l.nodes));
    });
  for (const [name, what, desc] of [
    ['add', 'add the node', 'put a node on the allowlist (one that joined by copying the cluster secret rather than with `join`)'],
    ['remove', 'remove the node', 'remove a node for good: every node refuses it from then on (it needs a new node key to come back)'],
  ] as const) {
    withConfigOption(node.command(name).description(desc).argument('<id>', 'node id (32 hex characters, from `node list` or `status`)'), running).action(
      async (id: string, opts: { config?: string }) => {
        const j = await call(opts.config, 'POST', `/nodes/${name}`, { id }, what);
        const n = j['node'] as Partial<ListedNode> | undefined;
        process.stderr.write(`torbalance: node ${id} is ${typeof n?.state === 'string' ? n.state : 'unknown'}\n`);
      },
    );
  }
  withConfigOption(
    node.command('enforce').description('from now on only nodes on the allowlist may connect (lists this node and its live peers first; irreversible)'),
    running,
  ).action(async (opts: { config?: string }) => {
    const l = listed(await call(opts.config, 'POST', '/nodes/enforce', {}, 'enforce the allowlist'));
    process.stdout.write(formatNodeTable(l.self, l.enforced, l.nodes));
  });
}
