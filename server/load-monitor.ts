import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../lib/clock.js';

/**
 * How loaded the hub's own event loop is:
 * - 0 normal: frames are handled as they arrive;
 * - 1 busy: the loop runs late by about a batch window or more, so messages already wait that long;
 * - 2 overloaded: the loop runs late by a multiple of that, heartbeat acks and acks queue up.
 */
export type LoadLevel = 0 | 1 | 2;
export const LOAD_LEVEL_NAMES: Record<LoadLevel, string> = { 0: 'normal', 1: 'busy', 2: 'overloaded' };

/** One sampling interval of the event loop. */
export interface LoadSample {
  /** How late the loop ran timers, in milliseconds (the sampler's own resolution taken off). */
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
  /** Share of the interval the loop was busy (0–1). */
  utilization: number;
}

/** Reads the loop's figures since the previous read (and starts the next interval). */
export interface LoadSampler {
  /** Undefined when the loop did not turn once in the whole interval: the monitor then uses its own timer's lateness. */
  sample(): LoadSample | undefined;
  stop(): void;
}

export interface LoadThresholds {
  /** Event-loop delay p99 at or above which the hub is busy… */
  busyMs: number;
  /** …and overloaded. */
  overloadMs: number;
}

export interface LoadMonitorOptions extends LoadThresholds {
  /** How often the loop is sampled; each decision looks at one interval. */
  sampleIntervalMs: number;
  /** A level is entered after this many intervals in a row at or above its threshold (one GC pause is not load). */
  enterSamples: number;
  /** A level is left only once the delay has stayed below `leaveRatio` × its threshold… */
  leaveRatio: number;
  /** …for this long: the minimum dwell, so agents are not retuned back and forth. */
  dwellMs: number;
}

export const DEFAULT_LOAD_MONITOR: Omit<LoadMonitorOptions, keyof LoadThresholds> = {
  sampleIntervalMs: 1000,
  enterSamples: 2,
  leaveRatio: 0.5,
  dwellMs: 30_000,
};

export interface LoadChange {
  from: LoadLevel;
  to: LoadLevel;
  /** The interval that decided it. */
  sample: LoadSample;
}

/**
 * Measures the hub's own load from its event loop and turns it into a level with hysteresis:
 * a level is entered when the delay p99 stays at or above its threshold for `enterSamples`
 * intervals, and left (one step down) only once the delay has stayed under `leaveRatio` × that
 * threshold for `dwellMs` — so a load hovering at a threshold does not flap.
 *
 * The event-loop delay is what agents feel: every frame, heartbeat and ack waits that long before
 * the hub even reads it. CPU or utilization alone would call a hub busy that still answers at once.
 */
export class LoadMonitor {
  private currentLevel: LoadLevel = 0;
  private last: LoadSample = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0 };
  /** Consecutive intervals at or above each level's threshold (index 1 and 2). */
  private readonly above: [number, number, number] = [0, 0, 0];
  /** Since when (monotonic) the delay has stayed under the current level's leave threshold. */
  private calmSince: number | undefined;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly options: LoadMonitorOptions,
    private readonly sampler: LoadSampler,
    private readonly clock: Clock,
    private readonly onChange: (change: LoadChange) => void,
  ) {}

  get level(): LoadLevel {
    return this.currentLevel;
  }

  /** The latest interval's figures. */
  get lastSample(): LoadSample {
    return this.last;
  }

  start(): void {
    if (this.timer) return;
    this.schedule();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.sampler.stop();
  }

  /** One interval's figures: updates the level (exposed for tests that feed samples directly). */
  observe(sample: LoadSample): void {
    this.last = sample;
    const { busyMs, overloadMs, enterSamples, leaveRatio, dwellMs } = this.options;
    const p99 = sample.delayP99Ms;
    this.above[1] = p99 >= busyMs ? this.above[1] + 1 : 0;
    this.above[2] = p99 >= overloadMs ? this.above[2] + 1 : 0;
    const from = this.currentLevel;
    let to: LoadLevel = from;
    if (this.above[2] >= enterSamples) to = 2;
    else if (this.above[1] >= enterSamples && from < 1) to = 1;
    if (to > from) {
      this.calmSince = undefined;
      this.change(from, to, sample);
      return;
    }
    if (from === 0) return;
    const now = this.clock.monotonic();
    const leaveAt = (from === 2 ? overloadMs : busyMs) * leaveRatio;
    if (p99 >= leaveAt) {
      this.calmSince = undefined;
      return;
    }
    this.calmSince ??= now;
    if (now - this.calmSince < dwellMs) return;
    // Calm long enough: one step down. From overloaded the way back passes through busy and its own dwell.
    const down: LoadLevel = from === 2 ? 1 : 0;
    this.calmSince = down === 0 ? undefined : now;
    this.change(from, down, sample);
  }

  private change(from: LoadLevel, to: LoadLevel, sample: LoadSample): void {
    this.currentLevel = to;
    this.onChange({ from, to, sample });
  }

  private schedule(): void {
    const { sampleIntervalMs } = this.options;
    const due = this.clock.monotonic() + sampleIntervalMs;
    this.timer = this.clock.setTimeout(
      () => {
        const late = Math.max(0, this.clock.monotonic() - due);
        this.observe(this.sampler.sample() ?? { delayP50Ms: late, delayP99Ms: late, delayMaxMs: late, utilization: 1 });
        this.schedule();
      },
      sampleIntervalMs,
      { unref: true },
    );
  }
}

/** The sampler's resolution: its timer fires this often, and how late it fires is the delay. */
const RESOLUTION_MS = 10;

/**
 * The real event loop: perf_hooks' delay histogram and utilization. The histogram records the
 * time between its timer's firings, so its resolution is taken off each figure to give the delay.
 */
export function eventLoopSampler(): LoadSampler {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  let utilization: EventLoopUtilization = performance.eventLoopUtilization();
  const delay = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : 0);
  return {
    sample() {
      const since = performance.eventLoopUtilization(utilization);
      utilization = performance.eventLoopUtilization();
      const sample: LoadSample | undefined =
        histogram.count > 0
          ? {
              delayP50Ms: delay(histogram.percentile(50)),
              delayP99Ms: delay(histogram.percentile(99)),
              delayMaxMs: delay(histogram.max),
              utilization: since.utilization,
            }
          : undefined;
      histogram.reset();
      return sample;
    },
    stop() {
      histogram.disable();
    },
  };
}
