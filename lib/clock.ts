/**
 * Time and randomness are injected so timing logic runs under fake timers in unit tests and
 * for real, with millisecond settings, in integration tests.
 */

export type TimerHandle = ReturnType<typeof setTimeout>;

export interface TimerOptions {
  /** The timer alone does not keep the process alive (a periodic sweep, say). */
  unref?: boolean;
}

export interface Clock {
  /**
   * Wall-clock epoch milliseconds: for timestamps people read and for times stored where another
   * process or a later run reads them. It can jump (NTP, a changed system clock).
   */
  now(): number;
  /**
   * Monotonic high-resolution milliseconds, for durations and deadlines kept inside this process:
   * round trips, time bounds, the expiry of what only this process holds. Never jumps; means nothing
   * outside this process.
   */
  monotonic(): number;
  /** `options` may be ignored by a test clock (its timers never hold a process open). */
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /**
   * Runs `fn` once the I/O callbacks of this turn of the event loop have run (setImmediate): what
   * they queue meanwhile is handled together. Optional so a test clock may leave it out; defer()
   * below then falls back to a 0 ms timer.
   */
  defer?(fn: () => void): void;
}

/** Uniform in [0, 1). */
export type Random = () => number;

/**
 * The real clock. It looks the globals up at call time (not at import) so that
 * `vi.useFakeTimers()` also drives code that was handed this clock.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms, options) => {
    const handle = globalThis.setTimeout(fn, ms);
    if (options?.unref === true) handle.unref();
    return handle;
  },
  clearTimeout: (handle) => {
    if (handle !== undefined) globalThis.clearTimeout(handle);
  },
  defer: (fn) => {
    globalThis.setImmediate(fn);
  },
};

export const systemRandom: Random = () => Math.random();

/**
 * Runs `fn` every `ms` on the clock's timers until stopped: a chain of timeouts rather than a
 * setInterval, so any Clock (a test's included) drives it. The next run is scheduled when one
 * starts, so a slow run does not shift the period.
 */
export function every(clock: Clock, ms: number, fn: () => void, options: TimerOptions = {}): { stop(): void } {
  let handle: TimerHandle | undefined;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    handle = clock.setTimeout(tick, ms, options);
    fn();
  };
  handle = clock.setTimeout(tick, ms, options);
  return {
    stop: () => {
      stopped = true;
      clock.clearTimeout(handle);
    },
  };
}

/** setTimeout's longest delay (about 24.8 days); a later time is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `fn` once the clock's wall time reaches `atMs` (at once if it has passed), until stopped: a
 * token's expiry can be months away, past what one timer can wait.
 */
export function at(clock: Clock, atMs: number, fn: () => void, options: TimerOptions = {}): { stop(): void } {
  let handle: TimerHandle | undefined;
  const arm = (): void => {
    const delay = atMs - clock.now();
    handle =
      delay > MAX_TIMER_MS
        ? clock.setTimeout(arm, MAX_TIMER_MS, options)
        : clock.setTimeout(fn, Math.max(0, delay), options);
  };
  arm();
  return { stop: () => clock.clearTimeout(handle) };
}

/** Runs `fn` on the clock's next turn: its defer(), or a 0 ms timer for a clock without one. */
export function defer(clock: Clock, fn: () => void): void {
  if (clock.defer) clock.defer(fn);
  else clock.setTimeout(fn, 0);
}

/** Resolves after `ms` on the clock's timers. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
