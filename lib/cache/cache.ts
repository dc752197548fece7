import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { every, sleep, type Clock, type Random, systemClock, systemRandom } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import { Coherence } from './coherence.js';
import { DiskTier } from './disk-tier.js';
import { nowFor, staleFrom, type MemoryEntry } from './lifetime.js';
import { LoadCoordinator } from './loader.js';
import { LruMemoryTier } from './lru-memory-tier.js';
import type { MemoryTier } from './memory-tier.js';
import { CacheNamespace } from './namespace.js';
import {
  DEFAULTS,
  newTotals,
  type CacheMetricsSnapshot,
  type CacheOptions,
  type EntryOptions,
  type LoadDefaults,
  type LoadOptions,
  type Loader,
  type TierName,
} from './options.js';
import { ReadPath } from './read-path.js';
import { decodeRecord, encodeRecord, estimateSize, type CacheRecord } from './record.js';
import { RedisTier } from './redis-tier.js';
import { TagVersions } from './tag-versions.js';
import { TinyLfuMemoryTier } from './tinylfu-memory-tier.js';

export { CacheNamespace } from './namespace.js';
export type { CacheMetricsSnapshot, CacheOptions, EntryOptions, LoadOptions, TierName } from './options.js';

/** How often expired records are swept off the disk. */
const DISK_SWEEP_MS = 60_000;

/**
 * The multi-tier cache (README.md → The cache): memory (L1, W-TinyLFU), Redis (L2, shared, optional) and
 * disk (L3, LMDB, optional). Reads go memory → Redis → disk and promote what they find (read-path.ts);
 * writes go to every tier and tell the other processes to drop their copies (coherence.ts); a miss
 * is loaded once however many wait (loader.ts). Redis trouble never makes a call wait longer than
 * its time bound: past it, or while the circuit is open, the cache answers from memory and disk.
 */
export class MultiTierCache {
  readonly instanceId = randomUUID();
  private readonly memory: MemoryTier<MemoryEntry>;
  private readonly redis: RedisTier | undefined;
  private readonly disk: DiskTier | undefined;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly defaults: LoadDefaults;
  private readonly maxValueBytes: number;
  private readonly tagVersions: TagVersions;
  private readonly reads: ReadPath;
  private readonly loads: LoadCoordinator;
  private readonly coherence: Coherence;
  private readonly totals = newTotals();
  private warm: { entries: number; found: number; ms: number } | null = null;
  private sweep: { stop(): void } | undefined;

  private constructor(private readonly options: CacheOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.log = options.logger;
    this.defaults = { ...DEFAULTS, ...options.defaults };
    this.maxValueBytes = options.memory.maxValueBytes ?? 256 * 1024;
    const clock = this.clock;
    // Memory never leaves this process: its expiry runs on the monotonic clock (lifetime.ts).
    const memoryOptions = {
      maxEntries: options.memory.maxEntries,
      ...(options.memory.maxBytes ? { maxBytes: options.memory.maxBytes } : {}),
      now: () => clock.monotonic(),
    };
    this.memory =
      options.memory.policy === 'lru'
        ? new LruMemoryTier<MemoryEntry>(memoryOptions)
        : new TinyLfuMemoryTier<MemoryEntry>(memoryOptions);
    if (options.disk) {
      const { path, maxEntries } = options.disk;
      this.disk = DiskTier.open({ path, ...(maxEntries ? { maxEntries } : {}) });
    }
    if (options.redis) {
      const r = options.redis;
      this.redis = new RedisTier({
        url: r.url,
        cluster: r.cluster,
        prefix: r.prefix ?? `farmlink:${options.name}:`,
        opTimeoutMs: r.opTimeoutMs ?? 50,
        failureThreshold: r.failureThreshold ?? 3,
        windowMs: r.windowMs ?? 60_000,
        cooldownMs: r.cooldownMs ?? 500,
        clock,
        logger: options.logger,
        origin: this.instanceId,
      });
    }
    this.tagVersions = new TagVersions(this.redis, this.disk);
    this.reads = new ReadPath({
      clock,
      memory: this.memory,
      redis: this.redis,
      disk: this.disk,
      tagVersions: this.tagVersions,
      maxValueBytes: this.maxValueBytes,
      totals: this.totals,
    });
    this.coherence = new Coherence({
      bus: this.redis,
      origin: this.instanceId,
      name: options.name,
      clock,
      memory: this.memory,
      tagVersions: this.tagVersions,
      dropFromDisk: (key) => this.dropFromDisk(key),
      clearDisk: () => this.clearDisk(),
      log: this.log,
    });
    this.loads = new LoadCoordinator({
      name: options.name,
      clock,
      defaults: this.defaults,
      totals: this.totals,
      log: this.log,
      landed: (key) => {
        const record = this.reads.freshInMemory(key);
        return record ? { value: record.value } : undefined;
      },
      tagVersions: (tags) => this.tagVersions.current(tags),
      commit: async (key, value, options, tagVersions) => {
        const record = this.makeRecord(value, options, tagVersions);
        // The caller has its value: Redis gets it in the background (a slow Redis costs the caller nothing).
        await this.store(key, record, options.tiers, { awaitRedis: false });
        this.coherence.announce({ keys: [key] });
      },
    });
  }

  /** Opens the tiers and, with a disk tier, warms memory from it. Redis connects in the background. */
  static create(options: CacheOptions): MultiTierCache {
    const cache = new MultiTierCache(options);
    cache.tagVersions.loadStored();
    const disk = cache.disk;
    if (disk && options.disk?.warmStart !== false) cache.warmFromDisk(disk);
    if (disk) {
      // Disk records carry wall-clock deadlines (they outlive the process), so the sweep goes by wall time.
      cache.sweep = every(cache.clock, DISK_SWEEP_MS, () => void disk.sweep(cache.clock.now()), { unref: true });
    }
    return cache;
  }

  get name(): string {
    return this.options.name;
  }

  /**
   * The value if some tier holds it fresh (or stale, with allowStale), else undefined.
   * `consistent` reads Redis first while it is up, for a decision that must see another process's
   * latest write rather than a memory copy its invalidation has not reached yet.
   */
  async get<V>(key: string, options: { allowStale?: boolean; consistent?: boolean } = {}): Promise<V | undefined> {
    const found = await this.reads.lookup<V>(key, options.consistent === true && this.redis?.isConnected === true);
    if (!found) return undefined;
    if (nowFor(found, this.clock) < found.freshUntil || options.allowStale === true) return found.record.value;
    return undefined;
  }

  /**
   * Stores a value in every tier (or those asked for), then tells other processes to drop their
   * copy. Resolves once memory and disk have it and Redis has answered or its bound has passed.
   */
  async set(key: string, value: unknown, options: EntryOptions = {}): Promise<void> {
    const record = this.makeRecord(value, options, await this.tagVersions.current(options.tags ?? []));
    await this.store(key, record, options.tiers);
    this.coherence.announce({ keys: [key] });
  }

  /**
   * The cached value, or the loader's. One loader call per key at a time in this process, however
   * many callers wait (single-flight). Within grace a stale value is answered at once and refreshed
   * in the background; a loader that fails or passes the soft timeout is covered by the stale value.
   */
  async getOrSet<V>(key: string, loader: Loader<V>, options: LoadOptions = {}): Promise<V> {
    const found = await this.reads.lookup<V>(key);
    let lookup: { value: V; fresh: boolean } | undefined;
    if (found) {
      const now = nowFor(found, this.clock);
      if (now < found.freshUntil) lookup = { value: found.record.value, fresh: true };
      else if (now < found.staleUntil) lookup = { value: found.record.value, fresh: false };
    }
    return this.loads.answer(key, lookup, loader, options);
  }

  /** Removes a key everywhere; it is never served again, not even stale. */
  async delete(key: string): Promise<void> {
    this.memory.delete(key);
    await Promise.all([this.dropFromDisk(key), this.redis?.delete([key]).catch(redisFailure)]);
    this.coherence.announce({ keys: [key] });
  }

  /**
   * Removes a key everywhere, but only if its current value satisfies `predicate`, decided
   * atomically against Redis (the truth every process shares): the value is read from Redis, not
   * memory, and deleted there only if the stored bytes are still the ones read, so a write by
   * another process between the read and the delete survives. True if it was deleted.
   *
   * When Redis is configured but cannot answer (down, slow past its bound, circuit open), nothing
   * is deleted there: erasing what another process may have written since is worse than an entry
   * that lingers until its TTL ends. Only this process's own copies go, and only if they satisfy
   * the predicate. Without a Redis tier the memory and disk of this process are the whole truth.
   */
  // V names what the caller stored under the key, as in get<V>(): the cache keeps values untyped.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- V: see the line above
  async deleteIf<V>(key: string, predicate: (value: V) => boolean): Promise<boolean> {
    const matches = (value: unknown): boolean => predicate(value as V);
    if (!this.redis) {
      const found = await this.reads.lookup(key);
      if (!found || !matches(found.record.value)) return false;
      await this.delete(key);
      return true;
    }
    if (await this.deleteInRedisIf(this.redis, key, matches)) {
      this.memory.delete(key);
      await this.dropFromDisk(key);
      this.coherence.announce({ keys: [key] });
      return true;
    }
    // Not deleted in Redis (not there, changed, or not verifiable): a copy here that satisfies the
    // predicate is at best what Redis no longer says, so it goes; dropping a copy here never erases
    // what another process wrote.
    await this.dropLocalCopyIf(key, matches);
    return false;
  }

  private async deleteInRedisIf(
    redis: RedisTier,
    key: string,
    predicate: (value: unknown) => boolean,
  ): Promise<boolean> {
    try {
      const bytes = await redis.get(key);
      const record = bytes ? decodeRecord(bytes) : undefined;
      // Nothing there, or nothing get() would serve: not this caller's to delete.
      if (!bytes || !record || !(await this.reads.alive(record, this.clock.now())) || !predicate(record.value))
        return false;
      // False when another process wrote the key since the read: its write has told everyone already.
      return await redis.deleteIfUnchanged(key, bytes);
    } catch {
      // Redis down, slow past its bound or skipped: unverified, so not deleted there (the entry
      // lapses at its TTL). If the script did run, it deleted only the bytes read.
      return false;
    }
  }

  /** Makes a key stale now: getOrSet answers it within grace while fetching a fresh one. */
  async expire(key: string): Promise<void> {
    const found = await this.reads.lookup(key);
    if (!found) return;
    await this.store(key, staleFrom(found.record, this.clock.now()), undefined);
    this.coherence.announce({ expire: [key] });
  }

  /**
   * Invalidates every value written with any of these tags before now, in every process and tier:
   * such values are never served again, not even stale. (Each tag has a version; a record carries
   * the versions it was written under, and one written under an older version is dead.)
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    const versions = (await this.redis?.bumpTags(tags).catch(redisFailure)) ?? this.tagVersions.nextLocal(tags);
    this.tagVersions.merge(versions);
    this.coherence.announce({ tags: versions });
  }

  /** A view whose keys live under `name:` and carry the tag `ns:name`, so clear() drops them all. */
  namespace(name: string): CacheNamespace {
    return new CacheNamespace(this, name);
  }

  /** Drops everything in every tier. */
  async clear(): Promise<void> {
    this.memory.clear();
    await this.disk?.clear();
    await this.redis?.clear().catch(redisFailure);
    this.coherence.announce({ clear: true });
  }

  metrics(): CacheMetricsSnapshot {
    const c = this.reads.counters;
    return {
      name: this.name,
      tiers: {
        memory: { ...this.memory.stats(), latency: this.reads.memoryLatency.snapshot() },
        ...(this.redis
          ? {
              redis: {
                ...this.redis.stats(),
                hits: c.redis.hits,
                misses: c.redis.misses,
                latency: c.redis.latency.snapshot(),
              },
            }
          : {}),
        ...(this.disk
          ? {
              disk: {
                ...this.disk.stats(),
                hits: c.disk.hits,
                misses: c.disk.misses,
                errors: c.disk.errors,
                latency: c.disk.latency.snapshot(),
              },
            }
          : {}),
      },
      ...this.totals,
      warmStart: this.warm,
    };
  }

  /** Waits until Redis is connected (or the time is up); the cache works without waiting. */
  async redisReady(timeoutMs = 2000): Promise<boolean> {
    const deadline = this.clock.monotonic() + timeoutMs;
    while (this.redis && !this.redis.isConnected && this.clock.monotonic() < deadline) await sleep(this.clock, 20);
    return this.redis?.isConnected ?? false;
  }

  async close(): Promise<void> {
    this.sweep?.stop();
    this.coherence.flush();
    await this.redis?.close();
    await this.disk?.close();
  }

  // ---- writing ------------------------------------------------------------------------------

  /** `tagVersions`: the versions of options.tags when the value was read from its source. */
  private makeRecord<V>(value: V, options: EntryOptions, tagVersions: number[]): CacheRecord<V> {
    const ttl = options.ttlMs ?? this.defaults.ttlMs;
    const grace = options.graceMs ?? this.defaults.graceMs;
    const jitter = options.jitter ?? this.defaults.jitter;
    // Wall time: the record goes to Redis and disk, where other processes and later runs read it.
    const now = this.clock.now();
    const freshUntil = now + ttl * (1 + jitter * (2 * this.random() - 1));
    const tags = [...(options.tags ?? [])];
    return { value, createdAt: now, freshUntil, staleUntil: freshUntil + grace, tags, tagVersions };
  }

  private async store(
    key: string,
    record: CacheRecord,
    tiers: readonly TierName[] | undefined,
    options: { awaitRedis?: boolean } = {},
  ): Promise<void> {
    const wants = (tier: TierName) => !tiers || tiers.includes(tier);
    const shared = (wants('redis') && this.redis) || (wants('disk') && this.disk);
    let encoded: Buffer | undefined;
    if (shared) {
      try {
        encoded = encodeRecord(record);
      } catch (error) {
        throw new FarmlinkError(
          'CACHE_UNSERIALIZABLE',
          `Cannot cache ${key}: ${(error as Error).message} (functions and symbols cannot be stored)`,
          { cause: error },
        );
      }
    }
    const size = encoded?.length ?? estimateSize(record.value);
    if (!(wants('memory') && size <= this.maxValueBytes && this.reads.remember(key, record, size)))
      this.memory.delete(key);
    // Not awaited: the disk tier answers reads from its own uncommitted writes, so nobody reads the old record.
    if (encoded && wants('disk') && this.disk) {
      this.disk.put(key, encoded)?.catch(this.countDiskError);
    }
    if (encoded && wants('redis') && this.redis) {
      const write = this.redis.set(key, encoded, record.staleUntil - this.clock.now()).catch(redisFailure);
      if (options.awaitRedis !== false) await write;
    }
  }

  /** deleteIf() without Redis's word: this process's own copies only, if they satisfy the predicate. */
  private async dropLocalCopyIf(key: string, predicate: (value: unknown) => boolean): Promise<void> {
    const inMemory = this.memory.peek(key);
    if (inMemory && predicate(inMemory.record.value)) this.memory.delete(key);
    const onDisk = this.disk?.get(key);
    if (onDisk && predicate(onDisk.record.value)) await this.dropFromDisk(key);
  }

  // ---- disk ---------------------------------------------------------------------------------

  /** Deletes the disk copy (reads stop finding it at once: the disk tier shows its own pending writes). */
  private async dropFromDisk(key: string): Promise<void> {
    await this.disk?.delete(key)?.catch(this.countDiskError);
  }

  private async clearDisk(): Promise<void> {
    await this.disk?.clear().catch(this.countDiskError);
  }

  private readonly countDiskError = (): void => {
    this.reads.counters.disk.errors += 1;
  };

  /** Fills memory with the newest live records on disk, as many as memory holds. */
  private warmFromDisk(disk: DiskTier): void {
    const started = this.clock.monotonic();
    const now = this.clock.now();
    const live: Array<[string, CacheRecord, number]> = [];
    // Records of an invalidated tag (versions were loaded from disk first) would only take the place of live ones.
    for (const entry of disk.records(now)) if (this.reads.aliveIfKnown(entry[1], now) !== false) live.push(entry);
    live.sort((a, b) => b[1].createdAt - a[1].createdAt);
    let loaded = 0;
    for (const [key, record, size] of live.slice(0, this.options.memory.maxEntries)) {
      if (size > this.maxValueBytes) continue;
      if (this.reads.remember(key, record, size)) loaded += 1;
    }
    this.warm = { entries: loaded, found: live.length, ms: this.clock.monotonic() - started };
    if (loaded > 0) {
      this.log.info(
        { cache: this.name, entries: loaded, ms: Math.round(this.warm.ms) },
        `Cache ${this.name}: warmed ${loaded} entries from disk`,
      );
    }
  }
}

/**
 * Redis failures are counted by the Redis tier itself (errors, timeouts, calls skipped with the
 * circuit open); here they only must not escape: the call is answered from the other tiers.
 */
const redisFailure = (): undefined => undefined;
