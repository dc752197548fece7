import { describe, expect, it } from 'vitest';
import { SystemUsage } from './system-usage.js';

describe('SystemUsage', () => {
  it('reports CPU and RAM as percentages of the whole machine', async () => {
    const usage = new SystemUsage(0);
    // Keep one core busy for a moment so the CPU delta has ticks in it.
    const until = Date.now() + 150;
    while (Date.now() < until) Math.sqrt(Math.random());
    await new Promise((resolve) => setTimeout(resolve, 20));
    const sample = usage.sample();
    expect(sample.cpu_usage).toBeGreaterThan(0);
    expect(sample.cpu_usage).toBeLessThanOrEqual(100);
    expect(sample.ram_usage).toBeGreaterThan(0);
    expect(sample.ram_usage).toBeLessThan(100);
  });

  it('answers repeated calls within the minimum interval from one reading', () => {
    let now = 0;
    const usage = new SystemUsage(1000, () => now);
    const first = usage.sample();
    now = 500;
    expect(usage.sample()).toBe(first);
    now = 1000;
    expect(usage.sample()).not.toBe(first);
  });
});
