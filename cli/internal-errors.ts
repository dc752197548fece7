import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';

export interface InternalErrorRecoveryOptions {
  logger: Logger;
  /** What resets the agent's state: a reconnect from scratch. */
  reset: (reason: string) => void;
  clock?: Clock;
  /** The wait before the second reset in a row; it doubles up to `maxDelayMs` [1 s]. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** After this long without an internal error, the next one is reset from at once again [5 min]. */
  quietMs?: number;
}

/**
 * The agent stops only on a signal: a bug that throws outside the connection's own handling is
 * logged and the agent's state is reset by a reconnect. That path must never feed itself:
 * - resets are spaced by their own backoff (the first at once, then 1 s, 2 s … up to a minute),
 *   so a bug that fires on every reconnect costs one reset a minute, not a core;
 * - errors that arrive while a reset is pending are counted, not logged one by one;
 * - an error raised while handling or resetting (the logger itself failing, say) is counted and
 *   never recovered from again;
 * - the reset runs from a timer, so the event loop (and with it SIGINT/SIGTERM) always gets a turn.
 */
export class InternalErrorRecovery {
  private readonly clock: Clock;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly quietMs: number;
  private busy = false;
  private pending: TimerHandle | undefined;
  private nextDelayMs = 0;
  private lastErrorAt = Number.NEGATIVE_INFINITY;
  private unreported = 0;
  private stopped = false;
  /** Resets run so far (for tests and the log). */
  resets = 0;

  constructor(private readonly options: InternalErrorRecoveryOptions) {
    this.clock = options.clock ?? systemClock;
    this.minDelayMs = options.minDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.quietMs = options.quietMs ?? 5 * 60_000;
  }

  /** Installs the process-wide handlers; returns their removal. */
  install(): () => void {
    const onException = (error: unknown) => this.handle('uncaught exception', error);
    const onRejection = (error: unknown) => this.handle('unhandled rejection', error);
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
    return () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    };
  }

  handle(kind: string, error: unknown): void {
    if (this.busy || this.stopped) {
      this.unreported += 1;
      return;
    }
    this.busy = true;
    try {
      const now = this.clock.monotonic();
      if (now - this.lastErrorAt >= this.quietMs) this.nextDelayMs = 0;
      this.lastErrorAt = now;
      if (this.pending !== undefined) {
        this.unreported += 1;
        return;
      }
      const delay = this.nextDelayMs;
      this.nextDelayMs = Math.min(this.maxDelayMs, delay === 0 ? this.minDelayMs : delay * 2);
      this.pending = this.clock.setTimeout(() => this.reset(), delay);
      (this.pending as { unref?: () => void }).unref?.();
      this.options.logger.error(
        { err: error, kind, reset_in_ms: delay },
        `Internal error (${kind}); the agent keeps running and reconnects ${delay === 0 ? 'now' : `in ${formatDelay(delay)}`} to reset its state`,
      );
    } catch {
      // Raised while handling an internal error (the logger failing, say): never handled again.
      this.unreported += 1;
    } finally {
      this.busy = false;
    }
  }

  /** No more resets (the agent is stopping). */
  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.pending);
    this.pending = undefined;
  }

  private reset(): void {
    this.pending = undefined;
    if (this.stopped) return;
    this.busy = true;
    try {
      this.resets += 1;
      if (this.unreported > 0) {
        const count = this.unreported;
        this.unreported = 0;
        quietly(() =>
          this.options.logger.warn(
            { count },
            `${count} more internal error(s) since the last one logged; resetting once for all of them`,
          ),
        );
      }
      try {
        this.options.reset('Recovering from an internal error');
      } catch (again) {
        this.unreported += 1;
        quietly(() =>
          this.options.logger.error(
            { err: again },
            `Resetting after an internal error failed; the next internal error is handled in ${formatDelay(this.nextDelayMs)} at the earliest`,
          ),
        );
      }
    } finally {
      this.busy = false;
    }
  }
}

/** Logging from the recovery path: if the logger is what fails, nothing more can be said, and nothing is retried. */
function quietly(log: () => void): void {
  try {
    log();
  } catch {
    // See above.
  }
}

function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}
