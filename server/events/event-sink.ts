/**
 * Where the hub puts the events agents send: a Redis Stream shared by every hub of the farm
 * (`<redis-prefix>events`), or, without Redis, an event log in the hub's own data dir. The hub
 * acknowledges an event to its agent only after `append` has resolved, so an acknowledged event
 * is durably somewhere a consumer can read it.
 */

/** One event as the sink keeps it. */
export interface SinkEvent {
  agent_id: string;
  /** The agent's outbox sequence number; null for an event from a legacy agent that sent none. */
  seq: number | null;
  name: string;
  data: unknown;
  /** When the agent emitted it, epoch ms. */
  ts: number;
}

export interface AppendOutcome {
  /** Events written by this call. */
  appended: number;
  /** Events skipped because the sink already held their (agent_id, seq): a replay after a reconnect. */
  duplicates: number;
  /** The agent's highest seq the sink holds after this call (0: none). */
  last_seq: number;
}

export interface EventSink {
  /** For logs and metrics. */
  readonly kind: 'redis' | 'local';
  /**
   * Appends one agent's events in the order given. Events with a seq are kept exactly once per
   * (agent_id, seq): one whose seq is not above the agent's last seq in the sink is a duplicate and
   * skipped (atomically, across every hub sharing the sink). Resolves once what it wrote is
   * durable; rejects (nothing after the first failure written) when the sink cannot be written.
   */
  append(agentId: string, events: readonly SinkEvent[]): Promise<AppendOutcome>;
  /** The agent's highest seq the sink holds (0: none): where a reconnecting agent resumes. */
  lastSeq(agentId: string): Promise<number>;
  /**
   * Pages through what the sink holds, oldest first, from just after `after` (undefined: the
   * start). Optional so a sink for tests need not page; the hub's two sinks both do, and the admin
   * API (`GET /api/v1/admin/events`) answers from it. A cursor this sink cannot read rejects with
   * a FarmlinkError `BAD_CURSOR` whose message names `after` and what was expected.
   */
  read?(after: string | undefined, limit: number): Promise<EventPage>;
  close(): Promise<void>;
}

/** One event as read back, with its place in the sink. */
export interface StoredEvent extends SinkEvent {
  /** Where it is in the sink: a stream id (Redis) or the log's position (local); pass it as `after`. */
  cursor: string;
}

export interface EventPage {
  events: StoredEvent[];
  /** The cursor to read the following page from, when more events followed this page; null: none yet. */
  next: string | null;
}
