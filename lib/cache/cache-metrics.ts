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
    // The first bucket whose bound holds the sample; past the last bound, the overflow (+Inf) bucket.
    let i = 0;
    for (const bound of LATENCY_BUCKETS_MS) {
      if (ms <= bound) break;
      i += 1;
    }
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count += 1;
    this.sum += ms;
  }

  snapshot(): LatencySnapshot {
    return { counts: [...this.counts], count: this.count, sumMs: this.sum };
  }
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
