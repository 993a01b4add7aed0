/**
 * Which intro points go into the merged descriptor (tor-facts §2.8: at most 20, or every
 * client rejects the descriptor with BAD_DESC; §5: clients pick uniformly among usable intro
 * points, so a node's share of new rendezvous ≈ its share of listed intro points).
 *
 * {@link selectIntroPoints} is deterministic and independent of input order:
 * 1. nodes are taken in ascending `id` order; each node's points are de-duplicated (by auth
 *    key, the intro point's identity) and sorted by their canonical line (auth key first);
 *    a point listed by two nodes counts for the lower id only (a fallback: the mesh already
 *    drops a point whose auth key another node announced first, core/mesh/membership.ts
 *    "Intro-point ownership", so a member cannot displace a point by copying its key);
 * 2. slots are dealt round-robin: one per node per round, skipping exhausted nodes, until
 *    `max` slots are filled or every point is taken. So every node gets
 *    min(own points, ⌊max/n⌋) at least, nodes' counts differ by at most one unless a node
 *    runs out, and spare slots flow to nodes that have more points;
 * 3. **one intro point per relay**: on its turn a node skips its points on a relay (legacy
 *    RSA identity link specifier) that an earlier-dealt point already uses, and takes its
 *    next one. tor's client maps an intro circuit to an intro point by the relay it reached,
 *    taking the *first* point in the descriptor on that relay
 *    (`hs_client_setup_intro_circ_auth_key` → `find_desc_intro_point_by_legacy_id`), so a
 *    second point on the same relay is never introduced to: it gets the first point's
 *    INTRODUCE1. Once the first point's node is gone, every pick of the second one is a NACK
 *    charged to the first (already failed) point, and the live point is never marked failed —
 *    each visit that picks it pays a wasted intro circuit (docs/DESIGN.md "Losing a node");
 * 4. the result lists the chosen points round by round (node order inside a round).
 *
 * Per-HSDir placement (src/core/publish/placement.ts) gives each HSDir a different selection
 * when the nodes have more points than fit, with two options: `offset` rotates the nodes' order
 * after step 1 left by that many places, and `preference` orders each node's own points first
 * by its value (lower first; ties in canonical order). Without them this is the plain selection.
 *
 * Stability: a node's chosen points are the first k of its own sorted list (skipping points on
 * relays dealt before), where k depends only on the nodes' point counts. With the points on
 * distinct relays, replacing one point of a node (same count) changes at most one chosen
 * point, and other nodes' choices change only when the counts change, so small changes do not
 * churn the whole descriptor (a new point on a relay already in use can displace one more).
 */
import { fromBase64, toHex } from '../bytes.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { MAX_INTRO_POINTS } from '../hsdesc/inner.js';
import { decodeLinkSpecifiers, LS_LEGACY_ID } from '../hsdesc/link-specifiers.js';
import { introPointLine, type IntroPointWire } from '../intro/wire.js';

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
 * The relay an intro point is on, as tor's client matches it: the legacy RSA identity link
 * specifier (hex). A point whose list does not decode or has none is its own relay (its auth
 * key), so it never displaces another point; the descriptor builder rejects it later anyway.
 */
export function introPointRelay(p: IntroPointWire): string {
  try {
    const id = decodeLinkSpecifiers(fromBase64(p.ls)).find((l) => l.type === LS_LEGACY_ID);
    if (id !== undefined) return `rsa:${toHex(id.data)}`;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e; // not decodable: see above
  }
  return `auth:${p.authKey}`;
}

/**
 * Chosen intro points with the node each came from.
 * @throws TorbalanceError `TB_ERR_PUBLISHER_ARG` if `max` is not an integer in 1..20.
 */
export function selectIntroPointsByNode(
  nodes: readonly NodeIntroPoints[],
  max: number = DEFAULT_MAX_INTRO_POINTS,
  options: { readonly offset?: number; readonly preference?: (p: IntroPointWire) => number } = {},
): { readonly nodeId: string; readonly point: IntroPointWire }[] {
  const offset = options.offset ?? 0;
  const pref = options.preference;
  if (!Number.isSafeInteger(max) || max < 1 || max > MAX_INTRO_POINTS) {
    throw new TorbalanceError('TB_ERR_PUBLISHER_ARG', 'input', `max intro points must be 1..${MAX_INTRO_POINTS}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new TorbalanceError('TB_ERR_PUBLISHER_ARG', 'input', 'offset must be a non-negative integer');
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
    if (pref !== undefined) mine.sort((a, b) => pref(a) - pref(b)); // stable: ties keep canonical order
    if (mine.length > 0) lists.push({ id: n.id, points: mine });
  }
  if (offset > 0) lists.push(...lists.splice(0, offset % Math.max(1, lists.length)));
  const out: { nodeId: string; point: IntroPointWire }[] = [];
  const relays = new Set<string>();
  const cursor = lists.map(() => 0);
  while (out.length < max) {
    let any = false;
    for (const [i, l] of lists.entries()) {
      let p: IntroPointWire | undefined;
      while ((p = l.points[cursor[i]!]) !== undefined) {
        cursor[i] = cursor[i]! + 1;
        const relay = introPointRelay(p);
        if (relays.has(relay)) continue;
        relays.add(relay);
        break;
      }
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
