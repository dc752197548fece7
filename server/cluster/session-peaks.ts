import type { SessionMode } from '../metrics.js';

/** One worker's open sessions of a mode now, and the most it had open since its last report. */
export interface SessionCount {
  current: number;
  peak: number;
}
export type SessionCounts = Record<SessionMode, SessionCount>;

/**
 * Worker side: reports its open sessions per mode to the primary. Reports are coalesced to one per
 * turn of the event loop (a failover registers thousands at once); each carries the highest count
 * reached since the previous one, so no peak between two reports is lost.
 */
export class SessionCountReporter {
  private readonly counts: SessionCounts = { enhanced: { current: 0, peak: 0 }, legacy: { current: 0, peak: 0 } };
  private scheduled = false;

  constructor(
    private readonly report: (counts: SessionCounts) => void,
    /** Runs its argument after this turn's I/O (setImmediate). */
    private readonly defer: (fn: () => void) => void = setImmediate,
  ) {}

  changed(mode: SessionMode, current: number): void {
    const count = this.counts[mode];
    count.current = current;
    count.peak = Math.max(count.peak, current);
    if (this.scheduled) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      this.report({ enhanced: { ...this.counts.enhanced }, legacy: { ...this.counts.legacy } });
      for (const c of Object.values(this.counts)) c.peak = c.current;
    });
  }
}

/**
 * Primary side: the most sessions of each mode open at once across every worker, since the hub
 * started. A sum of the workers' own peaks would overstate it (they need not peak together), and
 * the workers cannot see each other; the primary applies their reports in the order they arrive,
 * so the figure is exact for that order — the one the hub's IPC saw.
 */
export class HubSessionPeaks {
  private readonly current = new Map<number, Record<SessionMode, number>>();
  private readonly peaks: Record<SessionMode, number> = { enhanced: 0, legacy: 0 };

  report(worker: number, counts: SessionCounts): void {
    const mine = { enhanced: 0, legacy: 0, ...this.current.get(worker) };
    for (const mode of ['enhanced', 'legacy'] as const) {
      const others = this.sum(mode) - mine[mode];
      this.peaks[mode] = Math.max(this.peaks[mode], others + counts[mode].peak);
      mine[mode] = counts[mode].current;
    }
    this.current.set(worker, mine);
  }

  /** The worker exited: its sessions went with it (a restarted one reports from zero). */
  workerGone(worker: number): void {
    this.current.delete(worker);
  }

  get peak(): Record<SessionMode, number> {
    return { ...this.peaks };
  }

  private sum(mode: SessionMode): number {
    let total = 0;
    for (const counts of this.current.values()) total += counts[mode];
    return total;
  }
}
