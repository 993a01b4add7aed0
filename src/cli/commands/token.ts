/**
 * `torbalance token create|list|revoke [--config FILE]`: join tokens through a running node's
 * admin API (docs/admin-api.md; the node side is src/node/join/service.ts).
 *
 * - `token create [--ttl 1h] --out FILE|-`: asks the node for a token (`POST /tokens`); writes
 *   it to FILE with mode 0600 from creation (temp file + rename), or to stdout with `--out -`
 *   (for a pipe into `torbalance join --token-file -`). The token is never an argument of any
 *   command, and nothing else is printed on stdout. TTL: `60s` … `24h` (`s`, `m`, `h`, `d`
 *   suffixes or plain seconds), default 15 min (src/node/join/service.ts: a token is a bearer
 *   credential for the master key).
 * - `token list`: the ledger as a table (id, state, expiry, issuing node, joiner; no secrets).
 * - `token revoke ID`: marks the token revoked everywhere (gossiped over the mesh).
 *
 * Errors: TB_ERR_JOIN_TTL (bad --ttl), TB_ERR_JOIN_ADMIN (the node refused the request: its
 * error code and message are shown), the admin client's TB_ERR_ADMIN_* codes.
 */
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../adapters/fs/key-store.js';
import { utf8 } from '../../core/bytes.js';
import { TorbalanceError } from '../../core/errors.js';
import { MAX_TOKEN_TTL_S, MIN_TOKEN_TTL_S } from '../../node/join/service.js';
import { callNode } from './admin-call.js';
import { withConfigOption } from './config-option.js';

/** Parse a TTL like `90s`, `30m`, `1h`, `1d` or `3600` into seconds (MIN_TOKEN_TTL_S … MAX_TOKEN_TTL_S: 60 s … 24 h). */
export function parseTtl(s: string): number {
  const m = /^([0-9]{1,9})([smhd]?)$/.exec(s.trim());
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as const;
  const n = m === null ? NaN : Number(m[1]) * mult[m[2] as keyof typeof mult];
  if (!Number.isSafeInteger(n) || n < MIN_TOKEN_TTL_S || n > MAX_TOKEN_TTL_S) {
    throw new TorbalanceError('TB_ERR_JOIN_TTL', 'input', `--ttl must be a duration from 60s to 24h (e.g. 10m, 1h), not ${JSON.stringify(s.slice(0, 20))}`);
  }
  return n;
}

function call(configPath: string | undefined, method: 'GET' | 'POST', path: string, body: unknown, what: string): Promise<Record<string, unknown>> {
  return callNode(configPath, method, path, body, what, 'TB_ERR_JOIN_ADMIN');
}

/** `token create`: returns the token text (the caller writes it). No `configPath`: `TORBALANCE_CONFIG`, else the default. */
export async function createToken(configPath: string | undefined, ttlS: number): Promise<{ token: string; id: string; expiresAt: number }> {
  const j = await call(configPath, 'POST', '/tokens', { ttl_s: ttlS }, 'issue a token');
  const { token, id, expiresAt } = j;
  if (typeof token !== 'string' || typeof id !== 'string' || typeof expiresAt !== 'number') {
    throw new TorbalanceError('TB_ERR_JOIN_ADMIN', 'config', 'the node answered POST /tokens without {token, id, expiresAt}');
  }
  return { token, id, expiresAt };
}

/** Write the token to `out` (0600, atomic) or stdout for `-`. */
export async function writeToken(out: string, token: string): Promise<void> {
  if (out === '-') {
    process.stdout.write(`${token}\n`);
    return;
  }
  const path = resolve(out);
  const data = utf8(`${token}\n`);
  try {
    await writeFileAtomic(dirname(path), path, data);
  } finally {
    data.fill(0);
  }
}

interface ListedToken {
  id: string;
  state: string;
  effective?: string;
  expiresAt: number;
  by: string;
  joiner?: string;
}

/** The table `token list` prints. */
export function formatTokenTable(tokens: readonly ListedToken[]): string {
  const rows = [['ID', 'STATE', 'EXPIRES (UTC)', 'BY', 'JOINER']];
  for (const t of tokens) {
    rows.push([t.id, t.effective ?? t.state, new Date(t.expiresAt * 1000).toISOString().replace(/\.000Z$/, 'Z'), t.by.slice(0, 16), (t.joiner ?? '-').slice(0, 16)]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** Register `token`. */
export function register(program: Command): void {
  const token = program.command('token').description('join tokens (through a running node\'s admin API)');
  const running = "the running node's config file";
  withConfigOption(
    token
      .command('create')
      .description('issue a join token (admits one node; expires; revocable) and write it to a file (0600) or stdout (--out -)'),
    running,
  )
    .requiredOption('--out <file>', 'where to write the token: a file (created 0600) or - for stdout')
    .option('--ttl <duration>', 'lifetime, 60s to 24h (e.g. 10m, 1h); the token is as sensitive as the master key until it is used or expires', '15m')
    .action(async (opts: { config?: string; out: string; ttl: string }) => {
      const ttl = parseTtl(opts.ttl);
      const r = await createToken(opts.config, ttl);
      await writeToken(opts.out, r.token);
      process.stderr.write(
        `torbalance: token ${r.id} valid until ${new Date(r.expiresAt * 1000).toISOString()}${opts.out === '-' ? '' : ` written to ${resolve(opts.out)}`}\n` +
          `torbalance: on the new node run: torbalance join --token-file <file> --dir <dir> --name <name> [--listen <ip:port>]\n`,
      );
    });
  withConfigOption(token.command('list').description('list the cluster\'s join tokens (no secrets)'), running)
    .option('--json', 'print JSON', false)
    .action(async (opts: { config?: string; json: boolean }) => {
      const j = await call(opts.config, 'GET', '/tokens', undefined, 'list tokens');
      const tokens = Array.isArray(j['tokens']) ? (j['tokens'] as ListedToken[]) : [];
      process.stdout.write(opts.json ? `${JSON.stringify(tokens, null, 2)}\n` : formatTokenTable(tokens));
    });
  withConfigOption(
    token
      .command('revoke')
      .description('revoke a join token by its id (spreads to every node)')
      .argument('<id>', 'token id (32 hex characters, from `token list`)'),
    running,
  ).action(async (id: string, opts: { config?: string }) => {
      await call(opts.config, 'POST', '/tokens/revoke', { id }, 'revoke the token');
      process.stderr.write(`torbalance: token ${id} revoked\n`);
    });
}
