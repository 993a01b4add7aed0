/** The token ledger: merge rules, expiry, bounds, tokenState and strict validation. */
import { describe, expect, it } from 'vitest';
import {
  LEDGER_GRACE_SECONDS,
  MAX_LEDGER_ENTRIES,
  mergeLedger,
  tokenState,
  validateLedgerEntries,
  validateLedgerEntry,
  type LedgerEntry,
} from '../../../src/core/join/index.js';

const NOW = 1_700_000_000;
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const id = (n: number): string => n.toString(16).padStart(32, '0');
const e = (n: number, state: LedgerEntry['state'], extra: Partial<LedgerEntry> = {}): LedgerEntry => ({ id: id(n), state, expiresAt: NOW + 3600, at: NOW, by: A, ...extra });

describe('mergeLedger', () => {
  it('higher state wins: revoked > used > issued, whichever side it comes from', () => {
    const issued = e(1, 'issued');
    const used = e(1, 'used', { at: NOW + 5, by: B, joiner: B });
    const revoked = e(1, 'revoked', { at: NOW + 9 });
    expect(mergeLedger([issued], [used], NOW)).toEqual([used]);
    expect(mergeLedger([used], [issued], NOW)).toEqual([used]);
    expect(mergeLedger([revoked], [used], NOW)).toEqual([revoked]);
    expect(mergeLedger([issued, used], [revoked], NOW)).toEqual([revoked]);
  });

  it('same state: earlier at wins, then lower by (two nodes admitting at once agree on one)', () => {
    const u1 = e(1, 'used', { at: NOW + 2, by: B, joiner: A });
    const u2 = e(1, 'used', { at: NOW + 1, by: B, joiner: B });
    expect(mergeLedger([u1], [u2], NOW)).toEqual([u2]);
    const v1 = e(1, 'used', { at: NOW, by: B });
    const v2 = e(1, 'used', { at: NOW, by: A });
    expect(mergeLedger([v1], [v2], NOW)).toEqual([v2]);
  });

  it('drops entries expired more than an hour ago, keeps those within the grace', () => {
    const old = e(1, 'used', { expiresAt: NOW - LEDGER_GRACE_SECONDS - 1 });
    const recent = e(2, 'revoked', { expiresAt: NOW - LEDGER_GRACE_SECONDS });
    expect(mergeLedger([old, recent], [], NOW)).toEqual([recent]);
  });

  it('is sorted by id, one entry per id, and does not alias its inputs', () => {
    const a = [e(3, 'issued'), e(1, 'issued'), e(1, 'issued')];
    const out = mergeLedger(a, [e(2, 'issued')], NOW);
    expect(out.map((x) => x.id)).toEqual([id(1), id(2), id(3)]);
    expect(out[0]).not.toBe(a[1]);
  });

  it(`keeps at most ${MAX_LEDGER_ENTRIES} ids, dropping the oldest expiry first`, () => {
    const many = Array.from({ length: MAX_LEDGER_ENTRIES + 10 }, (_, i) => e(i, 'issued', { expiresAt: NOW + 100 + i }));
    const out = mergeLedger(many.slice(0, 150), many.slice(150), NOW);
    expect(out).toHaveLength(MAX_LEDGER_ENTRIES);
    expect(out.some((x) => x.id === id(9))).toBe(false);
    expect(out.some((x) => x.id === id(10))).toBe(true);
  });
});

describe('tokenState', () => {
  it('unknown, issued, expired, used, revoked', () => {
    const l = [e(1, 'issued'), e(2, 'used'), e(3, 'revoked'), e(4, 'issued', { expiresAt: NOW })];
    expect(tokenState(l, id(9), NOW)).toBe('unknown');
    expect(tokenState(l, id(1), NOW)).toBe('issued');
    expect(tokenState(l, id(1), NOW + 3600)).toBe('expired');
    expect(tokenState(l, id(4), NOW)).toBe('expired');
    expect(tokenState(l, id(2), NOW)).toBe('used');
    expect(tokenState(l, id(3), NOW)).toBe('revoked');
    expect(tokenState([e(5, 'issued'), e(5, 'revoked')], id(5), NOW)).toBe('revoked');
  });
});

describe('validateLedgerEntries', () => {
  it('accepts valid entries and returns fresh objects', () => {
    const input = [e(1, 'used', { joiner: B })];
    const out = validateLedgerEntries(JSON.parse(JSON.stringify(input)));
    expect(out).toEqual(input);
  });

  it('rejects malformed entries with TB_ERR_JOIN_LEDGER and a path', () => {
    const good = e(1, 'issued') as unknown as Record<string, unknown>;
    const bad: [unknown, string][] = [
      [{ ...good, state: 'stolen' }, 'entries[0].state'],
      [{ ...good, id: 'A'.repeat(32) }, 'entries[0].id'],
      [{ ...good, by: 'x' }, 'entries[0].by'],
      [{ ...good, joiner: 7 }, 'entries[0].joiner'],
      [{ ...good, at: 1.5 }, 'entries[0].at'],
      [{ ...good, expiresAt: -1 }, 'entries[0].expiresAt'],
      [{ ...good, expiresAt: 2 ** 53 }, 'entries[0].expiresAt'],
      [{ ...good, extra: 1 }, 'entries[0]'],
      [JSON.parse('{"__proto__":{"x":1},"id":"00000000000000000000000000000001","state":"issued","expiresAt":1,"at":1,"by":"' + A + '"}'), 'entries[0]'],
      [(() => { const { at: _at, ...rest } = good; return rest; })(), 'entries[0].at'],
      [null, 'entries[0]'],
      [[], 'entries[0]'],
    ];
    for (const [entry, path] of bad) {
      expect(() => validateLedgerEntries([entry])).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_LEDGER', path }));
    }
    expect(() => validateLedgerEntries('x')).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_LEDGER' }));
    expect(() => validateLedgerEntries(Array.from({ length: MAX_LEDGER_ENTRIES + 1 }, () => good))).toThrow(expect.objectContaining({ path: 'entries' }));
    expect(() => validateLedgerEntry(Object.create({ id: 1 }))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_LEDGER' }));
  });
});
