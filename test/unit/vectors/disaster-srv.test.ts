/**
 * Known answers for the disaster shared random value (rend-spec-v3 §2.2.4; tor
 * `compute_disaster_srv`): `H("shared-random-disaster" ‖ INT_8(length) ‖ INT_8(period))`.
 */
import { describe, expect } from 'vitest';
import { concatBytes, toHex, u64be, utf8 } from '../../../src/core/bytes.js';
import { sha3_256 } from '../../../src/core/crypto/index.js';
import { disasterSrv } from '../../../src/core/hs/disaster-srv.js';
import { forEachVector } from '../../helpers/vectors.js';

describe('disaster-srv vectors', () => {
  forEachVector('disaster-srv', (v) => {
    const i = v.inputs;
    if (typeof i['time_period_num'] !== 'number' || typeof i['time_period_length_minutes'] !== 'number') {
      throw new Error(`unrecognised vector shape: ${v.name}`);
    }
    expect(Object.keys(v.expected)).toEqual(['disaster_srv']);
    const input = concatBytes(utf8('shared-random-disaster'), u64be(i['time_period_length_minutes']), u64be(i['time_period_num']));
    expect(toHex(input)).toBe(i['hash_input_hex']);
    expect(toHex(sha3_256(input))).toBe(v.expected['disaster_srv']);
    expect(toHex(disasterSrv(i['time_period_num'], i['time_period_length_minutes']))).toBe(v.expected['disaster_srv']);
  });
});
