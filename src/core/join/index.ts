/**
 * Join tokens, the token ledger and the join handshake (docs/OPERATIONS.md). Pure: randomness and time are parameters.
 */
export * from './token.js';
export * from './ledger.js';
export * from './handshake.js';
