/**
 * The token ledger's merge is a state-based CRDT (src/core/join/ledger.ts): commutative,
 * associative and idempotent for any entries when the bound does not bite, and also when it
 * does as long as each id has one expiry (as honest nodes guarantee); states never go back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_LEDGER_ENTRIES, mergeLedger, type LedgerEntry } from '../../src/core/join/index.js';

const NOW = 1_700_000_000;
const NODES = ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)];
const hexId = (n: number): string => n.toString(16).padStart(32, '0');

/** Few ids, times and nodes, so collisions and ties are common. Some entries are expired. */
const entryArb: fc.Arbitrary<LedgerEntry> = fc
  .record({
    id: fc.integer({ min: 0, max: 6 }).map(hexId),
    state: fc.constantFrom('issued' as const, 'used' as const, 'revoked' as const),
    expiresAt: fc.constantFrom(NOW - 7200, NOW - 3600, NOW, NOW + 60, NOW + 3600),
    at: fc.integer({ min: NOW - 5, max: NOW + 5 }),
    by: fc.constantFrom(...NODES),
    joiner: fc.option(fc.constantFrom(...NODES), { nil: undefined }),
  })
  .map((r): LedgerEntry => {
    const base = { id: r.id, state: r.state, expiresAt: r.expiresAt, at: r.at, by: r.by };
    return r.joiner === undefined ? base : { ...base, joiner: r.joiner };
  });

const ledgerArb = fc.array(entryArb, { maxLength: 16 });

/** Many ids (the bound bites) with one expiry per id. */
const bigEntryArb: fc.Arbitrary<LedgerEntry> = fc
  .record({
    n: fc.integer({ min: 0, max: 400 }),
    state: fc.constantFrom('issued' as const, 'used' as const, 'revoked' as const),
    at: fc.integer({ min: NOW - 5, max: NOW + 5 }),
    by: fc.constantFrom(...NODES),
  })
  .map((r) => ({ id: hexId(r.n), state: r.state, expiresAt: NOW + ((r.n * 7919) % 500), at: r.at, by: r.by }));
const bigLedgerArb = fc.array(bigEntryArb, { minLength: 100, maxLength: 300 });

const RANK = { issued: 0, used: 1, revoked: 2 } as const;

describe('mergeLedger is a CRDT', () => {
  it('commutative', () => {
    fc.assert(fc.property(ledgerArb, ledgerArb, (a, b) => {
      expect(mergeLedger(a, b, NOW)).toEqual(mergeLedger(b, a, NOW));
    }), { numRuns: 2000 });
  });

  it('associative', () => {
    fc.assert(fc.property(ledgerArb, ledgerArb, ledgerArb, (a, b, c) => {
      expect(mergeLedger(mergeLedger(a, b, NOW), c, NOW)).toEqual(mergeLedger(a, mergeLedger(b, c, NOW), NOW));
    }), { numRuns: 2000 });
  });

  it('idempotent', () => {
    fc.assert(fc.property(ledgerArb, ledgerArb, (a, b) => {
      const m = mergeLedger(a, b, NOW);
      expect(mergeLedger(m, m, NOW)).toEqual(m);
      expect(mergeLedger(m, [], NOW)).toEqual(m);
      expect(mergeLedger(m, a, NOW)).toEqual(m);
    }), { numRuns: 2000 });
  });

  it(`laws hold when the ${MAX_LEDGER_ENTRIES}-entry bound bites (one expiry per id)`, () => {
    fc.assert(fc.property(bigLedgerArb, bigLedgerArb, bigLedgerArb, (a, b, c) => {
      const ab = mergeLedger(a, b, NOW);
      expect(ab.length).toBeLessThanOrEqual(MAX_LEDGER_ENTRIES);
      expect(ab).toEqual(mergeLedger(b, a, NOW));
      expect(mergeLedger(ab, c, NOW)).toEqual(mergeLedger(a, mergeLedger(b, c, NOW), NOW));
      expect(mergeLedger(ab, ab, NOW)).toEqual(ab);
    }), { numRuns: 200 });
  });

  it('states never go back, and unexpired ids are never lost (below the bound)', () => {
    fc.assert(fc.property(ledgerArb, ledgerArb, (a, b) => {
      const m = mergeLedger(a, b, NOW);
      const byId = new Map(m.map((e) => [e.id, e]));
      for (const e of [...a, ...b]) {
        if (e.expiresAt + 3600 < NOW) continue;
        const w = byId.get(e.id);
        expect(w).toBeDefined();
        expect(RANK[w!.state]).toBeGreaterThanOrEqual(RANK[e.state]);
      }
      for (const e of m) expect(e.expiresAt + 3600).toBeGreaterThanOrEqual(NOW);
      expect(new Set(m.map((e) => e.id)).size).toBe(m.length);
    }), { numRuns: 2000 });
  });
});
