/**
 * `torbalance join --token-file FILE|- --dir DIR --name NAME [--socks 127.0.0.1:PORT]
 * [--tor-extra-file FILE] [--listen IP:PORT] [--priority N] [--timeout S]`: make DIR a new
 * node of an existing cluster using a join token (docs/OPERATIONS.md). This file parses the
 * options and prints; the join itself (token, handshake through tor, writing the bundle) is
 * src/node/join/client.ts, and the node side is the rest of src/node/join/.
 *
 * The master address goes to stdout, progress and the next step to stderr. With the tcp
 * transport and no `--listen` the files are written with `[cluster] enabled = false` and the
 * command fails with TB_ERR_JOIN_NEEDS_LISTEN telling what to set.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TorbalanceError } from '../../core/errors.js';
import { joinCluster, joinOptionError } from '../../node/join/client.js';

/** Read an optional integer option. */
function intOpt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,6}$/.test(v)) throw joinOptionError(`${what} must be a non-negative integer`);
  return Number(v);
}

/** Register `join`. */
export function register(program: Command): void {
  program
    .command('join')
    .description('join an existing cluster with a join token (from a file or stdin): receives the master key and cluster secret through the master onion and writes a node directory')
    .requiredOption('--token-file <file>', 'the join token: a file (from `torbalance token create --out`) or - for stdin')
    .requiredOption('--dir <dir>', 'node directory to create (mode 0700)')
    .requiredOption('--name <name>', 'this node\'s name')
    .option('--socks <127.0.0.1:port>', 'use this tor SocksPort (default: start a temporary tor)')
    .option('--tor-extra-file <file>', 'torrc lines for the temporary tor and for this node\'s [tor] extra_config (one per line)')
    .option('--listen <ip:port>', 'this node\'s mesh listener (required with the tcp transport)')
    .option('--priority <n>', 'election priority (0–1000; the healthy node with the highest priority publishes)')
    .option('--timeout <seconds>', 'give up reaching the join port after this long', '300')
    .action(async (opts: { tokenFile: string; dir: string; name: string; socks?: string; torExtraFile?: string; listen?: string; priority?: string; timeout: string }) => {
      const priority = intOpt(opts.priority, '--priority');
      const r = await joinCluster({
        tokenFile: opts.tokenFile,
        dir: opts.dir,
        name: opts.name,
        timeoutS: intOpt(opts.timeout, '--timeout') ?? 300,
        ...(opts.socks === undefined ? {} : { socks: opts.socks }),
        ...(opts.torExtraFile === undefined ? {} : { torExtraFile: opts.torExtraFile }),
        ...(opts.listen === undefined ? {} : { listen: opts.listen }),
        ...(priority === undefined ? {} : { priority }),
        progress: (m) => process.stderr.write(`torbalance: ${m}\n`),
      });
      process.stdout.write(`${r.masterAddress}\n`);
      process.stderr.write(`torbalance: joined as node ${r.nodeId}; wrote ${r.configPath}, the master key and the cluster files in ${resolve(opts.dir)}\n`);
      if (!r.clusterEnabled) {
        throw new TorbalanceError('TB_ERR_JOIN_NEEDS_LISTEN', 'config', `the cluster uses the tcp transport: set cluster.listen ("<IP>:<port>") in ${r.configPath} and enabled = true, then run: torbalance run --config ${r.configPath}`);
      }
      process.stderr.write(`torbalance: start the node with: torbalance run --config ${r.configPath}\n`);
    });
}
