/**
 * How often each key was asked for, recently — approximately, in a few bytes per cache entry.
 * A count-min sketch of small counters (saturating at 15, as Caffeine's 4-bit ones do) with four
 * hash functions, as in Caffeine's W-TinyLFU: an estimate is the smallest of a key's four counters, so collisions can
 * only over-count, and only a little. Every `sampleSize` increments all counters are halved, so
 * the sketch forgets old popularity and a key that was hot last hour does not squat forever.
 *
 * Layout (Caffeine's "blocked" sketch): a key's four counters all sit in one 64-byte block, one
 * in each 16-byte quarter, so an update costs one cache miss rather than four. Counters are kept
 * one per byte rather than packed into nibbles: 8 bytes per cache entry, a single store per update.
 */
export class FrequencySketch {
  private readonly table: Uint8Array;
  /** The same memory seen 4 counters at a time, for the halving pass. */
  private readonly words: Uint32Array;
  /** 32 − log2(number of blocks): a block is the top bits of a multiplicative hash. */
  private readonly blockShift: number;
  private readonly sampleSize: number;
  private additions = 0;
  private ages = 0;

  /** Sized for a cache of `capacity` entries. */
  constructor(capacity: number) {
    const bytes = nextPowerOfTwo(Math.max(16, capacity) * 8);
    this.table = new Uint8Array(bytes);
    this.words = new Uint32Array(this.table.buffer);
    this.blockShift = 32 - Math.log2(bytes / 64);
    this.sampleSize = Math.max(160, capacity * 10);
  }

  /** The estimated recent frequency of the key with this hash, 0..15. */
  frequency(hash: number): number {
    const t = this.table;
    const block = (Math.imul(hash, 0x9e3779b1) >>> this.blockShift) << 6;
    const h = Math.imul(hash, 0x85ebca77);
    let min = t[block + (h & 15)]!;
    let c = t[block + 16 + ((h >>> 4) & 15)]!;
    if (c < min) min = c;
    c = t[block + 32 + ((h >>> 8) & 15)]!;
    if (c < min) min = c;
    c = t[block + 48 + ((h >>> 12) & 15)]!;
    return c < min ? c : min;
  }

  /**
   * Counts one access. Conservative update: only the counters at the current minimum grow,
   * which keeps collisions from inflating the keys that share a counter.
   */
  increment(hash: number): void {
    this.add(hash, 1);
    if (++this.additions >= this.sampleSize) this.age();
  }

  /**
   * Counts `n` accesses at once (conservative, saturating), without counting them towards the
   * aging period: for a caller that batches hits and drives aging itself with age().
   */
  add(hash: number, n: number): void {
    const t = this.table;
    const block = (Math.imul(hash, 0x9e3779b1) >>> this.blockShift) << 6;
    const h = Math.imul(hash, 0x85ebca77);
    const i0 = block + (h & 15);
    const i1 = block + 16 + ((h >>> 4) & 15);
    const i2 = block + 32 + ((h >>> 8) & 15);
    const i3 = block + 48 + ((h >>> 12) & 15);
    let min = t[i0]!;
    if (t[i1]! < min) min = t[i1]!;
    if (t[i2]! < min) min = t[i2]!;
    if (t[i3]! < min) min = t[i3]!;
    const to = min + n > 15 ? 15 : min + n;
    if (t[i0]! < to) t[i0] = to;
    if (t[i1]! < to) t[i1] = to;
    if (t[i2]! < to) t[i2] = to;
    if (t[i3]! < to) t[i3] = to;
  }

  /** How many times the counters have been halved: hits held back since an older epoch are aged as much. */
  get epoch(): number {
    return this.ages;
  }

  /** Sized period of aging: after this many accesses, age() (increment() does it by itself). */
  get period(): number {
    return this.sampleSize;
  }

  /** Ages every counter (the "reset" of TinyLFU); increment() does it every period, add() callers themselves. */
  age(): void {
    this.ages += 1;
    const w = this.words;
    // Halving four byte counters at once: shift the word, then drop the bit each byte got from its neighbour.
    for (let i = 0; i < w.length; i += 1) w[i] = (w[i]! >>> 1) & 0x7f7f7f7f;
    this.additions = Math.floor(this.additions / 2);
  }
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

/** A 32-bit FNV-1a hash of a string, spread with a final avalanche so low bits are usable. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h | 0;
}
