import type { Clock, TimerHandle } from '../lib/clock.js';
import type { BatchSettings } from '../protocol/messages.js';
import { BATCH_OVERHEAD_BYTES, batchFrame } from '../protocol/batch-frame.js';

export interface OutgoingMessage {
  /** The message, already serialised (a broadcast is serialised once for every session). */
  text: string;
  type: string;
  /**
   * A message with a key replaces the pending one with the same key instead of queueing beside it:
   * a cumulative `ack` only ever needs its latest value.
   */
  key?: string;
  /** Goes out now, with whatever is pending, instead of waiting for the window. */
  urgent?: boolean;
  /** Called when the frame carrying it has been handed to the socket (the ack lag is measured there). */
  onSent?: () => void;
}

export interface FrameWriter {
  /** Writes one `batch` frame holding `count` messages; `types` says what they were, in order. */
  (frame: string, count: number, types: readonly string[]): void;
}

interface Pending {
  text: string;
  type: string;
  bytes: number;
  key: string | undefined;
  onSent: (() => void) | undefined;
}

/**
 * The hub's side of enhanced mode toward one agent: messages wait up to the batch window to share
 * one `batch` frame, which goes out early when it holds `max_messages` or would pass `max_bytes`,
 * and at once for an urgent message. A single message larger than `max_bytes` still goes out,
 * alone in its frame: refusing it would lose it, and the agent's own limit is the one that matters.
 */
export class OutgoingBatcher {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private settings: BatchSettings,
    private readonly write: FrameWriter,
    private readonly clock: Clock,
  ) {}

  /** Messages waiting for the window. */
  get size(): number {
    return this.pending.length;
  }

  /** Takes effect from the next message on (a `tune` under load). */
  retune(settings: BatchSettings): void {
    this.settings = settings;
  }

  push(message: OutgoingMessage): void {
    if (this.closed) return;
    const bytes = Buffer.byteLength(message.text) + 1;
    if (message.key !== undefined) {
      const index = this.pending.findIndex((p) => p.key === message.key);
      if (index >= 0) {
        const previous = this.pending[index];
        if (previous) {
          this.pendingBytes += bytes - previous.bytes;
          const chained = chain(previous.onSent, message.onSent);
          this.pending[index] = { text: message.text, type: message.type, bytes, key: message.key, onSent: chained };
          if (message.urgent === true) this.flush();
          return;
        }
      }
    }
    if (this.pending.length > 0 && BATCH_OVERHEAD_BYTES + this.pendingBytes + bytes > this.settings.max_bytes)
      this.flush();
    this.pending.push({ text: message.text, type: message.type, bytes, key: message.key, onSent: message.onSent });
    this.pendingBytes += bytes;
    if (message.urgent === true || this.pending.length >= this.settings.max_messages) {
      this.flush();
      return;
    }
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.settings.window_ms);
  }

  /** Sends what is pending now, in one frame. */
  flush(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const frame = batchFrame(batch.map((p) => p.text));
    this.write(
      frame,
      batch.length,
      batch.map((p) => p.type),
    );
    for (const p of batch) p.onSent?.();
  }

  /** The session is closing: nothing more goes out, and the timer goes. */
  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.pendingBytes = 0;
  }
}

function chain(a: (() => void) | undefined, b: (() => void) | undefined): (() => void) | undefined {
  if (!a) return b;
  if (!b) return a;
  return () => {
    a();
    b();
  };
}
