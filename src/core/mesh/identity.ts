/**
 * Node identity for the mesh (cluster contract, "Node identity"): an ed25519 node key given
 * by its 32-byte seed, and a self-certifying `nodeId` = lowercase hex of the first 16 bytes
 * of SHA3-256("torbalance node id" ‖ publicKey). A message's `pub` must hash to its `from`.
 */
import { toHex, utf8 } from '../bytes.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded, ed25519SignSeed, sha3_256 } from '../crypto/index.js';
import { TorbalanceError } from '../errors.js';

/** A node's signing key. `seed` is secret; never log it. */
export interface NodeKey {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly nodeId: string;
}

const NODE_ID_PREFIX = utf8('torbalance node id');

/** nodeId of an ed25519 public key (32 lowercase hex characters). */
export function nodeIdOf(publicKey: Uint8Array): string {
  return toHex(sha3_256(NODE_ID_PREFIX, publicKey).subarray(0, 16));
}

/**
 * The NodeKey of a 32-byte seed (RFC 8032 key expansion). Throws
 * TorbalanceError(`TB_ERR_MESH_NODE_KEY`, 'config') if the seed is not 32 bytes.
 */
export function nodeKeyFromSeed(seed: Uint8Array): NodeKey {
  if (seed.length !== 32) throw new TorbalanceError('TB_ERR_MESH_NODE_KEY', 'config', 'node key seed must be 32 bytes');
  const publicKey = ed25519PublicFromExpanded(ed25519ExpandSeed(seed));
  return { seed: seed.slice(), publicKey, nodeId: nodeIdOf(publicKey) };
}

/** Sign `message` with the node key (ed25519, RFC 8032). */
export function signWithNodeKey(key: NodeKey, message: Uint8Array): Uint8Array {
  return ed25519SignSeed(key.seed, message, key.publicKey);
}
