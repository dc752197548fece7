import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { FarmlinkError } from '../../lib/errors.js';
import { FrameBatcher } from './frame-batcher.js';
import { FramePacer } from './frame-pacer.js';
import { BATCH_OVERHEAD_BYTES } from '../../protocol/batch-frame.js';

function setup(settings = { window_ms: 50, max_messages: 3, max_bytes: 1000 }, rate = 1000) {
  const clock = new ManualClock();
  const frames: Array<{ messages: unknown[]; bytes: number }> = [];
  const pacer = new FramePacer({ max_payload_bytes: 200, max_messages_per_second: rate, burst_messages: 2 }, clock);
  const batcher = new FrameBatcher({
    clock,
    settings,
    pacer,
    write: (frame, messages, bytes) => {
      const parsed = JSON.parse(frame) as { type: string; messages: unknown[] };
      expect(parsed.type).toBe('batch');
      expect(parsed.messages).toHaveLength(messages);
      expect(Buffer.byteLength(frame)).toBe(bytes);
      frames.push({ messages: parsed.messages, bytes });
    },
  });
  const msg = (n: number) => JSON.stringify({ type: 'event', seq: n, name: 'e', data: null, timestamp: 0 });
  return { clock, frames, batcher, msg };
}

describe('FrameBatcher', () => {
  it('holds messages for the window, then sends them in one frame', () => {
    const t = setup();
    t.batcher.push(t.msg(1), 'event', false);
    t.batcher.push(t.msg(2), 'event', false);
    t.clock.advanceSync(49);
    expect(t.frames).toHaveLength(0);
    t.clock.advanceSync(1);
    expect(t.frames.map((f) => f.messages.length)).toEqual([2]);
  });

  it('flushes at once when the count bound is reached', () => {
    const t = setup();
    for (let i = 1; i <= 4; i++) t.batcher.push(t.msg(i), 'event', false);
    expect(t.frames.map((f) => f.messages.length)).toEqual([3]);
    t.clock.advanceSync(50);
    expect(t.frames.map((f) => f.messages.length)).toEqual([3, 1]);
  });

  it('never builds a frame over the byte bound', () => {
    const size = Buffer.byteLength(JSON.stringify({ type: 'event', seq: 1, name: 'e', data: null, timestamp: 0 }));
    const t = setup({ window_ms: 50, max_messages: 100, max_bytes: BATCH_OVERHEAD_BYTES + 2 * size + 1 });
    for (let i = 1; i <= 5; i++) t.batcher.push(t.msg(i), 'event', false);
    t.clock.advanceSync(50);
    expect(t.frames.map((f) => f.messages.length)).toEqual([2, 2, 1]);
    for (const f of t.frames) expect(f.bytes).toBeLessThanOrEqual(BATCH_OVERHEAD_BYTES + 2 * size + 1);
  });

  it('urgent goes on the next tick, taking what was queued with it', () => {
    const t = setup();
    t.batcher.push(t.msg(1), 'event', false);
    t.batcher.push(t.msg(2), 'event', true);
    expect(t.frames).toHaveLength(0);
    t.clock.advanceSync(0);
    expect(t.frames.map((f) => f.messages.length)).toEqual([2]);
  });

  it('waits for the pacer: no more frames than the hub’s rate allows', () => {
    // 10 frames/s announced → 8/s used, bucket of 1.
    const t = setup({ window_ms: 0, max_messages: 100, max_bytes: 200 }, 10);
    t.batcher.push(t.msg(1), 'event', true);
    t.clock.advanceSync(0);
    expect(t.frames).toHaveLength(1);
    t.batcher.push(t.msg(2), 'event', true);
    t.clock.advanceSync(100);
    expect(t.frames).toHaveLength(1);
    t.clock.advanceSync(25);
    expect(t.frames).toHaveLength(2);
  });

  it('refuses a message that cannot fit a frame on its own', () => {
    const t = setup();
    const big = JSON.stringify({ type: 'event', data: 'x'.repeat(1000) });
    expect(() => t.batcher.push(big, 'event', false)).toThrow(FarmlinkError);
    expect(t.batcher.pending).toBe(0);
  });
});
