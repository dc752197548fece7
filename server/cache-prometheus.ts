import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_MS, type LatencySnapshot } from '../lib/cache/cache-metrics.js';
import type { CacheMetricsSnapshot, MultiTierCache } from '../lib/cache/cache.js';

type Labels = Record<string, string>;
interface Sample {
  value: number;
  labels: Labels;
}
type Tier = 'memory' | 'redis' | 'disk';
interface TierSnapshot {
  hits: number;
  misses: number;
  latency: LatencySnapshot;
}

/**
 * The caches' own counters exposed as Prometheus metrics, read at scrape time from each
 * cache's metrics() snapshot (the cache keeps plain numbers on its hot path; nothing is
 * double-counted into prom-client objects per call). Each metric's `collect()` replaces its
 * series with the current values, so a cache (or a tier) that is gone leaves no stale series.
 */
export function registerCacheMetrics(
  registry: Registry,
  caches: () => readonly Pick<MultiTierCache, 'metrics'>[],
): void {
  const samplesOf = (samples: (snapshot: CacheMetricsSnapshot) => Sample[]) =>
    caches().flatMap((cache) => samples(cache.metrics()));
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    samples: (snapshot: CacheMetricsSnapshot) => Sample[],
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        // The caches count; a scrape copies their totals (a counter can only be added to, so start from zero).
        this.reset();
        for (const { labels, value } of samplesOf(samples)) this.inc(labels, value);
      },
    });
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    samples: (snapshot: CacheMetricsSnapshot) => Sample[],
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, value } of samplesOf(samples)) this.set(labels, value);
      },
    });
  const tiersOf = (s: CacheMetricsSnapshot) => {
    const tiers: Array<[Tier, TierSnapshot]> = [['memory', s.tiers.memory]];
    if (s.tiers.redis) tiers.push(['redis', s.tiers.redis]);
    if (s.tiers.disk) tiers.push(['disk', s.tiers.disk]);
    return tiers;
  };

  counter(
    'farmlink_cache_requests_total',
    'Cache lookups by tier and result (a miss in one tier goes on to the next)',
    ['cache', 'tier', 'result'],
    (s) =>
      tiersOf(s).flatMap(([tier, t]) => [
        { value: t.hits, labels: { cache: s.name, tier, result: 'hit' } },
        { value: t.misses, labels: { cache: s.name, tier, result: 'miss' } },
      ]),
  );
  gauge('farmlink_cache_hit_ratio', 'Lookups answered by some tier / all lookups, since start', ['cache'], (s) => [
    { value: s.hits + s.misses === 0 ? 0 : s.hits / (s.hits + s.misses), labels: { cache: s.name } },
  ]);
  counter(
    'farmlink_cache_errors_total',
    'Tier operations that failed or timed out (the call was answered from the other tiers)',
    ['cache', 'tier'],
    (s) => [
      ...(s.tiers.redis
        ? [{ value: s.tiers.redis.errors + s.tiers.redis.timeouts, labels: { cache: s.name, tier: 'redis' } }]
        : []),
      ...(s.tiers.disk ? [{ value: s.tiers.disk.errors, labels: { cache: s.name, tier: 'disk' } }] : []),
    ],
  );
  counter('farmlink_cache_evictions_total', 'Entries pushed out of memory to make room', ['cache'], (s) => [
    { value: s.tiers.memory.evictions, labels: { cache: s.name } },
  ]);
  counter(
    'farmlink_cache_expirations_total',
    'Entries dropped from memory because their time was up',
    ['cache'],
    (s) => [{ value: s.tiers.memory.expirations, labels: { cache: s.name } }],
  );
  counter(
    'farmlink_cache_admissions_rejected_total',
    'New entries the W-TinyLFU policy kept out of memory (less popular than what they would replace)',
    ['cache'],
    (s) => [{ value: s.tiers.memory.admissionsRejected, labels: { cache: s.name } }],
  );
  gauge('farmlink_cache_entries', 'Entries held, by tier', ['cache', 'tier'], (s) => [
    { value: s.tiers.memory.entries, labels: { cache: s.name, tier: 'memory' } },
    ...(s.tiers.disk ? [{ value: s.tiers.disk.entries, labels: { cache: s.name, tier: 'disk' } }] : []),
  ]);
  gauge('farmlink_cache_memory_bytes', 'Bytes held in memory (serialized size of the values)', ['cache'], (s) => [
    { value: s.tiers.memory.bytes, labels: { cache: s.name } },
  ]);
  counter('farmlink_cache_loads_total', 'Loader calls by outcome', ['cache', 'outcome'], (s) => [
    { value: s.loads - s.loadErrors, labels: { cache: s.name, outcome: 'ok' } },
    { value: s.loadErrors, labels: { cache: s.name, outcome: 'error' } },
  ]);
  counter(
    'farmlink_cache_single_flight_joins_total',
    'Callers that waited on a load already running for their key instead of starting another',
    ['cache'],
    (s) => [{ value: s.singleFlightJoins, labels: { cache: s.name } }],
  );
  counter(
    'farmlink_cache_stale_served_total',
    'Stale values served (while revalidating, after a soft timeout, or because the loader failed)',
    ['cache'],
    (s) => [{ value: s.staleServed, labels: { cache: s.name } }],
  );
  gauge('farmlink_cache_redis_up', '1 while the Redis tier is connected and its circuit is closed', ['cache'], (s) =>
    s.tiers.redis
      ? [{ value: s.tiers.redis.connected && s.tiers.redis.breaker === 'closed' ? 1 : 0, labels: { cache: s.name } }]
      : [],
  );
  counter(
    'farmlink_cache_redis_skipped_total',
    'Redis calls not made because the circuit was open (answered from the other tiers at once)',
    ['cache'],
    (s) => (s.tiers.redis ? [{ value: s.tiers.redis.skipped, labels: { cache: s.name } }] : []),
  );
  counter(
    'farmlink_cache_redis_circuit_opens_total',
    'Times the Redis circuit breaker opened (calls then skip Redis until it recovers)',
    ['cache'],
    (s) => (s.tiers.redis ? [{ value: s.tiers.redis.breakerOpens, labels: { cache: s.name } }] : []),
  );
  registry.registerMetric(
    new SnapshotHistogram('farmlink_cache_operation_duration_seconds', 'Latency of a lookup in each tier', () =>
      caches().flatMap((cache) => {
        const s = cache.metrics();
        return tiersOf(s).map(([tier, t]) => ({ labels: { cache: s.name, tier }, latency: t.latency }));
      }),
    ),
  );
}

/**
 * A histogram whose buckets are the caches' own (fixed buckets counted on the hot path, see
 * LatencyHistogram). prom-client's Histogram can only observe one value at a time, which cannot
 * reproduce a snapshot's counts and sum, and it has no collector hook for that: this subclass
 * answers `getForPromString()`, the method prom-client 15's registry reads for the text exposition
 * (and its `get()` builds on), with the snapshots. server/cache-prometheus.test.ts pins the text, so
 * a prom-client that reads another method fails there rather than in production.
 */
class SnapshotHistogram extends Histogram {
  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    private readonly series: () => Array<{ labels: Labels; latency: LatencySnapshot }>,
  ) {
    super({
      name: metricName,
      help: metricHelp,
      labelNames: ['cache', 'tier'],
      buckets: LATENCY_BUCKETS_MS.map((ms) => ms / 1000),
      registers: [],
    });
  }

  getForPromString() {
    const values = this.series().flatMap(({ labels, latency }) => histogramValues(this.metricName, latency, labels));
    return Promise.resolve({
      name: this.metricName,
      help: this.metricHelp,
      type: 'histogram',
      aggregator: 'sum',
      values,
    });
  }
}

function histogramValues(name: string, snapshot: LatencySnapshot, labels: Labels) {
  let cumulative = 0;
  const sample = (suffix: string, value: number, sampleLabels: Labels) => ({
    metricName: `${name}_${suffix}`,
    value,
    labels: sampleLabels,
    sharedLabels: {},
  });
  const buckets = LATENCY_BUCKETS_MS.map((upperMs, i) => {
    cumulative += snapshot.counts[i] ?? 0;
    return sample('bucket', cumulative, { ...labels, le: String(upperMs / 1000) });
  });
  return [
    ...buckets,
    sample('bucket', snapshot.count, { ...labels, le: '+Inf' }),
    sample('sum', snapshot.sumMs / 1000, labels),
    sample('count', snapshot.count, labels),
  ];
}
