import { afterEach, describe, expect, it } from 'vitest';
import { FramePool, POOLED_FRAME_SIZES } from './frame-pool.js';
import { closingSessionPair, hashOf, openedStream, patternSource, until } from './session-harness.fixture.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('FramePool', () => {
  it('hands out the smallest size that fits and reuses what comes back, keeping a bounded amount idle', () => {
    const [small, large] = POOLED_FRAME_SIZES;
    const pool = new FramePool(small + large);
    const a = pool.acquire(100);
    const b = pool.acquire(small);
    const c = pool.acquire(small + 1);
    expect([a.length, b.length, c.length]).toEqual([small, small, large]);
    expect(() => pool.acquire(large + 1)).toThrow(RangeError);
    pool.release(a);
    pool.release(c);
    pool.release(b); // past maxFreeBytes: left to the GC
    pool.release(Buffer.alloc(10)); // not one of ours: ignored
    expect(pool.stats()).toEqual({ taken: 3, reused: 0, idle: 2 });
    expect(pool.acquire(small + 1)).toBe(c);
    expect(pool.acquire(1)).toBe(a);
    expect(pool.stats()).toEqual({ taken: 5, reused: 2, idle: 0 });
  });
});

describe('a session reusing DATA buffers', () => {
  it('takes a buffer back only once the peer acknowledged the frame and the path let go of it', async () => {
    const pool = new FramePool();
    const { client, farm, relay } = closingSessionPair(cleanups, { framePool: pool, windowBytes: 1024 * 1024 });
    relay.a.holdReleases = true; // the client's socket is "still writing" every frame
    const { stream, farmEnd } = await openedStream(client, farm);
    const received = hashOf(farmEnd);
    const { source, sha256 } = patternSource(4 * 64 * 1024); // four socket-read-sized frames
    source.pipe(stream);
    await until(() => farm.info().bytes_in === 4 * 64 * 1024, 'all four frames at the farm');
    await until(() => client.unackedFrames === 0, 'the farm acknowledged them');
    expect(pool.stats()).toMatchObject({ taken: 4, idle: 0 }); // acknowledged, but still held by the path

    relay.a.releaseHeld();
    expect(pool.stats()).toMatchObject({ taken: 4, idle: 4 });
    expect((await received).sha256).toBe(sha256());
  });

  it('moves 32 MiB intact through reused buffers, both ways', async () => {
    const pool = new FramePool();
    const { client, farm } = closingSessionPair(cleanups, {
      framePool: pool,
      windowBytes: 256 * 1024,
      maxWindowBytes: 256 * 1024,
    });
    const { stream, farmEnd } = await openedStream(client, farm);
    const up = patternSource(16 * 1024 * 1024, 48 * 1024, 3);
    const down = patternSource(16 * 1024 * 1024, 80 * 1024, 4);
    const [atFarm, atClient] = [hashOf(farmEnd), hashOf(stream)];
    up.source.pipe(stream);
    down.source.pipe(farmEnd);
    expect((await atFarm).sha256).toBe(up.sha256());
    expect((await atClient).sha256).toBe(down.sha256());
    // The windows bound what is in flight, so nearly every frame after the first window reused a buffer.
    const { taken, reused } = pool.stats();
    expect(taken).toBeGreaterThan(500);
    expect(reused / taken).toBeGreaterThan(0.8);
  });
});
