/** Counters of one ReverseProxy (see {@link ReverseProxy.stats}). */
export interface ProxyStats {
  readonly open: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly requests: number;
  readonly byStatus: Readonly<Record<string, number>>;
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
}

export function newStats(): MutableStats {
  return { open: 0, accepted: 0, rejected: 0, bytesIn: 0, bytesOut: 0, requests: 0, byStatus: {} };
}

export function countStatus(s: MutableStats, status: number): void {
  const k = String(status);
  s.byStatus[k] = (s.byStatus[k] ?? 0) + 1;
}
