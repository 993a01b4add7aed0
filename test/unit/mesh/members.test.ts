import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EMPTY_MEMBERS, MAX_MEMBER_ENTRIES, memberAllowed, mergeMembers, sameMembers, validateMembers, type MemberEntry, type MembersLedger } from '../../../src/core/mesh/index.js';

const id = (n: number): string => n.toString(16).padStart(32, '0');
const e = (n: number, state: MemberEntry['state'], at = 10, by = 1): MemberEntry => ({ id: id(n), state, at, by: id(by) });

describe('node allowlist (core/mesh/members)', () => {
  it('not enforced: everyone but removed nodes; enforced: listed members only; a removal is final', () => {
    const open: MembersLedger = { enforced: false, entries: [e(2, 'member')] };
    expect(memberAllowed(EMPTY_MEMBERS, id(9))).toBe(true);
    expect(memberAllowed(open, id(9))).toBe(true);
    const enforced = mergeMembers(open, { enforced: true, entries: [] });
    expect(enforced.enforced).toBe(true);
    expect(memberAllowed(enforced, id(2))).toBe(true);
    expect(memberAllowed(enforced, id(9))).toBe(false);
    // Removal wins over any addition, earlier or later, in either merge order.
    const removed = mergeMembers(enforced, { enforced: false, entries: [e(2, 'removed', 20, 3)] });
    const readded = mergeMembers(removed, { enforced: false, entries: [e(2, 'member', 30, 4)] });
    expect(memberAllowed(readded, id(2))).toBe(false);
    expect(memberAllowed(mergeMembers({ enforced: false, entries: [e(2, 'removed', 5)] }, open), id(2))).toBe(false);
    // Enforcement is sticky.
    expect(mergeMembers(readded, EMPTY_MEMBERS).enforced).toBe(true);
  });

  it('merge is commutative, associative and idempotent', () => {
    const entry = fc.record({ id: fc.integer({ min: 0, max: 6 }).map(id), state: fc.constantFrom<'member' | 'removed'>('member', 'removed'), at: fc.integer({ min: 0, max: 5 }), by: fc.integer({ min: 0, max: 3 }).map(id) });
    const ledger = fc.record({ enforced: fc.boolean(), entries: fc.array(entry, { maxLength: 8 }) });
    fc.assert(
      fc.property(ledger, ledger, ledger, (a, b, c) => {
        expect(sameMembers(mergeMembers(a, b), mergeMembers(b, a))).toBe(true);
        expect(sameMembers(mergeMembers(mergeMembers(a, b), c), mergeMembers(a, mergeMembers(b, c)))).toBe(true);
        const ab = mergeMembers(a, b);
        expect(sameMembers(mergeMembers(ab, ab), ab)).toBe(true);
      }),
    );
  });

  it('keeps removals when the list overflows', () => {
    const many = Array.from({ length: MAX_MEMBER_ENTRIES }, (_, i) => e(i + 100, 'member', i));
    const m = mergeMembers({ enforced: true, entries: many }, { enforced: false, entries: [e(1, 'removed', 99_999)] });
    expect(m.entries.length).toBe(MAX_MEMBER_ENTRIES);
    expect(memberAllowed(m, id(1))).toBe(false);
  });

  it('validates untrusted ledgers strictly', () => {
    expect(validateMembers({ enforced: true, entries: [e(1, 'member')] })).toEqual({ enforced: true, entries: [e(1, 'member')] });
    for (const bad of [
      null,
      { enforced: 'yes', entries: [] },
      { enforced: true },
      { enforced: true, entries: [], extra: 1 },
      { enforced: true, entries: [{ ...e(1, 'member'), state: 'admin' }] },
      { enforced: true, entries: [{ ...e(1, 'member'), id: 'X'.repeat(32) }] },
      { enforced: true, entries: [{ ...e(1, 'member'), at: -1 }] },
      { enforced: true, entries: Array.from({ length: MAX_MEMBER_ENTRIES + 1 }, () => e(1, 'member')) },
    ]) {
      expect(() => validateMembers(bad)).toThrow(/TB_ERR_MEMBERS|members/);
    }
  });
});
