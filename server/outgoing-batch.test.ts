import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/manual-clock.fixture.js';
import { OutgoingBatcher } from './outgoing-batch.js';

function setup(settings = { window_ms: 50, max_messages: 3, max_bytes: 10_000 }) {
  const clock = new ManualClock();
  const frames: Array<{ messages: Array<{ type: string; seq?: number }>; count: number; types: readonly string[] }> =
    [];
  const batcher = new OutgoingBatcher(
    settings,
    (frame, count, types) => {
      const parsed = JSON.parse(frame) as { type: string; messages: Array<{ type: string; seq?: number }> };
      expect(parsed.type).toBe('batch');
      frames.push({ messages: parsed.messages, count, types });
    },
    clock,
  );
  return { clock, frames, batcher };
}

const msg = (type: string, extra: Record<string, unknown> = {}) => ({
  text: JSON.stringify({ type, ...extra }),
  type,
});

describe('OutgoingBatcher', () => {
  it('holds messages for the window, then sends them in one batch frame, in order', async () => {
    const { clock, frames, batcher } = setup();
    batcher.push(msg('broadcast', { n: 1 }));
    batcher.push(msg('command', { n: 2 }));
    await clock.advance(49);
    expect(frames).toHaveLength(0);
    await clock.advance(1);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.messages.map((m) => m.type)).toEqual(['broadcast', 'command']);
    expect(frames[0]?.count).toBe(2);
    expect(clock.pending).toBe(0);
  });

  it('sends at once when the frame reaches max_messages', () => {
    const { frames, batcher } = setup();
    for (let i = 0; i < 3; i += 1) batcher.push(msg('broadcast'));
    expect(frames).toHaveLength(1);
    expect(frames[0]?.count).toBe(3);
    expect(batcher.size).toBe(0);
  });

  it('sends what is pending before a message that would take the frame past max_bytes', () => {
    const { frames, batcher } = setup({ window_ms: 50, max_messages: 100, max_bytes: 300 });
    const big = 'x'.repeat(150);
    batcher.push(msg('broadcast', { big }));
    batcher.push(msg('broadcast', { big }));
    expect(frames).toHaveLength(1);
    expect(frames[0]?.count).toBe(1);
    expect(batcher.size).toBe(1);
  });

  it('an urgent message flushes itself and everything waiting before it', () => {
    const { frames, batcher } = setup();
    batcher.push(msg('broadcast'));
    batcher.push({ ...msg('draining'), urgent: true });
    expect(frames).toHaveLength(1);
    expect(frames[0]?.types).toEqual(['broadcast', 'draining']);
  });

  it('a keyed message (a cumulative ack) replaces the one still waiting, and both callbacks run when sent', async () => {
    const { clock, frames, batcher } = setup();
    const sent: number[] = [];
    batcher.push({ ...msg('ack', { seq: 1 }), key: 'ack', onSent: () => sent.push(1) });
    batcher.push(msg('broadcast'));
    batcher.push({ ...msg('ack', { seq: 4 }), key: 'ack', onSent: () => sent.push(4) });
    expect(batcher.size).toBe(2);
    expect(sent).toEqual([]);
    await clock.advance(50);
    expect(frames[0]?.messages).toEqual([{ type: 'ack', seq: 4 }, { type: 'broadcast' }]);
    expect(sent).toEqual([1, 4]);
  });

  it('after close nothing goes out and no timer is left', () => {
    const { clock, frames, batcher } = setup();
    batcher.push(msg('broadcast'));
    batcher.close();
    batcher.push(msg('broadcast'));
    batcher.flush();
    expect(frames).toHaveLength(0);
    expect(clock.pending).toBe(0);
  });
});
