/**
 * `torbalance config check [FILE] [--no-keys]`: validate a config file without starting
 * anything (no FILE: `TORBALANCE_CONFIG`, else /etc/torbalance/torbalance.toml, as `--config`
 * of the other commands). Prints `OK …` on stdout, or fails with every problem listed as
 * `key (line N): expected …` (TB_ERR_CONFIG_INVALID / TB_ERR_CONFIG_SYNTAX). Unless
 * `--no-keys`, also checks the master key directory (permissions, consistency; target ≠ master)
 * and prints warnings on stderr.
 */
import type { Command } from 'commander';
import { loadMasterKey } from '../../adapters/config/load.js';
import { CONFIG_ENV, DEFAULT_CONFIG_PATH, loadConfigFrom } from '../../adapters/config/path.js';
import { publishModeNotes } from '../../node/cluster.js';

/** Result of {@link checkConfig}. */
export interface ConfigCheckResult {
  readonly file: string;
  readonly masterAddress: string | undefined;
  readonly targetAddress: string;
  readonly warnings: readonly string[];
  /** What PoW and rotation-safe publishing do with this configuration. */
  readonly publishMode: string;
}

/** Validate `file` (and its key directory unless `keys` is false). Throws on problems. */
export async function checkConfig(file: string | undefined, keys = true): Promise<ConfigCheckResult> {
  const { config, path } = await loadConfigFrom(file);
  const m = keys ? await loadMasterKey(config) : undefined;
  return { file: config.source ?? path, masterAddress: m?.masterAddress, targetAddress: config.target.address, warnings: m?.warnings ?? [], publishMode: publishModeNotes(config).text };
}

/** Register `config check`. */
export function register(program: Command): void {
  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate a config file (and its master key directory); prints OK or the errors')
    .argument('[file]', `config file; default $${CONFIG_ENV}, else ${DEFAULT_CONFIG_PATH}`)
    .option('--no-keys', 'do not check the master key directory')
    .action(async (file: string | undefined, opts: { keys: boolean }) => {
      const r = await checkConfig(file, opts.keys);
      for (const w of r.warnings) process.stderr.write(`torbalance: warning: ${w}\n`);
      process.stdout.write(
        `OK ${r.file}${r.masterAddress === undefined ? '' : ` (master ${r.masterAddress})`} target ${r.targetAddress}\n${r.publishMode}\n`,
      );
    });
}
