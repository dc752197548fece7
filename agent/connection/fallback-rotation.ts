import type { Backoff } from '../../lib/backoff.js';
import type { ServerGate } from './server-breakers.js';

export interface NextAttempt {
  /** Server to dial next (0 = primary). */
  index: number;
  /** Wait before dialling; 0 while a round is still going. */
  delayMs: number;
  /** Backoff step taken, or 0 when no wait. */
  backoffStep: number;
  /** True when this failure completed a full round over every server. */
  roundComplete: boolean;
  /** Servers passed over on the way to `index` because their breaker is open. */
  skipped: number[];
  /**
   * Every server's breaker is open: `index` is the one probed first, and `delayMs` runs until then
   * (never less than the backoff delay).
   */
  allOpen: boolean;
}

/** Every server may be dialled: the rotation without breakers. */
const ALWAYS_OPEN_GATE: ServerGate = { msUntilRetry: () => 0 };

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
 *
 * A server whose breaker is open (the gate) is passed over as if it had failed at once; when every
 * one is open, the round ends with a wait until the earliest probe time, never shorter than the
 * backoff delay.
 */
export class FallbackRotation {
  private currentIndex = 0;
  private failuresInRound = 0;

  constructor(
    private readonly serverCount: number,
    private readonly backoff: Backoff,
    private readonly gate: ServerGate = ALWAYS_OPEN_GATE,
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
    const skipped: number[] = [];
    while (this.failuresInRound < this.serverCount) {
      this.currentIndex = (this.currentIndex + 1) % this.serverCount;
      if (this.gate.msUntilRetry(this.currentIndex) === 0) {
        return { index: this.currentIndex, delayMs: 0, backoffStep: 0, roundComplete: false, skipped, allOpen: false };
      }
      skipped.push(this.currentIndex);
      this.failuresInRound += 1;
    }
    const { delayMs, step } = this.backoff.next();
    return { ...this.fromTheTop(skipped), backoffStep: step, roundComplete: true, ...this.wait(delayMs) };
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

  /**
   * Start a fresh round at the primary (a reconnect someone asked for), or at the first server after
   * it whose breaker lets it be dialled; returns the server to dial now. The backoff is kept.
   */
  restartAtPrimary(): number {
    const first = this.firstDialable();
    if (first === undefined) {
      // Every breaker is open; asked to reconnect, the agent probes the one due first rather than not at all.
      this.currentIndex = this.earliestProbe().index;
      this.failuresInRound = 0;
      return this.currentIndex;
    }
    this.currentIndex = first;
    this.failuresInRound = first;
    return first;
  }

  /** The round starts again at the primary, or past the servers whose breaker is open. */
  private fromTheTop(skipped: number[]): { index: number; skipped: number[] } {
    const first = this.firstDialable();
    if (first === undefined) {
      const { index } = this.earliestProbe();
      this.currentIndex = index;
      this.failuresInRound = 0;
      return { index, skipped };
    }
    for (let i = 0; i < first; i += 1) if (!skipped.includes(i)) skipped.push(i);
    this.currentIndex = first;
    // The open ones before it count as failed in the new round, so the round still ends after one pass.
    this.failuresInRound = first;
    return { index: first, skipped };
  }

  /** The backoff delay, or the wait until the earliest probe when every server is open, whichever is longer. */
  private wait(backoffMs: number): { delayMs: number; allOpen: boolean } {
    if (this.firstDialable() !== undefined) return { delayMs: backoffMs, allOpen: false };
    return { delayMs: Math.max(backoffMs, this.earliestProbe().ms), allOpen: true };
  }

  private firstDialable(): number | undefined {
    for (let i = 0; i < this.serverCount; i += 1) if (this.gate.msUntilRetry(i) === 0) return i;
    return undefined;
  }

  private earliestProbe(): { index: number; ms: number } {
    let best = { index: 0, ms: this.gate.msUntilRetry(0) };
    for (let i = 1; i < this.serverCount; i += 1) {
      const ms = this.gate.msUntilRetry(i);
      if (ms < best.ms) best = { index: i, ms };
    }
    return best;
  }
}
