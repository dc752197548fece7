import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../clock.js';
import { closingSessionPair, hashOf, openedStream, patternSource, until } from './session-harness.fixture.js';
import { WINDOW_GROWTH_MS } from './tunnel-stream.js';

/**
 * A stream's receive window grows for a reader that keeps up and stays put for one that does not. The
 * sessions run on real timers; only the monotonic clock the window reads is the test's, so "fast" and
 * "slow" do not depend on this machine's speed.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function setup(windowBytes: number, maxWindowBytes: number) {
  let now = 0;
  const clock: Clock = { ...systemClock, monotonic: () => now };
  const p = closingSessionPair(cleanups, { clock, windowBytes, maxWindowBytes });
  return {
    ...p,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('stream receive window', () => {
  it('doubles up to the maximum while the reader takes whole windows faster than the growth period', async () => {
    const { client, farm } = setup(64 * 1024, 1024 * 1024);
    const { stream, farmEnd } = await openedStream(client, farm);
    const { source, sha256 } = patternSource(8 * 1024 * 1024);
    const received = hashOf(farmEnd); // reads as fast as frames come, and the clock never moves
    source.pipe(stream);
    expect((await received).sha256).toBe(sha256());
    expect(farmEnd.receiveWindow).toBe(1024 * 1024);
    expect(stream.receiveWindow).toBe(64 * 1024); // nothing came the other way
  });

  it('lets the sender run ahead by the grown window, not the first one', async () => {
    const { client, farm } = setup(64 * 1024, 1024 * 1024);
    const { stream, farmEnd } = await openedStream(client, farm);
    const grow = patternSource(4 * 1024 * 1024);
    const drained = new Promise<void>((resolve) => {
      let got = 0;
      farmEnd.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got === 4 * 1024 * 1024) resolve();
      });
    });
    grow.source.pipe(stream, { end: false });
    await drained;
    expect(farmEnd.receiveWindow).toBe(1024 * 1024);
    // The farm stops reading: the client may now have a whole grown window in flight, unread at the farm.
    farmEnd.pause();
    stream.write(Buffer.alloc(2 * 1024 * 1024));
    // Credit lags by at most a quarter window, so at least three quarters of the grown window arrive.
    await until(() => farmEnd.unreadBytes >= 700 * 1024, 'a grown window sent past a paused reader');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(farmEnd.unreadBytes).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024);
  });

  it('stays at its size for a reader slower than a window per growth period', async () => {
    const { client, farm, advance } = setup(64 * 1024, 1024 * 1024);
    const { stream, farmEnd } = await openedStream(client, farm);
    const { source, sha256 } = patternSource(1024 * 1024, 16 * 1024);
    const chunks: Buffer[] = [];
    farmEnd.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // Every 16 KiB chunk takes a quarter of the growth period: a whole window takes longer than the period.
      advance(WINDOW_GROWTH_MS / 4 + 1);
    });
    source.pipe(stream);
    await once(farmEnd, 'end');
    expect(createHash('sha256').update(Buffer.concat(chunks)).digest('hex')).toBe(sha256());
    expect(farmEnd.receiveWindow).toBe(64 * 1024);
  });
});
