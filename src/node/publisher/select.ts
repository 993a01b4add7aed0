/**
 * Which intro points go into the merged descriptor (tor-facts §2.8: at most 20, or every
 * client rejects the descriptor with BAD_DESC; §5: clients pick uniformly among usable intro
 * points, so a node's share of new rendezvous ≈ its share of listed intro points).
 *
 * {@link selectIntroPoints} is deterministic and independent of input order:
 * 1. nodes are taken in ascending `id` order; each node's points are de-duplicated (by auth
 *    key, the intro point's identity) and sorted by their canonical line (auth key first);
 *    a point listed by two nodes counts for the lower id only;
 * 2. slots are dealt round-robin: one per node per round, skipping exhausted nodes, until
 *    `max` slots are filled or every point is taken. So every node gets
 *    min(own points, ⌊max/n⌋) at least, nodes' counts differ by at most one unless a node
 *    runs out, and spare slots flow to nodes that have more points;
 * 3. the result lists the chosen points round by round (node order inside a round).
 *
 * Stability: a node's chosen points are the first k of its own sorted list, where k depends
 * only on the nodes' point counts. Replacing one point of a node (same count) changes at most
 * one chosen point; other nodes' choices change only when the counts change, so small
 * changes do not churn the whole descriptor.
 */
import { TorbalanceError } from '../../core/errors.js';
import { MAX_INTRO_POINTS } from '../../core/hsdesc/inner.js';
import { introPointLine, type IntroPointWire } from './wire.js';

/** One node's intro points as input to the selection. */
export interface NodeIntroPoints {
  readonly id: string;
  readonly introPoints: readonly IntroPointWire[];
}

/** tor's cap on intro points per descriptor (HS_CONFIG_V3_MAX_INTRO_POINTS). */
export const DEFAULT_MAX_INTRO_POINTS = MAX_INTRO_POINTS;

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Chosen intro points with the node each came from.
 * @throws TorbalanceError `TB_ERR_PUBLISHER_ARG` if `max` is not an integer in 1..20.
 */
export function selectIntroPointsByNode(
  nodes: readonly NodeIntroPoints[],
  max: number = DEFAULT_MAX_INTRO_POINTS,
): { readonly nodeId: string; readonly point: IntroPointWire }[] {
  if (!Number.isSafeInteger(max) || max < 1 || max > MAX_INTRO_POINTS) {
    throw new TorbalanceError('TB_ERR_PUBLISHER_ARG', 'input', `max intro points must be 1..${MAX_INTRO_POINTS}`);
  }
  const sortedNodes = [...nodes].sort((a, b) => cmp(a.id, b.id));
  const seen = new Set<string>();
  const lists: { id: string; points: IntroPointWire[] }[] = [];
  for (const n of sortedNodes) {
    const pts = [...n.introPoints].sort((a, b) => cmp(introPointLine(a), introPointLine(b)));
    const mine: IntroPointWire[] = [];
    for (const p of pts) {
      if (seen.has(p.authKey)) continue;
      seen.add(p.authKey);
      mine.push(p);
    }
    if (mine.length > 0) lists.push({ id: n.id, points: mine });
  }
  const out: { nodeId: string; point: IntroPointWire }[] = [];
  for (let round = 0; out.length < max; round++) {
    let any = false;
    for (const l of lists) {
      const p = l.points[round];
      if (p === undefined) continue;
      any = true;
      out.push({ nodeId: l.id, point: p });
      if (out.length === max) break;
    }
    if (!any) break;
  }
  return out;
}

/** The intro points for the merged descriptor: fair share per node, ≤ `max`, deterministic. */
export function selectIntroPoints(nodes: readonly NodeIntroPoints[], max: number = DEFAULT_MAX_INTRO_POINTS): IntroPointWire[] {
  return selectIntroPointsByNode(nodes, max).map((x) => x.point);
}
