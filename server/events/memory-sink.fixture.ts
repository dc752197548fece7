import type { AppendOutcome, EventSink, SinkEvent } from './event-sink.js';

/**
 * An EventSink in memory for tests of the hub's enhanced mode: it keeps events per agent exactly
 * once per seq, as the real sinks do, and lets a test hold appends back (to see that nothing is
 * acknowledged before the sink has it) or make them fail (a sink that is down).
 */
export class MemoryEventSink implements EventSink {
  readonly kind = 'local' as const;
  readonly events: SinkEvent[] = [];
  /** Every append call, in order: what it was given. */
  readonly calls: Array<{ agentId: string; seqs: Array<number | null> }> = [];
  /** Set: appends reject with this error. */
  failWith: Error | undefined;
  private readonly last = new Map<string, number>();
  private gate: { promise: Promise<void>; open: () => void } | undefined;

  /** Appends wait (after being recorded in `calls`) until `release()`. */
  hold(): void {
    let open: () => void = () => undefined;
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  seqsOf(agentId: string): Array<number | null> {
    return this.events.filter((e) => e.agent_id === agentId).map((e) => e.seq);
  }

  async append(agentId: string, events: readonly SinkEvent[]): Promise<AppendOutcome> {
    this.calls.push({ agentId, seqs: events.map((e) => e.seq) });
    if (this.gate) await this.gate.promise;
    if (this.failWith) throw this.failWith;
    let appended = 0;
    let duplicates = 0;
    let last = this.last.get(agentId) ?? 0;
    for (const event of events) {
      if (event.seq !== null && event.seq <= last) {
        duplicates += 1;
        continue;
      }
      this.events.push({ ...event, agent_id: agentId });
      appended += 1;
      if (event.seq !== null) last = event.seq;
    }
    this.last.set(agentId, last);
    return { appended, duplicates, last_seq: last };
  }

  lastSeq(agentId: string): Promise<number> {
    if (this.failWith) return Promise.reject(this.failWith);
    return Promise.resolve(this.last.get(agentId) ?? 0);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
