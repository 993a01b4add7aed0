/**
 * `torbalance keygen --dir DIR [--force]`: generate a new onion-service identity key and write
 * it in tor's HiddenServiceDir format (`hs_ed25519_secret_key`, `hs_ed25519_public_key`,
 * `hostname`; directory 0700, files 0600; see src/adapters/fs/key-store.ts). Prints the onion
 * address on stdout. Refuses to overwrite existing key files unless `--force`
 * (TB_ERR_KEYSTORE_EXISTS). The seed comes from the OS CSPRNG (adapters/system/random.ts) and is expanded as tor's
 * `ed25519_keypair_generate` does.
 */
import { systemRandomBytes } from '../../adapters/system/random.js';
import type { Command } from 'commander';
import { writeKeyDirectory } from '../../adapters/fs/key-store.js';
import { HsIdentityKeypair } from '../../core/hs/keys.js';

/** Options of {@link keygen}. */
export interface KeygenOptions {
  readonly dir: string;
  readonly force?: boolean;
}

/** Generate a key into `options.dir`; returns the new keypair. */
export async function keygen(options: KeygenOptions): Promise<HsIdentityKeypair> {
  const keypair = HsIdentityKeypair.generate(systemRandomBytes);
  await writeKeyDirectory(options.dir, keypair, { force: options.force === true });
  return keypair;
}

/** Register `keygen`. */
export function register(program: Command): void {
  program
    .command('keygen')
    .description('generate an onion-service identity key in tor HiddenServiceDir format and print its address')
    .requiredOption('--dir <dir>', 'key directory to create (mode 0700; key files 0600)')
    .option('--force', 'overwrite existing key files', false)
    .action(async (opts: { dir: string; force: boolean }) => {
      const keypair = await keygen({ dir: opts.dir, force: opts.force });
      process.stdout.write(`${keypair.address}\n`);
    });
}
