/** Upper bounds (ms) of the latency buckets; the last bucket is everything slower. */
export const LATENCY_BUCKETS_MS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] as const;

export interface LatencySnapshot {
  /** Counts per bucket of LATENCY_BUCKETS_MS, plus one for slower (not cumulative). */
  counts: number[];
  count: number;
  sumMs: number;
}

/** A fixed-bucket latency histogram: constant memory, cheap to record, Prometheus-shaped. */
export class LatencyHistogram {
  private readonly counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  private count = 0;
  private sum = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i += 1;
    this.counts[i]! += 1;
    this.count += 1;
    this.sum += ms;
  }

  snapshot(): LatencySnapshot {
    return { counts: [...this.counts], count: this.count, sumMs: this.sum };
  }
}

/** Estimated percentile (upper bound of the bucket it falls in), ms; null with no samples. */
export function histogramPercentile(snapshot: LatencySnapshot, p: number): number | null {
  if (snapshot.count === 0) return null;
  const rank = Math.ceil((p / 100) * snapshot.count);
  let seen = 0;
  for (let i = 0; i < snapshot.counts.length; i += 1) {
    seen += snapshot.counts[i]!;
    if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

export interface TierCounters {
  hits: number;
  misses: number;
  errors: number;
  latency: LatencyHistogram;
}

export function tierCounters(): TierCounters {
  return { hits: 0, misses: 0, errors: 0, latency: new LatencyHistogram() };
}
