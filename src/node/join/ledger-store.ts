/**
 * The join-token ledger on disk: `<data_dir>/join-ledger.json` (docs/OPERATIONS.md).
 *
 * Format (ours): `{"version":1,"entries":[LedgerEntry…]}` — token ids, states, times and node
 * ids only; a token's secret is never stored (it is derived from the cluster secret and the
 * claims, src/core/join/token.ts). Written atomically with mode 0600 from creation (temp file
 * + fsync + rename: src/adapters/fs/key-store.ts `writeFileAtomic`), read with `O_NOFOLLOW`,
 * size-bounded ({@link MAX_LEDGER_FILE_BYTES}) and strictly validated: a file that is not in
 * this format throws DecodeError TB_ERR_JOIN_LEDGER (the node refuses to start rather than
 * forget revocations); a missing file is an empty ledger.
 */
import { dirname } from 'node:path';
import { readJsonStateFile, syncDirectory, writeFileAtomic } from '../../adapters/fs/key-store.js';
import { utf8 } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { MAX_LEDGER_ENTRIES, validateLedgerEntries, type LedgerEntry } from '../../core/join/ledger.js';

/** Largest ledger file read (256 entries of ~250 bytes fit easily). */
export const MAX_LEDGER_FILE_BYTES = 256 * 1024;

function bad(path: string, why: string): DecodeError {
  return new DecodeError('TB_ERR_JOIN_LEDGER', `${path} is not a torbalance join ledger: ${why}`);
}

/** Validate parsed JSON as ledger entries (strict: unknown keys, wrong types, too many entries → DecodeError). */
export function parseLedgerDocument(doc: unknown, path = 'ledger'): LedgerEntry[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad(path, 'not a JSON object');
  const o = doc as Record<string, unknown>;
  if (o['version'] !== 1) throw bad(path, 'unknown version');
  if (Object.keys(o).some((k) => k !== 'version' && k !== 'entries')) throw bad(path, 'unknown key');
  const entries = o['entries'];
  if (!Array.isArray(entries)) throw bad(path, 'entries is not an array');
  if (entries.length > MAX_LEDGER_ENTRIES) throw bad(path, `more than ${MAX_LEDGER_ENTRIES} entries`);
  try {
    return validateLedgerEntries(entries, 'entries');
  } catch (e) {
    throw bad(path, e instanceof Error ? e.message : 'invalid entry');
  }
}

/** The file content for `entries`. */
export function encodeLedgerDocument(entries: readonly LedgerEntry[]): Uint8Array {
  return utf8(`${JSON.stringify({ version: 1, entries })}\n`);
}

/** Reads and writes one ledger file. Writes are serialised (the last one wins). */
export class LedgerStore {
  readonly path: string;
  #chain: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /** The stored entries ([] when the file does not exist). */
  async load(): Promise<LedgerEntry[]> {
    const doc = await readJsonStateFile(this.path, { maxBytes: MAX_LEDGER_FILE_BYTES, ioCode: 'TB_ERR_JOIN_LEDGER_IO', invalid: (why) => bad(this.path, why) });
    return doc === undefined ? [] : parseLedgerDocument(doc, this.path);
  }

  /** Write `entries` atomically (0600). Resolves when this write (and every earlier one) is on disk. */
  save(entries: readonly LedgerEntry[]): Promise<void> {
    const data = encodeLedgerDocument(entries);
    const run = this.#chain.then(async () => {
      try {
        await writeFileAtomic(dirname(this.path), this.path, data);
      } catch (e) {
        throw new TorbalanceError('TB_ERR_JOIN_LEDGER_IO', 'config', `cannot write ${this.path}: ${e instanceof TorbalanceError ? e.message : String(e)}`, { cause: e });
      }
      await syncDirectory(dirname(this.path));
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }
}
