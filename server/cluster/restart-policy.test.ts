import { describe, expect, it } from 'vitest';
import { RestartPolicy } from './restart-policy.js';

describe('RestartPolicy', () => {
  it('restarts a first death at once, doubles the wait for deaths in quick succession, and caps it', () => {
    let now = 0;
    const policy = new RestartPolicy({ baseDelayMs: 250, maxDelayMs: 4000, windowMs: 60_000, now: () => now });
    const delays = Array.from({ length: 7 }, () => {
      const { delayMs } = policy.recordDeath();
      now += delayMs;
      return delayMs;
    });
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
  });

  it('forgets deaths older than the window: a worker that ran for a while restarts at once again', () => {
    let now = 0;
    const policy = new RestartPolicy({ baseDelayMs: 100, windowMs: 10_000, now: () => now });
    expect(policy.recordDeath()).toEqual({ delayMs: 100, recentDeaths: 1 });
    now += 5000;
    expect(policy.recordDeath()).toEqual({ delayMs: 200, recentDeaths: 2 });
    now += 10_000;
    expect(policy.recordDeath()).toEqual({ delayMs: 100, recentDeaths: 1 });
  });
});
