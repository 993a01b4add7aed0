/**
 * `torbalance cluster secret --out FILE [--force]`: write a fresh cluster secret (32 bytes
 * from the OS CSPRNG, our `torbalance-cluster-secret-v1` file format, file 0600; a missing
 * directory is created 0700, an existing one keeps its mode and is refused if others can write
 * it; src/adapters/fs/node-secrets.ts) to copy to every node of a cluster out of band.
 * The secret is never printed.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { NODE_SECRET_BYTES, writeNodeSecret } from '../../adapters/fs/node-secrets.js';
import { systemRandomBytes } from '../../adapters/system/random.js';

/** Write a fresh cluster secret to `out` (refuses to overwrite unless `force`: TB_ERR_KEYSTORE_EXISTS). */
export async function writeClusterSecret(out: string, force = false): Promise<string> {
  const path = resolve(out);
  const secret = systemRandomBytes(NODE_SECRET_BYTES);
  try {
    await writeNodeSecret('cluster-secret', path, secret, { force });
  } finally {
    secret.fill(0);
  }
  return path;
}

/** Register `cluster`. */
export function register(program: Command): void {
  const cluster = program.command('cluster').description('cluster helpers');
  cluster
    .command('secret')
    .description('write a fresh cluster secret (0600) to copy to every node; set cluster.secret_file to it')
    .requiredOption('--out <file>', 'file to write (a missing directory is created 0700; a directory others can write is refused)')
    .option('--force', 'overwrite an existing file', false)
    .action(async (opts: { out: string; force: boolean }) => {
      const path = await writeClusterSecret(opts.out, opts.force);
      process.stderr.write(`torbalance: wrote a cluster secret to ${path}; copy it to every node (out of band)\n`);
    });
}
