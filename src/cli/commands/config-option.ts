/**
 * The `--config <file>` option every command that reads a node's config takes. It is optional:
 * without it the file is `TORBALANCE_CONFIG`, else /etc/torbalance/torbalance.toml
 * (src/adapters/config/path.ts, which the commands load the file through).
 */
import type { Command } from 'commander';
import { CONFIG_ENV, DEFAULT_CONFIG_PATH } from '../../adapters/config/path.js';

/** Add `--config <file>` to `cmd`; `what` describes the file (e.g. "the running node's config file"). */
export function withConfigOption(cmd: Command, what = 'config file (see docs/config.md)'): Command {
  return cmd.option('--config <file>', `${what}; default $${CONFIG_ENV}, else ${DEFAULT_CONFIG_PATH}`);
}
