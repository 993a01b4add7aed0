/**
 * Randomness is injected: core never draws random bytes itself. Adapters pass node:crypto's
 * `randomBytes`; tests pass a seeded generator so outputs are reproducible.
 */
export type RandomBytes = (n: number) => Uint8Array;
