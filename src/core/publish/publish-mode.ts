/**
 * Who publishes the master address, as a pure state machine (src/node/cluster.ts wires it to
 * the mesh view, tor's publish mode and the publisher; docs/DESIGN.md "How the sets are
 * published").
 *
 * - **Clustered** while the mesh view has a live peer (`alive` or `suspect`): tor must not
 *   upload its own descriptors (`PublishHidServDescriptors 0`), and the elected publisher
 *   posts merged descriptors of every healthy node with intro points (itself included).
 * - **Alone** once no peer is live: tor publishes for itself, as a single node does — but only
 *   after the view has stayed without a live peer for `graceMs` (the "alone grace": a stalled
 *   event loop or a short mesh outage must not flip tor's publish mode back and forth, each
 *   flip being a SETCONF that also redraws PoW seeds). No grace when every peer said goodbye
 *   (mesh `leave`) or was never seen (`known`): that is no stall artefact.
 *
 * {@link stepPublishMode} takes the previous state and the current view and returns the new
 * state, whether tor's publish mode must be set (and to what), when to look again (the end of
 * the grace), and the nodes to publish for (`null`: do not publish).
 */
import type { NodeIntroSets } from './rotation.js';

/** A node as the policy sees it (self or a peer). */
export interface PublishModeNode extends NodeIntroSets {
  readonly healthy: boolean;
}

/** A peer: its mesh state and its sets. */
export interface PublishModePeer extends PublishModeNode {
  readonly state: 'known' | 'alive' | 'suspect' | 'dead' | 'left';
}

export interface PublishModeState {
  /** tor's publish mode as last decided: clustered (the cluster publishes) or alone (tor does). */
  readonly clustered: boolean;
  /** When the view was first seen without a live peer while clustered (grace start). */
  readonly aloneSinceMs: number | undefined;
}

export const INITIAL_PUBLISH_MODE: PublishModeState = { clustered: false, aloneSinceMs: undefined };

export interface PublishModeInput {
  readonly nowMs: number;
  readonly graceMs: number;
  readonly self: PublishModeNode;
  readonly peers: readonly PublishModePeer[];
  readonly selfIsPublisher: boolean;
  /** Set tor's mode even if unchanged (start-up, or after a failed switch). */
  readonly forceMode: boolean;
}

/** What to do: hold everything (alone grace), or apply the mode and the publisher input. */
export type PublishModeStep =
  | {
      readonly kind: 'hold';
      readonly state: PublishModeState;
      /** Step again at this time (the end of the grace), if nothing else happens first. */
      readonly recheckAtMs: number;
    }
  | {
      readonly kind: 'apply';
      readonly state: PublishModeState;
      /** Set tor's publish mode to this (true: the cluster publishes); undefined: leave it. */
      readonly setClustered: boolean | undefined;
      /** Nodes to publish for (self first, then live peers in view order); `null`: do not publish. */
      readonly publish: readonly NodeIntroSets[] | null;
    };

function sets(n: PublishModeNode): NodeIntroSets {
  return { id: n.id, introPoints: n.introPoints, currentKey: n.currentKey, rotationSafe: n.rotationSafe, next: n.next, pow: n.pow };
}

const hasSets = (n: PublishModeNode): boolean => n.healthy && (n.introPoints.length > 0 || n.next !== undefined);

/** One step; see the module doc. */
export function stepPublishMode(prev: PublishModeState, input: PublishModeInput): PublishModeStep {
  const live = input.peers.filter((p) => p.state === 'alive' || p.state === 'suspect');
  const clustered = live.length > 0;
  if (!clustered && prev.clustered && !input.peers.every((p) => p.state === 'left' || p.state === 'known')) {
    const since = prev.aloneSinceMs ?? input.nowMs;
    if (input.nowMs - since < input.graceMs) return { kind: 'hold', state: { clustered: true, aloneSinceMs: since }, recheckAtMs: since + input.graceMs };
  }
  let publish: NodeIntroSets[] | null = null;
  if (clustered && input.selfIsPublisher) {
    publish = [input.self, ...live].filter(hasSets).map(sets);
    if (publish.length === 0) publish = null;
  }
  return {
    kind: 'apply',
    state: { clustered, aloneSinceMs: undefined },
    setClustered: clustered !== prev.clustered || input.forceMode ? clustered : undefined,
    publish,
  };
}
