import type { OutboxSummary } from '../../protocol/agent-host.js';
import { FarmlinkError } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import type { OutboxEntry, OutboxEvents, OutboxInput, OutboxStore } from './outbox-store.js';

/**
 * An outbox in memory: the same contract as the lmdb outbox without the disk, so nothing in it
 * survives the process. For tests of what uses an outbox (delivery, the host) and for the
 * benchmarks' simulated agents, where thousands of lmdb stores in one process would measure the
 * disk, not the protocol. `failNext` makes the next accept fail like a full disk. Never an agent's real outbox.
 */
export class MemoryOutbox implements OutboxStore {
  readonly events = new TypedEmitter<OutboxEvents>();
  readonly entries: OutboxEntry[] = [];
  ackedSeq = 0;
  private nextSeq = 1;
  failNext: string | undefined;
  accepted = 0;
  delivered = 0;

  constructor(private readonly now: () => number = Date.now) {}

  accept(inputs: readonly OutboxInput[]): Promise<number[]> {
    if (this.failNext !== undefined) {
      const why = this.failNext;
      this.failNext = undefined;
      return Promise.reject(new FarmlinkError('OUTBOX_UNAVAILABLE', why));
    }
    const seqs = inputs.map((input) => {
      const seq = this.nextSeq++;
      this.entries.push({
        seq,
        type: input.type,
        body: input.body,
        priority: input.priority,
        acceptedAt: this.now(),
        expiresAt: input.ttlMs === undefined ? null : this.now() + input.ttlMs,
        bytes: JSON.stringify(input.body).length,
      });
      return seq;
    });
    this.accepted += seqs.length;
    const priority = inputs[0]?.priority ?? 'normal';
    this.events.emit('accepted', { seqs, priority });
    return Promise.resolve(seqs);
  }

  read(afterSeq: number, limit: { messages: number; bytes: number }): OutboxEntry[] {
    return this.entries.filter((e) => e.seq > afterSeq).slice(0, limit.messages);
  }

  acknowledge(seq: number): Promise<void> {
    const before = this.entries.length;
    const keep = this.entries.filter((e) => e.seq > seq);
    this.entries.splice(0, this.entries.length, ...keep);
    this.delivered += before - keep.length;
    this.ackedSeq = Math.max(this.ackedSeq, seq);
    return Promise.resolve();
  }

  summary(unacked: number): OutboxSummary {
    const by = { high: 0, normal: 0, low: 0 };
    for (const e of this.entries) by[e.priority] += 1;
    return {
      state: 'ok',
      error: null,
      depth: this.entries.length,
      bytes: this.entries.reduce((n, e) => n + e.bytes, 0),
      max_messages: 100_000,
      max_bytes: 64_000_000,
      by_priority: by,
      unacked,
      next_seq: this.nextSeq,
      acked_seq: this.ackedSeq,
      oldest_accepted_at: this.entries[0]?.acceptedAt ?? null,
      accepted: this.accepted,
      delivered: this.delivered,
      dropped: { high: 0, normal: 0, low: 0 },
      expired: 0,
      sync: 'os',
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
