/** Why a visitor connection was refused: over a connection limit, per-circuit limit, bad PROXY header, or the proxy is stopping. */
export const REJECT_REASONS = ['limit', 'per-circuit', 'proxy-header', 'stopping'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Counters of one ReverseProxy (see {@link ReverseProxy.stats}). */
export interface ProxyStats {
  readonly open: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly requests: number;
  readonly byStatus: Readonly<Record<string, number>>;
  /** Rejections by reason ({@link REJECT_REASONS}), when counted with {@link countRejected}. */
  readonly rejectedBy?: Readonly<Record<string, number>>;
}

/** The mutable counters behind {@link ProxyStats}. */
export interface MutableStats {
  open: number;
  accepted: number;
  rejected: number;
  bytesIn: number;
  bytesOut: number;
  requests: number;
  byStatus: Record<string, number>;
  rejectedBy: Record<string, number>;
}

export function newStats(): MutableStats {
  return { open: 0, accepted: 0, rejected: 0, bytesIn: 0, bytesOut: 0, requests: 0, byStatus: {}, rejectedBy: {} };
}

export function countStatus(s: MutableStats, status: number): void {
  const k = String(status);
  s.byStatus[k] = (s.byStatus[k] ?? 0) + 1;
}

/** Count a rejected visitor connection (`rejected` and `rejectedBy[reason]`). */
export function countRejected(s: MutableStats, reason: RejectReason): void {
  s.rejected++;
  s.rejectedBy[reason] = (s.rejectedBy[reason] ?? 0) + 1;
}
