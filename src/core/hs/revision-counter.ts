/**
 * Onion-service descriptor revision counters, computed exactly as C tor does.
 *
 * Order-preserving encryption (tor `src/lib/crypt_ops/crypto_ope.c`: `crypto_ope_new`,
 * `crypto_ope_encrypt`): with a 32-byte AES-256 key K, take the AES-256-CTR keystream with
 * an all-zero 16-byte IV (128-bit big-endian block counter starting at 0), read it as
 * little-endian 16-bit words w₀, w₁, …, and let `OPE_K(n) = Σ_{i<n} (wᵢ + 1)` for
 * `1 ≤ n ≤ OPE_INPUT_MAX = 2^18`. Tor precomputes the partial sums at every 1024th word
 * (256 samples per key) and adds the remaining words from a cipher started at the sample's
 * block (`ope_get_cipher`); the result is the same plain sum, which is what
 * {@link opeEncrypt} computes. {@link OpeCipher} keeps tor's samples for repeated use.
 *
 * Keying and plaintext (tor `hs_service.c: generate_ope_cipher_for_desc`,
 * `set_descriptor_revision_counter`):
 * - `K = SHA3-256("rev-counter-generation\0" ‖ blinded 64-byte expanded secret key)`
 *   (tor hashes `sizeof(prefix)`, so the NUL is included).
 * - `n = now − srv_start + 1`, where `srv_start` is the start of the SR protocol run
 *   "relevant to the descriptor": the previous run for `desc_current` and the current run
 *   for `desc_next`, both taken from the live consensus. Since the service's current
 *   descriptor is for the period that began in the previous run and its next descriptor for
 *   the period that begins in the current run, this is the same as: **the start of the SR run
 *   during which time period T begins** (`srRunStart(timePeriodStart(T))`; 00:00 UTC of the day
 *   on which TP T starts at 12:00 on the live network). That form also holds on test networks,
 *   where a TP and an SR run are both 24 voting intervals long. It assumes the voting interval
 *   divides a day, as it does on every real network.
 *
 * Time comes in as a parameter; nothing here reads a clock.
 */
import { concatBytes, utf8 } from '../bytes.js';
import { aes256ctr, sha3_256 } from '../crypto/index.js';
import { TorbalanceError } from '../errors.js';
import { srRunStart, timePeriodStart, type TimePeriodParams } from './time-period.js';

/** Largest OPE plaintext (tor `OPE_INPUT_MAX`, `1 << 18`). */
export const OPE_INPUT_MAX = 1 << 18;
/** Words between tor's precomputed samples (`SAMPLE_INTERVAL`). */
const SAMPLE_INTERVAL = 1024;
const N_SAMPLES = OPE_INPUT_MAX / SAMPLE_INTERVAL;

/** `"rev-counter-generation"` plus its terminating NUL, as tor hashes it. */
const REV_COUNTER_PREFIX = concatBytes(utf8('rev-counter-generation'), new Uint8Array([0]));

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new TorbalanceError('TB_ERR_OPE_KEY', 'internal', 'OPE key must be 32 bytes');
  }
}

function checkPlaintext(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > OPE_INPUT_MAX) {
    throw new TorbalanceError('TB_ERR_OPE_RANGE', 'internal', `OPE plaintext ${String(n)} is outside 1..${OPE_INPUT_MAX}`);
  }
}

/** AES-256-CTR keystream of `words` 16-bit words starting at word `startWord` (a multiple of 8). */
function keystreamWords(key: Uint8Array, startWord: number, words: number): Uint16Array {
  const iv = new Uint8Array(16);
  // Byte offset startWord*2 is block startWord/8; tor writes the block number big-endian
  // into the last 4 bytes of the IV (ope_get_cipher).
  new DataView(iv.buffer).setUint32(12, startWord / 8, false);
  const ks = aes256ctr(key, iv, new Uint8Array(words * 2));
  const out = new Uint16Array(words);
  for (let i = 0; i < words; i++) out[i] = (ks[2 * i] as number) | ((ks[2 * i + 1] as number) << 8);
  return out;
}

/** Σ (w + 1) over a word array. The total stays below 2^35, so a double is exact. */
function sumWords(words: Uint16Array): number {
  let total = 0;
  for (const w of words) total += w + 1;
  return total;
}

/**
 * Tor's OPE: `Σ_{i<n} (LE16(keystream word i) + 1)` for `1 ≤ n ≤ 2^18`. Stateless: it
 * generates `2n` bytes of keystream (at most 512 KiB, about a millisecond). For many
 * counters under one key, use {@link OpeCipher}.
 *
 * @throws TorbalanceError `TB_ERR_OPE_KEY` if the key is not 32 bytes,
 *   `TB_ERR_OPE_RANGE` if `n` is not an integer in 1..OPE_INPUT_MAX.
 */
export function opeEncrypt(key32: Uint8Array, n: number): bigint {
  checkKey(key32);
  checkPlaintext(n);
  return BigInt(sumWords(keystreamWords(key32, 0, n)));
}

/**
 * Tor's `crypto_ope_t`: the 256 partial sums at multiples of 1024 words are computed once
 * (512 KiB of keystream); each {@link OpeCipher.encrypt} then needs at most 2 KiB more.
 * Holds key material: drop references when the descriptor's key is retired.
 */
export class OpeCipher {
  readonly #key: Uint8Array;
  readonly #samples: Float64Array;

  /** @throws TorbalanceError `TB_ERR_OPE_KEY` if the key is not 32 bytes. */
  constructor(key32: Uint8Array) {
    checkKey(key32);
    this.#key = key32.slice();
    this.#samples = new Float64Array(N_SAMPLES);
    const all = keystreamWords(this.#key, 0, OPE_INPUT_MAX);
    let v = 0;
    for (let s = 0; s < N_SAMPLES; s++) {
      v += sumWords(all.subarray(s * SAMPLE_INTERVAL, (s + 1) * SAMPLE_INTERVAL));
      this.#samples[s] = v;
    }
  }

  /** Same result as {@link opeEncrypt} with this key. @throws TorbalanceError `TB_ERR_OPE_RANGE`. */
  encrypt(n: number): bigint {
    checkPlaintext(n);
    const sampleIdx = Math.floor(n / SAMPLE_INTERVAL);
    const start = sampleIdx * SAMPLE_INTERVAL;
    let v = sampleIdx === 0 ? 0 : (this.#samples[sampleIdx - 1] as number);
    const remaining = n - start;
    if (remaining > 0) v += sumWords(keystreamWords(this.#key, start, remaining));
    return BigInt(v);
  }
}

/** `K = SHA3-256("rev-counter-generation\0" ‖ blinded expanded secret key)` (64 bytes in). */
export function revisionCounterKey(blindedExpandedSecretKey: Uint8Array): Uint8Array {
  if (!(blindedExpandedSecretKey instanceof Uint8Array) || blindedExpandedSecretKey.length !== 64) {
    throw new TorbalanceError('TB_ERR_OPE_KEY', 'internal', 'blinded expanded secret key must be 64 bytes');
  }
  return sha3_256(REV_COUNTER_PREFIX, blindedExpandedSecretKey);
}

/**
 * Start (unix seconds) of the SR protocol run whose elapsed time is the OPE plaintext of the
 * descriptor for time period `periodNum`: the run during which that period begins.
 */
export function revisionCounterSrvStart(periodNum: number, params: TimePeriodParams): number {
  return srRunStart(timePeriodStart(periodNum, params), params);
}

/** Arguments of {@link revisionCounterFor} and {@link revisionCounterPlaintext}. */
export interface RevisionCounterInput {
  /** The descriptor's time period (the one its blinded key is for). */
  readonly periodNum: number;
  /** The network's time-period schedule (live or test network). */
  readonly params: TimePeriodParams;
  /** The publisher's clock, unix seconds (tor uses `approx_time()`). */
  readonly nowSeconds: number;
}

/**
 * The OPE plaintext `now − srv_start + 1` for the descriptor of `periodNum`.
 *
 * @throws TorbalanceError `TB_ERR_REVCOUNTER_TIME` if `now` is before `srv_start` or so late
 *   that the plaintext exceeds OPE_INPUT_MAX (tor would log a BUG and clamp); both mean the
 *   caller picked a period that does not match its clock.
 */
export function revisionCounterPlaintext(input: RevisionCounterInput): number {
  const { periodNum, params, nowSeconds } = input;
  if (!Number.isSafeInteger(periodNum) || periodNum < 0 || !Number.isSafeInteger(nowSeconds)) {
    throw new TorbalanceError('TB_ERR_REVCOUNTER_TIME', 'internal', 'period number and time must be integers');
  }
  const srvStart = revisionCounterSrvStart(periodNum, params);
  const n = nowSeconds - srvStart + 1;
  if (n < 1 || n > OPE_INPUT_MAX) {
    throw new TorbalanceError(
      'TB_ERR_REVCOUNTER_TIME',
      'internal',
      `time ${nowSeconds} is outside the revision-counter window of period ${periodNum} (run start ${srvStart})`,
    );
  }
  return n;
}

/**
 * The revision counter tor would put in the descriptor for `periodNum` at `nowSeconds`:
 * `OPE_K(now − srv_start + 1)` with `K` from the blinded key. Two publishers with the same
 * identity key and the same clock reading get the same value; it rises strictly with time.
 * Pass `ope` (an {@link OpeCipher} for this descriptor's key) to avoid regenerating keystream.
 */
export function revisionCounterFor(
  input: RevisionCounterInput & { readonly blindedExpandedSecretKey: Uint8Array; readonly ope?: OpeCipher },
): bigint {
  const n = revisionCounterPlaintext(input);
  if (input.ope !== undefined) return input.ope.encrypt(n);
  return opeEncrypt(revisionCounterKey(input.blindedExpandedSecretKey), n);
}
