import type { Clock } from '../../lib/clock.js';
import type { Attempt } from './attempt.js';
import type { NextAttempt } from './fallback-rotation.js';

/**
 * A connection to a draining hub, kept while the next server is dialled (make before break): the
 * draining hub still serves, so the agent leaves it only once registered elsewhere, or when there is
 * nowhere else to go right now (`shouldLetGo`).
 */
export class DrainHandover {
  private from: Attempt | undefined;

  constructor(private readonly clock: Clock) {}

  /** The draining hub's attempt, while it is held. */
  get attempt(): Attempt | undefined {
    return this.from;
  }

  /** Keeps a registered attempt (its heartbeat and ping go on) while the next server is dialled. */
  hold(attempt: Attempt): void {
    attempt.quiet(this.clock, true);
    this.from = attempt;
  }

  /**
   * Nowhere else answered in this round (the next dial waits out a backoff, or is the draining hub
   * itself): time to free the draining hub so it can finish its shutdown, and be replaced on the same
   * address, instead of waiting out its drain timeout.
   */
  shouldLetGo(next: NextAttempt): boolean {
    return this.from !== undefined && (next.delayMs > 0 || next.index === this.from.server.index);
  }

  /** Ends the held attempt's timers and monitors and hands it back for closing. */
  release(): Attempt | undefined {
    const old = this.from;
    if (!old) return undefined;
    this.from = undefined;
    old.ended = true;
    old.quiet(this.clock);
    return old;
  }
}
