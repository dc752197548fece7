import { describe, expect, it } from 'vitest';
import { LogThrottle } from './log-throttle.js';

describe('LogThrottle', () => {
  it('logs the first at once, then one per interval with the count of those left out', () => {
    let now = 1000;
    const throttle = new LogThrottle(10_000, () => now);
    expect(throttle.take()).toEqual({ suppressed: 0 });
    expect(throttle.take()).toBeUndefined();
    now += 9_999;
    expect(throttle.take()).toBeUndefined();
    now += 1;
    expect(throttle.take()).toEqual({ suppressed: 2 });
    now += 10_000;
    expect(throttle.take()).toEqual({ suppressed: 0 });
  });
});
