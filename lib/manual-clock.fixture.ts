import type { Clock, TimerHandle } from './clock.js';

/**
 * A clock for unit tests: nothing moves until the test says so. Wall time and monotonic time are
 * separate, as on a real machine, so a test can jump the wall clock (NTP, a changed system clock)
 * without monotonic time moving; timers run on monotonic time.
 */
export class ManualClock implements Clock {
  private wall: number;
  private mono = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();

  constructor(wallStart = Date.parse('2026-01-03T19:30:00Z')) {
    this.wall = wallStart;
  }

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { due: this.mono + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.timers.delete(handle as unknown as number);
  }

  /** Due now: runs at the next advance(), before any later timer. */
  defer(fn: () => void): void {
    this.setTimeout(fn, 0);
  }

  /** Timers not yet fired nor cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves both clocks on by `ms`, firing each timer due by then in order, at its own time; after
   * each, and at the end, what the timer set off (promise callbacks, I/O already done) is let run.
   */
  async advance(ms: number): Promise<void> {
    const until = this.mono + ms;
    await settle();
    while (this.fireNext(until)) await settle();
    this.moveTo(until);
    await settle();
  }

  /**
   * Moves both clocks on by `ms` without letting promise callbacks run in between: for code whose
   * timers act synchronously (the connection's state machine), so a test sees each step at once.
   */
  advanceSync(ms: number): void {
    const until = this.mono + ms;
    while (this.fireNext(until));
    this.moveTo(until);
  }

  /** Fires the timer due first by `until` (the earliest set first among equals) at its time; false if none is. */
  private fireNext(until: number): boolean {
    let next: [number, { due: number; fn: () => void }] | undefined;
    for (const entry of this.timers) if (entry[1].due <= until && (!next || entry[1].due < next[1].due)) next = entry;
    if (!next) return false;
    this.timers.delete(next[0]);
    this.moveTo(next[1].due);
    next[1].fn();
    return true;
  }

  /** Both clocks on to monotonic time `at`. */
  private moveTo(at: number): void {
    this.wall += at - this.mono;
    this.mono = at;
  }

  /** The wall clock alone jumps (forwards or back); monotonic time and timers do not move. */
  jumpWall(ms: number): void {
    this.wall += ms;
  }
}

/** Lets every queued promise callback run (a macrotask turn comes after all of them). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
