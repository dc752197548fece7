import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../lib/clock.js';
import { PingMonitor } from './ping-monitor.js';

function setup(intervalMs = 20_000, timeoutMs = 20_000) {
  let pings = 0;
  const rtts: number[] = [];
  const timeouts: number[] = [];
  const monitor = new PingMonitor({
    intervalMs,
    timeoutMs,
    clock: systemClock,
    ping: () => {
      pings += 1;
    },
    onRtt: (rtt) => rtts.push(rtt),
    onTimeout: (waited) => timeouts.push(waited),
  });
  return { monitor, rtts, timeouts, pings: () => pings };
}

describe('PingMonitor', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('pings every interval and times out when a ping goes unanswered for the timeout (defaults: 20 s / 20 s)', () => {
    const { monitor, timeouts, pings } = setup();
    monitor.start();
    vi.advanceTimersByTime(20_000);
    expect(pings()).toBe(1);
    vi.advanceTimersByTime(19_999);
    expect(timeouts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0]).toBeCloseTo(20_000, -1);
  });

  it('a pong settles the oldest ping and records its round trip', () => {
    const { monitor, rtts, timeouts } = setup();
    monitor.start();
    vi.advanceTimersByTime(20_000);
    for (let i = 0; i < 5; i += 1) {
      vi.advanceTimersByTime(15);
      monitor.handlePong();
      vi.advanceTimersByTime(20_000 - 15); // the next ping goes out exactly one interval after the last
    }
    monitor.stop();
    expect(timeouts).toEqual([]);
    expect(rtts).toHaveLength(5);
    expect(rtts.every((r) => Math.abs(r - 15) < 1)).toBe(true);
  });

  it('gives every ping its own deadline when pings outnumber pongs', () => {
    // interval shorter than timeout: two pings in flight; the first one's deadline decides.
    const { monitor, timeouts } = setup(1000, 2500);
    monitor.start();
    vi.advanceTimersByTime(1000); // ping 1 at t=1000
    vi.advanceTimersByTime(1000); // ping 2 at t=2000
    monitor.handlePong(); // answers ping 1; ping 2's deadline is t=4500
    vi.advanceTimersByTime(1000); // ping 3 at t=3000
    vi.advanceTimersByTime(1499); // t=4499
    expect(timeouts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(timeouts).toHaveLength(1);
  });

  it('ignores unsolicited pongs and does nothing once stopped', () => {
    const { monitor, rtts, timeouts, pings } = setup(1000, 1000);
    monitor.handlePong();
    monitor.start();
    monitor.handlePong();
    expect(rtts).toEqual([]);
    monitor.stop();
    vi.advanceTimersByTime(10_000);
    expect(pings()).toBe(0);
    expect(timeouts).toEqual([]);
  });
});
