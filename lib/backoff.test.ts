import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

const fixed = (value: number) => () => value;

describe('Backoff', () => {
  it('follows the default sequence: 1, 2, 4, 8, 16, 32, then 60 s forever', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: fixed(0.5), jitter: 0.2 });
    const delays = Array.from({ length: 10 }, () => backoff.next().delayMs);
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
  });

  it('numbers its steps from 1 and starts over after reset', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: fixed(0.5) });
    expect(backoff.next()).toEqual({ delayMs: 1000, step: 1 });
    expect(backoff.next()).toEqual({ delayMs: 2000, step: 2 });
    backoff.reset();
    expect(backoff.steps).toBe(0);
    expect(backoff.next()).toEqual({ delayMs: 1000, step: 1 });
  });

  it('spreads each delay by ±jitter and never exceeds the cap', () => {
    const low = new Backoff({ initialMs: 1000, maxMs: 60_000, random: fixed(0), jitter: 0.2 });
    const high = new Backoff({ initialMs: 1000, maxMs: 60_000, random: fixed(0.999999), jitter: 0.2 });
    expect(low.next().delayMs).toBeCloseTo(800);
    expect(high.next().delayMs).toBeCloseTo(1200, 0);
    for (let i = 0; i < 10; i += 1) high.next();
    expect(high.next().delayMs).toBe(60_000);
    for (let i = 0; i < 10; i += 1) low.next();
    expect(low.next().delayMs).toBeCloseTo(48_000);
  });

  it('stays finite after a months-long outage', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: fixed(0.5) });
    let last = 0;
    for (let i = 0; i < 100_000; i += 1) last = backoff.next().delayMs;
    expect(last).toBe(60_000);
    expect(backoff.baseDelay(1e9)).toBe(60_000);
  });

  it('rejects settings it cannot honour', () => {
    expect(() => new Backoff({ initialMs: 0, maxMs: 10, random: Math.random })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 100, maxMs: 10, random: Math.random })).toThrow(RangeError);
  });
});
