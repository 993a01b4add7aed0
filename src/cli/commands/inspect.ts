/**
 * `torbalance inspect …`: offline inspection of onion-service artefacts.
 *
 * - `inspect address <addr>`: validate a v3 onion address (rend-spec-v3 §6, tor's
 *   `hs_address_is_valid`) and print `{"valid":true,"version":3,"address":…,"publicKeyHex":…}`
 *   as JSON. An invalid address is a DecodeError, which main.ts prints as
 *   `torbalance: error TB_ERR_ONION_…: <message>` on stderr with exit code 1.
 *
 * Other modules add subcommands to the same group with {@link inspectCommand}:
 * ```ts
 * import { inspectCommand } from './inspect.js';
 * export function register(program: Command): void {
 *   inspectCommand(program).command('descriptor').description('…').action(…);
 * }
 * ```
 * `inspectCommand` returns the existing `inspect` group or creates it, so registration order
 * does not matter.
 */
import type { Command } from 'commander';
import { toHex } from '../../core/bytes.js';
import { ONION_ADDRESS_VERSION, decodeOnionAddress } from '../../core/hs/address.js';

/** The `inspect` command group of `program`, created on first use. */
export function inspectCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'inspect');
  if (existing !== undefined) return existing;
  return program.command('inspect').description('inspect onion-service artefacts offline (addresses, descriptors)');
}

/** The JSON `inspect address` prints for a valid address. */
export interface InspectAddressResult {
  readonly valid: true;
  readonly version: number;
  readonly address: string;
  readonly publicKeyHex: string;
}

/** Validate `input` (with or without ".onion", any case); throws DecodeError if invalid. */
export function inspectAddress(input: string): InspectAddressResult {
  const d = decodeOnionAddress(input);
  return { valid: true, version: ONION_ADDRESS_VERSION, address: d.address, publicKeyHex: toHex(d.publicKey) };
}

/** Register `inspect address` (and the `inspect` group). */
export function register(program: Command): void {
  inspectCommand(program)
    .command('address')
    .description('validate a v3 onion address and print its public key as JSON')
    .argument('<address>', 'v3 onion address, with or without ".onion"')
    .action((address: string) => {
      process.stdout.write(`${JSON.stringify(inspectAddress(address))}\n`);
    });
}
