import { describe, expect, it } from 'vitest';
import { chartWindow, rttWithGaps, sameSeries, timeTicks } from './chart-window.js';

describe('chart window', () => {
  it('ends on the next step after now and spans 15 minutes', () => {
    expect(chartWindow(1_000_001)).toEqual({ start: 1_005_000 - 900_000, end: 1_005_000 });
    expect(chartWindow(1_005_000).end).toBe(1_005_000);
  });

  it('puts ticks on whole five minutes inside the window', () => {
    expect(timeTicks(100_000, 1_000_000)).toEqual([300_000, 600_000, 900_000]);
  });

  it('breaks the line where heartbeats stopped for longer than the gap', () => {
    const points = rttWithGaps(
      [
        { at: 0, rtt_ms: 5 },
        { at: 1000, rtt_ms: 6 },
        { at: 10_000, rtt_ms: 7 },
      ],
      2500,
    );
    expect(points).toEqual([
      { at: 0, rtt: 5 },
      { at: 1000, rtt: 6 },
      { at: 5500, rtt: null },
      { at: 10_000, rtt: 7 },
    ]);
  });

  it('tells appended or trimmed series apart from unchanged ones', () => {
    const a = [{ at: 1 }, { at: 2 }];
    expect(sameSeries(a, [{ at: 1 }, { at: 2 }], (s) => s.at)).toBe(true);
    expect(sameSeries(a, [{ at: 2 }, { at: 3 }], (s) => s.at)).toBe(false);
    expect(sameSeries(a, [{ at: 1 }, { at: 2 }, { at: 3 }], (s) => s.at)).toBe(false);
    expect(sameSeries([], [], (s: number) => s)).toBe(true);
  });
});
