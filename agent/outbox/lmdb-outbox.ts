import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../lib/clock.js';
import { FarmlinkError } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import type { OutboxSummary } from '../../protocol/agent-host.js';
import { PRIORITIES, type Priority } from '../../protocol/messages.js';
import { OutboxIndex, type IndexEntry } from './outbox-index.js';
import { OutboxNotices, size } from './outbox-notices.js';
import { decodeHeader, decodeRecord, encodeRecord } from './outbox-record.js';
import type { OutboxEntry, OutboxEvents, OutboxInput, OutboxStore } from './outbox-store.js';
import { makeDirSync } from '../../lib/make-dir.js';

export interface LmdbOutboxOptions {
  /** The outbox's own directory (the agent uses `<data dir>/outbox`); created if missing. */
  dir: string;
  maxMessages: number;
  maxBytes: number;
  /** flush: an accept resolves once the commit is flushed to disk; os: once the OS has it (lmdb noSync). */
  sync: 'flush' | 'os';
  defaultTtlMs?: number;
  clock: Clock;
  logger: Logger;
  /** The memory map's initial size; lmdb grows it as the store grows, so this is no upper bound. */
  mapSizeBytes?: number;
}

/** After a failed write, pending removals (acknowledged, expired) are retried this often until one succeeds. */
export const RETRY_AFTER_ERROR_MS = 5000;

const RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };
const META_NEXT_SEQ = 'next_seq';
const META_ACKED_SEQ = 'acked_seq';

interface PendingAccept {
  inputs: readonly OutboxInput[];
  resolve: (seqs: number[]) => void;
  reject: (error: unknown) => void;
}

interface Planned {
  accept: PendingAccept;
  seqs: number[];
  records: Array<{ seq: number; value: Buffer }>;
}

/**
 * The agent's outbox on lmdb (see docs/delivery.md, "The outbox"). Messages are keyed by seq; the
 * next seq and the last acknowledged one are kept beside them so numbers are never reused, also
 * after a restart with nothing held.
 *
 * Writes go through one loop: whatever was asked for while the previous commit ran (accepts,
 * acknowledgements, expiries) is planned against the in-memory index and written as one lmdb
 * transaction — a group commit, so a hundred producers cost one disk flush, not a hundred. The
 * index is changed as the plan is made and rolled back if the store refuses the commit.
 */
export class LmdbOutbox implements OutboxStore {
  readonly events: TypedEmitter<OutboxEvents>;
  private readonly index = new OutboxIndex();
  private readonly notices: OutboxNotices;
  private pendingAccepts: PendingAccept[] = [];
  private ackWaiters: Array<() => void> = [];
  /** Seqs found expired by a read and gone from the index, still to be removed from the store. */
  private expiredToDelete: number[] = [];
  private ackedInMemory: number;
  private persistedAcked: number;
  private nextSeq: number;
  private writing: Promise<void> | null = null;
  private expiryTimer: TimerHandle | undefined;
  private expiryTimerAt = Infinity;
  /** A front message's lifetime ended: the next write round drops it. */
  private sweepDue = false;
  private retryTimer: TimerHandle | undefined;
  private closed = false;
  private state: 'ok' | 'error' = 'ok';
  private stateError: string | null = null;
  private readonly totals = {
    accepted: 0,
    delivered: 0,
    expired: 0,
    dropped: { high: 0, normal: 0, low: 0 } as Record<Priority, number>,
  };

  private constructor(
    private readonly options: LmdbOutboxOptions,
    private readonly root: RootDatabase,
    private readonly messages: Database<Buffer, number>,
    private readonly meta: Database<number, string>,
  ) {
    this.events = new TypedEmitter<OutboxEvents>((error, event) => {
      options.logger.error({ err: error, event }, `An outbox '${event}' listener failed; the outbox goes on`);
    });
    this.notices = new OutboxNotices(options.clock, options.logger, options.maxMessages, options.maxBytes);
    this.persistedAcked = meta.get(META_ACKED_SEQ) ?? 0;
    this.ackedInMemory = this.persistedAcked;
    this.nextSeq = Math.max(meta.get(META_NEXT_SEQ) ?? 1, this.persistedAcked + 1);
  }

  static async open(options: LmdbOutboxOptions): Promise<LmdbOutbox> {
    const dir = path.resolve(options.dir);
    let root: RootDatabase;
    try {
      makeDirSync(dir);
      if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK);
      root = open({
        path: dir,
        maxDbs: 4,
        compression: false,
        // Event-turn batching leaves the commit promise of each turn's batch without a handler, so a
        // failed commit (disk full) would be an unhandled rejection; this outbox batches its own
        // writes (one transaction per write loop round) and handles every promise.
        eventTurnBatching: false,
        ...(options.sync === 'os' ? { noSync: true } : {}),
        ...(options.mapSizeBytes !== undefined ? { mapSize: options.mapSizeBytes } : {}),
      });
    } catch (error) {
      throw new FarmlinkError('OUTBOX_UNAVAILABLE', `The outbox at ${dir} cannot be opened: ${describe(error)}`, {
        cause: error,
      });
    }
    try {
      const messages = root.openDB<Buffer, number>({ name: 'messages', encoding: 'binary' });
      const meta = root.openDB<number, string>({ name: 'meta', encoding: 'msgpack' });
      const outbox = new LmdbOutbox({ ...options, dir }, root, messages, meta);
      const started = options.clock.monotonic();
      const unreadable = outbox.rebuildIndex();
      options.logger.info(
        {
          outbox: dir,
          depth: outbox.index.count,
          bytes: outbox.index.bytes,
          next_seq: outbox.nextSeq,
          acked_seq: outbox.persistedAcked,
          sync: options.sync,
          ms: Math.round(options.clock.monotonic() - started),
        },
        `Outbox open at ${dir}: ${outbox.index.count} messages waiting (${size(outbox.index.bytes)}), ` +
          `next seq ${outbox.nextSeq}, sync ${options.sync}` +
          (unreadable > 0 ? `; ${unreadable} unreadable records are removed` : ''),
      );
      outbox.scheduleExpiry();
      if (unreadable > 0 || outbox.expiredToDelete.length > 0) outbox.kick();
      return outbox;
    } catch (error) {
      await root.close().catch(() => undefined);
      throw new FarmlinkError('OUTBOX_UNAVAILABLE', `The outbox at ${dir} cannot be read: ${describe(error)}`, {
        cause: error,
      });
    }
  }

  get ackedSeq(): number {
    return this.ackedInMemory;
  }

  accept(inputs: readonly OutboxInput[]): Promise<number[]> {
    if (this.closed) return Promise.reject(new FarmlinkError('OUTBOX_UNAVAILABLE', 'The outbox is closed'));
    if (inputs.length === 0) return Promise.resolve([]);
    return new Promise<number[]>((resolve, reject) => {
      this.pendingAccepts.push({ inputs, resolve, reject });
      this.kick();
    });
  }

  read(afterSeq: number, limit: { messages: number; bytes: number }): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    let bytes = 0;
    const now = this.options.clock.now();
    const expired: IndexEntry[] = [];
    const start = Math.max(afterSeq, this.ackedInMemory) + 1;
    for (const { key, value } of this.messages.getRange({ start })) {
      const indexed = this.index.get(key);
      // Not in the index: acknowledged, dropped or expired, and its removal from the store is pending.
      if (!indexed) continue;
      if (indexed.expiresAt !== null && indexed.expiresAt <= now) {
        this.index.remove(key, false);
        expired.push(indexed);
        continue;
      }
      if (out.length >= limit.messages || (out.length > 0 && bytes + value.length > limit.bytes)) break;
      const entry = decodeRecord(key, value);
      if (!entry) continue;
      out.push(entry);
      bytes += entry.bytes;
    }
    if (expired.length > 0) {
      this.countExpired(expired);
      for (const entry of expired) this.expiredToDelete.push(entry.seq);
      this.kick();
    }
    return out;
  }

  /**
   * Forgets every message up to `seq` at once (a later read skips them) and resolves once that is
   * stored. If the store cannot be written, it still resolves (the outbox is then in its error
   * state): the removal is retried, and until then a restart merely sends those messages again,
   * which the hub drops as duplicates.
   */
  acknowledge(seq: number): Promise<void> {
    if (this.closed || seq <= this.ackedInMemory) return Promise.resolve();
    this.ackedInMemory = seq;
    const removed = this.index.removeThrough(seq);
    this.totals.delivered += removed.length;
    if (seq >= this.nextSeq) this.nextSeq = seq + 1;
    return new Promise<void>((resolve) => {
      this.ackWaiters.push(resolve);
      this.kick();
    });
  }

  summary(unacked: number): OutboxSummary {
    const oldest = this.index.oldestOverall();
    return {
      state: this.state,
      error: this.stateError,
      depth: this.index.count,
      bytes: this.index.bytes,
      max_messages: this.options.maxMessages,
      max_bytes: this.options.maxBytes,
      by_priority: this.index.countByPriority(),
      unacked,
      next_seq: this.nextSeq,
      acked_seq: this.ackedInMemory,
      oldest_accepted_at: oldest ? oldest.acceptedAt : null,
      accepted: this.totals.accepted,
      delivered: this.totals.delivered,
      dropped: { ...this.totals.dropped },
      expired: this.totals.expired,
      sync: this.options.sync,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let what was asked for before close be written first.
    while (this.writing) await this.writing;
    this.closed = true;
    this.options.clock.clearTimeout(this.expiryTimer);
    this.options.clock.clearTimeout(this.retryTimer);
    this.notices.flush();
    for (const waiter of this.ackWaiters.splice(0)) waiter();
    await this.root.close();
  }

  // ---- the write loop ----------------------------------------------------------------------

  private kick(): void {
    if (this.writing || this.closed) return;
    this.writing = this.writeLoop().finally(() => {
      this.writing = null;
      // Asked for between the loop's last look and now.
      if (this.hasWork()) this.kick();
    });
  }

  /** In the error state only new requests start a round; pending removals wait for the retry timer. */
  private hasWork(): boolean {
    if (this.pendingAccepts.length > 0 || this.ackWaiters.length > 0) return true;
    return (
      this.state === 'ok' &&
      (this.sweepDue || this.expiredToDelete.length > 0 || this.persistedAcked < this.ackedInMemory)
    );
  }

  private async writeLoop(): Promise<void> {
    // Starts after the current synchronous run so that accepts made together share one commit.
    await Promise.resolve();
    while (this.hasWork() && !this.closed) await this.writeRound();
  }

  private async writeRound(): Promise<void> {
    const accepts = this.pendingAccepts.splice(0);
    const ackWaiters = this.ackWaiters.splice(0);
    const expiredSeqs = this.expiredToDelete.splice(0);
    const ackThrough = this.ackedInMemory;
    const ackFrom = this.persistedAcked;
    const seqBefore = this.nextSeq;
    const mark = this.index.mark();
    const now = this.options.clock.now();

    this.sweepDue = false;
    const frontExpired = this.expireFronts(now);
    const evicted: IndexEntry[] = [];
    const planned: Planned[] = [];
    const acceptedFor: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
    for (const accept of accepts) {
      const plan = this.plan(accept, now, evicted, acceptedFor);
      if (plan) planned.push(plan);
    }

    const commit = async (): Promise<void> => {
      await this.root.transaction(() => {
        if (ackThrough > ackFrom) {
          for (const key of this.messages.getKeys({ start: ackFrom + 1, end: ackThrough + 1 })) {
            void this.messages.remove(key);
          }
          void this.meta.put(META_ACKED_SEQ, ackThrough);
        }
        for (const seq of expiredSeqs) void this.messages.remove(seq);
        for (const entry of frontExpired) void this.messages.remove(entry.seq);
        for (const entry of evicted) void this.messages.remove(entry.seq);
        for (const plan of planned) for (const r of plan.records) void this.messages.put(r.seq, r.value);
        if (this.nextSeq !== seqBefore || planned.length > 0) void this.meta.put(META_NEXT_SEQ, this.nextSeq);
        return true;
      });
      if (this.options.sync === 'flush') await this.root.flushed;
    };

    try {
      await commit();
    } catch (error) {
      const cause = await commitCause(error);
      // An acknowledged message stays forgotten; anything else the plan removed comes back.
      this.index.rollback(mark, (entry) => entry.seq > this.ackedInMemory);
      this.index.settle();
      this.nextSeq = Math.max(seqBefore, this.ackedInMemory + 1);
      this.expiredToDelete.push(...expiredSeqs);
      const failure = new FarmlinkError(
        'OUTBOX_UNAVAILABLE',
        `The outbox at ${this.options.dir} cannot be written: ${describe(cause)}`,
        { cause },
      );
      this.enterError(failure.message, cause);
      for (const plan of planned) plan.accept.reject(failure);
      for (const waiter of ackWaiters) waiter();
      return;
    }

    this.index.settle();
    this.persistedAcked = Math.max(this.persistedAcked, ackThrough);
    this.leaveError();
    if (frontExpired.length > 0) this.countExpired(frontExpired);
    if (evicted.length > 0) {
      for (const entry of evicted) {
        this.totals.dropped[entry.priority] += 1;
        this.events.emit('dropped', { seq: entry.seq, priority: entry.priority, why: 'full' });
      }
      this.notices.dropped(evicted, acceptedFor, this.fill());
    }
    for (const plan of planned) {
      this.totals.accepted += plan.seqs.length;
      plan.accept.resolve(plan.seqs);
      const byPriority = new Map<Priority, number[]>();
      plan.accept.inputs.forEach((input, i) => {
        const list = byPriority.get(input.priority) ?? [];
        list.push(plan.seqs[i] as number);
        byPriority.set(input.priority, list);
      });
      for (const [priority, seqs] of byPriority) this.events.emit('accepted', { seqs, priority });
    }
    for (const waiter of ackWaiters) waiter();
    this.scheduleExpiry();
  }

  /**
   * Plans one accept: numbers its messages and makes room by dropping the oldest messages of the
   * lowest priority present, never of a priority above the message being accepted. All or nothing:
   * if room cannot be made, the plan is undone and the caller gets OUTBOX_FULL.
   */
  private plan(
    accept: PendingAccept,
    now: number,
    evicted: IndexEntry[],
    acceptedFor: Record<Priority, number>,
  ): Planned | undefined {
    const mark = this.index.mark();
    const seqBefore = this.nextSeq;
    const evictedBefore = evicted.length;
    const { maxMessages, maxBytes } = this.options;
    const records: Array<{ seq: number; value: Buffer }> = [];
    for (const input of accept.inputs) {
      const ttl = input.ttlMs ?? this.options.defaultTtlMs;
      const header = {
        type: input.type,
        priority: input.priority,
        acceptedAt: now,
        expiresAt: ttl !== undefined ? now + ttl : null,
      };
      const value = encodeRecord(header, input.body);
      while (this.index.count + 1 > maxMessages || this.index.bytes + value.length > maxBytes) {
        const victim = value.length <= maxBytes ? this.victimFor(input.priority, seqBefore) : undefined;
        if (!victim) {
          this.index.rollback(mark);
          this.nextSeq = seqBefore;
          evicted.length = evictedBefore;
          const refused = accept.inputs.length;
          this.notices.refused(input.priority, refused, this.fill());
          accept.reject(
            new FarmlinkError(
              'OUTBOX_FULL',
              `The outbox is full (${this.index.count} of ${maxMessages} messages, ${size(this.index.bytes)} of ` +
                `${size(maxBytes)}) and holds nothing of ${input.priority} priority or lower to drop: ` +
                `refused ${refused} ${refused === 1 ? 'message' : 'messages'}` +
                (value.length > maxBytes ? ` (one is ${value.length} bytes, more than the whole outbox)` : ''),
            ),
          );
          return undefined;
        }
        this.index.remove(victim.seq);
        evicted.push(victim);
      }
      const seq = this.nextSeq++;
      this.index.add({
        seq,
        priority: input.priority,
        bytes: value.length,
        acceptedAt: now,
        expiresAt: header.expiresAt,
      });
      records.push({ seq, value });
    }
    if (evicted.length > evictedBefore) {
      for (const input of accept.inputs) acceptedFor[input.priority] += 1;
    }
    return { accept, seqs: records.map((r) => r.seq), records };
  }

  /** The message to drop for one of `priority`; never one of the accept being planned (seq ≥ `ownFrom`). */
  private victimFor(priority: Priority, ownFrom: number): IndexEntry | undefined {
    for (const candidate of [...PRIORITIES].reverse()) {
      if (RANK[candidate] < RANK[priority]) return undefined;
      const oldest = this.index.oldest(candidate);
      if (oldest && oldest.seq < ownFrom) return oldest;
    }
    return undefined;
  }

  /** Drops (journaled) the messages at the front of each priority's queue that are past their lifetime. */
  private expireFronts(now: number): IndexEntry[] {
    const out: IndexEntry[] = [];
    for (const priority of PRIORITIES) {
      for (let e = this.index.oldest(priority); e?.expiresAt != null && e.expiresAt <= now;) {
        this.index.remove(e.seq);
        out.push(e);
        e = this.index.oldest(priority);
      }
    }
    return out;
  }

  private fill(): { depth: number; bytes: number } {
    return { depth: this.index.count, bytes: this.index.bytes };
  }

  private countExpired(entries: readonly IndexEntry[]): void {
    this.totals.expired += entries.length;
    for (const entry of entries) {
      this.events.emit('dropped', { seq: entry.seq, priority: entry.priority, why: 'expired' });
    }
    this.notices.expired(entries, this.fill());
  }

  /** Wakes the write loop when the soonest front message expires, so dead messages do not sit on disk. */
  private scheduleExpiry(): void {
    let soonest = Infinity;
    for (const priority of PRIORITIES) {
      const expiresAt = this.index.oldest(priority)?.expiresAt;
      if (expiresAt != null) soonest = Math.min(soonest, expiresAt);
    }
    if (soonest === this.expiryTimerAt) return;
    this.options.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryTimerAt = soonest;
    if (soonest === Infinity || this.closed) return;
    const delay = Math.max(0, soonest - this.options.clock.now());
    this.expiryTimer = this.options.clock.setTimeout(
      () => {
        this.expiryTimer = undefined;
        this.expiryTimerAt = Infinity;
        if (this.expireFrontsNow()) {
          this.sweepDue = true;
          this.kick();
        } else {
          this.scheduleExpiry();
        }
      },
      delay,
      { unref: true },
    );
  }

  /** True when a front message is past its lifetime (the write loop then drops it). */
  private expireFrontsNow(): boolean {
    const now = this.options.clock.now();
    return PRIORITIES.some((p) => {
      const expiresAt = this.index.oldest(p)?.expiresAt;
      return expiresAt != null && expiresAt <= now;
    });
  }

  // ---- error state -------------------------------------------------------------------------

  private enterError(message: string, cause: unknown): void {
    if (this.state !== 'error') {
      this.state = 'error';
      this.stateError = message;
      this.options.logger.error(
        { err: cause, outbox: this.options.dir, code: 'OUTBOX_UNAVAILABLE' },
        `${message}. New messages are refused (OUTBOX_UNAVAILABLE) until a write succeeds; the connection ` +
          `stays up and messages already held are still delivered; retrying every ${RETRY_AFTER_ERROR_MS / 1000} s`,
      );
      this.events.emit('state', { state: 'error', error: message });
    } else {
      this.stateError = message;
    }
    this.scheduleRetry();
  }

  private leaveError(): void {
    if (this.state === 'ok') return;
    this.state = 'ok';
    this.stateError = null;
    this.options.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.options.logger.info(
      { outbox: this.options.dir },
      `The outbox at ${this.options.dir} can be written again: accepting new messages`,
    );
    this.events.emit('state', { state: 'ok', error: null });
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = this.options.clock.setTimeout(
      () => {
        this.retryTimer = undefined;
        if (this.state !== 'error') return;
        // With nothing pending, the next accept is the next try.
        if (this.expiredToDelete.length > 0 || this.persistedAcked < this.ackedInMemory) this.retryRemovals();
      },
      RETRY_AFTER_ERROR_MS,
      { unref: true },
    );
  }

  /** Retries the pending removals; hasWork() skips acknowledged removals while in error, so ask explicitly. */
  private retryRemovals(): void {
    this.ackWaiters.push(() => undefined);
    this.kick();
  }

  // ---- open --------------------------------------------------------------------------------

  /** Reads every record's header (never a body) into the index; returns how many were unreadable. */
  private rebuildIndex(): number {
    let unreadable = 0;
    const now = this.options.clock.now();
    const expired: IndexEntry[] = [];
    for (const { key, value } of this.messages.getRange({})) {
      if (key <= this.persistedAcked) {
        // Acknowledged but not yet removed when the agent stopped.
        this.expiredToDelete.push(key);
        continue;
      }
      const header = decodeHeader(value);
      if (!header) {
        unreadable += 1;
        this.expiredToDelete.push(key);
        continue;
      }
      if (key >= this.nextSeq) this.nextSeq = key + 1;
      const entry: IndexEntry = {
        seq: key,
        priority: header.priority,
        bytes: value.length,
        acceptedAt: header.acceptedAt,
        expiresAt: header.expiresAt,
      };
      if (header.expiresAt !== null && header.expiresAt <= now) {
        expired.push(entry);
        this.expiredToDelete.push(key);
        continue;
      }
      this.index.add(entry);
    }
    if (expired.length > 0) this.countExpired(expired);
    return unreadable;
  }
}

/** lmdb rejects a failed commit with a generic error whose `commitError` promise holds the cause. */
async function commitCause(error: unknown): Promise<unknown> {
  const commitError = (error as { commitError?: Promise<unknown> } | null)?.commitError;
  if (commitError && typeof commitError.then === 'function') {
    try {
      await commitError;
    } catch (cause) {
      return cause;
    }
  }
  return error;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  const known: Record<string, string> = {
    ENOSPC: 'the disk is full',
    EDQUOT: 'the disk quota is used up',
    EFBIG: 'the file is at its size limit',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'the file system is read-only',
    ENOTDIR: 'a file is where the directory should be',
    EEXIST: 'a file is where the directory should be',
  };
  const plain = typeof code === 'string' ? known[code] : undefined;
  if (plain) return `${plain} (${code})`;
  if (code === '5' || (code as unknown) === 5)
    return `${error.message} (EIO: the disk refused the write, often because it is full)`;
  return error.message;
}
