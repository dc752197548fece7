import type { ConnectionState, ConnectionStats } from './connection-state.js';

export type QualityLevel = 'excellent' | 'good' | 'poor' | 'disconnected';

/**
 * Connection quality (Excellent / Good / Poor / Disconnected), from the most recent
 * heartbeats: their median round trip and the share that got no ack within one interval.
 * FarmLink aims at message latency under 100 ms, hence the first threshold.
 */
export const QUALITY_THRESHOLDS: QualityThresholds = {
  /** How many of the latest heartbeats are judged. */
  window: 10,
  excellent: { maxMedianRttMs: 100, maxLoss: 0 },
  good: { maxMedianRttMs: 300, maxLoss: 0.1 },
};

/** Typed as numbers, not literals: the panel words the rules from whatever values they are tuned to. */
export interface QualityThresholds {
  readonly window: number;
  readonly excellent: { readonly maxMedianRttMs: number; readonly maxLoss: number };
  readonly good: { readonly maxMedianRttMs: number; readonly maxLoss: number };
}

export interface Quality {
  level: QualityLevel;
  /** Median heartbeat round trip over the window, null before the first ack. */
  median_rtt_ms: number | null;
  /** Share of the window's heartbeats that were not acked within one interval, 0–1. */
  loss: number;
  /** Heartbeats judged (acked or lost). */
  samples: number;
}

export function connectionQuality(
  state: ConnectionState,
  stats: Pick<ConnectionStats, 'heartbeat_rtt' | 'heartbeat_lost'>,
): Quality {
  const { window, excellent, good } = QUALITY_THRESHOLDS;
  const outcomes = [
    ...stats.heartbeat_rtt.map((s): { at: number; rtt: number | null } => ({ at: s.at, rtt: s.rtt_ms })),
    ...stats.heartbeat_lost.map((at) => ({ at, rtt: null })),
  ]
    .sort((a, b) => a.at - b.at)
    .slice(-window);
  const acked = outcomes.flatMap((o) => (o.rtt === null ? [] : [o.rtt])).sort((a, b) => a - b);
  const median = medianOf(acked);
  const loss = outcomes.length === 0 ? 0 : (outcomes.length - acked.length) / outcomes.length;
  const base = { median_rtt_ms: median, loss, samples: outcomes.length };
  if (state.phase !== 'connected') return { level: 'disconnected', ...base };
  // Connected but nothing measured yet: the connection just registered, so say good rather than guess.
  if (median === null) return { level: outcomes.length === 0 ? 'good' : 'poor', ...base };
  if (median <= excellent.maxMedianRttMs && loss <= excellent.maxLoss) return { level: 'excellent', ...base };
  if (median <= good.maxMedianRttMs && loss <= good.maxLoss) return { level: 'good', ...base };
  return { level: 'poor', ...base };
}

/** The median of ascending values; null for none. */
function medianOf(sorted: readonly number[]): number | null {
  const upper = sorted[Math.floor(sorted.length / 2)];
  if (upper === undefined) return null;
  const lower = sorted.length % 2 ? upper : sorted[sorted.length / 2 - 1];
  return lower === undefined ? upper : (lower + upper) / 2;
}
