/** Property: any chunking of a body gives the one-shot result, and no target address remains. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromAscii, utf8 } from '../../src/core/bytes.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { bytesContainIgnoreCase, createRewriteContext, replaceAllBytes, StreamReplacer } from '../../src/core/rewrite/index.js';

const T = encodeOnionAddress(new Uint8Array(32).fill(3));
const M = encodeOnionAddress(new Uint8Array(32).fill(4));

function randomCase(s: string, bits: number[]): string {
  return Array.from(s, (c, i) => ((bits[i % bits.length] ?? 0) & 1 ? c.toUpperCase() : c)).join('');
}

const piece = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 8 }).map((bits) => randomCase(T, bits)),
  fc.constantFrom(`http://${T}:80/`, `https://${T}:443`, `www.${T}`, `${T}:8080`, T.slice(0, 30), T.slice(0, 55), 'https://', ':80'),
);

describe('streaming rewrite', () => {
  for (const [name, tls, port] of [['plain', false, 80], ['tls', true, 443], ['port', false, 8080]] as const) {
    it(`random chunkings equal one-shot and leave no target (${name})`, () => {
      const ctx = createRewriteContext({ target: T, master: M, targetPort: port, targetTls: tls });
      fc.assert(
        fc.property(fc.array(piece, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }), (pieces, cuts) => {
          const input = utf8(pieces.join(''));
          const once = replaceAllBytes(input, ctx.forward);
          const r = new StreamReplacer(ctx.forward);
          const outParts: number[] = [];
          let off = 0;
          let k = 0;
          while (off < input.length) {
            const n = cuts[k++ % cuts.length]!;
            outParts.push(...r.push(input.subarray(off, off + n)));
            off += n;
          }
          outParts.push(...r.end());
          const streamed = Uint8Array.from(outParts);
          expect(fromAscii(streamed)).toBe(fromAscii(once));
          expect(bytesContainIgnoreCase(streamed, T)).toBe(false);
        }),
        { numRuns: 400 },
      );
    });
  }
});
