/**
 * Time and randomness are injected so timing logic runs under fake timers in unit tests and
 * for real, with millisecond settings, in integration tests.
 */

export type TimerHandle = ReturnType<typeof setTimeout>;

export interface Clock {
  /** Wall-clock epoch milliseconds, for timestamps people read. */
  now(): number;
  /** Monotonic high-resolution milliseconds, for measuring durations such as round trips. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
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
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => {
    if (handle !== undefined) globalThis.clearTimeout(handle);
  },
};

export const systemRandom: Random = () => Math.random();
