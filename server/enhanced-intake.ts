import type { Clock } from '../lib/clock.js';
import { FarmlinkError } from '../lib/errors.js';
import type { AgentEvent, ErrorInfo, Result } from '../protocol/messages.js';
import type { AppendOutcome, SinkEvent } from './events/event-sink.js';

/** A message of the agent's outbox: it carries its `seq` (checked on receipt). */
export type SeqMessage = (AgentEvent | Result) & { seq: number };

/** When the sink gives no better hint, how long the agent waits before sending again after a nack. */
export const DEFAULT_RETRY_AFTER_MS = 1000;

export interface IntakeDeps {
  clock: Clock;
  /** Appends one frame's events (in order, one call); resolves once they are durable. */
  append(events: readonly SinkEvent[]): Promise<AppendOutcome>;
  /** Passes a result on to the command that waits for it; a throw nacks it (sent again later). */
  dispatchResult(result: Result): void;
  /** Everything up to `seq` is handled; `receivedAt` (monotonic) is when the frame that got it there arrived. */
  ack(seq: number, receivedAt: number): void;
  nack(seq: number, error: ErrorInfo, retryAfterMs: number): void;
  /** Messages at or below what the hub already held (a resend after a reconnect or a nack). */
  duplicates(count: number): void;
  /** Messages dropped because they came after a nacked one and before the agent's resend. */
  ignored(count: number, awaiting: number): void;
}

interface Frame {
  messages: readonly SeqMessage[];
  receivedAt: number;
}

/**
 * The seq'd messages of one enhanced session, handled strictly in order: each frame's events go
 * to the sink in one append, which starts only once the previous frame's has resolved, and the
 * frame's results are passed on after it (so a nack never leaves a result handled past a gap).
 * `handled` is the cumulative ack: every message up to it is in the sink (or was a duplicate of
 * one that is) or was passed to its command.
 *
 * After a nack at seq S the agent sends again from S; frames already on their way carry later
 * seqs, and handling them would leave a hole at S, so they are ignored until a message at or
 * below S arrives — or until retry_after_ms has passed since the nack (the agent may have dropped
 * S from its outbox meanwhile, by ttl or when full, and then resends from after it).
 */
export class EnhancedIntake {
  private handled: number;
  private tail: Promise<void> = Promise.resolve();
  private awaiting: { seq: number; until: number } | undefined;
  private stopped = false;

  constructor(
    private readonly agentId: string,
    startSeq: number,
    private readonly deps: IntakeDeps,
  ) {
    this.handled = startSeq;
  }

  /** Highest seq handled so far (the next ack). */
  get ackedSeq(): number {
    return this.handled;
  }

  /** Resolves once every frame accepted so far has been handled (tests, shutdown). */
  idle(): Promise<void> {
    return this.tail;
  }

  /** The session closed: frames still queued are not handled (the agent resends them to the next hub). */
  stop(): void {
    this.stopped = true;
  }

  /** Read through a method: the session may stop while an append is awaited. */
  private isStopped(): boolean {
    return this.stopped;
  }

  /** One frame's seq'd messages, in the order received (seqs increase within a frame: the session checks). */
  accept(messages: readonly SeqMessage[], receivedAt = this.deps.clock.monotonic()): void {
    if (messages.length === 0) return;
    const frame: Frame = { messages, receivedAt };
    this.tail = this.tail.then(() => this.process(frame));
  }

  private async process(frame: Frame): Promise<void> {
    if (this.stopped) return;
    const fresh = frame.messages.filter((m) => m.seq > this.handled);
    const duplicates = frame.messages.length - fresh.length;
    if (duplicates > 0) this.deps.duplicates(duplicates);
    const first = fresh[0];
    if (!first) {
      // All duplicates: the agent still needs to hear they are safe.
      this.deps.ack(this.handled, frame.receivedAt);
      return;
    }
    if (this.awaiting) {
      const resent = first.seq <= this.awaiting.seq || frame.receivedAt >= this.awaiting.until;
      if (!resent) {
        this.deps.ignored(fresh.length, this.awaiting.seq);
        return;
      }
      this.awaiting = undefined;
    }
    const events = fresh.filter((m): m is AgentEvent & { seq: number } => m.type === 'event');
    let sinkDuplicates = 0;
    if (events.length > 0) {
      try {
        const outcome = await this.deps.append(events.map((e) => sinkEvent(this.agentId, e)));
        sinkDuplicates = outcome.duplicates;
      } catch (error) {
        if (this.isStopped()) return;
        const retryAfterMs = retryAfter(error, this.deps.clock);
        this.awaiting = { seq: first.seq, until: this.deps.clock.monotonic() + retryAfterMs };
        this.deps.nack(first.seq, sinkError(error), retryAfterMs);
        return;
      }
    }
    if (this.isStopped()) return;
    if (sinkDuplicates > 0) this.deps.duplicates(sinkDuplicates);
    const before = this.handled;
    for (const message of fresh) {
      if (message.type === 'result') {
        try {
          this.deps.dispatchResult(message);
        } catch (error) {
          // Its handler failed (or its breaker is open): the agent sends it again later. Events
          // after it in this frame are in the sink already and will come back as duplicates.
          if (this.handled > before) this.deps.ack(this.handled, frame.receivedAt);
          const retryAfterMs = retryAfter(error, this.deps.clock);
          this.awaiting = { seq: message.seq, until: this.deps.clock.monotonic() + retryAfterMs };
          this.deps.nack(message.seq, handlerError(error), retryAfterMs);
          return;
        }
      }
      this.handled = message.seq;
    }
    this.deps.ack(this.handled, frame.receivedAt);
  }
}

function sinkEvent(agentId: string, event: AgentEvent & { seq: number }): SinkEvent {
  return { agent_id: agentId, seq: event.seq, name: event.name, data: event.data, ts: event.timestamp };
}

/** A breaker that is open says when it will let a probe through; otherwise the default. */
function retryAfter(error: unknown, clock: Clock): number {
  const retryAt = (error as { retryAt?: unknown } | null)?.retryAt;
  if (typeof retryAt === 'number' && Number.isFinite(retryAt)) {
    return Math.max(0, Math.ceil(retryAt - clock.now()));
  }
  return DEFAULT_RETRY_AFTER_MS;
}

function handlerError(error: unknown): ErrorInfo {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof FarmlinkError ? error.code : 'HANDLER_FAILED';
  return { code, message: `the hub could not handle this result: ${message}`.slice(0, 4096) };
}

function sinkError(error: unknown): ErrorInfo {
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'SINK_UNAVAILABLE',
    message: `the hub's event sink could not take these events: ${message}`.slice(0, 4096),
  };
}
