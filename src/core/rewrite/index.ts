/**
 * Target → master address rewriting for the node's reverse proxy (pure core).
 * See {@link ./rules.ts} (streaming needle replacement), {@link ./headers.ts} (per-header
 * grammars) and {@link ./content-type.ts} (which bodies are text).
 */
export * from './rules.js';
export * from './headers.js';
export * from './content-type.js';
