/**
 * All CLI commands. Each module exports `register(program)`; add one import and one call here.
 */
import type { Command } from 'commander';

export function registerCommands(_program: Command): void {
  // Commands are added here as they land.
}
