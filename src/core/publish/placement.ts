/**
 * Which descriptor goes to which HSDir (docs/DESIGN.md "Placement: PoW and more than 20 intro
 * points"). Pure policy: the publisher computes one {@link Placement} per descriptor (period)
 * and sends each group's descriptor with `HSPOST SERVER=` to that group's HSDirs only.
 *
 * A client fetches a descriptor from one HSDir picked at random among the `hsdir_spread_fetch`
 * first of each replica (the "fetch HSDirs", 6 of the 8 that store it), so different HSDirs may
 * hold different descriptors of the same address and period: each is a complete, valid
 * descriptor, and a client sees exactly one of them.
 *
 * Three modes:
 * - `merged`: every HSDir gets the one merged descriptor (≤ `max` intro points, fair share per
 *   node, no `pow-params`). Most robust: a client whose intro point's node died retries
 *   another node's point in the same descriptor.
 * - `spread`: the nodes have more intro points than one descriptor holds. Every HSDir gets a
 *   merged descriptor of all nodes, but HSDir j (in ring order, fetch HSDirs first) deals from
 *   node offset j and each node prefers its points listed least often in the variants before
 *   (`selectIntroPointsByNode` with `offset` and `preference`), so the variants differ and
 *   together list more than `max` points — every point, when the HSDirs have room — while
 *   each still lists every node that fits.
 * - `per-node`: each HSDir gets ONE node's intro points with THAT node's `pow-params` (its tor's
 *   seed; a PoW solution verifies only at the node whose seed it used and only on intro points
 *   of the descriptor's own period, tor-facts §3.3). Fetch HSDirs are dealt round-robin to the
 *   nodes (sorted by id, starting at `periodNum mod n` so that, when there are more nodes than
 *   fetch HSDirs, a different subset waits each period), then the store-only HSDirs. A node's
 *   `pow-params` that expire within `powMarginSeconds` (default {@link POW_EXPIRY_MARGIN_SECONDS}) are left out (a client
 *   treats a descriptor with expired pow-params as unusable and refetches it forever).
 *
 * `auto` picks `per-node` when PoW is published (`powEnabled`) and any node's suggested effort
 * is above 0 (an attack is on: the puzzle matters more than one-descriptor failover), else
 * `spread` when the nodes' distinct intro points exceed `max`, else `merged`.
 */
import { introDigest, type IntroPointWire, type PowParamsWire } from '../intro/wire.js';
import { selectIntroPointsByNode, type NodeIntroPoints } from './select.js';

/** The operator's choice (`cluster.publish.placement`). */
export type PlacementSetting = 'auto' | 'merged' | 'per-node';
export type PlacementMode = 'merged' | 'spread' | 'per-node';

/** pow-params that expire sooner than this are not published. */
export const POW_EXPIRY_MARGIN_SECONDS = 120;

/** One node's intro points for the descriptor's period, with its tor's current pow-params. */
export interface PlacementNode extends NodeIntroPoints {
  readonly pow?: PowParamsWire | undefined;
}

export interface PlacementInput {
  /** The descriptor's responsible HSDirs (upload set), in ring order. */
  readonly hsdirs: readonly string[];
  /** Those among them that clients fetch from. */
  readonly fetchHsdirs: ReadonlySet<string>;
  readonly nodes: readonly PlacementNode[];
  readonly max: number;
  readonly setting: PlacementSetting;
  /** Publish pow-params at all (the operator enabled PoW). */
  readonly powEnabled: boolean;
  readonly periodNum: number;
  /** Wall clock, unix seconds (pow-params expiry). */
  readonly nowSeconds: number;
  /** pow-params expiring sooner are left out. Default {@link POW_EXPIRY_MARGIN_SECONDS}. */
  readonly powMarginSeconds?: number;
}

/** One descriptor of a placement and the HSDirs that get it. */
export interface PlacementGroup {
  readonly servers: readonly string[];
  readonly chosen: readonly { readonly nodeId: string; readonly point: IntroPointWire }[];
  /** pow-params of the (single) node whose points these are, `per-node` only. */
  readonly pow?: { readonly nodeId: string; readonly params: PowParamsWire } | undefined;
  /** {@link introDigest} of the chosen points. */
  readonly digest: string;
}

export interface Placement {
  readonly mode: PlacementMode;
  readonly groups: readonly PlacementGroup[];
  /** Nodes with points for this period that no fetch HSDir lists (per-node with more nodes than fetch HSDirs). */
  readonly unplaced: readonly string[];
  /** Equal iff the same descriptors would go to the same HSDirs. */
  readonly key: string;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function distinctPoints(nodes: readonly PlacementNode[]): number {
  const s = new Set<string>();
  for (const n of nodes) for (const p of n.introPoints) s.add(p.authKey);
  return s.size;
}

function usablePow(n: PlacementNode, nowSeconds: number, margin: number | undefined): PowParamsWire | undefined {
  return n.pow !== undefined && n.pow.expires > nowSeconds + (margin ?? POW_EXPIRY_MARGIN_SECONDS) ? n.pow : undefined;
}

/** The mode `auto` (or the setting) gives for these nodes. */
export function placementMode(input: Pick<PlacementInput, 'nodes' | 'max' | 'setting' | 'powEnabled' | 'nowSeconds' | 'powMarginSeconds'>): PlacementMode {
  if (input.setting === 'merged') return 'merged';
  if (input.setting === 'per-node') return 'per-node';
  if (input.powEnabled && input.nodes.some((n) => (usablePow(n, input.nowSeconds, input.powMarginSeconds)?.effort ?? 0) > 0)) return 'per-node';
  return distinctPoints(input.nodes) > input.max ? 'spread' : 'merged';
}

function group(servers: string[], chosen: PlacementGroup['chosen'], pow?: PlacementGroup['pow']): PlacementGroup {
  return { servers, chosen, digest: introDigest(chosen.map((c) => c.point)), ...(pow === undefined ? {} : { pow }) };
}

/** Plan one descriptor's placement; see the module doc. Groups are in the order of their first HSDir. */
export function planPlacement(input: PlacementInput): Placement {
  const mode = placementMode(input);
  const nodes = input.nodes.filter((n) => n.introPoints.length > 0);
  const groups: PlacementGroup[] = [];
  let unplaced: string[] = [];
  if (nodes.length === 0 || input.hsdirs.length === 0) {
    // Nothing to place.
  } else if (mode === 'merged') {
    groups.push(group([...input.hsdirs], selectIntroPointsByNode(nodes, input.max)));
  } else if (mode === 'spread') {
    const byDigest = new Map<string, { servers: string[]; chosen: PlacementGroup['chosen'] }>();
    const listed = new Map<string, number>();
    const order = [...input.hsdirs.filter((fp) => input.fetchHsdirs.has(fp)), ...input.hsdirs.filter((fp) => !input.fetchHsdirs.has(fp))];
    for (const [j, fp] of order.entries()) {
      const chosen = selectIntroPointsByNode(nodes, input.max, { offset: j, preference: (p) => listed.get(p.authKey) ?? 0 });
      for (const c of chosen) listed.set(c.point.authKey, (listed.get(c.point.authKey) ?? 0) + 1);
      const d = introDigest(chosen.map((c) => c.point));
      const g = byDigest.get(d);
      if (g === undefined) byDigest.set(d, { servers: [fp], chosen });
      else g.servers.push(fp);
    }
    for (const g of byDigest.values()) groups.push(group(g.servers, g.chosen));
  } else {
    const sorted = [...nodes].sort((a, b) => cmp(a.id, b.id));
    const n = sorted.length;
    const start = ((input.periodNum % n) + n) % n;
    const fetch = input.hsdirs.filter((fp) => input.fetchHsdirs.has(fp));
    const storeOnly = input.hsdirs.filter((fp) => !input.fetchHsdirs.has(fp));
    const owner = new Map<string, PlacementNode>();
    for (const [j, fp] of [...fetch, ...storeOnly].entries()) owner.set(fp, sorted[(start + j) % n]!);
    const reached = new Set(fetch.map((fp) => owner.get(fp)!.id));
    unplaced = sorted.filter((x) => !reached.has(x.id)).map((x) => x.id);
    const byNode = new Map<string, string[]>();
    for (const fp of input.hsdirs) {
      const id = owner.get(fp)!.id;
      const list = byNode.get(id);
      if (list === undefined) byNode.set(id, [fp]);
      else list.push(fp);
    }
    for (const [id, servers] of byNode) {
      const node = sorted.find((x) => x.id === id)!;
      const pow = input.powEnabled ? usablePow(node, input.nowSeconds, input.powMarginSeconds) : undefined;
      groups.push(group(servers, selectIntroPointsByNode([node], input.max), pow === undefined ? undefined : { nodeId: id, params: pow }));
    }
  }
  const key = `${mode}|${groups
    .map((g) => `${g.servers.join(',')}=${g.digest}${g.pow === undefined ? '' : `/${g.pow.nodeId}:${g.pow.params.seed}:${g.pow.params.effort}:${g.pow.params.expires}`}`)
    .join(';')}`;
  return { mode, groups, unplaced, key };
}
