/**
 * `torbalance status [--config FILE] [--json]`: the cluster as a table, from the running node's
 * admin API (`GET /status`, docs/admin-api.md). The admin
 * address comes from the config (`admin.listen`; default `unix:/run/torbalance/admin.sock` when
 * that runtime directory is usable, else `unix:<data_dir>/admin.sock`: docs/config.md).
 *
 * Output: one row per node (name, short id, role, state, health, intro points, requests,
 * last seen; a peer's requests come from its mesh heartbeats, `-` when it sent none), then
 * the publisher, the descriptor revision, the HSDirs that accepted each descriptor (n/m: the
 * publisher's own record, or on a member the publisher's report from the mesh) and the time
 * to the next time period. `--json` prints the `/status` document as it came.
 *
 * Exit code (for scripts and monitoring): 0 when healthy, 1 when unhealthy — after printing,
 * with `TB_ERR_STATUS_UNHEALTHY` and the reasons on stderr ({@link statusProblems}). Unhealthy
 * means any of: the answering node is not `running`; it is not healthy (what `/healthz`
 * answers 503 for: target down, tor not bootstrapped, no intro points); in a cluster, a node of
 * the cluster view that has not `left` is not `alive` (`known`: never heard from, `suspect`,
 * `dead`) or reports itself unhealthy; or the cluster has live peers and no elected publisher.
 * A node that left the cluster on purpose does not count. Errors reaching the node also exit 1
 * (with their own codes).
 */
import type { Command } from 'commander';
import { adminAuthFor, adminRequest } from '../../adapters/admin/client.js';
import { loadConfigFrom } from '../../adapters/config/path.js';
import { TorbalanceError } from '../../core/errors.js';
import type { StatusDocument } from '../../node/admin/status.js';
import { withConfigOption } from './config-option.js';

function ago(ms: number | null): string {
  if (ms === null) return 'never';
  if (ms < 1500) return 'now';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** `1h 02m 03s` style. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const x = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m ${String(x).padStart(2, '0')}s`;
  if (m > 0) return `${m}m ${String(x).padStart(2, '0')}s`;
  return `${x}s`;
}

/** Strip control characters (names come from other nodes) and cap the length. */
function clean(s: string, max = 40): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

/** Check the shape of a `/status` answer enough to print it. */
export function asStatusDocument(json: unknown): StatusDocument {
  const d = json as Partial<StatusDocument> | null;
  if (d === null || typeof d !== 'object' || typeof d.version !== 'number' || typeof d.node !== 'object' || !('cluster' in d)) {
    throw new TorbalanceError('TB_ERR_ADMIN_RESPONSE', 'input', 'the admin API did not send a status document');
  }
  if (d.version !== 1) throw new TorbalanceError('TB_ERR_ADMIN_RESPONSE', 'input', `unsupported status document version ${String(d.version)} (this torbalance reads version 1)`);
  return d as StatusDocument;
}

/** The human-readable status (the table and the summary lines). */
export function formatStatus(s: StatusDocument): string {
  const out: string[] = [];
  out.push(`master ${s.node.masterAddress}  (answered by ${clean(s.node.name)}, ${s.node.state}, tor ${s.tor.state} ${s.tor.bootstrap}%)`);
  const nodes = s.cluster?.nodes ?? [
    { id: '', name: s.node.name, self: true, role: 'alone' as const, state: 'self', healthy: s.health.healthy, reasons: s.health.reasons, introPoints: s.health.introPoints, lastSeenAgoMs: 0, addr: null, priority: null },
  ];
  const rows = nodes.map((n) => [
    clean(n.name) + (n.self ? ' *' : ''),
    n.id === '' ? '-' : n.id.slice(0, 12),
    n.role,
    n.state === 'self' ? 'alive' : clean(n.state, 12),
    n.healthy ? 'healthy' : `UNHEALTHY${n.reasons.length > 0 ? ` (${clean(n.reasons.join('; '), 50)})` : ''}`,
    String(n.introPoints),
    n.traffic === undefined || n.traffic === null ? (n.self ? String(s.proxy.requests) : '-') : String(n.traffic.requests),
    n.self ? 'self' : ago(n.lastSeenAgoMs),
  ]);
  out.push('');
  out.push(table(['NODE', 'ID', 'ROLE', 'STATE', 'HEALTH', 'INTRO', 'REQUESTS', 'LAST SEEN'], rows));
  out.push('');
  const pub = s.cluster?.publisher;
  out.push(`publisher:          ${s.cluster === null ? 'tor itself (single node, no cluster)' : pub === null || pub === undefined ? 'none elected' : `${clean(pub.name ?? '?')} (${pub.id.slice(0, 12)})`}`);
  const descs = s.publish?.descriptors ?? [];
  const report = s.publish?.publisherReport;
  const hasReport = report !== undefined && report !== null && report.descriptors.length > 0;
  // A node that published earlier keeps its own (now stale) records: while it does not
  // publish, the current publisher's report wins.
  if (descs.length > 0 && (s.publish?.active === true || !hasReport)) {
    out.push(`descriptor revision: ${descs.map((d) => `${d.descriptor} ${d.revisionCounter} (period ${d.periodNum})`).join(', ')}`);
    out.push(`HSDirs accepted:    ${descs.map((d) => `${d.descriptor} ${d.accepted}/${d.total}`).join(', ')}`);
  } else if (hasReport) {
    const by = `reported by ${clean(report.name === '' ? report.id.slice(0, 12) : report.name)}, published ${ago(Math.max(0, s.generatedAt - report.atMs))}`;
    out.push(`descriptor revision: ${report.descriptors.map((d) => `${d.descriptor} ${d.revisionCounter === null ? '?' : clean(d.revisionCounter, 20)}`).join(', ')}  (${by})`);
    out.push(`HSDirs accepted:    ${report.descriptors.map((d) => `${d.descriptor} ${d.accepted === null || d.total === null ? '?' : `${d.accepted}/${d.total}`}`).join(', ')}`);
  } else {
    const where = pub !== null && pub !== undefined && s.cluster?.role !== 'publisher' ? ` (ask the publisher, ${clean(pub.name ?? pub.id.slice(0, 12))})` : '';
    out.push(`descriptor revision: not published by this node${where}`);
    out.push(`HSDirs accepted:    -`);
  }
  out.push(`next time period:   ${s.timePeriod === null ? 'unknown (tor has no consensus yet)' : `in ${formatDuration(s.timePeriod.secondsToNext)}`}`);
  const problems = statusProblems(s);
  out.push(`health:             ${problems.length === 0 ? 'healthy' : `UNHEALTHY: ${problems.join(', ')}`}`);
  return `${out.join('\n')}\n`;
}

/**
 * Why the cluster, as the answering node sees it, is unhealthy (empty: healthy); see the
 * module doc for the rules. Names are cleaned of control characters.
 */
export function statusProblems(s: StatusDocument): string[] {
  const out: string[] = [];
  const why = (reasons: readonly string[]): string => (reasons.length > 0 ? ` (${clean(reasons.join('; '), 80)})` : '');
  if (s.node.state !== 'running') out.push(`${clean(s.node.name)} is ${clean(s.node.state, 20)}, not running`);
  if (!s.health.healthy) out.push(`${clean(s.node.name)} unhealthy${why(s.health.reasons)}`);
  const c = s.cluster;
  if (c !== null) {
    for (const n of c.nodes) {
      if (n.self) {
        if (n.healthy || !s.health.healthy) continue; // the node's own health is reported above
        out.push(`${clean(n.name)} unhealthy${why(n.reasons)}`);
      } else if (n.state === 'left') {
        continue;
      } else if (n.state !== 'alive') {
        out.push(`${clean(n.name)} ${n.state === 'known' ? 'never heard from' : clean(n.state, 12)}`);
      } else if (!n.healthy) {
        out.push(`${clean(n.name)} unhealthy${why(n.reasons)}`);
      }
    }
    if (c.clustered && c.publisher === null) out.push('no publisher elected');
  }
  return out;
}

/** The error `status` ends with when {@link statusProblems} found any (exit code 1). */
export function unhealthyError(s: StatusDocument, problems: readonly string[]): TorbalanceError {
  // Who is at fault: this node's target or tor, else another node (or the election).
  const kind = s.node.state === 'running' && s.health.healthy ? 'peer' : s.health.target.healthy ? 'tor' : 'target';
  return new TorbalanceError('TB_ERR_STATUS_UNHEALTHY', kind, `unhealthy: ${problems.join(', ')}`);
}

/** Fetch `/status` from the node configured in `configFile` (undefined: `TORBALANCE_CONFIG`, else the default). */
export async function fetchStatus(configFile: string | undefined, timeoutMs?: number): Promise<StatusDocument> {
  const { config, path: configPath } = await loadConfigFrom(configFile);
  if (!config.admin.enabled) {
    throw new TorbalanceError('TB_ERR_ADMIN_DISABLED', 'config', `the admin API is disabled in ${config.source ?? configPath} ([admin] enabled = false)`);
  }
  const r = await adminRequest(config.admin.listen, 'GET', '/status', undefined, timeoutMs, await adminAuthFor(config.admin));
  if (r.status !== 200) {
    const err = (r.json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new TorbalanceError('TB_ERR_ADMIN_RESPONSE', 'input', `GET /status answered ${r.status}${err?.code === undefined ? '' : ` ${err.code}`}${err?.message === undefined ? '' : `: ${err.message}`}`);
  }
  return asStatusDocument(r.json);
}

/** Register `status`. */
export function register(program: Command): void {
  const status = program
    .command('status')
    .description("show the cluster (nodes, roles, health, publisher, HSDirs) from a running node's admin API")
    .addHelpText(
      'after',
      `
Exit status: 0 healthy; 1 unhealthy (after printing; TB_ERR_STATUS_UNHEALTHY and the reasons on
stderr) or the node could not be asked. Unhealthy: the answering node is not running or not
healthy (target down, tor not bootstrapped, no intro points); a cluster node that has not left
is not alive (never heard from, suspect, dead) or is unhealthy; or peers are live and no
publisher is elected.`,
    );
  withConfigOption(status, 'the node config file (for the admin API address)')
    .option('--json', 'print the /status JSON document')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const s = await fetchStatus(opts.config);
      process.stdout.write(opts.json === true ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
      const problems = statusProblems(s);
      if (problems.length > 0) throw unhealthyError(s, problems);
    });
}
