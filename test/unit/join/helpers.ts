/** Fixtures for the join tests: a seeded random source, a master key and a bundle. */
import { createHash } from 'node:crypto';
import { ed25519ExpandSeed, ed25519PublicFromExpanded } from '../../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../../src/core/hs/address.js';
import type { JoinBundle } from '../../../src/core/join/index.js';
import type { RandomBytes } from '../../../src/core/random.js';

/** Deterministic RandomBytes (SHA-256 counter mode over a seed). */
export function seededRandom(seed: string): RandomBytes {
  let counter = 0;
  return (n: number) => {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      const k = Math.min(n - off, block.length);
      out.set(block.subarray(0, k), off);
      off += k;
    }
    return out;
  };
}

export const CLUSTER_SECRET = new Uint8Array(32).fill(7);
export const MASTER_SECRET = ed25519ExpandSeed(new Uint8Array(32).fill(42));
export const MASTER = encodeOnionAddress(ed25519PublicFromExpanded(MASTER_SECRET));
export const OTHER_MASTER = encodeOnionAddress(ed25519PublicFromExpanded(ed25519ExpandSeed(new Uint8Array(32).fill(43))));
export const JOINER = '0123456789abcdef0123456789abcdef';
export const NOW = 1_700_000_000;

export function sampleBundle(): JoinBundle {
  return {
    masterSecretKey: MASTER_SECRET.slice(),
    clusterSecret: CLUSTER_SECRET.slice(),
    peers: ['tcp:127.0.0.1:7700', 'tcp:[fd00::2]:7700'],
    settings: {
      transport: 'tcp',
      target: { address: '127.0.0.1', port: 8080, mode: 'http' },
      torExtraConfig: ['SafeLogging 1'],
      cluster: { heartbeat_ms: 1000, suspect_after_ms: 3000, dead_after_ms: 10000, lease_ms: 15000, max_skew_ms: 30000 },
      health: { kind: 'http', path: '/health', interval_ms: 5000, timeout_ms: 2000 },
    },
  };
}
