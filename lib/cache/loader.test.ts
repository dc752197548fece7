import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FarmlinkError } from '../errors.js';
import { ManualClock } from '../manual-clock.fixture.js';
import { MultiTierCache, type CacheOptions } from './cache.js';

/**
 * The loader's paths (loader.ts) through the cache, memory tier only, on a clock that moves only
 * when told: every time bound below is passed by moving the clock, not by waiting.
 */

const caches: MultiTierCache[] = [];
afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
});

function setup(options: Partial<CacheOptions> = {}) {
  const clock = new ManualClock();
  const cache = MultiTierCache.create({
    name: 'loader',
    memory: { maxEntries: 100 },
    logger: pino({ level: 'silent' }),
    // No jitter: ttl and grace are exact.
    random: () => 0.5,
    clock,
    ...options,
  });
  caches.push(cache);
  return { cache, clock };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Whether a promise has settled, without waiting for it. */
function watch<T>(promise: Promise<T>) {
  const state = { settled: false };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

/** Waits (real time, bounded) for what the disk tier commits in the background. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}

describe('the loader (single-flight, time bounds, stale values)', () => {
  it('single-flight: 100 concurrent gets of one missing key call the loader once and all get its value', async () => {
    const { cache } = setup();
    const load = deferred<string>();
    let calls = 0;
    const answers = Array.from({ length: 100 }, () =>
      cache.getOrSet('k', () => {
        calls += 1;
        return load.promise;
      }),
    );
    load.resolve('v');
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 100 }, () => 'v'));
    expect(calls).toBe(1);
    expect(cache.metrics()).toMatchObject({ loads: 1, singleFlightJoins: 99, misses: 100 });
    // Landed: the next caller is a hit.
    expect(await cache.getOrSet('k', () => 'again')).toBe('v');
    expect(calls).toBe(1);
  });

  it('hard timeout: the call fails with CACHE_LOADER_TIMEOUT at the bound, not before, and the loader is aborted', async () => {
    const { cache, clock } = setup();
    let signal: AbortSignal | undefined;
    const call = cache.getOrSet(
      'k',
      (context) => {
        signal = context.signal;
        return new Promise<string>(() => undefined);
      },
      { hardTimeoutMs: 1000 },
    );
    const state = watch(call);
    await clock.advance(999);
    expect(state.settled).toBe(false);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    await expect(call).rejects.toMatchObject({ code: 'CACHE_LOADER_TIMEOUT' });
    expect(signal?.aborted).toBe(true);
    expect(cache.metrics()).toMatchObject({ hardTimeouts: 1, loadErrors: 1 });
  });

  it('a failed load is not cached: the next caller loads again and its value is kept', async () => {
    const { cache, clock } = setup();
    await expect(
      cache.getOrSet('k', () => Promise.reject(new FarmlinkError('SOURCE_DOWN', 'down'))),
    ).rejects.toMatchObject({ code: 'SOURCE_DOWN' });
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', () => 'v')).toBe('v');
    expect(cache.metrics()).toMatchObject({ loads: 2, loadErrors: 1 });
    // Every time bound of both loads was cleared: nothing is left to fire.
    expect(clock.pending).toBe(0);
  });

  it('stale-while-revalidate: within grace the stale value is answered at once, the loader sees it, and the fresh one lands', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 5000 });
    await clock.advance(1500);
    const refresh = deferred<string>();
    let seen: string | undefined;
    expect(
      await cache.getOrSet<string>('k', ({ stale }) => {
        seen = stale;
        return refresh.promise;
      }),
    ).toBe('old');
    expect(seen).toBe('old');
    // A second caller while the refresh runs: stale again, and no second load.
    expect(await cache.getOrSet('k', () => 'second load')).toBe('old');
    refresh.resolve('new');
    await clock.advance(0);
    expect(await cache.get('k')).toBe('new');
    expect(cache.metrics()).toMatchObject({ loads: 1, staleServed: 2, singleFlightJoins: 1 });
  });

  it('soft timeout: with a stale value, the caller gets it at the bound and the load lands later', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 5000 });
    await clock.advance(1500);
    const slow = deferred<string>();
    const call = cache.getOrSet('k', () => slow.promise, { staleWhileRevalidate: false, softTimeoutMs: 100 });
    const state = watch(call);
    await clock.advance(99);
    expect(state.settled).toBe(false);
    await clock.advance(1);
    expect(await call).toBe('old');
    slow.resolve('new');
    await clock.advance(0);
    expect(await cache.get('k')).toBe('new');
    expect(cache.metrics()).toMatchObject({ softTimeouts: 1, staleServed: 1 });
  });

  it('stale-if-error: a failing loader is covered by the stale value, which stays servable within its grace', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 5000 });
    await clock.advance(1500);
    const fail = () => Promise.reject(new Error('source down'));
    expect(await cache.getOrSet('k', fail, { staleWhileRevalidate: false })).toBe('old');
    expect(await cache.get('k', { allowStale: true })).toBe('old');
    expect(cache.metrics()).toMatchObject({ loadErrors: 1, staleServed: 1 });
    // Past the grace there is nothing to fall back on: the error reaches the caller.
    await clock.advance(5000);
    await expect(cache.getOrSet('k', fail, { staleWhileRevalidate: false })).rejects.toThrow('source down');
  });

  it('hard timeout with a stale value: the stale value is served at the bound', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 5000 });
    await clock.advance(1500);
    const call = cache.getOrSet('k', () => new Promise<string>(() => undefined), {
      staleWhileRevalidate: false,
      hardTimeoutMs: 200,
    });
    await clock.advance(200);
    expect(await call).toBe('old');
    expect(cache.metrics()).toMatchObject({ hardTimeouts: 1, staleServed: 1 });
  });
});

describe('time: L1 on the monotonic clock, timers on the injected one', () => {
  it('a wall-clock jump, forwards or back, does not move the expiry of what memory holds', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'v', { ttlMs: 1000, graceMs: 1000 });
    // Forwards by a day: on the wall clock the value would be long dead.
    clock.jumpWall(24 * 3_600_000);
    expect(await cache.get('k')).toBe('v');
    await clock.advance(999);
    expect(await cache.get('k')).toBe('v');
    // Back by two days: on the wall clock it would be fresh for another day.
    clock.jumpWall(-48 * 3_600_000);
    await clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.get('k', { allowStale: true })).toBe('v');
    await clock.advance(1000);
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
  });

  it('getOrSet decides fresh / stale / gone on the monotonic clock too', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 1000 });
    clock.jumpWall(-3_600_000);
    await clock.advance(1500);
    // Stale (monotonic), though the wall clock says fresh: answered stale and refreshed.
    expect(await cache.getOrSet('k', () => 'new')).toBe('old');
    await clock.advance(0);
    expect(await cache.get('k')).toBe('new');
  });

  it('the disk sweep runs on the injected clock and stops at close', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-loader-'));
    try {
      const { cache, clock } = setup({ disk: { path: dir } });
      await cache.set('k', 'v', { ttlMs: 10 });
      // Disk writes commit in the background; the count shows committed records only.
      await until(() => cache.metrics().tiers.disk?.entries === 1);
      expect(clock.pending).toBe(1);
      await clock.advance(59_999);
      expect(cache.metrics().tiers.disk?.entries).toBe(1);
      await clock.advance(1);
      await until(() => cache.metrics().tiers.disk?.entries === 0);
      // Armed again for the next sweep.
      expect(clock.pending).toBe(1);
      await cache.close();
      caches.splice(caches.indexOf(cache), 1);
      expect(clock.pending).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('redisReady polls on the injected clock and gives up at its bound', async () => {
    // A privileged port nothing here can listen on: the connection is refused, Redis never becomes ready.
    const { cache, clock } = setup({ redis: { url: 'redis://127.0.0.1:1' } });
    const ready = cache.redisReady(100);
    const state = watch(ready);
    await clock.advance(80);
    expect(state.settled).toBe(false);
    await clock.advance(20);
    expect(await ready).toBe(false);
  });
});
