import { describe, expect, it } from 'vitest';
import { TokenBucket } from './rate-limiter.js';

describe('TokenBucket', () => {
  it('allows the burst, then the sustained rate', () => {
    const bucket = new TokenBucket(10, 5, 0);
    const burst = Array.from({ length: 6 }, () => bucket.take(0));
    expect(burst).toEqual([true, true, true, true, true, false]);
    expect(bucket.take(99)).toBe(false); // 0.99 of a token
    expect(bucket.take(100)).toBe(true); // one token per 100 ms at 10/s
    expect(bucket.take(100)).toBe(false);
  });

  it('never holds more than the burst however long it idles', () => {
    const bucket = new TokenBucket(10, 3, 0);
    const after = Array.from({ length: 4 }, () => bucket.take(3_600_000));
    expect(after).toEqual([true, true, true, false]);
  });
});
