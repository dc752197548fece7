/** Nearest-rank percentile of an ascending array (p in 0–100); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface Summary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summary of the finite values; non-finite ones (missing samples) are left out and not counted. */
export function summarize(values: ArrayLike<number>): Summary {
  const finite = Float64Array.from(Array.prototype.filter.call(values, Number.isFinite) as number[]).sort();
  let sum = 0;
  for (const v of finite) sum += v;
  return {
    count: finite.length,
    min: finite.length ? finite[0]! : Number.NaN,
    p50: percentile(finite, 50),
    p90: percentile(finite, 90),
    p99: percentile(finite, 99),
    max: finite.length ? finite[finite.length - 1]! : Number.NaN,
    mean: finite.length ? sum / finite.length : Number.NaN,
  };
}
