import type { MemoryTier, MemoryTierOptions, MemoryTierStats } from './memory-tier.js';

interface Entry<V> {
  value: V;
  size: number;
  /** 0 = never expires. */
  removeAt: number;
}

/**
 * The memory tier with plain LRU eviction: the baseline W-TinyLFU is measured against in bench/,
 * and the policy to pick (`memory.policy: lru`) for workloads with no reuse skew. A Map keeps
 * insertion order, so re-inserting on every hit makes its first key the least recently used.
 */
export class LruMemoryTier<V> implements MemoryTier<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly onEvict: MemoryTierOptions['onEvict'];
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, evictions: 0, expirations: 0, admissionsRejected: 0 };

  constructor(options: MemoryTierOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    this.maxEntries = options.maxEntries;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? Date.now;
    this.onEvict = options.onEvict;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.counters.misses += 1;
      return undefined;
    }
    if (entry.removeAt !== 0 && entry.removeAt <= this.now()) {
      this.counters.misses += 1;
      this.counters.expirations += 1;
      this.drop(key, entry);
      this.onEvict?.(key, 'expired');
      return undefined;
    }
    this.counters.hits += 1;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  peek(key: string): V | undefined {
    const entry = this.entries.get(key);
    return entry === undefined || (entry.removeAt !== 0 && entry.removeAt <= this.now()) ? undefined : entry.value;
  }

  has(key: string): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && (entry.removeAt === 0 || entry.removeAt > this.now());
  }

  set(key: string, value: V, options?: { size?: number; removeAt?: number }): boolean {
    const size = options?.size ?? 0;
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    if (size > this.maxBytes) {
      this.counters.admissionsRejected += 1;
      return false;
    }
    this.entries.set(key, { value, size, removeAt: options?.removeAt ?? 0 });
    this.bytes += size;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry<V>];
      const expired = oldest.removeAt !== 0 && oldest.removeAt <= this.now();
      this.drop(oldestKey, oldest);
      if (expired) this.counters.expirations += 1;
      else this.counters.evictions += 1;
      this.onEvict?.(oldestKey, expired ? 'expired' : 'capacity');
    }
    return true;
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.drop(key, entry);
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  stats(): MemoryTierStats {
    return { ...this.counters, entries: this.entries.size, bytes: this.bytes };
  }

  private drop(key: string, entry: Entry<V>): void {
    this.entries.delete(key);
    this.bytes -= entry.size;
  }
}
