import type { ClusterNode } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock, Random } from '../clock.js';
import type { LatencySnapshot } from './cache-metrics.js';
import type { DiskTierStats } from './disk-tier.js';
import type { MemoryTierStats } from './memory-tier.js';
import type { RedisTierStats } from './redis-tier.js';

/** The cache's options and what it reports: the types its users see, in one place. */

export type TierName = 'memory' | 'redis' | 'disk';

export interface EntryOptions {
  /** How long a value is fresh. */
  ttlMs?: number;
  /** How long after that it may still be served stale (stale-while-revalidate, fail-safe). */
  graceMs?: number;
  /** ± fraction of the ttl drawn at random, so entries written together do not expire together. */
  jitter?: number;
  tags?: readonly string[];
  /** Which tiers hold it (default: all configured). A value larger than memory.maxValueBytes skips memory. */
  tiers?: readonly TierName[];
}

export interface LoadOptions extends EntryOptions {
  /** Within grace, answer with the stale value at once and refresh in the background (default true). */
  staleWhileRevalidate?: boolean;
  /** With a stale value to fall back on, wait this long for the loader, then answer stale (the load goes on). */
  softTimeoutMs?: number;
  /** The loader is aborted and the call fails with CACHE_LOADER_TIMEOUT after this long. */
  hardTimeoutMs?: number;
}

/** What getOrSet calls on a miss: `stale` is the value it would replace, if one is within grace. */
export type Loader<V> = (context: { signal: AbortSignal; stale: V | undefined }) => Promise<V> | V;

export interface CacheOptions {
  /** Names the cache in metrics and logs. */
  name: string;
  memory: { maxEntries: number; maxBytes?: number; maxValueBytes?: number; policy?: 'tinylfu' | 'lru' };
  /** The shared tier; optional — without it the cache is memory (+ disk) in this process only. */
  redis?: {
    url?: string;
    cluster?: ClusterNode[];
    prefix?: string;
    opTimeoutMs?: number;
    /** The circuit breaker: this many failures within `windowMs` (no success between) skip Redis… */
    failureThreshold?: number;
    windowMs?: number;
    /** …for this long; then one call probes it (and Redis' reconnecting closes it at once). */
    cooldownMs?: number;
  };
  /** The disk tier: survives restarts, warms memory at start-up. */
  disk?: { path: string; maxEntries?: number; warmStart?: boolean };
  defaults?: LoadOptions;
  logger: Logger;
  clock?: Clock;
  random?: Random;
}

export type LoadDefaults = Required<Omit<LoadOptions, 'tags' | 'tiers'>>;

export const DEFAULTS: LoadDefaults = {
  ttlMs: 60_000,
  graceMs: 0,
  jitter: 0.1,
  staleWhileRevalidate: true,
  softTimeoutMs: 0,
  hardTimeoutMs: 10_000,
};

export interface CacheMetricsSnapshot {
  name: string;
  tiers: {
    memory: MemoryTierStats & { latency: LatencySnapshot };
    redis?: RedisTierStats & { hits: number; misses: number; latency: LatencySnapshot };
    disk?: DiskTierStats & { hits: number; misses: number; errors: number; latency: LatencySnapshot };
  };
  /** Lookups answered by any tier / by none. */
  hits: number;
  misses: number;
  loads: number;
  loadErrors: number;
  /** Callers that joined a load already running for their key (single-flight). */
  singleFlightJoins: number;
  /** Stale values served: while revalidating, after a soft timeout, or because the loader failed. */
  staleServed: number;
  softTimeouts: number;
  hardTimeouts: number;
  /**
   * The start-up warming: `found` live records were on disk then, `entries` of them were loaded
   * into memory (fewer when memory is smaller, or a value too large for it). Disk entries written
   * since are not in it. Null without a disk tier, or with warming off.
   */
  warmStart: { entries: number; found: number; ms: number } | null;
}

/** The counters of the snapshot above that the read path and the loader keep. */
export type CacheTotals = Pick<
  CacheMetricsSnapshot,
  'hits' | 'misses' | 'loads' | 'loadErrors' | 'singleFlightJoins' | 'staleServed' | 'softTimeouts' | 'hardTimeouts'
>;

export function newTotals(): CacheTotals {
  return {
    hits: 0,
    misses: 0,
    loads: 0,
    loadErrors: 0,
    singleFlightJoins: 0,
    staleServed: 0,
    softTimeouts: 0,
    hardTimeouts: 0,
  };
}
