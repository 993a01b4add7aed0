/**
 * The `torbalance` command line. Each command lives in src/cli/commands/ and registers itself
 * on the program; this file wires them together and maps errors to exit codes:
 * 0 ok, 1 a TorbalanceError (its code and message on stderr), 2 usage, 70 a bug, 78
 * (EX_CONFIG, sysexits.h) a configuration error (`TB_ERR_CONFIG_*`: the file is missing,
 * unreadable, too open or invalid; docs/errors.md) — the same file fails the same way on
 * every retry, so deploy/torbalance.service stops restarting on 78
 * (`RestartPreventExitStatus=78`).
 */
import { Command, CommanderError } from 'commander';
import { torbalanceVersion } from '../adapters/system/version.js';
import { TorbalanceError } from '../core/errors.js';
import { registerCommands } from './commands/index.js';

/** Exit code of a configuration error (EX_CONFIG in sysexits.h). */
export const EXIT_CONFIG = 78;

/** The exit code for an error a command threw (see the module comment). */
export function exitCodeFor(e: TorbalanceError): number {
  return /^TB_ERR_CONFIG_[A-Z]/.test(e.code) ? EXIT_CONFIG : 1;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('torbalance')
    .description('Load balancer for Tor v3 onion services')
    .version(torbalanceVersion())
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof TorbalanceError) {
      process.stderr.write(`torbalance: error ${e.code}: ${e.message}\n`);
      return exitCodeFor(e);
    }
    process.stderr.write(`torbalance: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}

process.exitCode = await main(process.argv.slice(2));
