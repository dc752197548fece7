import { describe, expect, it } from 'vitest';
import { at } from './clock.js';
import { ManualClock } from './manual-clock.fixture.js';

describe('at', () => {
  it('fires once at a wall time past what one timer can wait, and not when stopped', () => {
    const clock = new ManualClock();
    const days = (n: number) => n * 24 * 3600 * 1000;
    let fired = 0;
    at(clock, clock.now() + days(60), () => (fired += 1));
    const stopped = at(clock, clock.now() + days(30), () => (fired += 100));
    stopped.stop();
    clock.advanceSync(days(60) - 1);
    expect(fired).toBe(0);
    clock.advanceSync(1);
    expect(fired).toBe(1);
    clock.advanceSync(days(60));
    expect(fired).toBe(1);
  });

  it('fires at once for a time already past', () => {
    const clock = new ManualClock();
    let fired = false;
    at(clock, clock.now() - 1000, () => (fired = true));
    clock.advanceSync(0);
    expect(fired).toBe(true);
  });
});
