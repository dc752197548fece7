import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SlicedSweep } from './sliced-sweep.js';

describe('SlicedSweep', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('visits every member exactly once per period, a slice per tick', () => {
    const visits = new Map<number, number>();
    const perTick: number[] = [];
    let tickCount = 0;
    const sweep = new SlicedSweep<number>(
      1000,
      (n) => {
        visits.set(n, (visits.get(n) ?? 0) + 1);
        tickCount += 1;
      },
      10,
    );
    for (let i = 0; i < 100; i += 1) sweep.add(i);
    sweep.start();
    for (let t = 0; t < 10; t += 1) {
      tickCount = 0;
      vi.advanceTimersByTime(100);
      perTick.push(tickCount);
    }
    expect([...visits.values()].every((v) => v === 1)).toBe(true);
    expect(visits.size).toBe(100);
    expect(perTick).toEqual(Array(10).fill(10));
    sweep.stop();
  });

  it('stops visiting a member once deleted, even during its own visit', () => {
    const seen: string[] = [];
    const sweep = new SlicedSweep<string>(
      100,
      (s) => {
        seen.push(s);
        sweep.delete(s);
      },
      2,
    );
    sweep.add('a');
    sweep.add('b');
    sweep.start();
    vi.advanceTimersByTime(500);
    expect(seen).toEqual(['a', 'b']);
    sweep.stop();
  });
});
