import type { Random } from './clock.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per step; the agent doubles. */
  factor?: number;
  /** ± fraction of each delay drawn at random, so a fleet that lost its hub together does not return in step. */
  jitter?: number;
  random: Random;
}

/**
 * Exponential backoff: initial, ×factor each step, capped at max (by default 1, 2, 4, … 32, 60, 60… s),
 * each delay spread by ±jitter and never above max. Infinite: there is no last step.
 */
export class Backoff {
  private step = 0;
  private readonly factor: number;
  private readonly jitter: number;

  constructor(private readonly options: BackoffOptions) {
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0;
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs, got ${options.initialMs} and ${options.maxMs}`);
    }
  }

  /** The delay before the next attempt, and which step of the sequence it is (1-based). */
  next(): { delayMs: number; step: number } {
    this.step += 1;
    const base = this.baseDelay(this.step);
    const spread = this.jitter * (2 * this.options.random() - 1);
    const delayMs = Math.min(this.options.maxMs, Math.max(0, base * (1 + spread)));
    return { delayMs, step: this.step };
  }

  /** Un-jittered delay of a 1-based step. */
  baseDelay(step: number): number {
    // Stop multiplying once past the cap so a months-long outage cannot overflow to Infinity.
    const exponent = Math.min(step - 1, 64);
    return Math.min(this.options.maxMs, this.options.initialMs * this.factor ** exponent);
  }

  /** Steps taken since the last reset. */
  get steps(): number {
    return this.step;
  }

  reset(): void {
    this.step = 0;
  }
}
