/**
 * The disaster shared random value used when a consensus has no SRV
 * (rend-spec-v3 §2.2.4; tor `hs_common.c: compute_disaster_srv`):
 * `H("shared-random-disaster" ‖ INT_8(period_length) ‖ INT_8(period_num))`.
 */
import { u64be, utf8 } from '../bytes.js';
import { sha3_256 } from '../crypto/index.js';

export function disasterSrv(periodNum: number | bigint, periodLengthMinutes: number): Uint8Array {
  return sha3_256(utf8('shared-random-disaster'), u64be(periodLengthMinutes), u64be(periodNum));
}
