/**
 * Fuzzing of the untrusted-input parsers for onion addresses and tor key files: at least
 * 100 000 random and mutated inputs per parser (seeded, so failures reproduce). The only
 * exception allowed is a TorbalanceError (DecodeError); anything accepted must be
 * self-consistent (re-encodes to the same canonical form).
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, fromHex, utf8 } from '../../src/core/bytes.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { decodeOnionAddress, encodeOnionAddress, parseOnionHostname } from '../../src/core/hs/address.js';
import {
  PUBLIC_KEY_FILE_HEADER,
  SECRET_KEY_FILE_HEADER,
  decodeHostnameFile,
  decodePublicKeyFile,
  decodeSecretKeyFile,
  encodeSecretKeyFile,
  identityFromTorKeyFiles,
} from '../../src/core/hs/keys.js';
import { loadVectors } from '../helpers/vectors.js';

const N = 100_000;
/** Generous: the slowest loop takes ~10 s alone; the suite runs files in parallel. */
const TIMEOUT = 180_000;

/** xorshift32: deterministic, seeded. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const int = (n: number): number => next() % n;
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => next() & 0xff);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, bytes, pick };
}
type Rng = ReturnType<typeof rng>;

function mutateBytes(r: Rng, base: Uint8Array): Uint8Array {
  let b: Uint8Array = base.slice();
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    switch (r.int(8)) {
      case 0: // flip a bit
        if (b.length > 0) b[r.int(b.length)]! ^= 1 << r.int(8);
        break;
      case 1: // set a byte
        if (b.length > 0) b[r.int(b.length)] = r.int(256);
        break;
      case 2: // truncate
        b = b.slice(0, r.int(b.length + 1));
        break;
      case 3: // extend
        b = concatBytes(b, r.bytes(1 + r.int(40)));
        break;
      case 4: { // insert
        const at = r.int(b.length + 1);
        b = concatBytes(b.subarray(0, at), r.bytes(1 + r.int(4)), b.subarray(at));
        break;
      }
      case 5: { // delete
        const at = r.int(b.length + 1);
        b = concatBytes(b.subarray(0, at), b.subarray(at + 1 + r.int(4)));
        break;
      }
      case 6: // zero the tail
        if (b.length > 0) b.fill(0, r.int(b.length));
        break;
      default: // random replacement of similar length
        b = r.bytes(Math.max(0, base.length + r.int(9) - 4));
    }
  }
  return b;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567ABCDEFGHIJKLMNOPQRSTUVWXYZ0189.-_@? \n\t\0\u212A\u0130\u017F\u00e9\u{1F600}';
/** Code points on purpose: includes an astral character and letters that lower-case oddly. */
const CHARS: readonly string[] = Array.from(ALPHABET);

function mutateString(r: Rng, base: string): string {
  let s = base;
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    const at = r.int(s.length + 1);
    switch (r.int(8)) {
      case 0:
        s = s.slice(0, at) + r.pick(CHARS) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at);
        break;
      case 2:
        s = s + r.pick(['', '.onion', '.ONION', '.', 'x', '.onion.onion', '\n', ' ']) + (r.int(2) === 0 ? '' : r.pick(CHARS));
        break;
      case 3:
        s = r.pick(['www.', 'a.b.', '.', '', '..', 'ä.']) + s;
        break;
      case 4:
        s = s.slice(0, at) + s.slice(at + 1);
        break;
      case 5: // change the case of one character (keeps a valid address valid)
        s = s.slice(0, at) + (s[at] ?? '').toUpperCase() + s.slice(at + 1);
        break;
      case 6:
        s = s.slice(0, at) + r.pick(CHARS) + s.slice(at);
        break;
      default: {
        const n = r.int(80);
        let t = '';
        for (let i = 0; i < n; i++) t += r.pick(CHARS);
        s = t;
      }
    }
  }
  return s;
}

/** Run `f`; any throw other than TorbalanceError fails with the input shown. */
function only<T>(f: () => T, show: () => string): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof TorbalanceError) return undefined;
    throw new Error(`non-TorbalanceError for input ${show()}: ${String(e)}`, { cause: e });
  }
}

const ADDRESSES = loadVectors('onion-address')
  .vectors.map((v) => (v.expected['onion_address'] ?? v.inputs['address'] ?? v.inputs['hostname'] ?? v.inputs['onion_address']) as string | undefined)
  .filter((x): x is string => x !== undefined);
const KEYFILES = loadVectors('secret-key-file').vectors;
const SECRET_FILES = KEYFILES.map((v) => fromHex(v.inputs['secret_key_file_hex']));
const PUBLIC_FILES = KEYFILES.filter((v) => 'public_key_file_hex' in v.inputs).map((v) => fromHex(v.inputs['public_key_file_hex']));
const HOSTNAMES = KEYFILES.filter((v) => 'hostname_file_text' in v.inputs).map((v) => v.inputs['hostname_file_text'] as string);

describe('fuzz: onion addresses', () => {
  it(`decodeOnionAddress: ${N} inputs throw only DecodeError; accepted ones are canonical`, () => {
    const r = rng(0xadd1);
    let accepted = 0;
    for (let i = 0; i < N; i++) {
      const input = i % 10 === 0 ? mutateString(r, '') : mutateString(r, r.pick(ADDRESSES));
      const d = only(() => decodeOnionAddress(input), () => JSON.stringify(input));
      if (d !== undefined) {
        accepted++;
        // printable ASCII only: U+212A KELVIN SIGN lower-cases to "k" and must not pass
        expect(input, JSON.stringify(input)).toMatch(/^[\x21-\x7e]+$/);
        expect(encodeOnionAddress(d.publicKey)).toBe(d.address);
        expect(input.toLowerCase().replace(/\.onion$/, '') + '.onion').toBe(d.address);
      }
    }
    expect(accepted).toBeGreaterThan(0);
  }, TIMEOUT);

  it(`parseOnionHostname: ${N} inputs throw only DecodeError; accepted ones end in the address`, () => {
    const r = rng(0x4057);
    let accepted = 0;
    for (let i = 0; i < N; i++) {
      const input = mutateString(r, r.pick(ADDRESSES));
      const d = only(() => parseOnionHostname(input), () => JSON.stringify(input));
      if (d !== undefined) {
        accepted++;
        expect(input, JSON.stringify(input)).toMatch(/^[\x21-\x7e]+$/);
        expect(input.toLowerCase().endsWith(d.address)).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(0);
  }, TIMEOUT);
});

describe('non-ASCII look-alikes', () => {
  it('are rejected even where lower-casing would map them onto base32 letters', () => {
    const good = '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion';
    for (const [from, to] of [['k', '\u212A'], ['s', '\u017F']] as const) {
      const bad = good.replace(from, to);
      expect(bad).not.toBe(good);
      expect(() => decodeOnionAddress(bad)).toThrow(TorbalanceError);
      expect(() => parseOnionHostname(`www.${bad}`)).toThrow(TorbalanceError);
    }
  });
});

describe('fuzz: key files', () => {
  it(`decodeSecretKeyFile: ${N} inputs throw only DecodeError; accepted ones are 96 bytes with the header`, () => {
    const r = rng(0x5ec7);
    for (let i = 0; i < N; i++) {
      const input = i % 4 === 0 ? concatBytes(SECRET_KEY_FILE_HEADER, r.bytes(64)) : mutateBytes(r, r.pick(SECRET_FILES));
      const k = only(() => decodeSecretKeyFile(input), () => `[${input.length} bytes]`);
      if (k !== undefined) expect(bytesEqual(encodeSecretKeyFile(k), input)).toBe(true);
    }
  }, TIMEOUT);

  it(`decodePublicKeyFile: ${N} inputs throw only DecodeError`, () => {
    const r = rng(0x9b1c);
    for (let i = 0; i < N; i++) {
      // mostly header/size mutations; 1 in 40 exercise the point checks with random keys
      const input = i % 40 === 0 ? concatBytes(PUBLIC_KEY_FILE_HEADER, r.bytes(32)) : mutateBytes(r, r.pick(PUBLIC_FILES));
      const k = only(() => decodePublicKeyFile(input), () => `[${input.length} bytes]`);
      if (k !== undefined) expect(k.length).toBe(32);
    }
  }, TIMEOUT);

  it(`decodeHostnameFile: ${N} string and byte inputs throw only DecodeError`, () => {
    const r = rng(0x4057f);
    for (let i = 0; i < N; i++) {
      const text = mutateString(r, r.pick(HOSTNAMES));
      const input = i % 2 === 0 ? text : mutateBytes(r, utf8(r.pick(HOSTNAMES)));
      only(() => decodeHostnameFile(input), () => JSON.stringify(text));
    }
  }, TIMEOUT);

  it('identityFromTorKeyFiles: 5000 mutated file sets throw only TorbalanceError', () => {
    const r = rng(0x1d);
    for (let i = 0; i < 5000; i++) {
      const j = r.int(SECRET_FILES.length);
      const m = r.int(8);
      only(
        () =>
          identityFromTorKeyFiles({
            secretKeyFile: m & 1 ? mutateBytes(r, SECRET_FILES[j]!) : SECRET_FILES[j]!,
            publicKeyFile: m & 2 ? mutateBytes(r, r.pick(PUBLIC_FILES)) : r.pick([...PUBLIC_FILES, undefined]),
            hostnameFile: m & 4 ? mutateString(r, r.pick(HOSTNAMES)) : r.pick([...HOSTNAMES, undefined]),
          }),
        () => `set ${i}`,
      );
    }
  }, TIMEOUT);
});
