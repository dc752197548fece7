import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS_MS, type LatencySnapshot } from '../lib/cache/cache-metrics.js';
import type { CacheMetricsSnapshot } from '../lib/cache/cache.js';
import { registerCacheMetrics } from './cache-prometheus.js';

function latency(counts: Record<number, number>, sumMs: number): LatencySnapshot {
  const all = Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => counts[i] ?? 0);
  return { counts: all, count: all.reduce((a, b) => a + b, 0), sumMs };
}

const memoryOnly: CacheMetricsSnapshot = {
  name: 'tokens',
  tiers: {
    memory: {
      hits: 3,
      misses: 1,
      evictions: 2,
      expirations: 4,
      admissionsRejected: 5,
      entries: 6,
      bytes: 700,
      latency: latency({ 0: 1, 3: 2, 15: 1 }, 2000.5),
    },
  },
  hits: 3,
  misses: 1,
  loads: 4,
  loadErrors: 1,
  singleFlightJoins: 7,
  staleServed: 8,
  softTimeouts: 0,
  hardTimeouts: 0,
  warmStart: null,
};

const allTiers: CacheMetricsSnapshot = {
  ...memoryOnly,
  name: 'registry',
  tiers: {
    memory: { ...memoryOnly.tiers.memory, latency: latency({}, 0) },
    redis: {
      connected: true,
      breaker: 'closed',
      breakerOpens: 2,
      errors: 3,
      timeouts: 4,
      skipped: 5,
      messagesIn: 0,
      messagesOut: 0,
      hits: 9,
      misses: 10,
      latency: latency({ 6: 3 }, 1.5),
    },
    disk: {
      entries: 11,
      keysTooLong: 0,
      unreadable: 0,
      writeErrors: 0,
      hits: 12,
      misses: 13,
      errors: 14,
      latency: latency({ 8: 1 }, 4),
    },
  },
  hits: 0,
  misses: 0,
};

async function scrape(snapshots: CacheMetricsSnapshot[]): Promise<string[]> {
  const registry = new Registry();
  registerCacheMetrics(registry, () => snapshots.map((s) => ({ metrics: () => s })));
  return (await registry.metrics()).split('\n');
}

describe('registerCacheMetrics', () => {
  it('exposes every cache counter and gauge by cache and tier, read at scrape time', async () => {
    const lines = await scrape([memoryOnly, allTiers]);
    expect(lines).toEqual(
      expect.arrayContaining([
        '# TYPE farmlink_cache_requests_total counter',
        'farmlink_cache_requests_total{cache="tokens",tier="memory",result="hit"} 3',
        'farmlink_cache_requests_total{cache="tokens",tier="memory",result="miss"} 1',
        'farmlink_cache_requests_total{cache="registry",tier="redis",result="hit"} 9',
        'farmlink_cache_requests_total{cache="registry",tier="disk",result="miss"} 13',
        '# TYPE farmlink_cache_hit_ratio gauge',
        'farmlink_cache_hit_ratio{cache="tokens"} 0.75',
        'farmlink_cache_hit_ratio{cache="registry"} 0',
        'farmlink_cache_errors_total{cache="registry",tier="redis"} 7',
        'farmlink_cache_errors_total{cache="registry",tier="disk"} 14',
        'farmlink_cache_evictions_total{cache="tokens"} 2',
        'farmlink_cache_expirations_total{cache="tokens"} 4',
        'farmlink_cache_admissions_rejected_total{cache="tokens"} 5',
        'farmlink_cache_entries{cache="tokens",tier="memory"} 6',
        'farmlink_cache_entries{cache="registry",tier="disk"} 11',
        'farmlink_cache_memory_bytes{cache="tokens"} 700',
        'farmlink_cache_loads_total{cache="tokens",outcome="ok"} 3',
        'farmlink_cache_loads_total{cache="tokens",outcome="error"} 1',
        'farmlink_cache_single_flight_joins_total{cache="tokens"} 7',
        'farmlink_cache_stale_served_total{cache="tokens"} 8',
        'farmlink_cache_redis_up{cache="registry"} 1',
        'farmlink_cache_redis_skipped_total{cache="registry"} 5',
        'farmlink_cache_redis_circuit_opens_total{cache="registry"} 2',
      ]),
    );
    // A cache without Redis or disk has no series for them.
    expect(lines.filter((l) => l.includes('cache="tokens"') && /tier="(redis|disk)"|redis_/.test(l))).toEqual([]);
  });

  it('exposes each tier latency as a cumulative histogram in seconds', async () => {
    const lines = await scrape([memoryOnly]);
    const series = lines.filter((l) => l.startsWith('farmlink_cache_operation_duration_seconds'));
    expect(lines).toContain('# TYPE farmlink_cache_operation_duration_seconds histogram');
    expect(series).toEqual([
      ...LATENCY_BUCKETS_MS.map((upperMs, i) => {
        const cumulative = i < 3 ? 1 : 3;
        return `farmlink_cache_operation_duration_seconds_bucket{cache="tokens",tier="memory",le="${upperMs / 1000}"} ${cumulative}`;
      }),
      'farmlink_cache_operation_duration_seconds_bucket{cache="tokens",tier="memory",le="+Inf"} 4',
      'farmlink_cache_operation_duration_seconds_sum{cache="tokens",tier="memory"} 2.0005',
      'farmlink_cache_operation_duration_seconds_count{cache="tokens",tier="memory"} 4',
    ]);
  });

  it('follows the caches as they come and go', async () => {
    let current: CacheMetricsSnapshot[] = [memoryOnly, allTiers];
    const registry = new Registry();
    registerCacheMetrics(registry, () => current.map((s) => ({ metrics: () => s })));
    expect(await registry.metrics()).toContain('cache="registry"');
    current = [memoryOnly];
    const text = await registry.metrics();
    expect(text).not.toContain('cache="registry"');
    expect(text).toContain('farmlink_cache_requests_total{cache="tokens",tier="memory",result="hit"} 3');
  });
});
