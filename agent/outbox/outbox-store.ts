import type { OutboxSummary } from '../../protocol/agent-host.js';
import type { Priority } from '../../protocol/messages.js';
import type { TypedEmitter } from '../../lib/events.js';

/**
 * The agent's outbox as its users see it. Everything the agent emits (events, command results)
 * goes through `accept`, which resolves only once the messages are durably stored; delivery reads
 * them back in sequence order and forgets them once a hub has acknowledged them.
 */

/** What a producer hands in. */
export interface OutboxInput {
  type: 'event' | 'result';
  /** The message without `type` and `seq` (an event's name, data and timestamp; a result's id, ok, data or error). */
  body: Record<string, unknown>;
  priority: Priority;
  /** Dropped unsent (counted, logged) if not delivered within this; absent: the outbox's default, or never. */
  ttlMs?: number;
}

/** A stored message, as delivery reads it. */
export interface OutboxEntry {
  seq: number;
  type: 'event' | 'result';
  body: Record<string, unknown>;
  priority: Priority;
  acceptedAt: number;
  /** Epoch ms after which it is dropped unsent; null: never. */
  expiresAt: number | null;
  /** Its size in the store, counted against the byte bound. */
  bytes: number;
}

export interface OutboxEvents extends Record<string, unknown> {
  /** New messages were accepted: delivery may have something to send. */
  accepted: { seqs: number[]; priority: Priority };
  /** A message was given up (full outbox or past its lifetime). Already logged and counted. */
  dropped: { seq: number; priority: Priority; why: 'full' | 'expired' };
  /** The outbox changed state (ok ↔ error). */
  state: { state: 'ok' | 'error'; error: string | null };
}

export interface OutboxStore {
  readonly events: TypedEmitter<OutboxEvents>;
  /**
   * Stores messages, in order, giving each the next sequence number; resolves with the numbers
   * once they are durable (per the sync policy). Throws FarmlinkError OUTBOX_FULL when there is no
   * room even after dropping lower-priority messages, OUTBOX_UNAVAILABLE when the store cannot be
   * written (disk full, unwritable); the outbox then reports state 'error' until a write succeeds.
   */
  accept(inputs: readonly OutboxInput[]): Promise<number[]>;
  /**
   * Up to `limit` messages with seq > `afterSeq`, in seq order, skipping (and dropping, counted)
   * those past their lifetime; bounded by count and total bytes (at least one message if any).
   */
  read(afterSeq: number, limit: { messages: number; bytes: number }): OutboxEntry[];
  /** A hub has every message up to `seq`: forget them (the delivered count grows by those still held). */
  acknowledge(seq: number): Promise<void>;
  /** For the panel; `unacked` is filled in by delivery, which knows what is in flight. */
  summary(unacked: number): OutboxSummary;
  /** The last seq a hub acknowledged, as stored (survives restarts). */
  readonly ackedSeq: number;
  close(): Promise<void>;
}
