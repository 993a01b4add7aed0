/** Byte codecs: round trips against node's own encoders, and strictness on bad input. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromAscii, fromBase32, fromBase64, fromHex, toBase32, toBase64, toBase64NoPad, toHex } from '../../src/core/bytes.js';
import { DecodeError } from '../../src/core/errors.js';

describe('bytes', () => {
  it('hex, base64 (padded and not) and base32 round-trip and match node', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(toHex(b)).toBe(Buffer.from(b).toString('hex'));
        expect(toBase64(b)).toBe(Buffer.from(b).toString('base64'));
        expect(fromHex(toHex(b))).toEqual(b);
        expect(fromBase64(toBase64(b))).toEqual(b);
        expect(fromBase64(toBase64NoPad(b))).toEqual(b);
        expect(fromBase32(toBase32(b)).subarray(0, b.length)).toEqual(b);
      }),
      { numRuns: 500 },
    );
  });

  it('fromAscii maps each byte to one char, ASCII or not', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20000 }), (b) => {
        expect(fromAscii(b)).toBe(Buffer.from(b).toString('latin1'));
      }),
      { numRuns: 100 },
    );
  });

  it('rejects bad base64 with TB_ERR_BASE64, including long runs of "="', () => {
    for (const bad of ['a===', '=', 'ab=c', 'abc!', 'a', 'ab==' + '='.repeat(100_000), 'AB==']) {
      expect(() => fromBase64(bad)).toThrow(DecodeError);
    }
  });
});
