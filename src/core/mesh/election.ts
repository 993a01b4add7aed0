/**
 * Publisher election: pure, deterministic, lease-based (cluster contract, "Election").
 * Every node runs {@link electPublisher} on its own view (after every membership change and
 * on every heartbeat tick) and publishes iff `selfShouldPublish`.
 *
 * ## Rules
 *
 * 1. **Rank** is a total order on nodes, independent of any view: higher `priority` first,
 *    then the lexicographically lowest `nodeId` (ids are fixed-length lowercase hex, so this is
 *    byte order). {@link outranks}.
 * 2. **Eligible**: self is eligible iff healthy and it has intro points; a peer is eligible iff
 *    its state is `alive`, its last heartbeat said healthy and we hold its intro points
 *    (non-empty). Suspect, dead, left and known peers are never eligible.
 * 3. **Winner** W = the highest-ranked eligible node of the view (self included), or none.
 * 4. **Respected leases**: a peer's lease (its own claim, carried in its heartbeat or a `lease`
 *    message, converted to our clock by Membership) is respected iff it is unexpired
 *    (`leaseUntilMs > now`), the holder is `alive` or `suspect`, and its last heartbeat said
 *    healthy. Leases of dead, left or unhealthy holders are ignored.
 * 5. **Decision** for self S:
 *    - S ≠ W → S does not publish and holds no lease (it releases one it had: it stops
 *      advertising it, which peers see at S's next heartbeat or `lease` message).
 *    - S = W and S holds no unexpired lease → S publishes iff there is no respected lease.
 *      Otherwise it waits (`waiting-for-lease`).
 *    - S = W and S holds an unexpired lease (it is the incumbent) → S keeps publishing unless a
 *      respected lease is held by a node that outranks S.
 *    - Publishing means claiming/renewing the lease: `leaseUntilMs = now + leaseMs`, advertised
 *      in every heartbeat (and optionally at once in a `lease` message).
 * 6. **Conflicting leases** (two nodes both hold one, e.g. after a partition heals or a
 *    simultaneous start): the higher-ranked holder keeps its lease, the lower-ranked one sees
 *    a respected lease of a node that outranks it and steps down at once. A non-winner always
 *    steps down. So a conflict lasts at most one heartbeat exchange.
 *
 * ## Properties (proved below, checked by test/property/mesh.test.ts)
 *
 * - **Same view, same winner**: W depends only on the set of (id, priority, eligibility).
 * - **Alone**: a healthy node with intro points and no eligible peers and no respected lease
 *   elects itself.
 * - **At most one publisher** once every pair of live eligible nodes sees each other as eligible
 *   (one heartbeat plus delivery after the last change, without partitions): if A and B both
 *   publish, A = W_A outranks B (B is eligible in A's view) and B = W_B outranks A — impossible
 *   since rank is a total order. Leases only ever block publishing, never enable it.
 * - **Failover bound**: if the publisher P crashes at t0 (last heartbeat sent at ≥ t0 − hb,
 *   delivered after δ), the next winner S publishes by
 *   t0 + hb + δ + τ + max(suspectAfterMs, min(deadAfterMs, leaseMs)), where τ is the tick
 *   period: P stops being eligible when it turns suspect, and its lease stops blocking when it
 *   expires or P turns dead. With hb + δ + τ ≤ leaseMs (true for the defaults) this is within
 *   **leaseMs + deadAfterMs**. An unhealthy publisher (its heartbeat says so) is replaced as soon
 *   as that heartbeat arrives (its lease is ignored); a leaving one as soon as `leave` arrives.
 * - **Handover to a better node** (higher priority joins): the incumbent steps down when it sees
 *   the newcomer eligible; the newcomer starts when the incumbent's lease disappears from its
 *   next heartbeat — a gap of at most one heartbeat plus delivery, never an overlap.
 *
 * Two publishers at once remain harmless (both publish valid descriptors; HSDirs keep the higher
 * OPE revision counter); the lease only keeps it rare.
 */
/** Default lease length. */
export const DEFAULT_LEASE_MS = 15_000;

/** What the election needs to know about a node. */
export interface CandidateInfo {
  readonly id: string;
  readonly priority: number;
  readonly healthy: boolean;
  /** We hold this node's intro points (non-empty). */
  readonly hasIntroPoints: boolean;
}

/**
 * A peer as the election sees it (Membership.electionPeers builds these). Only peers that are
 * `alive` or `suspect` in the membership can matter (a candidate must be alive; a suspect one's
 * lease still blocks), so no other state reaches the election.
 */
export interface PeerCandidate extends CandidateInfo {
  readonly state: 'alive' | 'suspect';
  /** The peer's lease expiry in OUR clock (unix ms), if it claims one. */
  readonly leaseUntilMs?: number | undefined;
}

export interface ElectionInput {
  /** Self; `leaseUntilMs` is the lease self currently holds (the last result's `leaseUntilMs`). */
  readonly self: CandidateInfo & { readonly leaseUntilMs?: number | undefined };
  readonly peers: readonly PeerCandidate[];
  readonly nowMs: number;
  /** Lease length (default DEFAULT_LEASE_MS). */
  readonly leaseMs?: number;
}

export type ElectionReason =
  /** Self is the winner and starts publishing (claims the lease). */
  | 'elected'
  /** Self is the winner and already holds the lease (renews it). */
  | 'renewed'
  /** Self is the winner but a respected lease of another node blocks it. */
  | 'waiting-for-lease'
  /** Another node is the winner. */
  | 'other-winner'
  /** Self is unhealthy or has no intro points; another node (or none) wins. */
  | 'self-ineligible'
  /** No eligible node at all. */
  | 'no-candidates';

export interface ElectionResult {
  /** The winner W of this view (it may still be waiting for a lease), or undefined. */
  readonly publisher: string | undefined;
  readonly selfShouldPublish: boolean;
  /** The lease self holds after this decision (advertise it), or undefined (release). */
  readonly leaseUntilMs: number | undefined;
  /** The respected foreign lease that blocks self (reason 'waiting-for-lease' or a conflict). */
  readonly blockingLease?: { readonly holder: string; readonly untilMs: number } | undefined;
  /** The respected lease of another node, if any (best-ranked holder): who is publishing now. */
  readonly leaseHolder: string | undefined;
  readonly reason: ElectionReason;
}

/** True if `a` ranks above `b`: higher priority, then lower nodeId. */
export function outranks(a: { readonly id: string; readonly priority: number }, b: { readonly id: string; readonly priority: number }): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.id < b.id;
}

function best<T extends { readonly id: string; readonly priority: number }>(xs: readonly T[]): T | undefined {
  let top: T | undefined;
  for (const x of xs) if (top === undefined || outranks(x, top)) top = x;
  return top;
}

/** Run the election rules (module doc) on one node's view. Pure and deterministic. */
export function electPublisher(input: ElectionInput): ElectionResult {
  const { self, nowMs } = input;
  const leaseMs = input.leaseMs ?? DEFAULT_LEASE_MS;
  const peers = input.peers.filter((p) => p.id !== self.id);
  const selfEligible = self.healthy && self.hasIntroPoints;
  const candidates: CandidateInfo[] = peers.filter((p) => p.state === 'alive' && p.healthy && p.hasIntroPoints);
  if (selfEligible) candidates.push(self);
  const winner = best(candidates);
  const respected = peers.filter(
    (p): p is PeerCandidate & { leaseUntilMs: number } =>
      p.healthy && p.leaseUntilMs !== undefined && p.leaseUntilMs > nowMs,
  );
  const holder = best(respected);
  const base = { publisher: winner?.id, leaseHolder: holder?.id };
  if (winner === undefined) return { ...base, selfShouldPublish: false, leaseUntilMs: undefined, reason: 'no-candidates' };
  if (winner.id !== self.id) {
    return { ...base, selfShouldPublish: false, leaseUntilMs: undefined, reason: selfEligible ? 'other-winner' : 'self-ineligible' };
  }
  const incumbent = self.leaseUntilMs !== undefined && self.leaseUntilMs > nowMs;
  const blockers = incumbent ? respected.filter((p) => outranks(p, self)) : respected;
  const blocker = best(blockers);
  if (blocker !== undefined) {
    return {
      ...base,
      selfShouldPublish: false,
      leaseUntilMs: undefined,
      blockingLease: { holder: blocker.id, untilMs: blocker.leaseUntilMs },
      reason: 'waiting-for-lease',
    };
  }
  return { ...base, selfShouldPublish: true, leaseUntilMs: nowMs + leaseMs, reason: incumbent ? 'renewed' : 'elected' };
}
