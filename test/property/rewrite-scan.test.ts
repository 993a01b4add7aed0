/**
 * Property: the fast paths of core/rewrite (native indexOf jumps between candidate bytes in
 * StreamReplacer, the toLowerCase quick reject of replaceAllString, mayNameTarget) give
 * exactly the result of a naive reference that tries every rule at every position
 * (longest needle first, ASCII case-insensitive, `notFollowedByDigit` look-ahead).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromAscii, utf8 } from '../../src/core/bytes.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import {
  compileRules,
  createRewriteContext,
  forwardRuleList,
  headerLeaksTarget,
  mayNameTarget,
  replaceAllBytes,
  replaceAllString,
  StreamReplacer,
  type ReplaceRule,
} from '../../src/core/rewrite/index.js';

const T = encodeOnionAddress(new Uint8Array(32).fill(5));
const M = encodeOnionAddress(new Uint8Array(32).fill(6));

/** The reference: every position, every rule (longest first). Works on UTF-16 code units. */
function reference(s: string, rules: readonly ReplaceRule[]): string {
  const sorted = [...rules].sort((a, b) => b.from.length - a.from.length);
  const lowerAscii = (c: string): string => (c >= 'A' && c <= 'Z' ? c.toLowerCase() : c);
  let out = '';
  let i = 0;
  outer: while (i < s.length) {
    for (const r of sorted) {
      const n = r.from.length;
      if (i + n > s.length) continue;
      let ok = true;
      for (let j = 0; j < n; j++) {
        if (lowerAscii(s[i + j]!) !== r.from[j]!.toLowerCase()) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (r.notFollowedByDigit === true && i + n < s.length && /[0-9]/.test(s[i + n]!)) continue;
      out += r.to;
      i += n;
      continue outer;
    }
    out += s[i]!;
    i++;
  }
  return out;
}

function randomCase(s: string, bits: readonly number[]): string {
  return Array.from(s, (c, i) => ((bits[i % bits.length] ?? 0) & 1 ? c.toUpperCase() : c)).join('');
}

/** Pieces rich in near-misses: prefixes, case mixes, ports, scheme letters, non-ASCII look-alikes. */
const piece = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('h', 'H', 'w', 'W', 'https://', 'wss://', 'HTTPS://', ':443', ':80', ':8', '\u212a', '\u0130', '\u017f', 'é', T[0]!, T[0]!.toUpperCase()),
  fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 8 }).map((bits) => randomCase(T, bits)),
  fc.integer({ min: 1, max: 55 }).map((n) => T.slice(0, n)),
  fc.constantFrom(`https://${T}:443/`, `wss://${T}`, `http://${T}:80`, `${T}:8080`, `www.${T}`),
);

/** Latin-1 text only (so a string maps to bytes one to one). */
function latin1(s: string): string {
  return Array.from(s, (c) => (c.charCodeAt(0) > 0xff ? '?' : c)).join('');
}

describe('rewrite fast paths equal the naive reference', () => {
  for (const [name, tls, port] of [['plain', false, 80], ['tls', true, 443], ['port', false, 8080]] as const) {
    const mapping = { target: T, master: M, targetPort: port, targetTls: tls };
    const rules = forwardRuleList(mapping);
    const set = compileRules(rules);
    const ctx = createRewriteContext(mapping);

    it(`replaceAllString (${name})`, () => {
      fc.assert(
        fc.property(fc.array(piece, { maxLength: 25 }), (pieces) => {
          const s = pieces.join('');
          expect(replaceAllString(s, set)).toBe(reference(s, rules));
        }),
        { numRuns: 400 },
      );
    });

    it(`StreamReplacer and replaceAllBytes, any chunking (${name})`, () => {
      fc.assert(
        fc.property(fc.array(piece, { maxLength: 25 }), fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 10 }), (pieces, cuts) => {
          const s = latin1(pieces.join(''));
          const bytes = Uint8Array.from(s, (c) => c.charCodeAt(0));
          const want = reference(s, rules);
          const got = (b: Uint8Array): string => Array.from(b, (x) => String.fromCharCode(x)).join('');
          expect(got(replaceAllBytes(bytes, set))).toBe(want);
          const r = new StreamReplacer(set);
          let acc = '';
          let off = 0;
          let k = 0;
          while (off < bytes.length) {
            const n = cuts[k++ % cuts.length]!;
            acc += got(r.push(bytes.subarray(off, off + n)));
            off += n;
          }
          acc += got(r.end());
          expect(acc).toBe(want);
        }),
        { numRuns: 400 },
      );
    });

    it(`mayNameTarget is a superset of headerLeaksTarget (${name})`, () => {
      fc.assert(
        fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
          const s = pieces.join('');
          if (headerLeaksTarget('x-h', s, ctx)) expect(mayNameTarget(s, ctx)).toBe(true);
          // when it says "nothing to do", rewriting indeed changes nothing
          if (!mayNameTarget(s, ctx)) expect(replaceAllString(s, ctx.forward)).toBe(s);
        }),
        { numRuns: 400 },
      );
    });
  }

  it('a body without any candidate byte passes whole; a candidate at the very end is held back', () => {
    const set = createRewriteContext({ target: T, master: M, targetPort: 80, targetTls: false }).forward;
    const filler = 'x'.repeat(1000).replaceAll(T[0]!, 'x');
    const r = new StreamReplacer(set);
    expect(fromAscii(r.push(utf8(filler)))).toBe(filler);
    expect(fromAscii(r.push(utf8(`${filler}${T.slice(0, 10)}`)))).toBe(filler);
    // complete, but `<target>:80` could still follow: held until the next byte or the end
    expect(fromAscii(r.push(utf8(T.slice(10))))).toBe('');
    expect(fromAscii(r.end())).toBe(M);
  });
});
