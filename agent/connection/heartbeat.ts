import type { Heartbeat, HeartbeatAck } from '../../protocol/messages.js';
import type { Clock, TimerHandle } from '../../lib/clock.js';
import type { UsageSample } from '../system/system-usage.js';

export interface HeartbeatOptions {
  intervalMs: number;
  /** No ack for this long → dead (90 s by default). */
  deadTimeoutMs: number;
  clock: Clock;
  sample: () => UsageSample;
  send: (heartbeat: Heartbeat) => void;
  onRtt: (rttMs: number) => void;
  /** A heartbeat got no ack within one interval (it may still come, late; it is counted lost once). */
  onLost?: () => void;
  onDead: (silentForMs: number) => void;
}

/**
 * Application heartbeat (docs/protocol.md): a heartbeat with CPU and RAM every interval, the first one
 * as soon as the agent is registered; the connection is dead when no ack has arrived for the
 * dead timeout. The timer restarts on every ack, so detection is exact rather than rounded up to the
 * next tick. An ack proves the hub's event loop handled our message, which a TCP-level pong does not.
 */
export class HeartbeatMonitor {
  private seq = 0;
  /** seq → monotonic send time; trimmed so a hub that never acks cannot grow it. */
  private readonly inFlight = new Map<number, number>();
  private readonly maxInFlight: number;
  private tickTimer: TimerHandle | undefined;
  private deadTimer: TimerHandle | undefined;
  private lastAckAt = 0;
  private running = false;
  private intervalMs: number;
  private deadTimeoutMs: number;

  constructor(private readonly options: HeartbeatOptions) {
    this.intervalMs = options.intervalMs;
    this.deadTimeoutMs = options.deadTimeoutMs;
    this.maxInFlight = Math.ceil(options.deadTimeoutMs / options.intervalMs) + 2;
  }

  /**
   * The hub asked for another interval (it widens it under load). The dead timeout keeps at least
   * three intervals, so a slower pace is never mistaken for a dead hub. Applies from the next beat.
   */
  setInterval(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.deadTimeoutMs = Math.max(this.options.deadTimeoutMs, intervalMs * 3);
    if (this.running) this.armDeadTimer();
  }

  /** The interval in use (the configured one, or the hub's under load). */
  get interval(): number {
    return this.intervalMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastAckAt = this.options.clock.monotonic();
    this.armDeadTimer();
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.options.clock.clearTimeout(this.tickTimer);
    this.options.clock.clearTimeout(this.deadTimer);
    this.tickTimer = undefined;
    this.deadTimer = undefined;
    this.inFlight.clear();
  }

  handleAck(ack: HeartbeatAck): void {
    if (!this.running) return;
    const now = this.options.clock.monotonic();
    const acked = ack.seq;
    const sentAt = acked === undefined ? undefined : this.inFlight.get(acked);
    if (acked === undefined || sentAt === undefined) return; // not ours, or older than the dead window
    // An ack for N also settles every earlier heartbeat still waiting.
    for (const seq of this.inFlight.keys()) {
      if (seq > acked) break;
      this.inFlight.delete(seq);
    }
    this.lastAckAt = now;
    this.armDeadTimer();
    this.options.onRtt(now - sentAt);
  }

  private tick(): void {
    if (!this.running) return;
    const { clock } = this.options;
    // The previous heartbeat went out one interval ago; unanswered by now, it counts as lost.
    if (this.seq > 0 && this.inFlight.has(this.seq)) this.options.onLost?.();
    const seq = ++this.seq;
    this.inFlight.set(seq, clock.monotonic());
    if (this.inFlight.size > this.maxInFlight) {
      const oldest = this.inFlight.keys().next().value;
      if (oldest !== undefined) this.inFlight.delete(oldest);
    }
    const usage = this.options.sample();
    this.options.send({
      type: 'heartbeat',
      seq,
      cpu_usage: usage.cpu_usage,
      ram_usage: usage.ram_usage,
      timestamp: clock.now(),
    });
    this.tickTimer = clock.setTimeout(() => this.tick(), this.intervalMs);
  }

  private armDeadTimer(): void {
    const { clock } = this.options;
    const { deadTimeoutMs } = this;
    clock.clearTimeout(this.deadTimer);
    this.deadTimer = clock.setTimeout(() => {
      if (!this.running) return;
      const silentForMs = clock.monotonic() - this.lastAckAt;
      this.stop();
      this.options.onDead(silentForMs);
    }, deadTimeoutMs);
  }
}
