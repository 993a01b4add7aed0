/**
 * The `torbalance` command line. Each command lives in src/cli/commands/ and registers itself
 * on the program; this file wires them together and maps errors to exit codes:
 * 0 ok, 1 a TorbalanceError (its code and message on stderr), 2 usage, 70 a bug.
 */
import { Command, CommanderError } from 'commander';
import { torbalanceVersion } from '../adapters/system/version.js';
import { TorbalanceError } from '../core/errors.js';
import { registerCommands } from './commands/index.js';

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
      return 1;
    }
    process.stderr.write(`torbalance: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}

process.exitCode = await main(process.argv.slice(2));
