import { PRIORITIES, type Priority } from '../../protocol/messages.js';

/** What the outbox keeps in memory per held message: enough to bound, evict and expire without the store. */
export interface IndexEntry {
  seq: number;
  priority: Priority;
  bytes: number;
  acceptedAt: number;
  expiresAt: number | null;
}

interface Queue {
  /** Seqs in increasing order; those before `head`, and any no longer in `entries`, are gone. */
  seqs: number[];
  head: number;
}

type JournalOp = { op: 'add'; entry: IndexEntry } | { op: 'remove'; entry: IndexEntry };

/** A point to roll back to (see OutboxIndex.mark). */
export interface IndexMark {
  journalLength: number;
  heads: Record<Priority, number>;
}

/**
 * The outbox's in-memory index: every held message's size, priority and lifetime, one queue per
 * priority oldest first, and the totals the bounds are checked against. Built once at open; after
 * that bounds and eviction are answered from here and never by scanning the store.
 *
 * Changes made while planning a write are journaled so that a write the store refuses (disk full)
 * can be undone: `mark()` before, `rollback(mark)` on failure, `settle()` on success. Removals made
 * outside a plan (acknowledged, found expired by a read) are not journaled: they stand whatever
 * the store says.
 */
export class OutboxIndex {
  private readonly entries = new Map<number, IndexEntry>();
  private readonly queues: Record<Priority, Queue> = {
    high: { seqs: [], head: 0 },
    normal: { seqs: [], head: 0 },
    low: { seqs: [], head: 0 },
  };
  private readonly countBy: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
  private readonly bytesBy: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
  private journal: JournalOp[] | null = null;
  count = 0;
  bytes = 0;

  has(seq: number): boolean {
    return this.entries.has(seq);
  }

  get(seq: number): IndexEntry | undefined {
    return this.entries.get(seq);
  }

  countByPriority(): Record<Priority, number> {
    return { ...this.countBy };
  }

  /** Appends a message; seqs must be added in increasing order per priority. */
  add(entry: IndexEntry): void {
    this.entries.set(entry.seq, entry);
    this.queues[entry.priority].seqs.push(entry.seq);
    this.tally(entry, 1);
    this.journal?.push({ op: 'add', entry });
  }

  /** Forgets a message; `journaled: false` for removals that stand even if the pending write fails. */
  remove(seq: number, journaled = true): IndexEntry | undefined {
    const entry = this.entries.get(seq);
    if (!entry) return undefined;
    this.entries.delete(seq);
    this.tally(entry, -1);
    if (journaled) this.journal?.push({ op: 'remove', entry });
    return entry;
  }

  /** The oldest held message of a priority. */
  oldest(priority: Priority): IndexEntry | undefined {
    const queue = this.queues[priority];
    while (queue.head < queue.seqs.length) {
      const entry = this.entries.get(queue.seqs[queue.head] as number);
      if (entry?.priority === priority) return entry;
      queue.head += 1;
    }
    return undefined;
  }

  /** The oldest held message of any priority. */
  oldestOverall(): IndexEntry | undefined {
    let best: IndexEntry | undefined;
    for (const priority of PRIORITIES) {
      const entry = this.oldest(priority);
      if (entry && (!best || entry.seq < best.seq)) best = entry;
    }
    return best;
  }

  /** Removes (not journaled) every message with seq ≤ `seq`, which sit at the front of each queue. */
  removeThrough(seq: number): IndexEntry[] {
    const removed: IndexEntry[] = [];
    for (const priority of PRIORITIES) {
      for (let entry = this.oldest(priority); entry && entry.seq <= seq; entry = this.oldest(priority)) {
        this.remove(entry.seq, false);
        removed.push(entry);
      }
    }
    return removed;
  }

  /** Starts (or nests within) a journaled plan. */
  mark(): IndexMark {
    this.journal ??= [];
    return {
      journalLength: this.journal.length,
      heads: { high: this.queues.high.head, normal: this.queues.normal.head, low: this.queues.low.head },
    };
  }

  /**
   * Undoes the plan back to `mark`. A removed message comes back only if `keep` says so (one
   * acknowledged meanwhile stays gone); the caller hears of those that do not.
   */
  rollback(mark: IndexMark, keep: (entry: IndexEntry) => boolean = () => true): void {
    const journal = this.journal ?? [];
    while (journal.length > mark.journalLength) {
      const op = journal.pop() as JournalOp;
      if (op.op === 'add') {
        if (this.entries.get(op.entry.seq) === op.entry) {
          this.entries.delete(op.entry.seq);
          this.tally(op.entry, -1);
        }
        this.queues[op.entry.priority].seqs.pop();
      } else if (keep(op.entry)) {
        this.entries.set(op.entry.seq, op.entry);
        this.tally(op.entry, 1);
      }
    }
    for (const priority of PRIORITIES) this.queues[priority].head = mark.heads[priority];
  }

  /** The plan was written: stop journaling and let the queues shed what they no longer hold. */
  settle(): void {
    this.journal = null;
    for (const priority of PRIORITIES) {
      const queue = this.queues[priority];
      this.oldest(priority);
      if (queue.head > 1024 && queue.head * 2 > queue.seqs.length) {
        queue.seqs.splice(0, queue.head);
        queue.head = 0;
      }
    }
  }

  private tally(entry: IndexEntry, sign: 1 | -1): void {
    this.count += sign;
    this.bytes += sign * entry.bytes;
    this.countBy[entry.priority] += sign;
    this.bytesBy[entry.priority] += sign * entry.bytes;
  }
}
