/**
 * The node allowlist (docs/SECURITY.md "One member", docs/OPERATIONS.md "Node membership"):
 * which node ids are members of the cluster and which were removed. Every node keeps a copy,
 * persists it and gossips it over the mesh (`members` message, docs/mesh-protocol.md); copies
 * converge with {@link mergeMembers}, a state-based CRDT. torbalance's own design; no tor spec.
 *
 * A ledger is `{ enforced, entries }`:
 * - an entry `{ id, state: 'member' | 'removed', at, by }` says that node `by` added (join,
 *   `torbalance node add`, `node enforce`) or removed (`torbalance node remove`) node `id` at
 *   unix second `at`;
 * - `enforced`: once true, only members may connect. Before (a cluster upgraded from a version
 *   without the allowlist, or formed by copying the secret), every holder of the cluster secret
 *   may connect — as before — except removed nodes.
 *
 * Merge: `enforced` is the OR of both; per id the greater entry wins: `removed` > `member`
 * (a removal is final: a removed id can never be re-added — a decommissioned node gets a new
 * node key if it comes back), then earlier `at`, then lower `by`. If more than
 * {@link MAX_MEMBER_ENTRIES} ids remain, `member` entries with the latest `at` (then highest id)
 * are dropped first — removals are kept while there is room, since forgetting one readmits
 * the node. The result is sorted by id. Merge is commutative, associative and idempotent.
 *
 * {@link memberAllowed}: a removed id never; otherwise, when enforced, only a listed member.
 */
import { DecodeError } from '../errors.js';

export type MemberState = 'member' | 'removed';

/** One node's membership as a node recorded it. No secrets. */
export interface MemberEntry {
  /** Node id (32 lowercase hex). */
  readonly id: string;
  readonly state: MemberState;
  /** Unix seconds. */
  readonly at: number;
  /** Node id of the node that recorded it. */
  readonly by: string;
}

export interface MembersLedger {
  readonly enforced: boolean;
  readonly entries: readonly MemberEntry[];
}

/** Most entries in a ledger (and in one `members` message). */
export const MAX_MEMBER_ENTRIES = 512;

export const EMPTY_MEMBERS: MembersLedger = { enforced: false, entries: [] };

const ID_RE = /^[0-9a-f]{32}$/;

/** A members ledger failed validation (`TB_ERR_MEMBERS`); `path` names the field, never a value. */
export class MembersViolation extends DecodeError {
  readonly path: string;
  readonly problem: string;
  constructor(path: string, problem: string) {
    super('TB_ERR_MEMBERS', `${path}: ${problem}`);
    this.name = 'MembersViolation';
    this.path = path;
    this.problem = problem;
  }
}

function fail(path: string, problem: string): never {
  throw new MembersViolation(path, problem);
}

function plainObject(v: unknown, path: string, keys: readonly string[]): Readonly<Record<string, unknown>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'not an object');
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) fail(path, 'not a plain object');
  for (const k of Object.keys(v)) if (!keys.includes(k)) fail(path, 'unknown key');
  for (const k of keys) if (!Object.hasOwn(v, k)) fail(`${path}.${k}`, 'missing');
  return v as Readonly<Record<string, unknown>>;
}

function hexId(v: unknown, path: string): string {
  if (typeof v !== 'string' || !ID_RE.test(v)) fail(path, 'not 32 lowercase hex characters');
  return v;
}

/** Validate one untrusted entry; returns a fresh object. Throws MembersViolation. */
export function validateMemberEntry(v: unknown, path = 'entry'): MemberEntry {
  const o = plainObject(v, path, ['id', 'state', 'at', 'by']);
  const state = o['state'];
  if (state !== 'member' && state !== 'removed') fail(`${path}.state`, 'not member or removed');
  const at = o['at'];
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) fail(`${path}.at`, 'not a non-negative safe integer');
  return { id: hexId(o['id'], `${path}.id`), state, at, by: hexId(o['by'], `${path}.by`) };
}

/** Validate an untrusted ledger `{enforced, entries}` (≤ MAX_MEMBER_ENTRIES). Throws MembersViolation. */
export function validateMembers(v: unknown, path = 'members'): MembersLedger {
  const o = plainObject(v, path, ['enforced', 'entries']);
  if (typeof o['enforced'] !== 'boolean') fail(`${path}.enforced`, 'not a boolean');
  const raw = o['entries'];
  if (!Array.isArray(raw)) fail(`${path}.entries`, 'not an array');
  if (raw.length > MAX_MEMBER_ENTRIES) fail(`${path}.entries`, 'too many entries');
  return { enforced: o['enforced'], entries: (raw as readonly unknown[]).map((e, i) => validateMemberEntry(e, `${path}.entries[${i}]`)) };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** > 0 if `a` wins over `b` (same id). */
function precedence(a: MemberEntry, b: MemberEntry): number {
  if (a.state !== b.state) return a.state === 'removed' ? 1 : -1;
  if (a.at !== b.at) return a.at < b.at ? 1 : -1;
  return -cmp(a.by, b.by);
}

/** Merge two ledgers (module doc). Inputs are assumed valid; the result is fresh. */
export function mergeMembers(a: MembersLedger, b: MembersLedger): MembersLedger {
  const best = new Map<string, MemberEntry>();
  for (const list of [a.entries, b.entries]) {
    for (const e of list) {
      const cur = best.get(e.id);
      if (cur === undefined || precedence(e, cur) > 0) best.set(e.id, e);
    }
  }
  let out = [...best.values()];
  if (out.length > MAX_MEMBER_ENTRIES) {
    // Keep removals first, then the oldest members.
    out.sort((x, y) => (x.state !== y.state ? (x.state === 'removed' ? -1 : 1) : x.at !== y.at ? x.at - y.at : cmp(x.id, y.id)));
    out = out.slice(0, MAX_MEMBER_ENTRIES);
  }
  out.sort((x, y) => cmp(x.id, y.id));
  return { enforced: a.enforced || b.enforced, entries: out.map((e) => ({ id: e.id, state: e.state, at: e.at, by: e.by })) };
}

/** The winning entry for `id`, if any. */
export function memberEntry(ledger: MembersLedger, id: string): MemberEntry | undefined {
  let cur: MemberEntry | undefined;
  for (const e of ledger.entries) if (e.id === id && (cur === undefined || precedence(e, cur) > 0)) cur = e;
  return cur;
}

/** May node `id` connect? Removed: never; enforced: only members; otherwise yes. */
export function memberAllowed(ledger: MembersLedger, id: string): boolean {
  const e = memberEntry(ledger, id);
  if (e?.state === 'removed') return false;
  return !ledger.enforced || e?.state === 'member';
}

/** True if the two ledgers are equal (both merged forms). */
export function sameMembers(a: MembersLedger, b: MembersLedger): boolean {
  return a.enforced === b.enforced && a.entries.length === b.entries.length && a.entries.every((e, i) => {
    const f = b.entries[i]!;
    return e.id === f.id && e.state === f.state && e.at === f.at && e.by === f.by;
  });
}
