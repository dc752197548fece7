import type { Clock, TimerHandle } from '../../lib/clock.js';
import { FarmlinkError } from '../../lib/errors.js';
import type { BatchSettings } from '../../protocol/messages.js';
import { BATCH_OVERHEAD_BYTES, batchFrame } from '../../protocol/batch-frame.js';
import type { FramePacer } from './frame-pacer.js';

export interface FrameBatcherOptions {
  clock: Clock;
  settings: BatchSettings;
  pacer: FramePacer;
  /** Puts one frame on the wire. */
  write: (frame: string, messages: number, bytes: number) => void;
}

/**
 * Enhanced mode's outgoing side: messages wait up to the batch window to share a frame, bounded by
 * count and bytes. An urgent message (high priority, a heartbeat) flushes on the next turn of the
 * event loop, so messages handed over in the same turn still share its frame; timed flushes also
 * wait for the pacer, so a steady stream never outruns the hub's frame rate.
 */
export class FrameBatcher {
  private parts: string[] = [];
  private bytes = BATCH_OVERHEAD_BYTES;
  private timer: TimerHandle | undefined;
  private timerDue = Infinity;
  private settings: BatchSettings;

  constructor(private readonly options: FrameBatcherOptions) {
    this.settings = options.settings;
  }

  get pending(): number {
    return this.parts.length;
  }

  get window(): BatchSettings {
    return this.settings;
  }

  /** The hub asked for another pace (`tune`); applies from the next frame. */
  retune(settings: BatchSettings): void {
    this.settings = settings;
  }

  /** Queues an encoded message. Throws MESSAGE_TOO_LARGE for one that cannot fit a frame on its own. */
  push(encoded: string, type: string, urgent: boolean): void {
    const size = Buffer.byteLength(encoded);
    if (BATCH_OVERHEAD_BYTES + size > this.settings.max_bytes) {
      throw new FarmlinkError(
        'MESSAGE_TOO_LARGE',
        `${type} is ${size} bytes; a frame to this hub holds at most ${this.settings.max_bytes - BATCH_OVERHEAD_BYTES}`,
      );
    }
    // Each message after the first adds a comma.
    if (this.parts.length > 0 && this.bytes + size + 1 > this.settings.max_bytes) this.flush();
    this.bytes += size + (this.parts.length > 0 ? 1 : 0);
    this.parts.push(encoded);
    if (this.parts.length >= this.settings.max_messages) {
      this.flush();
      return;
    }
    this.schedule(urgent ? 0 : this.settings.window_ms);
  }

  /** Sends what is queued now (before a close, or when a bound is reached). */
  flush(): void {
    this.clearTimer();
    if (this.parts.length === 0) return;
    const frame = batchFrame(this.parts);
    const messages = this.parts.length;
    const { bytes } = this;
    this.parts = [];
    this.bytes = BATCH_OVERHEAD_BYTES;
    this.options.pacer.take();
    this.options.write(frame, messages, bytes);
  }

  dispose(): void {
    this.clearTimer();
    this.parts = [];
    this.bytes = BATCH_OVERHEAD_BYTES;
  }

  private schedule(delayMs: number): void {
    const { clock, pacer } = this.options;
    const wait = Math.max(delayMs, pacer.waitMs());
    const due = clock.monotonic() + wait;
    if (this.timer !== undefined && this.timerDue <= due) return;
    this.clearTimer();
    this.timerDue = due;
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      // The pacer may still say wait (other frames went meanwhile): try again then.
      const still = pacer.waitMs();
      if (still > 0 && this.parts.length < this.settings.max_messages) this.schedule(still);
      else this.flush();
    }, wait);
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }
}
