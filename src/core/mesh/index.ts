/**
 * The pure core of the torbalance mesh (cluster contract, src/core/mesh): protocol types and
 * validation, node identity, frame codec, message authentication, the connection handshake, membership and election.
 * No I/O, no clock, no randomness: time (`nowMs`) and `randomBytes` are parameters.
 */
export * from './protocol.js';
export * from './identity.js';
export * from './codec.js';
export * from './auth.js';
export * from './handshake.js';
export * from './membership.js';
export * from './election.js';
export * from './members.js';
