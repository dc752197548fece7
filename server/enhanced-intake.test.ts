import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/manual-clock.fixture.js';
import type { ErrorInfo, Result } from '../protocol/messages.js';
import { EnhancedIntake, type SeqMessage } from './enhanced-intake.js';
import { MemoryEventSink } from './events/memory-sink.fixture.js';

const event = (seq: number): SeqMessage => ({
  type: 'event',
  seq,
  name: 'device.attached',
  data: { seq },
  timestamp: 1,
});
const result = (seq: number, id: string): SeqMessage => ({ type: 'result', seq, id, ok: true, data: id });

function setup(startSeq = 0) {
  const clock = new ManualClock();
  const sink = new MemoryEventSink();
  const acks: number[] = [];
  const nacks: Array<{ seq: number; error: ErrorInfo; retryAfterMs: number }> = [];
  const results: Result[] = [];
  let duplicates = 0;
  let ignored = 0;
  const intake = new EnhancedIntake('pc-1', startSeq, {
    clock,
    append: (events) => sink.append('pc-1', events),
    dispatchResult: (r) => results.push(r),
    ack: (seq) => acks.push(seq),
    nack: (seq, error, retryAfterMs) => nacks.push({ seq, error, retryAfterMs }),
    duplicates: (n) => (duplicates += n),
    ignored: (n) => (ignored += n),
  });
  return {
    clock,
    sink,
    intake,
    acks,
    nacks,
    results,
    get duplicates() {
      return duplicates;
    },
    get ignored() {
      return ignored;
    },
  };
}

describe('EnhancedIntake', () => {
  it("appends each frame's events in one call and acks only once the sink has them", async () => {
    const t = setup();
    t.sink.hold();
    t.intake.accept([event(1), event(2), event(3)]);
    t.intake.accept([event(4)]);
    await t.clock.advance(0);
    expect(t.sink.calls).toEqual([{ agentId: 'pc-1', seqs: [1, 2, 3] }]);
    expect(t.acks).toEqual([]);
    t.sink.release();
    await t.intake.idle();
    expect(t.sink.calls.map((c) => c.seqs)).toEqual([[1, 2, 3], [4]]);
    expect(t.acks).toEqual([3, 4]);
    expect(t.sink.seqsOf('pc-1')).toEqual([1, 2, 3, 4]);
  });

  it('passes results on in order after the events before them are kept, and acks past them', async () => {
    const t = setup();
    t.intake.accept([event(1), result(2, 'cmd-a'), event(3)]);
    await t.intake.idle();
    expect(t.results.map((r) => r.id)).toEqual(['cmd-a']);
    expect(t.acks).toEqual([3]);
  });

  it('seqs at or below where it started (a resend) are counted as duplicates, acked, never appended', async () => {
    const t = setup(5);
    t.intake.accept([event(4), event(5)]);
    t.intake.accept([event(5), event(6), result(7, 'x')]);
    await t.intake.idle();
    expect(t.duplicates).toBe(3);
    expect(t.sink.calls.map((c) => c.seqs)).toEqual([[6]]);
    expect(t.acks).toEqual([5, 7]);
    expect(t.results).toHaveLength(1);
  });

  it('a failing sink: nack from the first seq not kept; later frames ignored until the resend; then on', async () => {
    const t = setup();
    t.intake.accept([event(1)]);
    await t.intake.idle();
    t.sink.failWith = new Error('redis down');
    t.intake.accept([event(2), result(3, 'r')]);
    t.intake.accept([event(4)]);
    await t.intake.idle();
    expect(t.nacks).toHaveLength(1);
    expect(t.nacks[0]).toMatchObject({ seq: 2, error: { code: 'SINK_UNAVAILABLE' }, retryAfterMs: 1000 });
    expect(t.nacks[0]?.error.message).toMatch(/redis down/);
    expect(t.ignored).toBe(1);
    expect(t.results).toEqual([]);
    t.sink.failWith = undefined;
    t.intake.accept([event(2), result(3, 'r'), event(4)]);
    await t.intake.idle();
    expect(t.sink.seqsOf('pc-1')).toEqual([1, 2, 4]);
    expect(t.results.map((r) => r.id)).toEqual(['r']);
    expect(t.acks).toEqual([1, 4]);
  });

  it('after retry_after_ms a frame from past the nacked seq is taken (the agent dropped that one meanwhile)', async () => {
    const t = setup();
    t.sink.failWith = new Error('down');
    t.intake.accept([event(1)]);
    await t.intake.idle();
    t.sink.failWith = undefined;
    t.intake.accept([event(2)], t.clock.monotonic());
    await t.intake.idle();
    expect(t.ignored).toBe(1);
    await t.clock.advance(1000);
    t.intake.accept([event(2)], t.clock.monotonic());
    await t.intake.idle();
    expect(t.sink.seqsOf('pc-1')).toEqual([2]);
    expect(t.acks).toEqual([2]);
  });

  it("an open breaker's probe time becomes retry_after_ms", async () => {
    const t = setup();
    t.sink.failWith = Object.assign(new Error('breaker open'), { retryAt: t.clock.now() + 5000 });
    t.intake.accept([event(1)]);
    await t.intake.idle();
    expect(t.nacks[0]?.retryAfterMs).toBe(5000);
  });

  it('after stop, queued frames are not handled', async () => {
    const t = setup();
    t.sink.hold();
    t.intake.accept([event(1)]);
    t.intake.accept([event(2)]);
    await t.clock.advance(0);
    t.intake.stop();
    t.sink.release();
    await t.intake.idle();
    expect(t.acks).toEqual([]);
    expect(t.sink.calls).toHaveLength(1);
  });
});
