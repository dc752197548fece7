/**
 * How soon a worker that died unexpectedly is started again. The first death in a while is
 * answered at once (after `baseDelayMs`): the agents on it are reconnecting and want a process to
 * land on. Deaths that follow within `windowMs` double the wait each time up to `maxDelayMs`, so
 * a worker that crashes on start (a bad deploy, a full disk) costs a restart every `maxDelayMs`,
 * not a busy loop.
 */
export interface RestartPolicyOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  windowMs?: number;
  /** Monotonic milliseconds. */
  now: () => number;
}

export class RestartPolicy {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** When each recent death happened (those within the window). */
  private deaths: number[] = [];

  constructor(options: RestartPolicyOptions) {
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.windowMs = options.windowMs ?? 60_000;
    this.now = options.now;
  }

  /** Records a death; returns how long to wait before starting the worker again. */
  recordDeath(): { delayMs: number; recentDeaths: number } {
    const at = this.now();
    this.deaths = this.deaths.filter((t) => at - t < this.windowMs);
    this.deaths.push(at);
    const recentDeaths = this.deaths.length;
    const delayMs = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (recentDeaths - 1));
    return { delayMs, recentDeaths };
  }
}
