/**
 * Join tokens, the token ledger and the join handshake (issue 6; contract
 * /work/notes/ops-contracts.md §B). Pure: randomness and time are parameters.
 */
export * from './token.js';
export * from './ledger.js';
export * from './handshake.js';
