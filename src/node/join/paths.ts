/**
 * Where the join service keeps its files inside `node.data_dir` (docs/OPERATIONS.md):
 * the join listener's unix socket (the target of the master onion's join port,
 * `HiddenServicePort <cluster.join.onion_port> unix:<data_dir>/join.sock`) and the token
 * ledger (`join-ledger.json`, 0600).
 */
import { join } from 'node:path';

/** File name of the join listener's socket in `node.data_dir`. */
export const JOIN_SOCKET_NAME = 'join.sock';
/** File name of the persisted token ledger in `node.data_dir`. */
export const JOIN_LEDGER_NAME = 'join-ledger.json';

/** `<dataDir>/join.sock`. */
export function joinSocketPath(dataDir: string): string {
  return join(dataDir, JOIN_SOCKET_NAME);
}

/** `<dataDir>/join-ledger.json`. */
export function joinLedgerPath(dataDir: string): string {
  return join(dataDir, JOIN_LEDGER_NAME);
}
