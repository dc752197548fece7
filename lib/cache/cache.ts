import { randomUUID } from 'node:crypto';
import type { ClusterNode } from 'ioredis';
import type { Logger } from 'pino';
import { type Clock, type Random, type TimerHandle, systemClock, systemRandom } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import { LatencyHistogram, tierCounters, type LatencySnapshot, type TierCounters } from './cache-metrics.js';
import { DiskTier, type DiskTierStats } from './disk-tier.js';
import { LruMemoryTier } from './lru-memory-tier.js';
import type { MemoryTier, MemoryTierStats } from './memory-tier.js';
import { decodeRecord, encodeRecord, estimateSize, type CacheRecord } from './record.js';
import { RedisTier, type BusMessage, type RedisTierStats } from './redis-tier.js';
import { TinyLfuMemoryTier } from './tinylfu-memory-tier.js';

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
    failureThreshold?: number;
    cooldownMs?: number;
    maxCooldownMs?: number;
  };
  /** The disk tier: survives restarts, warms memory at start-up. */
  disk?: { path: string; maxEntries?: number; warmStart?: boolean };
  defaults?: LoadOptions;
  logger: Logger;
  clock?: Clock;
  random?: Random;
}

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

interface Found<V> {
  record: CacheRecord<V>;
  tier: TierName;
}

const DEFAULTS: Required<Omit<LoadOptions, 'tags' | 'tiers'>> = {
  ttlMs: 60_000,
  graceMs: 0,
  jitter: 0.1,
  staleWhileRevalidate: true,
  softTimeoutMs: 0,
  hardTimeoutMs: 10_000,
};

const NAMESPACE_TAG = (name: string) => `ns:${name}`;

/**
 * The multi-tier cache (README.md → The cache): memory (L1, W-TinyLFU), Redis (L2, shared, optional) and
 * disk (L3, LMDB, optional). Reads go memory → Redis → disk and promote what they find; writes go
 * to every tier and tell the other processes to drop their copies. Redis trouble never makes a
 * call wait longer than its time bound: past it, or while the circuit is open, the cache answers
 * from memory and disk.
 */
export class MultiTierCache {
  readonly instanceId = randomUUID();
  private readonly memory: MemoryTier<CacheRecord>;
  private readonly redis: RedisTier | undefined;
  private readonly disk: DiskTier | undefined;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly defaults: Required<Omit<LoadOptions, 'tags' | 'tiers'>>;
  private readonly maxValueBytes: number;
  private readonly tagVersions = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly counters = { redis: tierCounters(), disk: tierCounters() } satisfies Record<'redis' | 'disk', TierCounters>;
  private readonly totals = { hits: 0, misses: 0, loads: 0, loadErrors: 0, singleFlightJoins: 0, staleServed: 0, softTimeouts: 0, hardTimeouts: 0 };
  private warm: { entries: number; found: number; ms: number } | null = null;
  private pendingBus: BusMessage | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly memoryLatency = new LatencyHistogram();

  private constructor(private readonly options: CacheOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.log = options.logger;
    this.defaults = { ...DEFAULTS, ...options.defaults };
    this.maxValueBytes = options.memory.maxValueBytes ?? 256 * 1024;
    const memoryOptions = { maxEntries: options.memory.maxEntries, ...(options.memory.maxBytes ? { maxBytes: options.memory.maxBytes } : {}), now: () => this.clock.now() };
    this.memory = options.memory.policy === 'lru' ? new LruMemoryTier<CacheRecord>(memoryOptions) : new TinyLfuMemoryTier<CacheRecord>(memoryOptions);
    if (options.disk) this.disk = DiskTier.open({ path: options.disk.path, ...(options.disk.maxEntries ? { maxEntries: options.disk.maxEntries } : {}) });
    if (options.redis) {
      const r = options.redis;
      this.redis = new RedisTier({
        url: r.url,
        cluster: r.cluster,
        prefix: r.prefix ?? `farmlink:${options.name}:`,
        opTimeoutMs: r.opTimeoutMs ?? 50,
        failureThreshold: r.failureThreshold ?? 3,
        cooldownMs: r.cooldownMs ?? 500,
        maxCooldownMs: r.maxCooldownMs ?? 10_000,
        now: () => this.clock.monotonic(),
        logger: options.logger,
        origin: this.instanceId,
      });
      this.redis.events.on('message', (message) => this.onBusMessage(message));
      this.redis.events.on('resync', () => {
        // Invalidations sent while the bus was down are lost; memory cannot be trusted any more, nor
        // can this process's disk (a key deleted meanwhile is missing from Redis, and the disk copy would answer).
        this.log.warn({ cache: options.name }, 'Cache: the Redis bus was down; dropping the memory and disk tiers so nothing stale is served');
        this.memory.clear();
        void this.clearDisk();
        this.tagVersions.clear();
      });
    }
  }

  /** Opens the tiers and, with a disk tier, warms memory from it. Redis connects in the background. */
  static create(options: CacheOptions): MultiTierCache {
    const cache = new MultiTierCache(options);
    cache.loadTagVersionsFromDisk();
    if (cache.disk && options.disk?.warmStart !== false) cache.warmFromDisk();
    if (cache.disk) {
      cache.sweepTimer = setInterval(() => void cache.disk?.sweep(cache.clock.now()), 60_000);
      cache.sweepTimer.unref();
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
    const found = await this.lookup<V>(key, options.consistent === true && this.redis?.isConnected === true);
    if (!found) return undefined;
    const now = this.clock.now();
    if (now < found.record.freshUntil || options.allowStale) return found.record.value;
    return undefined;
  }

  /**
   * Stores a value in every tier (or those asked for), then tells other processes to drop their
   * copy. Resolves once memory and disk have it and Redis has answered or its bound has passed.
   */
  async set<V>(key: string, value: V, options: EntryOptions = {}): Promise<void> {
    const record = this.makeRecord(key, value, options, await this.currentTagVersions(options.tags ?? []));
    await this.store(key, record, options.tiers);
    this.announce({ keys: [key] });
  }

  /**
   * The cached value, or the loader's. One loader call per key at a time in this process, however
   * many callers wait (single-flight). Within grace a stale value is answered at once and refreshed
   * in the background; a loader that fails or passes the soft timeout is covered by the stale value.
   */
  async getOrSet<V>(key: string, loader: (context: { signal: AbortSignal; stale: V | undefined }) => Promise<V> | V, options: LoadOptions = {}): Promise<V> {
    const found = await this.lookup<V>(key);
    const now = this.clock.now();
    if (found && now < found.record.freshUntil) return found.record.value;
    const stale = found && now < found.record.staleUntil ? found.record : undefined;
    const swr = options.staleWhileRevalidate ?? this.defaults.staleWhileRevalidate;
    if (stale && swr) {
      this.totals.staleServed += 1;
      this.load(key, loader, options, stale).catch((error: unknown) => this.log.warn({ err: error, cache: this.name, key }, 'Cache: background refresh failed; the stale value stays until its grace ends'));
      return stale.value;
    }
    return this.awaitLoad(key, loader, options, stale);
  }

  /** Removes a key everywhere; it is never served again, not even stale. */
  async delete(key: string): Promise<void> {
    this.memory.delete(key);
    await Promise.all([this.dropFromDisk(key), this.redis?.delete([key]).catch(redisFailure)]);
    this.announce({ keys: [key] });
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
  async deleteIf<V>(key: string, predicate: (value: V) => boolean): Promise<boolean> {
    if (!this.redis) {
      const found = await this.lookup<V>(key);
      if (!found || !predicate(found.record.value)) return false;
      await this.delete(key);
      return true;
    }
    if (await this.deleteInRedisIf(key, predicate)) {
      this.memory.delete(key);
      await this.dropFromDisk(key);
      this.announce({ keys: [key] });
      return true;
    }
    // Not deleted in Redis (not there, changed, or not verifiable): a copy here that satisfies the
    // predicate is at best what Redis no longer says, so it goes; dropping a copy here never erases
    // what another process wrote.
    await this.dropLocalCopyIf(key, predicate);
    return false;
  }

  private async deleteInRedisIf<V>(key: string, predicate: (value: V) => boolean): Promise<boolean> {
    const redis = this.redis!;
    try {
      const bytes = await redis.get(key);
      const record = bytes ? decodeRecord<V>(bytes) : undefined;
      // Nothing there, or nothing get() would serve: not this caller's to delete.
      if (!bytes || !record || !(await this.alive(record, this.clock.now())) || !predicate(record.value)) return false;
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
    const found = await this.lookup(key);
    if (!found) return;
    await this.store(key, staleFrom(found.record, this.clock.now()), undefined);
    this.announce({ expire: [key] });
  }

  /**
   * Invalidates every value written with any of these tags before now, in every process and tier:
   * such values are never served again, not even stale. (Each tag has a version; a record carries
   * the versions it was written under, and one written under an older version is dead.)
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    let versions: Record<string, number> | undefined;
    versions = await this.redis?.bumpTags(tags).catch(redisFailure);
    versions ??= Object.fromEntries(tags.map((tag) => [tag, (this.tagVersions.get(tag) ?? 0) + 1]));
    for (const [tag, version] of Object.entries(versions)) this.tagVersions.set(tag, Math.max(version, this.tagVersions.get(tag) ?? 0));
    this.persistTagVersions();
    this.announce({ tags: versions });
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
    this.announce({ clear: true });
  }

  metrics(): CacheMetricsSnapshot {
    const c = this.counters;
    return {
      name: this.name,
      tiers: {
        memory: { ...this.memory.stats(), latency: this.memoryLatency.snapshot() },
        ...(this.redis ? { redis: { ...this.redis.stats(), hits: c.redis.hits, misses: c.redis.misses, latency: c.redis.latency.snapshot() } } : {}),
        ...(this.disk ? { disk: { ...this.disk.stats(), hits: c.disk.hits, misses: c.disk.misses, errors: c.disk.errors, latency: c.disk.latency.snapshot() } } : {}),
      },
      ...this.totals,
      warmStart: this.warm,
    };
  }

  /** Waits until Redis is connected (or the time is up); the cache works without waiting. */
  async redisReady(timeoutMs = 2000): Promise<boolean> {
    const deadline = this.clock.monotonic() + timeoutMs;
    while (this.redis && !this.redis.isConnected && this.clock.monotonic() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return this.redis?.isConnected ?? false;
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.flushBus();
    await this.redis?.close();
    await this.disk?.close();
  }

  // ---- reading ------------------------------------------------------------------------------

  private async lookup<V>(key: string, skipMemory = false): Promise<Found<V> | undefined> {
    const now = this.clock.now();
    const started = this.clock.monotonic();
    const inMemory = skipMemory ? undefined : (this.memory.get(key) as CacheRecord<V> | undefined);
    this.memoryLatency.observe(this.clock.monotonic() - started);
    if (inMemory) {
      // All tag versions known (the usual case): decided without a promise in the way.
      const alive = this.aliveIfKnown(inMemory, now) ?? (await this.alive(inMemory, now));
      if (alive) {
        this.totals.hits += 1;
        return { record: inMemory, tier: 'memory' };
      }
      this.memory.delete(key);
    }

    for (const tier of ['redis', 'disk'] as const) {
      const found = await this.readTier<V>(tier, key);
      if (!found) continue;
      const { record, bytes } = found;
      if (!(await this.alive(record, now))) {
        if (tier === 'disk') void this.disk?.delete(key);
        continue;
      }
      // Promote: the next read of this key is a memory hit.
      if (bytes <= this.maxValueBytes) this.memory.set(key, record, { size: bytes, removeAt: record.staleUntil });
      this.totals.hits += 1;
      return { record, tier };
    }
    this.totals.misses += 1;
    return undefined;
  }

  private async readTier<V>(tier: 'redis' | 'disk', key: string): Promise<{ record: CacheRecord<V>; bytes: number } | undefined> {
    const counters = this.counters[tier];
    const started = this.clock.monotonic();
    try {
      let found: { record: CacheRecord<V>; bytes: number } | undefined;
      if (tier === 'redis') {
        if (!this.redis) return undefined;
        const bytes = await this.redis.get(key);
        const record = bytes ? decodeRecord<V>(bytes) : undefined;
        found = record && bytes ? { record, bytes: bytes.length } : undefined;
      } else {
        if (!this.disk) return undefined;
        found = this.disk.get(key) as { record: CacheRecord<V>; bytes: number } | undefined;
      }
      counters.latency.observe(this.clock.monotonic() - started);
      if (found) counters.hits += 1;
      else counters.misses += 1;
      return found;
    } catch {
      counters.errors += 1;
      counters.latency.observe(this.clock.monotonic() - started);
      return undefined;
    }
  }

  /** alive() without waiting, or undefined when a tag's version must be asked of Redis first. */
  private aliveIfKnown(record: CacheRecord, now: number): boolean | undefined {
    // freshUntil and staleUntil are exclusive, as the memory tier's removeAt and the disk sweep
    // take them: otherwise at that very millisecond a disk copy would answer where memory had dropped it.
    if (now >= record.staleUntil) return false;
    for (let i = 0; i < record.tags.length; i += 1) {
      const current = this.tagVersions.get(record.tags[i]!);
      if (current === undefined) return undefined;
      if ((record.tagVersions[i] ?? 0) < current) return false;
    }
    return true;
  }

  /** Not past its grace, and no tag of it invalidated since it was written. */
  private async alive(record: CacheRecord, now: number): Promise<boolean> {
    if (now >= record.staleUntil) return false;
    if (record.tags.length === 0) return true;
    const current = await this.currentTagVersions(record.tags);
    return record.tags.every((_, i) => (record.tagVersions[i] ?? 0) >= current[i]!);
  }

  /** Tag versions known here; unknown ones are asked of Redis (bounded), else taken as 0. */
  private async currentTagVersions(tags: readonly string[]): Promise<number[]> {
    const unknown = tags.filter((tag) => !this.tagVersions.has(tag));
    if (unknown.length > 0 && this.redis) {
      try {
        const versions = await this.redis.tagVersions(unknown);
        unknown.forEach((tag, i) => this.tagVersions.set(tag, Math.max(versions[i] ?? 0, this.tagVersions.get(tag) ?? 0)));
      } catch {
        redisFailure();
      }
    }
    return tags.map((tag) => this.tagVersions.get(tag) ?? 0);
  }

  // ---- writing ------------------------------------------------------------------------------

  /** `tagVersions`: the versions of options.tags when the value was read from its source. */
  private makeRecord<V>(_key: string, value: V, options: EntryOptions, tagVersions: number[]): CacheRecord<V> {
    const ttl = options.ttlMs ?? this.defaults.ttlMs;
    const grace = options.graceMs ?? this.defaults.graceMs;
    const jitter = options.jitter ?? this.defaults.jitter;
    const now = this.clock.now();
    const freshUntil = now + ttl * (1 + jitter * (2 * this.random() - 1));
    const tags = [...(options.tags ?? [])];
    return { value, createdAt: now, freshUntil, staleUntil: freshUntil + grace, tags, tagVersions };
  }

  private async store(key: string, record: CacheRecord, tiers: readonly TierName[] | undefined, options: { awaitRedis?: boolean } = {}): Promise<void> {
    const wants = (tier: TierName) => !tiers || tiers.includes(tier);
    const shared = (wants('redis') && this.redis) || (wants('disk') && this.disk);
    let encoded: Buffer | undefined;
    if (shared) {
      try {
        encoded = encodeRecord(record);
      } catch (error) {
        throw new FarmlinkError('CACHE_UNSERIALIZABLE', `Cannot cache ${key}: ${(error as Error).message} (functions and symbols cannot be stored)`, { cause: error });
      }
    }
    const size = encoded?.length ?? estimateSize(record.value);
    if (wants('memory') && size <= this.maxValueBytes) this.memory.set(key, record, { size, removeAt: record.staleUntil });
    else this.memory.delete(key);
    // Not awaited: the disk tier answers reads from its own uncommitted writes, so nobody reads the old record.
    if (encoded && wants('disk') && this.disk) {
      this.disk.put(key, encoded)?.catch(this.countDiskError);
    }
    if (encoded && wants('redis') && this.redis) {
      const write = this.redis.set(key, encoded, record.staleUntil - this.clock.now()).catch(redisFailure);
      if (options.awaitRedis !== false) await write;
    }
  }

  // ---- loading ------------------------------------------------------------------------------

  private load<V>(key: string, loader: (context: { signal: AbortSignal; stale: V | undefined }) => Promise<V> | V, options: LoadOptions, stale: CacheRecord<V> | undefined): Promise<V> {
    const running = this.inflight.get(key) as Promise<V> | undefined;
    if (running) {
      this.totals.singleFlightJoins += 1;
      return running;
    }
    // The load may have finished while this caller was still looking the key up (in Redis, say):
    // then its value is in memory, and loading again would break single-flight.
    const landed = this.memory.peek(key) as CacheRecord<V> | undefined;
    const now = this.clock.now();
    if (landed && now < landed.freshUntil && this.aliveIfKnown(landed, now) === true) {
      this.totals.singleFlightJoins += 1;
      return Promise.resolve(landed.value);
    }
    const flight = this.runLoader(key, loader, options, stale);
    this.inflight.set(key, flight);
    void flight.then(
      () => this.inflight.delete(key),
      () => this.inflight.delete(key),
    );
    return flight;
  }

  private async runLoader<V>(key: string, loader: (context: { signal: AbortSignal; stale: V | undefined }) => Promise<V> | V, options: LoadOptions, stale: CacheRecord<V> | undefined): Promise<V> {
    this.totals.loads += 1;
    const hardTimeout = options.hardTimeoutMs ?? this.defaults.hardTimeoutMs;
    const controller = new AbortController();
    let timer: TimerHandle | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        this.totals.hardTimeouts += 1;
        reject(new FarmlinkError('CACHE_LOADER_TIMEOUT', `Loading ${key} took longer than ${hardTimeout} ms`));
        controller.abort();
      }, hardTimeout);
    });
    // Taken before the loader runs: if the tags are invalidated while it runs, what it read may
    // predate the invalidation, and the record must be dead on arrival rather than live under the new version.
    const tagVersions = await this.currentTagVersions(options.tags ?? []);
    try {
      const value = await Promise.race([Promise.resolve(loader({ signal: controller.signal, stale: stale?.value })), expired]);
      const record = this.makeRecord(key, value, options, tagVersions);
      // The caller has its value: Redis gets it in the background (a slow Redis costs the caller nothing).
      await this.store(key, record, options.tiers, { awaitRedis: false });
      this.announce({ keys: [key] });
      return value;
    } catch (error) {
      this.totals.loadErrors += 1;
      throw error;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  /** The caller's side of a load: the shared flight, the soft timeout and the stale fallback. */
  private async awaitLoad<V>(key: string, loader: (context: { signal: AbortSignal; stale: V | undefined }) => Promise<V> | V, options: LoadOptions, stale: CacheRecord<V> | undefined): Promise<V> {
    const flight = this.load(key, loader, options, stale);
    const softTimeout = options.softTimeoutMs ?? this.defaults.softTimeoutMs;
    const racers: Array<Promise<V>> = [flight];
    let timer: TimerHandle | undefined;
    if (stale && softTimeout > 0) {
      racers.push(
        new Promise<V>((resolve) => {
          timer = this.clock.setTimeout(() => {
            this.totals.softTimeouts += 1;
            this.totals.staleServed += 1;
            resolve(stale.value);
          }, softTimeout);
        }),
      );
    }
    try {
      return await Promise.race(racers);
    } catch (error) {
      if (!stale) throw error;
      // Fail-safe: the loader failed, the stale value is still within its grace.
      this.totals.staleServed += 1;
      this.log.warn({ err: error, cache: this.name, key }, 'Cache: loader failed; serving the stale value');
      return stale.value;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  // ---- coherence between processes ------------------------------------------------------------

  /** Queues a bus message; everything queued in one tick goes out as one publish. */
  private announce(message: Omit<BusMessage, 'origin'>): void {
    if (!this.redis) return;
    if (!this.pendingBus) {
      this.pendingBus = { origin: this.instanceId };
      setImmediate(() => this.flushBus());
    }
    const pending = this.pendingBus;
    if (message.keys) pending.keys = [...(pending.keys ?? []), ...message.keys];
    if (message.expire) pending.expire = [...(pending.expire ?? []), ...message.expire];
    if (message.tags) pending.tags = { ...pending.tags, ...message.tags };
    if (message.clear) pending.clear = true;
  }

  private flushBus(): void {
    const message = this.pendingBus;
    this.pendingBus = undefined;
    if (message && this.redis) this.redis.publish(message).catch(redisFailure);
  }

  private onBusMessage(message: BusMessage): void {
    // Everything / these keys: from memory and from this process's disk, as the sender did in its own tiers.
    if (message.clear) {
      this.memory.clear();
      void this.clearDisk();
    }
    for (const key of message.keys ?? []) {
      this.memory.delete(key);
      void this.dropFromDisk(key);
    }
    for (const key of message.expire ?? []) {
      const record = this.memory.peek(key);
      if (record) {
        const stale = staleFrom(record, this.clock.now());
        this.memory.set(key, stale, { size: estimateSizeOf(record), removeAt: stale.staleUntil });
      }
    }
    if (message.tags) {
      for (const [tag, version] of Object.entries(message.tags)) this.tagVersions.set(tag, Math.max(version, this.tagVersions.get(tag) ?? 0));
      this.persistTagVersions();
    }
  }

  /** deleteIf() without Redis's word: this process's own copies only, if they satisfy the predicate. */
  private async dropLocalCopyIf<V>(key: string, predicate: (value: V) => boolean): Promise<void> {
    const inMemory = this.memory.peek(key) as CacheRecord<V> | undefined;
    if (inMemory && predicate(inMemory.value)) this.memory.delete(key);
    const onDisk = this.disk?.get(key) as { record: CacheRecord<V> } | undefined;
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
    this.counters.disk.errors += 1;
  };

  private loadTagVersionsFromDisk(): void {
    if (!this.disk) return;
    for (const [tag, version] of Object.entries(this.disk.tagVersions())) this.tagVersions.set(tag, version);
  }

  private persistTagVersions(): void {
    this.disk?.saveTagVersions(Object.fromEntries(this.tagVersions));
  }

  /** Fills memory with the newest live records on disk, as many as memory holds. */
  private warmFromDisk(): void {
    const disk = this.disk!;
    const started = this.clock.monotonic();
    const now = this.clock.now();
    const live: Array<[string, CacheRecord, number]> = [];
    // Records of an invalidated tag (versions were loaded from disk first) would only take the place of live ones.
    for (const entry of disk.records(now)) if (this.aliveIfKnown(entry[1], now) !== false) live.push(entry);
    live.sort((a, b) => b[1].createdAt - a[1].createdAt);
    let loaded = 0;
    for (const [key, record, size] of live.slice(0, this.options.memory.maxEntries)) {
      if (size > this.maxValueBytes) continue;
      if (this.memory.set(key, record, { size, removeAt: record.staleUntil })) loaded += 1;
    }
    this.warm = { entries: loaded, found: live.length, ms: this.clock.monotonic() - started };
    if (loaded > 0) this.log.info({ cache: this.name, entries: loaded, ms: Math.round(this.warm.ms) }, `Cache ${this.name}: warmed ${loaded} entries from disk`);
  }
}

/**
 * Redis failures are counted by the Redis tier itself (errors, timeouts, calls skipped with the
 * circuit open); here they only must not escape: the call is answered from the other tiers.
 */
const redisFailure = (): undefined => undefined;

/** The record made stale now, servable for the grace it was written with (not until its old end: grace 0 means gone). */
function staleFrom<V>(record: CacheRecord<V>, now: number): CacheRecord<V> {
  const freshUntil = Math.min(record.freshUntil, now - 1);
  return { ...record, freshUntil, staleUntil: Math.min(record.staleUntil, freshUntil + (record.staleUntil - record.freshUntil)) };
}

function estimateSizeOf(record: CacheRecord): number {
  return estimateSize(record.value) + 64;
}

/** A cache view under a name: keys prefixed, entries tagged with the namespace, clear() drops them all. */
export class CacheNamespace {
  private readonly prefix: string;
  private readonly tag: string;

  constructor(
    private readonly cache: MultiTierCache,
    readonly name: string,
  ) {
    this.prefix = `${name}:`;
    this.tag = NAMESPACE_TAG(name);
  }

  get<V>(key: string, options?: { allowStale?: boolean }): Promise<V | undefined> {
    return this.cache.get<V>(this.prefix + key, options);
  }

  set<V>(key: string, value: V, options: EntryOptions = {}): Promise<void> {
    return this.cache.set(this.prefix + key, value, this.tagged(options));
  }

  getOrSet<V>(key: string, loader: (context: { signal: AbortSignal; stale: V | undefined }) => Promise<V> | V, options: LoadOptions = {}): Promise<V> {
    return this.cache.getOrSet(this.prefix + key, loader, this.tagged(options));
  }

  delete(key: string): Promise<void> {
    return this.cache.delete(this.prefix + key);
  }

  expire(key: string): Promise<void> {
    return this.cache.expire(this.prefix + key);
  }

  /** Every value in this namespace, in every process, is never served again. */
  clear(): Promise<void> {
    return this.cache.invalidateTags([this.tag]);
  }

  private tagged<T extends EntryOptions>(options: T): T {
    return { ...options, tags: [...(options.tags ?? []), this.tag] };
  }
}
