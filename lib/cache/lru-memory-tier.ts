import { systemClock } from '../clock.js';
import { LRUCache } from 'lru-cache';
import type { MemoryTier, MemoryTierOptions, MemoryTierStats } from './memory-tier.js';

interface Entry<V> {
  value: V;
  size: number;
  /** 0 = never expires. */
  removeAt: number;
}

/**
 * The memory tier with plain LRU eviction, on `lru-cache`: the baseline W-TinyLFU is measured
 * against in bench/, and the policy to pick (`memory.policy: lru`) for workloads with no reuse
 * skew. Expiry is checked here against the injected clock rather than by lru-cache's own TTL
 * timers, so both tiers expire the same way and fake clocks drive them in tests.
 */
export class LruMemoryTier<V> implements MemoryTier<V> {
  private readonly lru: LRUCache<string, Entry<V>>;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly onEvict: MemoryTierOptions['onEvict'];
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, evictions: 0, expirations: 0, admissionsRejected: 0 };

  constructor(options: MemoryTierOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? (() => systemClock.monotonic());
    this.onEvict = options.onEvict;
    this.lru = new LRUCache<string, Entry<V>>({
      max: options.maxEntries,
      // lru-cache wants sizes ≥ 1; the byte count we report is kept separately and exactly.
      ...(options.maxBytes
        ? { maxSize: options.maxBytes, sizeCalculation: (entry: Entry<V>) => Math.max(1, entry.size) }
        : {}),
      dispose: (entry, key, reason) => {
        this.bytes -= entry.size;
        if (reason !== 'evict') return;
        const expired = entry.removeAt !== 0 && entry.removeAt <= this.now();
        if (expired) this.counters.expirations += 1;
        else this.counters.evictions += 1;
        this.onEvict?.(key, expired ? 'expired' : 'capacity');
      },
    });
  }

  get size(): number {
    return this.lru.size;
  }

  get(key: string): V | undefined {
    const entry = this.lru.get(key);
    if (entry === undefined) {
      this.counters.misses += 1;
      return undefined;
    }
    if (entry.removeAt !== 0 && entry.removeAt <= this.now()) {
      this.counters.misses += 1;
      this.counters.expirations += 1;
      this.lru.delete(key);
      this.onEvict?.(key, 'expired');
      return undefined;
    }
    this.counters.hits += 1;
    return entry.value;
  }

  peek(key: string): V | undefined {
    const entry = this.lru.peek(key);
    return entry === undefined || (entry.removeAt !== 0 && entry.removeAt <= this.now()) ? undefined : entry.value;
  }

  has(key: string): boolean {
    const entry = this.lru.peek(key);
    return entry !== undefined && (entry.removeAt === 0 || entry.removeAt > this.now());
  }

  set(key: string, value: V, options?: { size?: number; removeAt?: number }): boolean {
    const size = options?.size ?? 0;
    if (size > this.maxBytes) {
      this.lru.delete(key);
      this.counters.admissionsRejected += 1;
      return false;
    }
    this.bytes += size;
    this.lru.set(key, { value, size, removeAt: options?.removeAt ?? 0 });
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
    this.bytes = 0;
  }

  *keys(): IterableIterator<string> {
    // Expiry is ours, not lru-cache's: entries past removeAt stay until touched or evicted, and are not live.
    const now = this.now();
    for (const [key, entry] of this.lru.entries()) if (entry.removeAt === 0 || entry.removeAt > now) yield key;
  }

  stats(): MemoryTierStats {
    return { ...this.counters, entries: this.lru.size, bytes: this.bytes };
  }
}
