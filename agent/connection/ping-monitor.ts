import type { Clock, TimerHandle } from '../../lib/clock.js';

export interface PingMonitorOptions {
  intervalMs: number;
  /** Every ping must be answered within this (20 s by default). */
  timeoutMs: number;
  clock: Clock;
  ping: () => void;
  onRtt: (rttMs: number) => void;
  onTimeout: (waitedMs: number) => void;
}

/**
 * WebSocket-level ping/pong with a deadline for every ping. Pongs come back in order, so the
 * oldest unanswered ping is the one whose deadline matters; when the path is blackholed
 * (no RST, no FIN) this is what notices within interval + timeout.
 */
export class PingMonitor {
  private readonly outstanding: number[] = [];
  private intervalTimer: TimerHandle | undefined;
  private deadlineTimer: TimerHandle | undefined;
  private running = false;

  constructor(private readonly options: PingMonitorOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.scheduleNextPing();
  }

  stop(): void {
    this.running = false;
    this.options.clock.clearTimeout(this.intervalTimer);
    this.options.clock.clearTimeout(this.deadlineTimer);
    this.intervalTimer = undefined;
    this.deadlineTimer = undefined;
    this.outstanding.length = 0;
  }

  /** Ping now, with the usual deadline (the network changed: find out at once whether the link survived). */
  pingNow(): void {
    if (!this.running) return;
    this.outstanding.push(this.options.clock.monotonic());
    if (this.outstanding.length === 1) this.armDeadline();
    this.options.ping();
  }

  handlePong(): void {
    if (!this.running) return;
    const sentAt = this.outstanding.shift();
    if (sentAt === undefined) return; // unsolicited pong: allowed by RFC 6455, ignored
    this.options.onRtt(this.options.clock.monotonic() - sentAt);
    this.armDeadline();
  }

  private scheduleNextPing(): void {
    this.intervalTimer = this.options.clock.setTimeout(() => {
      if (!this.running) return;
      this.outstanding.push(this.options.clock.monotonic());
      if (this.outstanding.length === 1) this.armDeadline();
      this.options.ping();
      this.scheduleNextPing();
    }, this.options.intervalMs);
  }

  private armDeadline(): void {
    const { clock, timeoutMs } = this.options;
    clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const oldest = this.outstanding[0];
    if (oldest === undefined) return;
    const remaining = Math.max(0, oldest + timeoutMs - clock.monotonic());
    this.deadlineTimer = clock.setTimeout(() => {
      if (!this.running) return;
      const waited = clock.monotonic() - oldest;
      this.stop();
      this.options.onTimeout(waited);
    }, remaining);
  }
}
