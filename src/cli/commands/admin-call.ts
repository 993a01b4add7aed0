/**
 * A privileged request to the running node's admin API from a command (`node …`, `token …`):
 * the config is found as every command finds it (`--config`, else `TORBALANCE_CONFIG`, else
 * the default: src/adapters/config/path.ts), the admin credentials come from it
 * (src/adapters/admin/client.ts `adminAuthFor`), and a refusal becomes an error with the node's
 * code and message.
 */
import { adminAuthFor, adminRequest } from '../../adapters/admin/client.js';
import { loadConfigFrom } from '../../adapters/config/path.js';
import { TorbalanceError } from '../../core/errors.js';

/**
 * The JSON object of a 200 reply; otherwise `code` (e.g. TB_ERR_MEMBERS_ADMIN) saying the node
 * refused to do `what`, with the node's own error code and message (or the HTTP status).
 */
export function fromNode(r: { status: number; json: unknown; text: string }, what: string, code: string): Record<string, unknown> {
  const j = (typeof r.json === 'object' && r.json !== null ? r.json : {}) as Record<string, unknown>;
  if (r.status !== 200) {
    const e = (j['error'] ?? {}) as { code?: unknown; message?: unknown };
    const theirs = typeof e.code === 'string' ? e.code : `HTTP ${r.status}`;
    const msg = typeof e.message === 'string' ? e.message : r.text.slice(0, 200);
    throw new TorbalanceError(code, 'config', `the node refused to ${what}: ${theirs}: ${msg}${r.status === 404 && theirs === 'HTTP 404' ? ' (is [cluster] enabled on this node?)' : ''}`);
  }
  return j;
}

/** Send `method path body` to the node whose config is `configPath` (see the module doc); {@link fromNode} reads the reply. */
export async function callNode(configPath: string | undefined, method: 'GET' | 'POST', path: string, body: unknown, what: string, code: string): Promise<Record<string, unknown>> {
  const { config } = await loadConfigFrom(configPath);
  return fromNode(await adminRequest(config.admin.listen, method, path, body, undefined, await adminAuthFor(config.admin)), what, code);
}
