import { systemClock } from '../clock.js';
import { FrequencySketch, hashKey } from './frequency-sketch.js';
import type { MemoryTier, MemoryTierOptions, MemoryTierStats } from './memory-tier.js';

/** Slot record layout: int32 fields at 8·slot + …, float64 fields at 4·slot + … (32 bytes a slot). */
const RECORD_BYTES = 32;
const PREV = 1;
/** Packed: bits 0–1 the queue, 2–15 hits not yet given to the sketch, 16–31 the sketch epoch of the first of them. */
const QUEUE = 2;
const HASH = 3;
const QUEUE_MASK = 3;
const PENDING_ONE = 4;
const PENDING_MASK = 0xfffc;
const REMOVE_AT = 2;
const SIZE = 3;

const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;

/**
 * The memory tier with W-TinyLFU admission (Einziger, Friedman & Manes; the policy of Java's
 * Caffeine). New entries land in a small LRU window (1 % of the capacity). What falls out of the
 * window is a candidate for the main space, a segmented LRU (20 % probation, 80 % protected); it
 * gets in only if the frequency sketch says it is asked for more often than the entry it would
 * push out. So a one-off scan passes through the window without flushing the hot set, which is
 * where plain LRU loses most.
 *
 * Entries live in slots: keys and values in two arrays, everything else in one typed-array record
 * per slot, with the three LRU lists threaded through it as index links (as lru-cache does): no
 * object per entry, nothing for the garbage collector to chase. Each slot keeps its key's hash,
 * so hits never rehash the key.
 */
export class TinyLfuMemoryTier<V> implements MemoryTier<V> {
  private readonly capacity: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly onEvict: MemoryTierOptions['onEvict'];
  private readonly sketch: FrequencySketch;
  private readonly slots = new Map<string, number>();

  private readonly keyOf: Array<string | undefined>;
  private readonly valueOf: Array<V | undefined>;
  /**
   * Per slot, one 32-byte record in one buffer: next, prev, queue, hash (int32 at 8s..8s+3) and
   * removeAt, size (float64 at 4s+2, 4s+3). A hit reads and relinks a slot and its neighbours; with
   * the fields side by side that is one cache line per slot instead of one per field, which is
   * most of the difference to lru-cache at 100k entries and more.
   */
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;
  /** Slots never used yet are handed out from `fresh`; freed ones are stacked here. */
  private readonly freeSlots: number[] = [];
  private fresh = 0;

  /** The list heads are sentinel slots past the last real one: capacity + WINDOW/PROBATION/PROTECTED. */
  private readonly head: number;
  private readonly counts = [0, 0, 0];
  private readonly windowMax: number;
  private readonly protectedMax: number;
  private bytes = 0;
  /** Writes so far, and where the last aging of the sketch was, in hits + writes. */
  private writes = 0;
  private agedAt = 0;
  private readonly counters = { hits: 0, misses: 0, evictions: 0, expirations: 0, admissionsRejected: 0 };

  constructor(options: MemoryTierOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    this.capacity = options.maxEntries;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? (() => systemClock.monotonic());
    this.onEvict = options.onEvict;
    this.sketch = new FrequencySketch(this.capacity);
    this.windowMax = Math.max(1, Math.round(this.capacity * 0.01));
    this.protectedMax = Math.round((this.capacity - this.windowMax) * 0.8);

    // One slot more than the capacity: a new entry is placed before the policy picks who leaves.
    // The three list heads are sentinel records after the last real slot.
    const entries = this.capacity + 1;
    this.keyOf = new Array<string | undefined>(entries);
    this.valueOf = new Array<V | undefined>(entries);
    const buffer = new ArrayBuffer((entries + 3) * RECORD_BYTES);
    this.ints = new Int32Array(buffer);
    this.floats = new Float64Array(buffer);
    this.head = entries;
    this.resetLists();
  }

  get size(): number {
    return this.slots.size;
  }

  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) {
      // Not counted here: a miss is followed by the set that stores the loaded value, and that
      // set counts the request. Counting both would rate every newcomer twice over a resident
      // (weakening scan resistance) and hash the key on the miss path, which lru-cache does not.
      this.counters.misses += 1;
      return undefined;
    }
    const removeAt = this.floats[(slot << 2) + REMOVE_AT]!;
    if (removeAt !== 0 && removeAt <= this.now()) {
      this.counters.expirations += 1;
      this.counters.misses += 1;
      this.remove(slot);
      this.onEvict?.(key, 'expired');
      return undefined;
    }
    this.counters.hits += 1;
    this.noteAccess(slot);
    this.touch(slot);
    return this.valueOf[slot];
  }

  peek(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const removeAt = this.floats[(slot << 2) + REMOVE_AT]!;
    return removeAt !== 0 && removeAt <= this.now() ? undefined : this.valueOf[slot];
  }

  has(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    const removeAt = this.floats[(slot << 2) + REMOVE_AT]!;
    return removeAt === 0 || removeAt > this.now();
  }

  set(key: string, value: V, options?: { size?: number; removeAt?: number }): boolean {
    const size = options?.size ?? 0;
    const removeAt = options?.removeAt ?? 0;
    if (size > this.maxBytes) {
      this.delete(key);
      this.counters.admissionsRejected += 1;
      return false;
    }
    let slot = this.slots.get(key);
    if (slot !== undefined) {
      this.bytes += size - this.floats[(slot << 2) + SIZE]!;
      this.valueOf[slot] = value;
      this.floats[(slot << 2) + SIZE] = size;
      this.floats[(slot << 2) + REMOVE_AT] = removeAt;
      this.noteAccess(slot);
      this.tick();
      this.touch(slot);
      this.evictForBytes(slot);
      return true;
    }
    const hash = hashKey(key);
    this.tick();
    slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.fresh++;
    this.keyOf[slot] = key;
    this.valueOf[slot] = value;
    this.ints[(slot << 3) + HASH] = hash;
    // Its first access, held back like a hit's until it duels or leaves.
    this.ints[(slot << 3) + QUEUE] = PENDING_ONE | (this.sketch.epoch << 16);
    this.floats[(slot << 2) + SIZE] = size;
    this.floats[(slot << 2) + REMOVE_AT] = removeAt;
    this.bytes += size;
    this.slots.set(key, slot);
    this.append(WINDOW, slot);
    if (this.counts[WINDOW]! > this.windowMax) this.leaveWindow();
    if (this.slots.size > this.capacity) this.evictOne();
    this.evictForBytes(slot);
    return this.slots.has(key);
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.remove(slot);
    return true;
  }

  clear(): void {
    this.slots.clear();
    this.keyOf.fill(undefined);
    this.valueOf.fill(undefined);
    this.freeSlots.length = 0;
    this.fresh = 0;
    this.bytes = 0;
    this.resetLists();
  }

  /** Every list empty: each sentinel linked to itself. */
  private resetLists(): void {
    for (let q = 0; q < 3; q += 1) {
      const h = this.head + q;
      this.ints[h << 3] = h;
      this.ints[(h << 3) + PREV] = h;
      this.counts[q] = 0;
    }
  }

  *keys(): IterableIterator<string> {
    // Entries past removeAt stay in their slot until touched or pushed out; they are not live.
    const now = this.now();
    for (const [key, slot] of this.slots) {
      const removeAt = this.floats[(slot << 2) + REMOVE_AT]!;
      if (removeAt === 0 || removeAt > now) yield key;
    }
  }

  stats(): MemoryTierStats {
    return { ...this.counters, entries: this.slots.size, bytes: this.bytes };
  }

  // ---- the policy ---------------------------------------------------------------------------

  /** A hit: most recent in its list; a probation entry earns protection. */
  private touch(slot: number): void {
    const q = this.ints[(slot << 3) + QUEUE]! & QUEUE_MASK;
    if (q !== PROBATION) {
      this.moveToEnd(q, slot);
      return;
    }
    this.unlink(slot);
    this.append(PROTECTED, slot);
    // Protected is full: its least recent entry goes back on probation, not out.
    if (this.counts[PROTECTED]! > this.protectedMax) {
      const demoted = this.ints[(this.head + PROTECTED) << 3]!;
      this.unlink(demoted);
      this.append(PROBATION, demoted);
    }
  }

  /** Most recent in its own queue: relinked only (the counts and the queue field stay as they are). */
  private moveToEnd(q: number, slot: number): void {
    const h = this.head + q;
    const last = this.ints[(h << 3) + PREV]!;
    if (last === slot) return;
    const p = this.ints[(slot << 3) + PREV]!;
    const n = this.ints[slot << 3]!;
    this.ints[p << 3] = n;
    this.ints[(n << 3) + PREV] = p;
    this.ints[last << 3] = slot;
    this.ints[(slot << 3) + PREV] = last;
    this.ints[slot << 3] = h;
    this.ints[(h << 3) + PREV] = slot;
  }

  /**
   * The window is over its share: its least recent entry becomes a candidate for the main space.
   * With room there it moves in; otherwise it duels the main space's victim (probation's least
   * recent entry) on frequency, and the loser leaves the cache.
   */
  private leaveWindow(): void {
    const candidate = this.ints[(this.head + WINDOW) << 3]!;
    this.unlink(candidate);
    this.append(PROBATION, candidate);
    if (this.counts[PROBATION]! + this.counts[PROTECTED]! <= this.capacity - this.windowMax) return;
    const victim = this.mainVictim(candidate);
    this.flushHits(candidate);
    this.flushHits(victim);
    if (
      victim === candidate ||
      this.sketch.frequency(this.ints[(candidate << 3) + HASH]!) <=
        this.sketch.frequency(this.ints[(victim << 3) + HASH]!)
    ) {
      this.counters.admissionsRejected += 1;
      this.evict(candidate);
    } else {
      this.evict(victim);
    }
  }

  /** The main space's least valuable entry other than the candidate: probation's oldest, else protected's. */
  private mainVictim(candidate: number): number {
    const probationOldest = this.ints[(this.head + PROBATION) << 3]!;
    if (probationOldest !== candidate) return probationOldest;
    const protectedOldest = this.ints[(this.head + PROTECTED) << 3]!;
    return protectedOldest === this.head + PROTECTED ? candidate : protectedOldest;
  }

  /** A safety net: the window and main shares already keep the count within capacity. */
  private evictOne(): void {
    const probationOldest = this.ints[(this.head + PROBATION) << 3]!;
    if (probationOldest !== this.head + PROBATION) {
      this.evict(probationOldest);
      return;
    }
    const windowOldest = this.ints[(this.head + WINDOW) << 3]!;
    if (windowOldest !== this.head + WINDOW) {
      this.evict(windowOldest);
      return;
    }
    this.evict(this.ints[(this.head + PROTECTED) << 3]!);
  }

  /** Over the byte bound: evict, least valuable first, never the entry just written unless it is alone. */
  private evictForBytes(keep: number): void {
    while (this.bytes > this.maxBytes && this.slots.size > 1) {
      let victim = -1;
      for (const q of [PROBATION, WINDOW, PROTECTED]) {
        let s = this.ints[(this.head + q) << 3]!;
        while (s !== this.head + q && s === keep) s = this.ints[s << 3]!;
        if (s !== this.head + q) {
          victim = s;
          break;
        }
      }
      if (victim < 0) break;
      this.evict(victim);
    }
  }

  private evict(slot: number): void {
    const key = this.keyOf[slot]!;
    const removeAt = this.floats[(slot << 2) + REMOVE_AT]!;
    const expired = removeAt !== 0 && removeAt <= this.now();
    this.remove(slot);
    if (expired) this.counters.expirations += 1;
    else this.counters.evictions += 1;
    this.onEvict?.(key, expired ? 'expired' : 'capacity');
  }

  /**
   * An access (a hit, an overwrite, a new entry), noted in the slot's own record (already in
   * cache) rather than in the sketch: the sketch gets a slot's accesses only when its frequency is
   * asked (a duel) or it leaves (so the key's history outlives it). That keeps an access to a
   * counter bump, close to what lru-cache pays for a hit.
   */
  private noteAccess(slot: number): void {
    const field = (slot << 3) + QUEUE;
    const packed = this.ints[field]!;
    if ((packed & PENDING_MASK) === 0)
      this.ints[field] = (packed & QUEUE_MASK) | PENDING_ONE | (this.sketch.epoch << 16);
    else if ((packed & PENDING_MASK) !== PENDING_MASK) this.ints[field] = packed + PENDING_ONE;
  }

  /** A write: the aging period checked (hits count towards it too, without a check of their own). */
  private tick(): void {
    this.writes += 1;
    const seen = this.counters.hits + this.writes;
    if (seen - this.agedAt >= this.sketch.period) {
      this.sketch.age();
      // As TinyLFU's reset: the next aging comes after half a period more.
      this.agedAt = seen - (this.sketch.period >>> 1);
    }
  }

  /** Gives the sketch the hits this slot held back, aged by every halving since the first of them. */
  private flushHits(slot: number): void {
    const field = (slot << 3) + QUEUE;
    const packed = this.ints[field]!;
    const pending = (packed & PENDING_MASK) >>> 2;
    if (pending === 0) return;
    this.ints[field] = packed & QUEUE_MASK;
    const aged = (this.sketch.epoch - (packed >>> 16)) & 0xffff;
    const n = aged >= 14 ? 0 : pending >>> aged;
    if (n > 0) this.sketch.add(this.ints[(slot << 3) + HASH]!, n);
  }

  // ---- the lists ----------------------------------------------------------------------------

  private remove(slot: number): void {
    this.flushHits(slot);
    this.unlink(slot);
    this.slots.delete(this.keyOf[slot]!);
    this.bytes -= this.floats[(slot << 2) + SIZE]!;
    this.keyOf[slot] = undefined;
    this.valueOf[slot] = undefined;
    this.freeSlots.push(slot);
  }

  private unlink(slot: number): void {
    const p = this.ints[(slot << 3) + PREV]!;
    const n = this.ints[slot << 3]!;
    this.ints[p << 3] = n;
    this.ints[(n << 3) + PREV] = p;
    this.counts[this.ints[(slot << 3) + QUEUE]! & QUEUE_MASK]! -= 1;
  }

  /** Appends as the most recent of queue q (the head's prev); the least recent is the head's next. */
  private append(q: number, slot: number): void {
    const h = this.head + q;
    const last = this.ints[(h << 3) + PREV]!;
    this.ints[last << 3] = slot;
    this.ints[(slot << 3) + PREV] = last;
    this.ints[slot << 3] = h;
    this.ints[(h << 3) + PREV] = slot;
    this.ints[(slot << 3) + QUEUE] = (this.ints[(slot << 3) + QUEUE]! & ~QUEUE_MASK) | q;
    this.counts[q]! += 1;
  }
}
