import type { Clock } from '../clock.js';
import { LatencyHistogram, tierCounters, type TierCounters } from './cache-metrics.js';
import type { DiskTier } from './disk-tier.js';
import { memoryEntry, type Found, type MemoryEntry } from './lifetime.js';
import type { MemoryTier } from './memory-tier.js';
import type { CacheTotals } from './options.js';
import { decodeRecord, type CacheRecord } from './record.js';
import type { RedisTier } from './redis-tier.js';
import type { TagVersions } from './tag-versions.js';

export interface ReadPathOptions {
  clock: Clock;
  memory: MemoryTier<MemoryEntry>;
  redis: Pick<RedisTier, 'get'> | undefined;
  disk: Pick<DiskTier, 'get' | 'delete'> | undefined;
  tagVersions: TagVersions;
  /** Larger values are not promoted into memory. */
  maxValueBytes: number;
  totals: CacheTotals;
}

/**
 * Finding a key: memory → Redis → disk, the first live copy wins and is promoted into memory.
 * A copy is live until the end of its grace and while no tag of it has been invalidated; a dead
 * copy in memory or on disk is dropped on the way.
 */
export class ReadPath {
  readonly counters = { redis: tierCounters(), disk: tierCounters() } satisfies Record<'redis' | 'disk', TierCounters>;
  readonly memoryLatency = new LatencyHistogram();

  constructor(private readonly options: ReadPathOptions) {}

  /** `skipMemory`: ask the shared tier first (a decision that must see another process's latest write). */
  async lookup<V>(key: string, skipMemory = false): Promise<Found<V> | undefined> {
    const { clock, memory, totals } = this.options;
    const started = clock.monotonic();
    const inMemory = skipMemory ? undefined : (memory.get(key) as MemoryEntry<V> | undefined);
    this.memoryLatency.observe(clock.monotonic() - started);
    if (inMemory) {
      // All tag versions known (the usual case): decided without a promise in the way. Undefined
      // means within grace but a tag to ask about.
      const alive = this.aliveInMemory(inMemory, started) ?? (await this.options.tagVersions.alive(inMemory.record));
      if (alive) {
        totals.hits += 1;
        const { record, freshUntil, staleUntil } = inMemory;
        return { record, tier: 'memory', freshUntil, staleUntil, monotonic: true };
      }
      memory.delete(key);
    }

    const now = clock.now();
    for (const tier of ['redis', 'disk'] as const) {
      const found = await this.readTier<V>(tier, key);
      if (!found) continue;
      const { record, bytes } = found;
      if (!(await this.alive(record, now))) {
        if (tier === 'disk') void this.options.disk?.delete(key);
        continue;
      }
      // Promote: the next read of this key is a memory hit.
      if (bytes <= this.options.maxValueBytes) this.remember(key, record, bytes);
      totals.hits += 1;
      return { record, tier, freshUntil: record.freshUntil, staleUntil: record.staleUntil, monotonic: false };
    }
    totals.misses += 1;
    return undefined;
  }

  /** Puts a record into memory, its deadlines taken onto the monotonic clock; false if memory could not hold it. */
  remember(key: string, record: CacheRecord, size: number): boolean {
    const entry = memoryEntry(record, this.options.clock);
    return this.options.memory.set(key, entry, { size, removeAt: entry.staleUntil });
  }

  /** The memory copy if it is fresh and no tag of it is known to be invalidated (no waiting, no Redis). */
  freshInMemory<V>(key: string): CacheRecord<V> | undefined {
    const entry = this.options.memory.peek(key) as MemoryEntry<V> | undefined;
    const now = this.options.clock.monotonic();
    if (entry && now < entry.freshUntil && this.aliveInMemory(entry, now) === true) return entry.record;
    return undefined;
  }

  /** A record of a shared tier (wall-clock deadlines) not past its grace, no tag of it invalidated. */
  async alive(record: CacheRecord, now: number): Promise<boolean> {
    // staleUntil is exclusive, as the memory tier's removeAt and the disk sweep take it: otherwise at
    // that very millisecond a disk copy would answer where memory had dropped it.
    if (now >= record.staleUntil) return false;
    return this.options.tagVersions.alive(record);
  }

  /** Whether a live record can be decided now without asking anybody (undefined: a tag is unknown). */
  aliveIfKnown(record: CacheRecord, now: number): boolean | undefined {
    if (now >= record.staleUntil) return false;
    return this.options.tagVersions.knownAlive(record);
  }

  private aliveInMemory(entry: MemoryEntry, monotonicNow: number): boolean | undefined {
    if (monotonicNow >= entry.staleUntil) return false;
    return this.options.tagVersions.knownAlive(entry.record);
  }

  private async readTier<V>(
    tier: 'redis' | 'disk',
    key: string,
  ): Promise<{ record: CacheRecord<V>; bytes: number } | undefined> {
    const counters = this.counters[tier];
    const { clock, redis, disk } = this.options;
    const started = clock.monotonic();
    try {
      let found: { record: CacheRecord<V>; bytes: number } | undefined;
      if (tier === 'redis') {
        if (!redis) return undefined;
        const bytes = await redis.get(key);
        const record = bytes ? decodeRecord<V>(bytes) : undefined;
        found = record && bytes ? { record, bytes: bytes.length } : undefined;
      } else {
        if (!disk) return undefined;
        found = disk.get(key) as { record: CacheRecord<V>; bytes: number } | undefined;
      }
      counters.latency.observe(clock.monotonic() - started);
      if (found) counters.hits += 1;
      else counters.misses += 1;
      return found;
    } catch {
      counters.errors += 1;
      counters.latency.observe(clock.monotonic() - started);
      return undefined;
    }
  }
}
