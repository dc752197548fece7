import type { Clock } from '../../lib/clock.js';
import type { HubLimits } from '../../protocol/messages.js';

/** Share of the hub's announced rate the agent uses, so heartbeats and clock skew never tip it into 4429. */
const RATE_SHARE = 0.8;

/**
 * Keeps the agent's frames under the rate the hub announced in `registered.limits` (the hub counts
 * frames and closes with 4429 past it): a token bucket at 80 % of the rate, with half the burst.
 * Delivery asks it before sending a backlog, so an outbox of 10,000 messages drains at the hub's
 * pace instead of getting the connection closed.
 */
export class FramePacer {
  private tokens: number;
  private last: number;
  private readonly ratePerMs: number;
  private readonly capacity: number;

  constructor(
    limits: HubLimits,
    private readonly clock: Clock,
  ) {
    this.ratePerMs = (limits.max_messages_per_second * RATE_SHARE) / 1000;
    this.capacity = Math.max(1, Math.floor(limits.burst_messages / 2));
    this.tokens = this.capacity;
    this.last = clock.monotonic();
  }

  /** Milliseconds until a frame may go (0: now). */
  waitMs(): number {
    this.refill();
    if (this.tokens >= 1) return 0;
    return Math.ceil((1 - this.tokens) / this.ratePerMs);
  }

  /** A frame went out. Frames that had to go anyway (heartbeats, a full batch) may take the bucket below zero. */
  take(): void {
    this.refill();
    this.tokens -= 1;
  }

  private refill(): void {
    const now = this.clock.monotonic();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.ratePerMs);
    this.last = now;
  }
}
