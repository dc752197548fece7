import type { Clock } from '../../lib/clock.js';
import type { HubMetrics } from '../metrics.js';
import type { AppendOutcome, EventPage, EventSink, SinkEvent } from './event-sink.js';

/**
 * An EventSink that counts what goes through it on the hub's /metrics: appends by outcome
 * (appended | duplicate), failures, and how long each append took until durable.
 */
export class MeteredEventSink implements EventSink {
  readonly kind: EventSink['kind'];
  readonly read?: (after: string | undefined, limit: number) => Promise<EventPage>;

  constructor(
    private readonly inner: EventSink,
    private readonly metrics: HubMetrics,
    private readonly clock: Clock,
  ) {
    this.kind = inner.kind;
    const read = inner.read?.bind(inner);
    if (read) this.read = read;
  }

  async append(agentId: string, events: readonly SinkEvent[]): Promise<AppendOutcome> {
    const started = this.clock.monotonic();
    try {
      const outcome = await this.inner.append(agentId, events);
      this.metrics.sinkAppended(this.kind, outcome, (this.clock.monotonic() - started) / 1000);
      return outcome;
    } catch (error) {
      this.metrics.sinkFailed(this.kind);
      throw error;
    }
  }

  lastSeq(agentId: string): Promise<number> {
    return this.inner.lastSeq(agentId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
