export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** First wait before a probe is let through; doubles on each failed probe, up to maxCooldownMs. */
  cooldownMs: number;
  maxCooldownMs: number;
  now: () => number;
}

/**
 * Keeps a failing dependency (Redis) from costing every call its timeout: after a run of
 * failures the circuit opens and calls skip the dependency at once; after a cooldown one probe is
 * let through, and its outcome closes the circuit or opens it for longer.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private cooldown: number;
  private probeInFlight = false;
  private current: BreakerState = 'closed';
  /** Times the circuit opened, for metrics. */
  opens = 0;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.cooldown = options.cooldownMs;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** May a call go through now? In half-open, only one (the probe) at a time. */
  allow(): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open' && this.options.now() - this.openedAt >= this.cooldown) this.current = 'half-open';
    if (this.current === 'half-open' && !this.probeInFlight) {
      this.probeInFlight = true;
      return true;
    }
    return false;
  }

  success(): void {
    this.failures = 0;
    this.probeInFlight = false;
    this.cooldown = this.options.cooldownMs;
    this.current = 'closed';
  }

  failure(): void {
    this.failures += 1;
    if (this.current === 'half-open') {
      this.probeInFlight = false;
      this.cooldown = Math.min(this.cooldown * 2, this.options.maxCooldownMs);
      this.open();
    } else if (this.current === 'closed' && this.failures >= this.options.failureThreshold) {
      this.open();
    }
  }

  /** The dependency told us it is back (Redis 'ready'): stop waiting out the cooldown. */
  reset(): void {
    this.success();
  }

  private open(): void {
    this.current = 'open';
    this.openedAt = this.options.now();
    this.opens += 1;
  }
}
