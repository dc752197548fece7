/**
 * The in-process tier (L1) of the cache: the contract. The implementation is W-TinyLFU
 * (`tinylfu-memory-tier.ts`); `lru-memory-tier.ts` is plain LRU, kept as the baseline the
 * benchmark compares against and as a fallback policy.
 */

export interface MemoryTierOptions {
  /** Most entries held at once. */
  maxEntries: number;
  /** Most bytes held at once, as reported by each `set`'s `size`; unbounded when omitted. */
  maxBytes?: number;
  /** Monotonic milliseconds (default: the system clock's monotonic reading); injected so expiry is testable. */
  now?: () => number;
  /** Called for every entry that leaves the tier by eviction or expiry (not by delete/clear). */
  onEvict?: (key: string, reason: 'capacity' | 'expired') => void;
}

export interface MemoryTierStats {
  hits: number;
  misses: number;
  /** Entries pushed out to make room. */
  evictions: number;
  /** Entries that expired (found expired on access, or swept). */
  expirations: number;
  /** New entries the admission policy refused (always 0 for plain LRU). */
  admissionsRejected: number;
  entries: number;
  bytes: number;
}

export interface MemoryTier<V> {
  /**
   * The value, or undefined when absent or past `removeAt`. A hit is recorded for the admission
   * policy; a miss is recorded by the `set` that follows it (cache-aside), so every request counts
   * once and keys that keep being asked for earn their place.
   */
  get(key: string): V | undefined;
  /** The value without recording an access or changing recency. */
  peek(key: string): V | undefined;
  /**
   * Stores a value. `size` counts towards maxBytes; `removeAt` (in `now()` time) is when the entry
   * stops being returned at all. Returns false when the value cannot be held at all (larger than
   * maxBytes; the key is then absent). W-TinyLFU's admission decision comes later, when the new
   * entry leaves the admission window, and shows in `admissionsRejected`.
   */
  set(key: string, value: V, options?: { size?: number; removeAt?: number }): boolean;
  delete(key: string): boolean;
  clear(): void;
  has(key: string): boolean;
  /** Every live key (order unspecified), for group operations such as dropping a namespace. */
  keys(): IterableIterator<string>;
  readonly size: number;
  stats(): MemoryTierStats;
}
