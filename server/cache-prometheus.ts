import type { Registry } from 'prom-client';
import { LATENCY_BUCKETS_MS, type LatencySnapshot } from '../lib/cache/cache-metrics.js';
import type { CacheMetricsSnapshot, MultiTierCache } from '../lib/cache/cache.js';

type Labels = Record<string, string>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * The caches' own counters exposed as Prometheus metrics, read at scrape time from each
 * cache's metrics() snapshot (the cache keeps plain numbers on its hot path; nothing is
 * double-counted into prom-client objects per call).
 */
export function registerCacheMetrics(registry: Registry, caches: () => readonly MultiTierCache[]): void {
  const define = (name: string, help: string, type: MetricType, samples: (snapshot: CacheMetricsSnapshot) => Sample[]) => {
    registry.registerMetric({
      name,
      help,
      type,
      get: () => ({ name, help, type, aggregator: 'sum', values: caches().flatMap((cache) => samples(cache.metrics())) }),
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  };
  const tiersOf = (s: CacheMetricsSnapshot) =>
    [
      ['memory', s.tiers.memory],
      ['redis', s.tiers.redis],
      ['disk', s.tiers.disk],
    ].filter((pair): pair is [string, NonNullable<CacheMetricsSnapshot['tiers']['redis']>] => pair[1] !== undefined);

  define('farmlink_cache_requests_total', 'Cache lookups by tier and result (a miss in one tier goes on to the next)', 'counter', (s) =>
    tiersOf(s).flatMap(([tier, t]) => [
      { value: t.hits, labels: { cache: s.name, tier, result: 'hit' } },
      { value: t.misses, labels: { cache: s.name, tier, result: 'miss' } },
    ]),
  );
  define('farmlink_cache_hit_ratio', 'Lookups answered by some tier / all lookups, since start', 'gauge', (s) => [
    { value: s.hits + s.misses === 0 ? 0 : s.hits / (s.hits + s.misses), labels: { cache: s.name } },
  ]);
  define('farmlink_cache_errors_total', 'Tier operations that failed or timed out (the call was answered from the other tiers)', 'counter', (s) => [
    ...(s.tiers.redis ? [{ value: s.tiers.redis.errors + s.tiers.redis.timeouts, labels: { cache: s.name, tier: 'redis' } }] : []),
    ...(s.tiers.disk ? [{ value: s.tiers.disk.errors, labels: { cache: s.name, tier: 'disk' } }] : []),
  ]);
  define('farmlink_cache_evictions_total', 'Entries pushed out of memory to make room', 'counter', (s) => [{ value: s.tiers.memory.evictions, labels: { cache: s.name } }]);
  define('farmlink_cache_expirations_total', 'Entries dropped from memory because their time was up', 'counter', (s) => [{ value: s.tiers.memory.expirations, labels: { cache: s.name } }]);
  define('farmlink_cache_admissions_rejected_total', 'New entries the W-TinyLFU policy kept out of memory (less popular than what they would replace)', 'counter', (s) => [
    { value: s.tiers.memory.admissionsRejected, labels: { cache: s.name } },
  ]);
  define('farmlink_cache_entries', 'Entries held, by tier', 'gauge', (s) => [
    { value: s.tiers.memory.entries, labels: { cache: s.name, tier: 'memory' } },
    ...(s.tiers.disk ? [{ value: s.tiers.disk.entries, labels: { cache: s.name, tier: 'disk' } }] : []),
  ]);
  define('farmlink_cache_memory_bytes', 'Bytes held in memory (serialized size of the values)', 'gauge', (s) => [{ value: s.tiers.memory.bytes, labels: { cache: s.name } }]);
  define('farmlink_cache_loads_total', 'Loader calls by outcome', 'counter', (s) => [
    { value: s.loads - s.loadErrors, labels: { cache: s.name, outcome: 'ok' } },
    { value: s.loadErrors, labels: { cache: s.name, outcome: 'error' } },
  ]);
  define('farmlink_cache_single_flight_joins_total', 'Callers that waited on a load already running for their key instead of starting another', 'counter', (s) => [
    { value: s.singleFlightJoins, labels: { cache: s.name } },
  ]);
  define('farmlink_cache_stale_served_total', 'Stale values served (while revalidating, after a soft timeout, or because the loader failed)', 'counter', (s) => [
    { value: s.staleServed, labels: { cache: s.name } },
  ]);
  define('farmlink_cache_redis_up', '1 while the Redis tier is connected and its circuit is closed', 'gauge', (s) =>
    s.tiers.redis ? [{ value: s.tiers.redis.connected && s.tiers.redis.breaker === 'closed' ? 1 : 0, labels: { cache: s.name } }] : [],
  );
  define('farmlink_cache_redis_skipped_total', 'Redis calls not made because the circuit was open (answered from the other tiers at once)', 'counter', (s) =>
    s.tiers.redis ? [{ value: s.tiers.redis.skipped, labels: { cache: s.name } }] : [],
  );
  define('farmlink_cache_redis_circuit_opens_total', 'Times the Redis circuit breaker opened (calls then skip Redis until it recovers)', 'counter', (s) =>
    s.tiers.redis ? [{ value: s.tiers.redis.breakerOpens, labels: { cache: s.name } }] : [],
  );
  define('farmlink_cache_operation_duration_seconds', 'Latency of a lookup in each tier', 'histogram', (s) => tiersOf(s).flatMap(([tier, t]) => histogram('farmlink_cache_operation_duration_seconds', t.latency, { cache: s.name, tier })));
}

function histogram(name: string, snapshot: LatencySnapshot, labels: Labels): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  LATENCY_BUCKETS_MS.forEach((upperMs, i) => {
    cumulative += snapshot.counts[i]!;
    samples.push({ metricName: `${name}_bucket`, value: cumulative, labels: { ...labels, le: String(upperMs / 1000) } });
  });
  samples.push({ metricName: `${name}_bucket`, value: snapshot.count, labels: { ...labels, le: '+Inf' } });
  samples.push({ metricName: `${name}_sum`, value: snapshot.sumMs / 1000, labels });
  samples.push({ metricName: `${name}_count`, value: snapshot.count, labels });
  return samples;
}
