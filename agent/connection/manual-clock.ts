import type { Clock, TimerHandle } from '../../lib/clock.js';

/** A clock for tests whose timers fire only when the test moves time forward, in order of their due time. */
export class ManualClock implements Clock {
  private at: number;
  private nextId = 1;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();

  constructor(start = Date.parse('2026-01-03T19:30:00Z')) {
    this.at = start;
  }

  now(): number {
    return this.at;
  }

  monotonic(): number {
    return this.at;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { due: this.at + ms, fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.timers.delete(handle as unknown as number);
  }

  /** Timers set and not yet fired or cleared. */
  pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (and those they set). */
  advance(ms: number): void {
    const until = this.at + ms;
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].due <= until && (!next || entry[1].due < next[1].due)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.at = next[1].due;
      next[1].fn();
    }
    this.at = until;
  }
}
