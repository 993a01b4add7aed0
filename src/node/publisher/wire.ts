/**
 * The intro-point wire form and digest are defined once, in src/core/intro/wire.ts; these
 * re-exports keep this module's existing imports working.
 */
export { introDigest, introPointToWire, type IntroPointWire } from '../../core/intro/wire.js';
