import { emptyModeFigures, type ModeFigures } from '../../protocol/agent-host.js';
import type { Clock } from '../../lib/clock.js';

/** What a connection's frames carry: one message each (legacy) or batches (enhanced). */
export type WireMode = 'legacy' | 'enhanced';

/**
 * Traffic per protocol mode, so the panel can put legacy and enhanced side by side: what batching
 * saves in frames and bytes on this PC's own traffic, not in a benchmark.
 */
export class ModeFiguresTracker {
  private readonly figures: Record<WireMode, ModeFigures> = {
    legacy: emptyModeFigures(),
    enhanced: emptyModeFigures(),
  };
  private connected: { mode: WireMode; since: number } | undefined;

  constructor(private readonly clock: Clock) {}

  frame(mode: WireMode, direction: 'out' | 'in', messages: number, bytes: number): void {
    const f = this.figures[mode];
    if (direction === 'out') {
      f.frames_sent += 1;
      f.messages_sent += messages;
      f.bytes_sent += bytes;
    } else {
      f.frames_received += 1;
      f.messages_received += messages;
      f.bytes_received += bytes;
    }
  }

  /** Registered in `mode` (or, with undefined, no longer registered). */
  connectedIn(mode: WireMode | undefined): void {
    const now = this.clock.monotonic();
    if (this.connected) this.figures[this.connected.mode].connected_ms += Math.round(now - this.connected.since);
    this.connected = mode ? { mode, since: now } : undefined;
  }

  snapshot(): Record<WireMode, ModeFigures> {
    const out = { legacy: { ...this.figures.legacy }, enhanced: { ...this.figures.enhanced } };
    if (this.connected)
      out[this.connected.mode].connected_ms += Math.round(this.clock.monotonic() - this.connected.since);
    return out;
  }
}
