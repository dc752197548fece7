/**
 * At most one log line per interval for an event that can come in floods (refused connections):
 * the first occurrence is logged at once, later ones within the interval are counted and the count
 * is reported with the next line logged.
 */
export class LogThrottle {
  private lastLoggedAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** undefined: do not log this one. Else log it, with how many were left unlogged since the last line. */
  take(): { suppressed: number } | undefined {
    const now = this.now();
    if (now - this.lastLoggedAt < this.intervalMs) {
      this.suppressed += 1;
      return undefined;
    }
    this.lastLoggedAt = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { suppressed };
  }
}
