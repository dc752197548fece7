import type { RttSample } from '../../protocol/connection-state.js';

/** Nearest-rank percentile of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? null;
}

export interface LatencySummary {
  p50: number | null;
  p95: number | null;
  samples: number;
}

/** p50 and p95 of the heartbeat round trips within the last `windowMs` before `now`. */
export function latencySummary(samples: readonly RttSample[], now: number, windowMs = 15 * 60_000): LatencySummary {
  const recent = samples.filter((s) => s.at >= now - windowMs).map((s) => s.rtt_ms);
  return { p50: percentile(recent, 50), p95: percentile(recent, 95), samples: recent.length };
}
