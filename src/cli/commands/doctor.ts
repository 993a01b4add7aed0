/**
 * `torbalance doctor [--config FILE] [--json] [--reachability]`: check a node's installation
 * (src/node/doctor.ts: tor version, config, master key, file modes and owners, clock sync,
 * the running node through its admin API, optionally the master onion's reachability) and
 * say what to fix. Prints a table (or JSON `{ok, checks}` with --json); exits 1 with
 * TB_ERR_DOCTOR_FAILED when any check fails (warnings do not fail).
 */
import type { Command } from 'commander';
import { chooseConfigPath } from '../../adapters/config/path.js';
import { TorbalanceError } from '../../core/errors.js';
import { formatDoctor, runDoctor, type DoctorCheck } from '../../node/doctor.js';
import { withConfigOption } from './config-option.js';

/**
 * Run the checks and print them; throws TB_ERR_DOCTOR_FAILED if any failed (a config that does
 * not load is one of the failed checks). No `config`: `TORBALANCE_CONFIG`, else the default.
 */
export async function doctorCommand(opts: { config?: string | undefined; json?: boolean; reachability?: boolean }, out: NodeJS.WritableStream = process.stdout): Promise<readonly DoctorCheck[]> {
  const checks = await runDoctor({ configPath: chooseConfigPath(opts.config, process.env).path, reachability: opts.reachability === true });
  const failed = checks.filter((c) => c.status === 'fail');
  out.write(opts.json === true ? `${JSON.stringify({ ok: failed.length === 0, checks }, null, 2)}\n` : formatDoctor(checks));
  if (failed.length > 0) {
    throw new TorbalanceError('TB_ERR_DOCTOR_FAILED', 'config', `${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((c) => c.id).join(', ')}`);
  }
  return checks;
}

/** Register `doctor`. */
export function register(program: Command): void {
  withConfigOption(
    program
      .command('doctor')
      .description('check tor, the config, file modes, the clock and the running node; says what to fix (exit 1 if a check fails)'),
    'config file',
  )
    .option('--json', 'print JSON instead of a table', false)
    .option('--reachability', 'also connect to the master onion through the node\'s own tor', false)
    .action(async (opts: { config?: string; json: boolean; reachability: boolean }) => {
      await doctorCommand(opts);
    });
}
