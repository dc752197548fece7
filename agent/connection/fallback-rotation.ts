import type { Backoff } from './backoff.js';

export interface NextAttempt {
  /** Server to dial next (0 = primary). */
  index: number;
  /** Wait before dialling; 0 while a round is still going. */
  delayMs: number;
  /** Backoff step taken, or 0 when no wait. */
  backoffStep: number;
  /** True when this failure completed a full round over every server. */
  roundComplete: boolean;
}

/**
 * The order of servers (docs/failure-scenarios.md): primary, then each fallback in turn with no wait between them; when every
 * server has failed once in a row (a round), wait the next backoff delay and start again at the
 * primary. Forever.
 *
 * An established connection that is lost counts as its server's failure in the round, so the
 * next dial goes to the following server at once (fail over), and a server that accepts and
 * then drops us straight away cannot make the agent spin: after a round of such failures the
 * backoff applies. Only a connection that stayed up for `stable_after` resets the round and the
 * backoff.
 */
export class FallbackRotation {
  private currentIndex = 0;
  private failuresInRound = 0;

  constructor(
    private readonly serverCount: number,
    private readonly backoff: Backoff,
  ) {
    if (serverCount < 1) throw new RangeError('at least one server is needed');
  }

  get current(): number {
    return this.currentIndex;
  }

  get count(): number {
    return this.serverCount;
  }

  /** The attempt on `current` failed, or its connection was lost. */
  afterFailure(): NextAttempt {
    this.failuresInRound += 1;
    if (this.failuresInRound >= this.serverCount) {
      this.failuresInRound = 0;
      this.currentIndex = 0;
      const { delayMs, step } = this.backoff.next();
      return { index: 0, delayMs, backoffStep: step, roundComplete: true };
    }
    this.currentIndex = (this.currentIndex + 1) % this.serverCount;
    return { index: this.currentIndex, delayMs: 0, backoffStep: 0, roundComplete: false };
  }

  /** The connection on `current` has been up long enough to trust: forget past failures. */
  markStable(): void {
    this.failuresInRound = 0;
    this.backoff.reset();
  }

  /**
   * Begin at this server instead of the primary (the one that worked before a restart). The round
   * then goes on in order from there, wrapping past the last fallback, and ends at the primary.
   */
  startAt(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.serverCount)
      throw new RangeError(`server index ${index} out of range 0..${this.serverCount - 1}`);
    this.currentIndex = index;
    this.failuresInRound = 0;
  }

  /** Start a fresh round at the primary (a reconnect someone asked for). The backoff is kept. */
  restartAtPrimary(): void {
    this.currentIndex = 0;
    this.failuresInRound = 0;
  }
}
