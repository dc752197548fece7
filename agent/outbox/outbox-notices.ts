import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../lib/clock.js';
import { PRIORITIES, type Priority } from '../../protocol/messages.js';

interface SeqRange {
  count: number;
  first: number;
  last: number;
}

interface Fill {
  depth: number;
  bytes: number;
}

interface Pending {
  dropped: Partial<Record<Priority, SeqRange>>;
  /** What the drops made room for. */
  acceptedFor: Partial<Record<Priority, number>>;
  expired: Partial<Record<Priority, SeqRange>>;
  refused: Partial<Record<Priority, number>>;
  /** The outbox's fill when the last of these happened. */
  depth: number;
  bytes: number;
}

/** Log lines about given-up messages come at most this often, so a flood makes a few lines, not one per message. */
export const NOTICE_INTERVAL_MS = 1000;

/**
 * Aggregates what the outbox gives up (dropped when full, expired, refused) into log lines: the
 * first at once, then at most one per NOTICE_INTERVAL_MS summing up everything since.
 */
export class OutboxNotices {
  private pending: Pending | null = null;
  private timer: TimerHandle | undefined;
  private windowOpen = false;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  /** `fill`: the outbox's depth and bytes after the drops, which the line reports. */
  dropped(
    seqs: ReadonlyArray<{ seq: number; priority: Priority }>,
    acceptedFor: Record<Priority, number>,
    fill: Fill,
  ): void {
    if (seqs.length === 0) return;
    const pending = this.pendingFor(fill);
    for (const { seq, priority } of seqs) extend(pending.dropped, priority, seq);
    for (const priority of PRIORITIES) add(pending.acceptedFor, priority, acceptedFor[priority]);
    this.noticed();
  }

  expired(seqs: ReadonlyArray<{ seq: number; priority: Priority }>, fill: Fill): void {
    if (seqs.length === 0) return;
    const pending = this.pendingFor(fill);
    for (const { seq, priority } of seqs) extend(pending.expired, priority, seq);
    this.noticed();
  }

  refused(priority: Priority, count: number, fill: Fill): void {
    add(this.pendingFor(fill).refused, priority, count);
    this.noticed();
  }

  /** Logs what is pending now (at close). */
  flush(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.windowOpen = false;
    this.write();
  }

  private pendingFor(fill: Fill): Pending {
    this.pending ??= { dropped: {}, acceptedFor: {}, expired: {}, refused: {}, depth: 0, bytes: 0 };
    this.pending.depth = fill.depth;
    this.pending.bytes = fill.bytes;
    return this.pending;
  }

  /** The first notice of a quiet spell is logged at once; later ones wait for the window's end. */
  private noticed(): void {
    if (this.windowOpen) return;
    this.windowOpen = true;
    this.write();
    this.timer = this.clock.setTimeout(() => this.tick(), NOTICE_INTERVAL_MS, { unref: true });
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.pending) {
      this.windowOpen = false;
      return;
    }
    this.write();
    this.timer = this.clock.setTimeout(() => this.tick(), NOTICE_INTERVAL_MS, { unref: true });
  }

  private write(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    const fill = `${p.depth} of ${this.maxMessages} messages, ${size(p.bytes)} of ${size(this.maxBytes)}`;
    const dropped = describeRanges(p.dropped);
    if (dropped) {
      const forWhat = joinCounts(p.acceptedFor);
      this.logger.warn(
        { dropped: p.dropped, accepted: p.acceptedFor },
        `Outbox full (${fill}): dropped ${dropped} to accept ${forWhat} ones`,
      );
    }
    const refused = joinCounts(p.refused);
    if (refused) {
      this.logger.warn(
        { refused: p.refused },
        `Outbox full (${fill}): refused ${refused} messages (OUTBOX_FULL): nothing of their priority or lower ` +
          'left to drop; the sender was told',
      );
    }
    const expired = describeRanges(p.expired);
    if (expired) {
      this.logger.warn({ expired: p.expired }, `Outbox: dropped ${expired} unsent, past their lifetime (ttl)`);
    }
  }
}

function extend(ranges: Partial<Record<Priority, SeqRange>>, priority: Priority, seq: number): void {
  const range = ranges[priority];
  if (!range) ranges[priority] = { count: 1, first: seq, last: seq };
  else {
    range.count += 1;
    range.first = Math.min(range.first, seq);
    range.last = Math.max(range.last, seq);
  }
}

function add(counts: Partial<Record<Priority, number>>, priority: Priority, n: number): void {
  if (n > 0) counts[priority] = (counts[priority] ?? 0) + n;
}

function describeRanges(ranges: Partial<Record<Priority, SeqRange>>): string {
  const parts: string[] = [];
  for (const priority of [...PRIORITIES].reverse()) {
    const r = ranges[priority];
    if (!r) continue;
    const seqs = r.first === r.last ? `seq ${r.first}` : `seq ${r.first}–${r.last}`;
    parts.push(`${r.count} ${priority} priority ${r.count === 1 ? 'message' : 'messages'} (${seqs})`);
  }
  return parts.join(', ');
}

function joinCounts(counts: Partial<Record<Priority, number>>): string {
  return PRIORITIES.filter((p) => counts[p] !== undefined)
    .map((p) => `${counts[p]} ${p}`)
    .join(' and ');
}

/** 512 bytes, 1.5 KB, 63.9 MB: decimal units, as `outbox.max_mb` and the panel count them. */
export function size(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}
