import { open, type Database, type RootDatabase } from 'lmdb';
import { FarmlinkError } from '../../lib/errors.js';
import type { AppendOutcome, EventPage, EventSink, SinkEvent, StoredEvent } from './event-sink.js';
import { SinkError, reasonOf } from './sink-error.js';
import { makeDirSync } from '../../lib/make-dir.js';

/** What the log keeps per position (the agent id is in it: one log holds every agent). */
interface LoggedEvent {
  agent_id: string;
  seq: number | null;
  name: string;
  data: unknown;
  ts: number;
}

const CURSOR = /^\d{1,15}$/;

/**
 * The hub's event sink without Redis: an LMDB environment in `<data-dir>/events` holding the
 * events under increasing positions (1, 2, …; the cursor of the admin API) and each agent's last
 * seq. One write transaction per `append` checks the seqs, writes the events and the last seq;
 * `append` resolves only once that transaction is flushed to disk (fsync), so an acknowledged
 * event survives a crash or a power cut.
 *
 * Several processes may open the same directory (the hub's `--workers` share one data dir): LMDB
 * serialises write transactions across processes with the lock file next to the data, and the
 * next position and the last seq are read inside the write transaction, so two processes never
 * take the same position nor both keep one (agent, seq). Readers see the other processes' commits
 * from their next event-loop turn on (lmdb-js renews its read snapshot then).
 */
export class LocalEventLog implements EventSink {
  readonly kind = 'local' as const;
  private readonly root: RootDatabase;
  private readonly events: Database<LoggedEvent, number>;
  private readonly lastSeqs: Database<number, string>;
  private closed = false;

  private constructor(readonly path: string) {
    this.root = open({ path, compression: false, maxDbs: 4 });
    // JSON, not lmdb's default msgpack with shared record structures: events are arbitrary data
    // from many agents, and the values read back are exactly what the admin API answers.
    this.events = this.root.openDB<LoggedEvent, number>({ name: 'events', encoding: 'json' });
    this.lastSeqs = this.root.openDB<number, string>({ name: 'last-seq', encoding: 'json' });
  }

  /** Opens (creating if missing) the log in `dir`. Throws a SinkError when the directory cannot be used. */
  static open(dir: string): LocalEventLog {
    try {
      makeDirSync(dir);
      return new LocalEventLog(dir);
    } catch (error) {
      throw new SinkError(
        'SINK_WRITE_FAILED',
        `Cannot open the hub's event log in ${dir}: ${reasonOf(error)}. Give the hub a writable --data-dir.`,
        { cause: error },
      );
    }
  }

  async append(agentId: string, events: readonly SinkEvent[]): Promise<AppendOutcome> {
    if (this.closed) throw this.closedError();
    let outcome: AppendOutcome;
    try {
      // transactionSync, not lmdb-js's queued transaction(): with several processes on one
      // directory the queued kind was seen to hang, and to give two processes one position.
      // It blocks this event loop only while another process holds the write lock; each holds it
      // for a few reads and puts.
      outcome = this.root.transactionSync(() => {
        const before = this.lastSeqs.get(agentId) ?? 0;
        let last = before;
        let position = this.lastPosition();
        let appended = 0;
        let duplicates = 0;
        for (const event of events) {
          if (event.seq !== null) {
            if (event.seq <= last) {
              duplicates += 1;
              continue;
            }
            last = event.seq;
          }
          position += 1;
          this.events.putSync(position, {
            agent_id: agentId,
            seq: event.seq,
            name: event.name,
            data: event.data ?? null,
            ts: event.ts,
          });
          appended += 1;
        }
        if (last !== before) this.lastSeqs.putSync(agentId, last);
        return { appended, duplicates, last_seq: last };
      });
      // Committed (visible to every process) when transactionSync returns; durable once flushed.
      await this.root.flushed;
    } catch (error) {
      throw new SinkError(
        'SINK_WRITE_FAILED',
        `The event log in ${this.path} could not take ${events.length} events of agent ${agentId}: ${reasonOf(error)}; ` +
          'none of them was kept',
        { cause: error },
      );
    }
    return outcome;
  }

  lastSeq(agentId: string): Promise<number> {
    if (this.closed) return Promise.reject(this.closedError());
    return Promise.resolve(this.lastSeqs.get(agentId) ?? 0);
  }

  read(after: string | undefined, limit: number): Promise<EventPage> {
    if (this.closed) return Promise.reject(this.closedError());
    if (after !== undefined && !CURSOR.test(after)) {
      return Promise.reject(
        new FarmlinkError(
          'BAD_CURSOR',
          `after: expected a position in the hub's event log (a whole number from an earlier answer), got "${after.slice(0, 40)}"`,
        ),
      );
    }
    const start = after === undefined ? 1 : Number(after) + 1;
    const events: StoredEvent[] = [];
    let more = false;
    // One past the limit says whether a following page exists.
    for (const { key, value } of this.events.getRange({ start, limit: limit + 1 })) {
      if (events.length === limit) {
        more = true;
        break;
      }
      events.push({ cursor: String(key), ...value });
    }
    const last = events.at(-1);
    return Promise.resolve({ events, next: more && last ? last.cursor : null });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }

  private lastPosition(): number {
    for (const key of this.events.getKeys({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  private closedError(): SinkError {
    return new SinkError('SINK_CLOSED', `The event log in ${this.path} is closed (the hub is stopping)`);
  }
}
