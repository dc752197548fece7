import os from 'node:os';

export interface UsageSample {
  /** Busy share of all CPUs since the previous sample, 0–100. */
  cpu_usage: number;
  /** Share of physical memory in use, 0–100. */
  ram_usage: number;
}

interface CpuTimes {
  idle: number;
  total: number;
}

function readCpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * CPU and RAM usage of the machine, computed the same way on Windows and Linux: CPU from the
 * difference of `os.cpus()` tick counters between two samples (there is no load average on
 * Windows), RAM from total − free memory (libuv reports MemAvailable as free on Linux, so page
 * cache does not count as used). Samples closer together than `minIntervalMs` return the previous
 * result, so many callers (or a benchmark with thousands of agents) cost one reading.
 */
export class SystemUsage {
  private previous: CpuTimes;
  private last: UsageSample | undefined;
  private lastAt = 0;

  constructor(
    private readonly minIntervalMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.previous = readCpuTimes();
  }

  sample(): UsageSample {
    const now = this.now();
    if (this.last && now - this.lastAt < this.minIntervalMs) return this.last;
    const current = readCpuTimes();
    const totalDelta = current.total - this.previous.total;
    const idleDelta = current.idle - this.previous.idle;
    // No ticks elapsed (two calls within one tick): keep the last figure rather than report 0 %.
    const cpu = totalDelta > 0 ? (1 - idleDelta / totalDelta) * 100 : (this.last?.cpu_usage ?? 0);
    this.previous = current;
    const totalMem = os.totalmem();
    const ram = totalMem > 0 ? ((totalMem - os.freemem()) / totalMem) * 100 : 0;
    this.last = {
      cpu_usage: round1(Math.min(100, Math.max(0, cpu))),
      ram_usage: round1(Math.min(100, Math.max(0, ram))),
    };
    this.lastAt = now;
    return this.last;
  }
}
