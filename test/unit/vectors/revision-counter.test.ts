/**
 * Known answers for tor's order-preserving encryption (crypto_ope.c) and revision-counter
 * keying (hs_service.c: generate_ope_cipher_for_desc, set_descriptor_revision_counter).
 * Every vector's expected fields must all be checked (a shape we do not know fails).
 */
import { describe, expect } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/core/bytes.js';
import { sha3_256 } from '../../../src/core/crypto/index.js';
import { hasCode } from '../../../src/core/errors.js';
import {
  OPE_INPUT_MAX,
  OpeCipher,
  opeEncrypt,
  revisionCounterFor,
  revisionCounterKey,
  revisionCounterPlaintext,
  revisionCounterSrvStart,
} from '../../../src/core/hs/revision-counter.js';
import { LIVE_PERIOD_PARAMS, timePeriodNum } from '../../../src/core/hs/time-period.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

function expectOpeRangeError(f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(hasCode(err, 'TB_ERR_OPE_RANGE'), String(err)).toBe(true);
}

describe('revision-counter vectors', () => {
  forEachVector('revision-counter', (v) => {
    const e = expectedOf(v);
    if (v.name.startsWith('tor-ope-vector-')) {
      const key = fromHex(v.inputs['aes256_key']);
      const n = v.inputs['plaintext'] as number;
      const want = BigInt(e.get('ciphertext'));
      expect(opeEncrypt(key, n)).toBe(want);
      expect(new OpeCipher(key).encrypt(n)).toBe(want);
    } else if (v.name === 'tor-ope-fixed-key-consistency') {
      const key = fromHex(v.inputs['aes256_key']);
      expect(toHex(utf8(v.inputs['aes256_key_ascii']))).toBe(v.inputs['aes256_key']);
      const cipher = new OpeCipher(key);
      const table = e.get('ciphertexts') as Record<string, number>;
      const ns = (v.inputs['plaintexts'] as number[]).slice().sort((a, b) => a - b);
      expect(Object.keys(table).map(Number).sort((a, b) => a - b)).toEqual(ns);
      let prev = -1n;
      for (const n of ns) {
        const want = BigInt(table[String(n)]!);
        expect(opeEncrypt(key, n), `n=${n}`).toBe(want);
        expect(cipher.encrypt(n), `sampled n=${n}`).toBe(want);
        if (e.get('strictly_increasing') === true) expect(want > prev).toBe(true);
        prev = want;
      }
      expect(e.get('valid_plaintext_range')).toEqual([1, OPE_INPUT_MAX]);
      for (const bad of e.get('error_plaintexts') as number[]) {
        expectOpeRangeError(() => opeEncrypt(key, bad));
        expectOpeRangeError(() => cipher.encrypt(bad));
      }
      // tor returns CRYPTO_OPE_ERROR (UINT64_MAX); we throw a typed error instead.
      expect(e.get('error_result')).toMatch(/^18446744073709551615 /);
    } else if (v.name === 'gobalance-revision-counter-onionbalance-keying') {
      // onionbalance keying: no NUL, identity key bytes. Our OPE and plaintext rule must agree.
      const key = sha3_256(utf8('rev-counter-generation'), fromHex(v.inputs['identity_private_key_bytes']));
      expect(toHex(key)).toBe(e.get('aes256_key'));
      const now = v.inputs['now_unix'] as number;
      // 10:06 UTC: the service's current descriptor is for the period that began at 12:00
      // the day before, whose run started at 00:00 that day.
      const period = timePeriodNum(now, LIVE_PERIOD_PARAMS);
      expect(revisionCounterSrvStart(period, LIVE_PERIOD_PARAMS)).toBe(v.inputs['srv_start_unix']);
      const n = revisionCounterPlaintext({ periodNum: period, params: LIVE_PERIOD_PARAMS, nowSeconds: now });
      expect(n).toBe(e.get('seconds_since_srv_start_plus_one'));
      expect(opeEncrypt(key, n)).toBe(BigInt(e.get('revision_counter')));
    } else if (v.name === 'derived-tor-keying-from-blinded-key') {
      const blinded = fromHex(v.inputs['blinded_expanded_secret_key']);
      const key = revisionCounterKey(blinded);
      expect(toHex(key)).toBe(e.get('aes256_key'));
      const n = (v.inputs['seconds_since_srv_start'] as number) + 1;
      expect(n).toBe(e.get('ope_plaintext'));
      expect(opeEncrypt(key, n)).toBe(BigInt(e.get('revision_counter')));
      // The same through revisionCounterFor, at srv_start + seconds for some period.
      const periodNum = 20000;
      const nowSeconds = revisionCounterSrvStart(periodNum, LIVE_PERIOD_PARAMS) + (v.inputs['seconds_since_srv_start'] as number);
      expect(revisionCounterFor({ blindedExpandedSecretKey: blinded, periodNum, params: LIVE_PERIOD_PARAMS, nowSeconds })).toBe(
        BigInt(v.expected['revision_counter']),
      );
    } else if (v.name === 'derived-arti-keying-from-blinded-key') {
      // Arti keys differently (no NUL, 32-byte scalar); check that we do NOT match it.
      const blinded = fromHex(v.inputs['blinded_expanded_secret_key']);
      const artiKey = sha3_256(concatBytes(utf8('rev-counter-generation'), blinded.subarray(0, 32)));
      expect(toHex(artiKey)).toBe(e.get('aes256_key'));
      expect(toHex(revisionCounterKey(blinded))).not.toBe(v.expected['aes256_key']);
      const n = (v.inputs['seconds_since_srv_start'] as number) + 1;
      expect(n).toBe(e.get('ope_plaintext'));
      expect(opeEncrypt(artiKey, n)).toBe(BigInt(e.get('revision_counter')));
    } else {
      throw new Error(`unrecognised revision-counter vector ${v.name}`);
    }
    e.done();
  });
});
