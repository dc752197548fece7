import type { Breaker } from '../../lib/circuit-breaker.js';
import type { AppendOutcome, EventPage, EventSink, SinkEvent } from './event-sink.js';

/**
 * An EventSink behind a circuit breaker: while the sink keeps failing, appends fail at once with
 * BreakerOpenError (whose retryAt an enhanced session turns into the nack's retry_after_ms)
 * instead of each waiting for the sink's own timeout. lastSeq goes through it too: a sink that
 * cannot append cannot be trusted to say where an agent stands either.
 */
export class BreakerEventSink implements EventSink {
  readonly kind: EventSink['kind'];
  readonly read?: (after: string | undefined, limit: number) => Promise<EventPage>;

  constructor(
    private readonly inner: EventSink,
    readonly breaker: Breaker,
  ) {
    this.kind = inner.kind;
    const read = inner.read?.bind(inner);
    if (read) this.read = read;
  }

  append(agentId: string, events: readonly SinkEvent[]): Promise<AppendOutcome> {
    return this.breaker.execute(() => this.inner.append(agentId, events));
  }

  lastSeq(agentId: string): Promise<number> {
    return this.breaker.execute(() => this.inner.lastSeq(agentId));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
