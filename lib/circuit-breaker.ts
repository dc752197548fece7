import type { BreakerStatus } from '../protocol/connection-state.js';
import type { Clock } from './clock.js';
import { FarmlinkError } from './errors.js';
import { TypedEmitter } from './events.js';

/**
 * A circuit breaker: after `failures` failures within `windowMs` (with no success between them)
 * it opens and calls fail fast; once `recoveryMs` has passed the next call is let through as the
 * one probe (half-open); its success closes the breaker, its failure opens it again for another
 * `recoveryMs`.
 *
 * Hand-written rather than cockatiel's CircuitBreakerPolicy (4.0.0), measured against what the
 * callers need: cockatiel reads `Date.now()` itself (so the injected Clock cannot drive it), has
 * no "N failures within a time window" breaker (its Consecutive, Count and Sampling breakers are a
 * run or a ratio), and learns outcomes only through `execute()` — the agent's dial outcomes arrive
 * later, as close codes, so they come in through `allow()`/`success()`/`failure()` here.
 *
 * A success while closed clears the count: a breaker is for a dependency that is down, and one
 * success proves it is up; a handler that fails for some inputs only must not shut out the rest.
 * Open → half-open happens when someone asks (allow, state, status): no timer to hold a process
 * open or to dispose of.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Names it in errors and logs ("redis", "server #0 wss://…"). */
  name: string;
  /** Failures within `windowMs` that open it. */
  failures: number;
  windowMs: number;
  /** How long it stays open before the next call is let through as a probe. */
  recoveryMs: number;
  /** Windows and recovery run on its monotonic time; opened_at / retry_at are its wall time. */
  clock: Clock;
}

/** The design's defaults: 10 failures in 60 s open it, 120 s to recovery. */
export const BREAKER_DEFAULTS = { failures: 10, windowMs: 60_000, recoveryMs: 120_000 } as const;

export interface BreakerTransition {
  from: BreakerState;
  to: BreakerState;
  /** Why it opened (the last failure's reason); null for the other transitions. */
  reason: string | null;
}

/** What `execute()` rejects with while the breaker is open (or its one probe is in flight). */
export class BreakerOpenError extends FarmlinkError {
  /** Wall-clock epoch ms from when a call may be let through again (now while a probe is in flight). */
  readonly retryAt: number;
  readonly breaker: string;

  constructor(breaker: string, retryAt: number, reason: string | null, probing: boolean) {
    super(
      'BREAKER_OPEN',
      `${breaker}: circuit breaker open${reason !== null ? ` (${reason})` : ''}; ` +
        (probing ? 'a probe is in flight, try again shortly' : `not tried until ${new Date(retryAt).toISOString()}`),
    );
    this.name = 'BreakerOpenError';
    this.breaker = breaker;
    this.retryAt = retryAt;
  }
}

export class Breaker {
  readonly name: string;
  readonly events: TypedEmitter<{ state: BreakerTransition }> = new TypedEmitter();
  /** Times it opened (a failed probe included), for metrics. */
  opens = 0;

  private current: BreakerState = 'closed';
  /** Monotonic times of the failures counted in the current window. */
  private failureTimes: number[] = [];
  private lastReason: string | null = null;
  /** The count that opened it, shown while it is open or half-open. */
  private openedWith = 0;
  private openedMono = 0;
  private openedWall: number | null = null;
  private probeInFlight = false;
  private readonly options: BreakerOptions;

  constructor(options: BreakerOptions) {
    if (!(options.failures >= 1)) throw new RangeError(`Breaker ${options.name}: failures must be ≥ 1`);
    if (!(options.windowMs > 0)) throw new RangeError(`Breaker ${options.name}: windowMs must be > 0`);
    if (!(options.recoveryMs >= 0)) throw new RangeError(`Breaker ${options.name}: recoveryMs must be ≥ 0`);
    this.options = options;
    this.name = options.name;
  }

  get state(): BreakerState {
    this.checkRecovery();
    return this.current;
  }

  /**
   * May a call go now? Closed: yes. Open: no, until the recovery time has passed. Half-open: yes
   * for one caller (the probe) until its outcome is reported with success() or failure().
   */
  allow(): boolean {
    this.checkRecovery();
    if (this.current === 'closed') return true;
    if (this.current === 'half-open' && !this.probeInFlight) {
      this.probeInFlight = true;
      return true;
    }
    return false;
  }

  success(): void {
    this.failureTimes = [];
    this.probeInFlight = false;
    if (this.current !== 'closed') {
      // A call let through before it opened may still succeed late: the dependency answered, so it is up.
      this.transition('closed', null);
      this.lastReason = null;
      this.openedWall = null;
    }
  }

  failure(reason: string): void {
    this.lastReason = reason;
    this.checkRecovery();
    if (this.current === 'half-open') {
      this.probeInFlight = false;
      this.open(reason);
      return;
    }
    // While open, a late failure of a call let through earlier changes nothing but the reason.
    if (this.current === 'open') return;
    const now = this.options.clock.monotonic();
    this.failureTimes.push(now);
    this.prune(now);
    if (this.failureTimes.length >= this.options.failures) this.open(reason);
  }

  /** The dependency said it is back (Redis 'ready', say): close at once rather than wait for a probe. */
  reset(): void {
    this.success();
  }

  /** Milliseconds until a call may be let through: 0 when allow() would say yes now. */
  msUntilRetry(): number {
    this.checkRecovery();
    if (this.current !== 'open') return 0;
    return Math.max(0, this.openedMono + this.options.recoveryMs - this.options.clock.monotonic());
  }

  status(): BreakerStatus {
    this.checkRecovery();
    this.prune(this.options.clock.monotonic());
    const open = this.current === 'open';
    return {
      state: this.current,
      failures: this.current === 'closed' ? this.failureTimes.length : this.openedWith,
      reason: this.current === 'closed' ? null : this.lastReason,
      opened_at: this.current === 'closed' ? null : this.openedWall,
      retry_at: open && this.openedWall !== null ? this.openedWall + this.options.recoveryMs : null,
    };
  }

  /** Runs `fn` through the breaker: rejects with BreakerOpenError while open, counts its outcome otherwise. */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.allow()) {
      const retryAt = this.options.clock.now() + this.msUntilRetry();
      throw new BreakerOpenError(this.name, retryAt, this.lastReason, this.current === 'half-open');
    }
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      this.failure(describe(error));
      throw error;
    }
    this.success();
    return result;
  }

  private open(reason: string): void {
    this.openedWith = this.current === 'closed' ? this.failureTimes.length : this.openedWith + 1;
    this.failureTimes = [];
    this.openedMono = this.options.clock.monotonic();
    this.openedWall = this.options.clock.now();
    this.opens += 1;
    this.transition('open', reason);
  }

  private checkRecovery(): void {
    if (this.current !== 'open') return;
    if (this.options.clock.monotonic() - this.openedMono < this.options.recoveryMs) return;
    this.probeInFlight = false;
    this.transition('half-open', null);
  }

  private prune(now: number): void {
    const since = now - this.options.windowMs;
    let drop = 0;
    while (drop < this.failureTimes.length && (this.failureTimes[drop] ?? 0) <= since) drop += 1;
    if (drop > 0) this.failureTimes = this.failureTimes.slice(drop);
  }

  private transition(to: BreakerState, reason: string | null): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.events.emit('state', { from, to, reason });
  }
}

function describe(error: unknown): string {
  if (error instanceof FarmlinkError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
