import { describe, expect, it } from 'vitest';
import { FrequencySketch, hashKey } from './frequency-sketch.js';
import { prng } from '../prng.js';

/** The sketch ages after 10 × capacity additions (at least 160). */
const sampleSizeOf = (capacity: number) => Math.max(160, capacity * 10);

describe('FrequencySketch', () => {
  it('starts at zero and counts each increment', () => {
    const sketch = new FrequencySketch(1000);
    const h = hashKey('device:42');
    expect(sketch.frequency(h)).toBe(0);
    for (let i = 1; i <= 10; i += 1) {
      sketch.increment(h);
      expect(sketch.frequency(h)).toBe(i);
    }
    expect(sketch.frequency(hashKey('device:43'))).toBeLessThanOrEqual(1);
  });

  it('saturates at 15', () => {
    const sketch = new FrequencySketch(1000);
    const h = hashKey('hot');
    for (let i = 0; i < 100; i += 1) sketch.increment(h);
    expect(sketch.frequency(h)).toBe(15);
  });

  it('never under-counts a key and is exact for most keys (count-min, conservative update)', () => {
    const capacity = 4096;
    const sketch = new FrequencySketch(capacity);
    const random = prng(7);
    const truth = new Map<number, number>();
    const keys = Array.from({ length: 3000 }, (_, i) => hashKey(`key:${i}`));
    // Interleaved increments, below the sample size so no halving happens.
    const schedule: number[] = [];
    keys.forEach((h, i) => {
      const n = 1 + (i % 20);
      for (let j = 0; j < n; j += 1) schedule.push(h);
    });
    expect(schedule.length).toBeLessThan(sampleSizeOf(capacity));
    for (let i = schedule.length - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      [schedule[i], schedule[j]] = [schedule[j]!, schedule[i]!];
    }
    for (const h of schedule) {
      sketch.increment(h);
      truth.set(h, (truth.get(h) ?? 0) + 1);
    }
    let exact = 0;
    let overCount = 0;
    for (const h of keys) {
      const expected = Math.min(15, truth.get(h)!);
      const estimate = sketch.frequency(h);
      expect(estimate).toBeGreaterThanOrEqual(expected);
      expect(estimate).toBeLessThanOrEqual(15);
      if (estimate === expected) exact += 1;
      overCount += estimate - expected;
    }
    expect(exact / keys.length).toBeGreaterThan(0.95);
    expect(overCount / keys.length).toBeLessThan(0.2);
  });

  it('halves every counter after sampleSize additions', () => {
    const capacity = 16;
    const sampleSize = sampleSizeOf(capacity);
    const sketch = new FrequencySketch(capacity);
    const a = hashKey('a');
    const b = hashKey('b');
    for (let i = 0; i < 15; i += 1) sketch.increment(a);
    for (let i = 0; i < sampleSize - 16; i += 1) sketch.increment(b);
    // One addition short of the sample: nothing has aged yet.
    expect(sketch.frequency(a)).toBe(15);
    expect(sketch.frequency(b)).toBe(15);
    sketch.increment(b);
    expect(sketch.frequency(a)).toBe(7);
    expect(sketch.frequency(b)).toBe(7);
  });

  it('ages each estimate to exactly half (rounded down), without bits leaking between counters', () => {
    const capacity = 1000;
    const sampleSize = sampleSizeOf(capacity);
    const sketch = new FrequencySketch(capacity);
    const random = prng(11);
    // A saturated key: incrementing it changes no counter, only the addition count.
    const saturated = hashKey('saturated');
    for (let i = 0; i < 15; i += 1) sketch.increment(saturated);
    let additions = 15;
    const keys = Array.from({ length: 500 }, (_, i) => hashKey(`k${i}`));
    for (const h of keys) {
      const n = 1 + Math.floor(random() * 15);
      for (let j = 0; j < n; j += 1) sketch.increment(h);
      additions += n;
    }
    expect(additions).toBeLessThan(sampleSize);
    const before = keys.map((h) => sketch.frequency(h));
    while (additions < sampleSize - 1) {
      sketch.increment(saturated);
      additions += 1;
    }
    expect(keys.map((h) => sketch.frequency(h))).toEqual(before);
    sketch.increment(saturated);
    expect(keys.map((h) => sketch.frequency(h))).toEqual(before.map((f) => f >> 1));
    expect(before.some((f) => f % 2 === 1)).toBe(true);
  });

  it('forgets a key that is no longer asked for', () => {
    const capacity = 100;
    const sketch = new FrequencySketch(capacity);
    const old = hashKey('yesterday');
    const current = hashKey('today');
    for (let i = 0; i < 15; i += 1) sketch.increment(old);
    const seen: number[] = [];
    for (let i = 0; i < 5 * sampleSizeOf(capacity); i += 1) {
      sketch.increment(current);
      const f = sketch.frequency(old);
      if (f !== seen[seen.length - 1]) seen.push(f);
    }
    expect(seen).toEqual([15, 7, 3, 1, 0]);
    expect(sketch.frequency(current)).toBeGreaterThan(0);
  });
});

describe('hashKey', () => {
  it('is deterministic and a 32-bit integer', () => {
    for (const key of ['', 'a', 'device:1', 'ключ', '🔑', 'x'.repeat(1000)]) {
      const h = hashKey(key);
      expect(hashKey(key)).toBe(h);
      expect(Number.isInteger(h)).toBe(true);
      expect(h | 0).toBe(h);
    }
  });

  it('gives distinct keys distinct hashes (few collisions over 100k keys)', () => {
    const hashes = new Set<number>();
    const n = 100_000;
    for (let i = 0; i < n; i += 1) hashes.add(hashKey(`user:${i}`));
    // Birthday bound for 100k keys in 2^32 values: about one collision expected.
    expect(n - hashes.size).toBeLessThan(10);
  });

  it('spreads similar keys evenly over the low and the high bits', () => {
    const n = 64_000;
    const low = new Array<number>(16).fill(0);
    const high = new Array<number>(16).fill(0);
    for (let i = 0; i < n; i += 1) {
      const h = hashKey(`session-${i}`);
      low[h & 15]! += 1;
      high[h >>> 28]! += 1;
    }
    for (const buckets of [low, high]) {
      for (const count of buckets) {
        expect(count).toBeGreaterThan((n / 16) * 0.9);
        expect(count).toBeLessThan((n / 16) * 1.1);
      }
    }
  });

  it('changes about half the bits when one character changes (avalanche)', () => {
    let flipped = 0;
    const n = 2000;
    for (let i = 0; i < n; i += 1) {
      const x = hashKey(`k${i}a`) ^ hashKey(`k${i}b`);
      for (let bit = 0; bit < 32; bit += 1) flipped += (x >>> bit) & 1;
    }
    const mean = flipped / n;
    expect(mean).toBeGreaterThan(14);
    expect(mean).toBeLessThan(18);
  });
});
