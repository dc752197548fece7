import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { EnhancedIntake, type SeqMessage } from '../enhanced-intake.js';
import { HubBreakers } from '../hub-breakers.js';
import { BreakerEventSink } from './breaker-sink.js';
import { MemoryEventSink } from './memory-sink.fixture.js';

const event = (seq: number): SeqMessage => ({ type: 'event', seq, name: 'e', data: null, timestamp: 1 });

function setup() {
  const clock = new ManualClock();
  const registry = new Registry();
  const lines: Array<{ msg: string; level: number }> = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as { msg: string; level: number }) },
  );
  const breakers = new HubBreakers({ failures: 3, windowMs: 60_000, recoveryMs: 120_000 }, clock, logger, registry);
  const inner = new MemoryEventSink();
  const sink = new BreakerEventSink(inner, breakers.get('sink'));
  const nacks: Array<{ seq: number; retryAfterMs: number; message: string }> = [];
  const acks: number[] = [];
  const intake = new EnhancedIntake('pc', 0, {
    clock,
    append: (events) => sink.append('pc', events),
    dispatchResult: () => undefined,
    ack: (seq) => acks.push(seq),
    nack: (seq, error, retryAfterMs) => nacks.push({ seq, retryAfterMs, message: error.message }),
    duplicates: () => undefined,
    ignored: () => undefined,
  });
  const state = async () => {
    const text = await registry.metrics();
    return Number(/farmlink_hub_breaker_state\{breaker="sink"\} (\d)/.exec(text)?.[1]);
  };
  return { clock, inner, sink, intake, nacks, acks, lines, state, registry };
}

describe('the event sink behind a breaker', () => {
  it('opens after the threshold: nacks at once with retry_after_ms up to the probe, then a probe closes it', async () => {
    const t = setup();
    t.inner.failWith = new Error('redis down');
    for (let i = 0; i < 3; i += 1) {
      t.intake.accept([event(1)]);
      await t.intake.idle();
      await t.clock.advance(1000); // past each nack's retry_after_ms: the resend is taken
    }
    expect(t.inner.calls).toHaveLength(3);
    expect(t.nacks.map((n) => n.retryAfterMs)).toEqual([1000, 1000, 1000]);
    expect(await t.state()).toBe(2);
    const opened = t.lines.find((l) => l.msg.includes('opened'));
    expect(opened?.msg).toMatch(
      /sink opened: 3 failures within 60 s \(last: redis down\); failing fast until .*probes it/,
    );

    // Open: the sink is not called, the nack says when to come back.
    t.intake.accept([event(1)]);
    await t.intake.idle();
    expect(t.inner.calls).toHaveLength(3);
    // It opened at the third failure (t = 2 s); this nack comes at t = 3 s.
    expect(t.nacks.at(-1)?.retryAfterMs).toBe(120_000 - 1000);
    expect(t.nacks.at(-1)?.message).toMatch(/circuit breaker open/);

    // After the recovery time one call probes; it succeeds and the breaker closes.
    t.inner.failWith = undefined;
    await t.clock.advance(120_000);
    expect(await t.state()).toBe(1);
    t.intake.accept([event(1), event(2)]);
    await t.intake.idle();
    expect(t.acks).toEqual([2]);
    expect(await t.state()).toBe(0);
    const text = await t.registry.metrics();
    expect(text).toMatch(/farmlink_hub_breaker_transitions_total\{breaker="sink",to="open"\} 1/);
    expect(text).toMatch(/farmlink_hub_breaker_transitions_total\{breaker="sink",to="closed"\} 1/);
    expect(t.lines.some((l) => l.msg.includes('closed again'))).toBe(true);
  });

  it('a failed probe opens it again for another recovery time', async () => {
    const t = setup();
    t.inner.failWith = new Error('still down');
    for (let i = 0; i < 3; i += 1) await t.sink.append('pc', []).catch(() => undefined);
    await t.clock.advance(120_000);
    await expect(t.sink.append('pc', [])).rejects.toThrow('still down');
    expect(await t.state()).toBe(2);
    await expect(t.sink.lastSeq('pc')).rejects.toMatchObject({ code: 'BREAKER_OPEN' });
    expect(t.inner.calls).toHaveLength(4);
  });
});
