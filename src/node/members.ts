/**
 * The node allowlist service (docs/SECURITY.md "One member", docs/OPERATIONS.md "Node
 * membership"): keeps `<data_dir>/members.json`, merges the `members` gossip
 * (MeshNode.onMembers; merge rule src/core/mesh/members.ts `mergeMembers`: removed > member,
 * enforced is sticky), and hands the result to the mesh (MeshNode.setMembers), which refuses
 * nodes that are not allowed.
 *
 * - `admit(id)`: the join service calls it when it redeems a token (before the bundle is sent),
 *   so the joiner is a member before it first connects.
 * - `add(id)`, `remove(id)`, `enforce()`: the admin routes behind `torbalance node add|remove|
 *   enforce`. `enforce()` first adds this node and every peer it sees alive, so enforcing on
 *   a healthy cluster locks out nobody that is running.
 * - Every local change is persisted (atomic, 0600, fsynced) before it is gossiped. The file is
 *   `{"version":1,"enforced":bool,"entries":[…]}`, read with `O_NOFOLLOW`, size-bounded and
 *   strictly validated: a malformed file stops the node (`TB_ERR_MEMBERS`) rather than forget
 *   removals; a missing file is an empty, not enforced ledger (a node upgraded from a version
 *   without the allowlist).
 */
import { dirname, join } from 'node:path';
import type { AdminRoute } from '../adapters/admin/server.js';
import { readJsonStateFile, syncDirectory, writeFileAtomic } from '../adapters/fs/key-store.js';
import type { Logger } from '../adapters/log/logger.js';
import { utf8 } from '../core/bytes.js';
import { DecodeError, TorbalanceError } from '../core/errors.js';
import { EMPTY_MEMBERS, memberEntry, mergeMembers, sameMembers, validateMembers, type MemberEntry, type MembersLedger } from '../core/mesh/members.js';

/** File name of the allowlist in `node.data_dir`. */
export const MEMBERS_FILE_NAME = 'members.json';
/** Largest allowlist file read (512 entries of ~110 bytes fit easily). */
export const MAX_MEMBERS_FILE_BYTES = 128 * 1024;

const ID_RE = /^[0-9a-f]{32}$/;

function badFile(path: string, why: string): DecodeError {
  return new DecodeError('TB_ERR_MEMBERS', `${path} is not a torbalance node allowlist: ${why}`);
}

/** Parse the file's JSON document (strict). */
export function parseMembersDocument(doc: unknown, path = 'members'): MembersLedger {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badFile(path, 'not a JSON object');
  const o = doc as Record<string, unknown>;
  if (o['version'] !== 1) throw badFile(path, 'unknown version');
  const { version: _v, ...rest } = o;
  try {
    return mergeMembers(EMPTY_MEMBERS, validateMembers(rest, 'members'));
  } catch (e) {
    throw badFile(path, e instanceof Error ? e.message : 'invalid');
  }
}

/** The part of MeshNode the service uses. */
export interface MembersGossip {
  setMembers(ledger: MembersLedger): void;
  onMembers(cb: (ledger: MembersLedger, fromNodeId: string) => void): () => void;
  /** Ids of the peers seen alive now (for `enforce`). */
  alivePeers(): readonly string[];
}

export interface MembersServiceOptions {
  readonly dataDir: string;
  readonly nodeId: string;
  readonly logger: Logger;
  /** Unix ms; default Date.now. */
  readonly now?: () => number;
}

function bad(status: number, code: string, message: string): { status: number; json: unknown } {
  return { status, json: { error: { code, message } } };
}

/** See the module doc. */
export class MembersService {
  readonly path: string;
  readonly #o: MembersServiceOptions;
  #ledger: MembersLedger = EMPTY_MEMBERS;
  #mesh: MembersGossip | undefined;
  #off: (() => void) | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(o: MembersServiceOptions) {
    this.#o = o;
    this.path = join(o.dataDir, MEMBERS_FILE_NAME);
  }

  /** The current ledger. */
  ledger(): MembersLedger {
    return this.#ledger;
  }

  /** Load the file (throws on a malformed one), hand it to the mesh and follow its gossip. */
  async start(mesh: MembersGossip): Promise<void> {
    this.#ledger = await this.#load();
    this.#mesh = mesh;
    mesh.setMembers(this.#ledger);
    this.#off = mesh.onMembers((ledger) => {
      void this.#serial(() => this.#merge(ledger, 'gossip')).catch((e: unknown) => {
        this.#o.logger.error({ err: e instanceof TorbalanceError ? e.code : String(e) }, 'cannot store the node allowlist from gossip');
      });
    });
  }

  stop(): void {
    this.#off?.();
    this.#off = undefined;
    this.#mesh = undefined;
  }

  /** Record a joiner as a member (the join service, before it sends the bundle). */
  admit(id: string): Promise<void> {
    return this.#serial(() => this.#merge({ enforced: false, entries: [this.#entry(id, 'member')] }, 'join'));
  }

  /** Add a node (`torbalance node add`). Returns its entry after the change (a removed id stays removed). */
  async add(id: string): Promise<MemberEntry> {
    await this.#serial(() => this.#merge({ enforced: false, entries: [this.#entry(id, 'member')] }, 'add'));
    return memberEntry(this.#ledger, id)!;
  }

  /** Remove a node for good (`torbalance node remove`): every node refuses it from now on. */
  async remove(id: string): Promise<MemberEntry> {
    await this.#serial(() => this.#merge({ enforced: false, entries: [this.#entry(id, 'removed')] }, 'remove'));
    return memberEntry(this.#ledger, id)!;
  }

  /** Enforce the allowlist cluster-wide (`torbalance node enforce`); adds this node and the peers alive now first. */
  async enforce(): Promise<MembersLedger> {
    const ids = [this.#o.nodeId, ...(this.#mesh?.alivePeers() ?? [])];
    await this.#serial(() => this.#merge({ enforced: true, entries: ids.map((id) => this.#entry(id, 'member')) }, 'enforce'));
    return this.#ledger;
  }

  /** `GET /nodes`, `POST /nodes/add {id}`, `POST /nodes/remove {id}`, `POST /nodes/enforce`. */
  adminRoutes(): AdminRoute[] {
    const idRoute = (path: string, run: (id: string) => Promise<MemberEntry>): AdminRoute => ({
      method: 'POST',
      path,
      handler: async (req) => {
        const b = req.body as Record<string, unknown> | undefined;
        const id = b?.['id'];
        if (typeof id !== 'string' || !ID_RE.test(id)) return bad(400, 'TB_ERR_MEMBERS_ID', 'expected {"id": "<node id: 32 hex characters>"}');
        try {
          return { status: 200, json: { node: await run(id) } };
        } catch (e) {
          return bad(503, e instanceof TorbalanceError ? e.code : 'TB_ERR_MEMBERS_IO', e instanceof Error ? e.message : 'cannot change the allowlist');
        }
      },
    });
    return [
      // Names every node id of the cluster: over TCP only with the bearer secret, like the token list.
      { method: 'GET', path: '/nodes', privileged: true, handler: () => ({ status: 200, json: { self: this.#o.nodeId, ...this.#ledger } }) },
      idRoute('/nodes/add', (id) => this.add(id)),
      idRoute('/nodes/remove', (id) => this.remove(id)),
      {
        method: 'POST',
        path: '/nodes/enforce',
        handler: async () => {
          try {
            return { status: 200, json: { self: this.#o.nodeId, ...(await this.enforce()) } };
          } catch (e) {
            return bad(503, e instanceof TorbalanceError ? e.code : 'TB_ERR_MEMBERS_IO', e instanceof Error ? e.message : 'cannot enforce the allowlist');
          }
        },
      },
    ];
  }

  #entry(id: string, state: MemberEntry['state']): MemberEntry {
    return { id, state, at: Math.floor((this.#o.now ?? Date.now)() / 1000), by: this.#o.nodeId };
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Merge, persist (if changed), then hand to the mesh (which gossips it). */
  async #merge(other: MembersLedger, why: string): Promise<void> {
    const next = mergeMembers(this.#ledger, other);
    if (sameMembers(next, this.#ledger)) return;
    await this.#save(next);
    const before = this.#ledger;
    this.#ledger = next;
    for (const e of next.entries) {
      const old = memberEntry(before, e.id);
      if (old?.state !== e.state) this.#o.logger.info({ node: e.id, state: e.state, by: e.by, why }, 'node allowlist changed');
    }
    if (next.enforced && !before.enforced) this.#o.logger.info({ why }, 'node allowlist enforced');
    this.#mesh?.setMembers(next);
  }

  async #load(): Promise<MembersLedger> {
    const doc = await readJsonStateFile(this.path, { maxBytes: MAX_MEMBERS_FILE_BYTES, ioCode: 'TB_ERR_MEMBERS_IO', invalid: (why) => badFile(this.path, why) });
    return doc === undefined ? EMPTY_MEMBERS : parseMembersDocument(doc, this.path);
  }

  async #save(ledger: MembersLedger): Promise<void> {
    const data = utf8(`${JSON.stringify({ version: 1, ...ledger })}\n`);
    try {
      await writeFileAtomic(dirname(this.path), this.path, data);
    } catch (e) {
      throw new TorbalanceError('TB_ERR_MEMBERS_IO', 'config', `cannot write ${this.path}: ${e instanceof TorbalanceError ? e.message : String(e)}`, { cause: e });
    }
    await syncDirectory(dirname(this.path));
  }
}
