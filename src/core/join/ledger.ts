/**
 * The cluster-wide join-token ledger (docs/OPERATIONS.md): which token
 * ids are `issued`, `used` or `revoked`. Every node keeps a copy, persists it and gossips it
 * over the mesh (`tokens` message); copies converge with {@link mergeLedger}, a state-based
 * CRDT (join-semilattice). torbalance's own design; no tor spec.
 *
 * Merge, for a fixed `nowSeconds`:
 * 1. every entry whose `expiresAt + 3600 < nowSeconds` is dropped (per entry, before anything
 *    else, so dropping commutes with merging);
 * 2. per id the greatest entry wins in the total order: higher state (revoked > used >
 *    issued), then earlier `at`, then lower `by`, then later `expiresAt`, then `joiner`
 *    (absent before present, then lower);
 * 3. if more than {@link MAX_LEDGER_ENTRIES} ids remain, those with the oldest `expiresAt`
 *    (then lowest id) are dropped;
 * 4. the result is sorted by id.
 *
 * Steps 1, 2 and 4 make merge commutative, associative and idempotent for any inputs. Step 3
 * keeps those laws as long as all entries of an id share one `expiresAt` — which holds for
 * honest nodes, since it is the token's authenticated expiry — otherwise it only bounds
 * memory. (test/property/join-ledger.test.ts checks the laws.)
 *
 * {@link validateLedgerEntries} checks untrusted entries (gossip, the persisted file) strictly
 * and throws {@link LedgerViolation} (`TB_ERR_JOIN_LEDGER`, with a path, never a value).
 */
import { DecodeError } from '../errors.js';

export type LedgerState = 'issued' | 'used' | 'revoked';

/** One token's state as a node recorded it. No secrets: safe to log and show. */
export interface LedgerEntry {
  /** Token id, 32 lowercase hex characters. */
  readonly id: string;
  readonly state: LedgerState;
  /** The token's expiry, unix seconds. */
  readonly expiresAt: number;
  /** When the state was set, unix seconds. */
  readonly at: number;
  /** Node id (32 hex) of the node that set the state. */
  readonly by: string;
  /** Node id of the admitted node (state `used`). */
  readonly joiner?: string;
}

/** Most entries in a ledger (and in one `tokens` mesh message). */
export const MAX_LEDGER_ENTRIES = 256;
/** Entries are kept this long after their token expired, so late gossip cannot revive them. */
export const LEDGER_GRACE_SECONDS = 3600;

const STATE_RANK: Readonly<Record<LedgerState, number>> = { issued: 0, used: 1, revoked: 2 };
const ID_RE = /^[0-9a-f]{32}$/;

/** A ledger entry failed validation (`TB_ERR_JOIN_LEDGER`); `path` names the field. */
export class LedgerViolation extends DecodeError {
  readonly path: string;
  readonly problem: string;
  constructor(path: string, problem: string) {
    super('TB_ERR_JOIN_LEDGER', `${path}: ${problem}`);
    this.name = 'LedgerViolation';
    this.path = path;
    this.problem = problem;
  }
}

function fail(path: string, problem: string): never {
  throw new LedgerViolation(path, problem);
}

function hexId(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'not a string');
  if (!ID_RE.test(v)) fail(path, 'not 32 lowercase hex characters');
  return v;
}

function time(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(path, 'not a safe integer');
  if (v < 0) fail(path, 'out of range');
  return v;
}

const REQUIRED = ['id', 'state', 'expiresAt', 'at', 'by'] as const;

/** Validate one untrusted entry; returns a fresh object. Throws LedgerViolation. */
export function validateLedgerEntry(v: unknown, path = 'entry'): LedgerEntry {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'not an object');
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) fail(path, 'not a plain object');
  for (const k of Object.keys(v)) {
    if (!(REQUIRED as readonly string[]).includes(k) && k !== 'joiner') fail(path, 'unknown key');
  }
  for (const k of REQUIRED) if (!Object.hasOwn(v, k)) fail(`${path}.${k}`, 'missing');
  const o = v as Readonly<Record<string, unknown>>;
  const rawState = o['state'];
  if (rawState !== 'issued' && rawState !== 'used' && rawState !== 'revoked') fail(`${path}.state`, 'not issued, used or revoked');
  const state: LedgerState = rawState;
  const e: LedgerEntry = {
    id: hexId(o['id'], `${path}.id`),
    state,
    expiresAt: time(o['expiresAt'], `${path}.expiresAt`),
    at: time(o['at'], `${path}.at`),
    by: hexId(o['by'], `${path}.by`),
  };
  if (!Object.hasOwn(o, 'joiner') || o['joiner'] === undefined) return e;
  return { ...e, joiner: hexId(o['joiner'], `${path}.joiner`) };
}

/**
 * Validate an untrusted array of entries (≤ MAX_LEDGER_ENTRIES; duplicate ids are allowed,
 * merge resolves them). Throws LedgerViolation.
 */
export function validateLedgerEntries(v: unknown, path = 'entries'): LedgerEntry[] {
  if (!Array.isArray(v)) fail(path, 'not an array');
  if (v.length > MAX_LEDGER_ENTRIES) fail(path, 'too many entries');
  return (v as readonly unknown[]).map((e, i) => validateLedgerEntry(e, `${path}[${i}]`));
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** > 0 if `a` wins over `b` (same id), 0 if they are equal in every field. */
function precedence(a: LedgerEntry, b: LedgerEntry): number {
  const s = STATE_RANK[a.state] - STATE_RANK[b.state];
  if (s !== 0) return s;
  if (a.at !== b.at) return a.at < b.at ? 1 : -1;
  const by = cmpStr(a.by, b.by);
  if (by !== 0) return -by;
  if (a.expiresAt !== b.expiresAt) return a.expiresAt > b.expiresAt ? 1 : -1;
  if (a.joiner === b.joiner) return 0;
  if (a.joiner === undefined) return 1;
  if (b.joiner === undefined) return -1;
  return -cmpStr(a.joiner, b.joiner);
}

function copy(e: LedgerEntry): LedgerEntry {
  const base = { id: e.id, state: e.state, expiresAt: e.expiresAt, at: e.at, by: e.by };
  return e.joiner === undefined ? base : { ...base, joiner: e.joiner };
}

/**
 * Merge two ledgers (see the module doc). Inputs are not modified; the result is a fresh,
 * id-sorted array of at most MAX_LEDGER_ENTRIES entries, one per id. Inputs are assumed
 * valid ({@link validateLedgerEntries} untrusted ones first).
 */
export function mergeLedger(a: readonly LedgerEntry[], b: readonly LedgerEntry[], nowSeconds: number): LedgerEntry[] {
  const best = new Map<string, LedgerEntry>();
  for (const list of [a, b]) {
    for (const e of list) {
      if (e.expiresAt + LEDGER_GRACE_SECONDS < nowSeconds) continue;
      const cur = best.get(e.id);
      if (cur === undefined || precedence(e, cur) > 0) best.set(e.id, e);
    }
  }
  let out = [...best.values()];
  if (out.length > MAX_LEDGER_ENTRIES) {
    out.sort((x, y) => (x.expiresAt !== y.expiresAt ? y.expiresAt - x.expiresAt : cmpStr(x.id, y.id)));
    out = out.slice(0, MAX_LEDGER_ENTRIES);
  }
  out.sort((x, y) => cmpStr(x.id, y.id));
  return out.map(copy);
}

/**
 * The state of token `id` in `ledger` at `nowSeconds`: `unknown` if absent; `revoked` or
 * `used` as recorded; `issued`, or `expired` once `nowSeconds ≥ expiresAt`.
 */
export function tokenState(ledger: readonly LedgerEntry[], id: string, nowSeconds: number): 'unknown' | 'issued' | 'used' | 'revoked' | 'expired' {
  let cur: LedgerEntry | undefined;
  for (const e of ledger) {
    if (e.id === id && (cur === undefined || precedence(e, cur) > 0)) cur = e;
  }
  if (cur === undefined) return 'unknown';
  if (cur.state !== 'issued') return cur.state;
  return nowSeconds >= cur.expiresAt ? 'expired' : 'issued';
}
