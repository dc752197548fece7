import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/manual-clock.fixture.js';
import {
  LoadMonitor,
  eventLoopSampler,
  type LoadChange,
  type LoadMonitorOptions,
  type LoadSample,
  type LoadSampler,
} from './load-monitor.js';

const OPTIONS: LoadMonitorOptions = {
  busyMs: 50,
  overloadMs: 200,
  sampleIntervalMs: 1000,
  enterSamples: 2,
  leaveRatio: 0.5,
  dwellMs: 10_000,
};

/** Synthetic delays: each interval reads the next p99 given, or the last one again. */
class ScriptedSampler implements LoadSampler {
  private readonly queue: Array<number | undefined> = [];
  current = 0;
  stopped = false;

  feed(...p99s: Array<number | undefined>): void {
    this.queue.push(...p99s);
  }

  sample(): LoadSample | undefined {
    if (this.queue.length > 0) {
      const next = this.queue.shift();
      if (next === undefined) return undefined;
      this.current = next;
    }
    return { delayP50Ms: this.current / 2, delayP99Ms: this.current, delayMaxMs: this.current, utilization: 0.5 };
  }

  stop(): void {
    this.stopped = true;
  }
}

function setup(options: Partial<LoadMonitorOptions> = {}) {
  const clock = new ManualClock();
  const sampler = new ScriptedSampler();
  const changes: LoadChange[] = [];
  const monitor = new LoadMonitor({ ...OPTIONS, ...options }, sampler, clock, (c) => changes.push(c));
  monitor.start();
  /** Runs `n` sampling intervals. */
  const intervals = (n: number) => clock.advance(n * OPTIONS.sampleIntervalMs);
  return { clock, sampler, changes, monitor, intervals };
}

describe('LoadMonitor', () => {
  it('stays normal while the delay p99 stays under the busy threshold', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(1, 10, 49.9, 30);
    await intervals(10);
    expect(monitor.level).toBe(0);
    expect(changes).toEqual([]);
  });

  it('does not take one slow interval (a GC pause) for load: busy after two in a row', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(80, 5, 80, 5);
    await intervals(4);
    expect(monitor.level).toBe(0);
    sampler.feed(60, 60);
    await intervals(1);
    expect(monitor.level).toBe(0);
    await intervals(1);
    expect(monitor.level).toBe(1);
    expect(changes.map((c) => [c.from, c.to, c.sample.delayP99Ms])).toEqual([[0, 1, 60]]);
  });

  it('goes straight to overloaded when the delay passes that threshold twice in a row', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(250, 300);
    await intervals(2);
    expect(monitor.level).toBe(2);
    expect(changes.map((c) => [c.from, c.to])).toEqual([[0, 2]]);
  });

  it('climbs from busy to overloaded while busy', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(60, 60, 220, 220);
    await intervals(4);
    expect(monitor.level).toBe(2);
    expect(changes.map((c) => [c.from, c.to])).toEqual([
      [0, 1],
      [1, 2],
    ]);
  });

  it('stays busy while the delay is under the threshold but above half of it (hysteresis)', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(60, 60, 30);
    await intervals(60);
    expect(monitor.level).toBe(1);
    expect(changes).toHaveLength(1);
  });

  it('leaves busy only after the delay stayed under half the threshold for the dwell time', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(60, 60, 10);
    await intervals(3); // busy; the first calm interval
    expect(monitor.level).toBe(1);
    await intervals(9); // calm for 9 s of the 10 s dwell
    expect(monitor.level).toBe(1);
    await intervals(1);
    expect(monitor.level).toBe(0);
    expect(changes.map((c) => [c.from, c.to])).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });

  it('starts the dwell again when the delay comes back during it', async () => {
    const { sampler, monitor, intervals } = setup();
    sampler.feed(60, 60, 10, 10, 10, 10, 10, 40, 10);
    await intervals(9); // calm for 5 s, then one interval at 40 ms (≥ 25 ms): not calm
    expect(monitor.level).toBe(1);
    await intervals(9); // calm again for 9 s only
    expect(monitor.level).toBe(1);
    await intervals(1);
    expect(monitor.level).toBe(0);
  });

  it('comes down from overloaded through busy, each with its own dwell', async () => {
    const { sampler, monitor, changes, intervals } = setup();
    sampler.feed(300, 300, 5);
    await intervals(2);
    expect(monitor.level).toBe(2);
    await intervals(11);
    expect(monitor.level).toBe(1);
    await intervals(9);
    expect(monitor.level).toBe(1);
    await intervals(2);
    expect(monitor.level).toBe(0);
    expect(changes.map((c) => [c.from, c.to])).toEqual([
      [0, 2],
      [2, 1],
      [1, 0],
    ]);
  });

  it('counts an interval in which the loop never turned as late by its own timer', async () => {
    const inner = new ManualClock();
    let blockedMs = 0;
    // A clock whose timers fire `blockedMs` late, as on a blocked loop.
    const clock = {
      now: () => inner.now(),
      monotonic: () => inner.monotonic() + blockedMs,
      setTimeout: inner.setTimeout.bind(inner),
      clearTimeout: inner.clearTimeout.bind(inner),
    };
    const sampler = new ScriptedSampler();
    const changes: LoadChange[] = [];
    const monitor = new LoadMonitor(OPTIONS, sampler, clock, (c) => changes.push(c));
    monitor.start();
    sampler.feed(undefined, undefined);
    blockedMs = 500;
    await inner.advance(1000);
    blockedMs = 1000;
    await inner.advance(1000);
    expect(monitor.level).toBe(2);
    expect(monitor.lastSample.delayP99Ms).toBe(500);
  });

  it('stops sampling when stopped', () => {
    const { sampler, monitor, clock } = setup();
    monitor.stop();
    expect(sampler.stopped).toBe(true);
    expect(clock.pending).toBe(0);
  });
});

describe('eventLoopSampler', () => {
  it('reads a blocked event loop as delay, and an idle one as little', async () => {
    const sampler = eventLoopSampler();
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      sampler.sample();
      await new Promise((resolve) => setTimeout(resolve, 30));
      const started = performance.now();
      while (performance.now() - started < 120) {
        // a handler that holds the loop
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
      const blocked = sampler.sample();
      expect(blocked?.delayMaxMs).toBeGreaterThanOrEqual(60);
      expect(blocked?.utilization).toBeGreaterThan(0);
    } finally {
      sampler.stop();
    }
  });
});
