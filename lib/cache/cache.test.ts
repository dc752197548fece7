import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import { MultiTierCache, type CacheOptions } from './cache.js';

const START = Date.parse('2026-01-03T19:30:00Z');
/** How long to wait for a background refresh to land: generous, as a disk commit on a busy machine can be slow. */
const PATIENCE = { timeout: 10_000, interval: 5 };

/** Time the test moves by hand; timers stay real (the loader time bounds are short real timers). */
function manualClock() {
  const time = { now: START };
  const clock: Clock = {
    now: () => time.now,
    monotonic: () => time.now,
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (handle) => {
      if (handle !== undefined) globalThis.clearTimeout(handle);
    },
  };
  return { clock, time };
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

const caches: MultiTierCache[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-cache-'));
  dirs.push(dir);
  return dir;
}

function createCache(options: Partial<CacheOptions> & { clock: Clock }): MultiTierCache {
  const cache = MultiTierCache.create({
    name: 'test',
    memory: { maxEntries: 1000 },
    logger: pino({ level: 'silent' }),
    // No jitter: ttl and grace are exact.
    random: () => 0.5,
    ...options,
  });
  caches.push(cache);
  return cache;
}

async function closeCache(cache: MultiTierCache): Promise<void> {
  caches.splice(caches.indexOf(cache), 1);
  await cache.close();
}

afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const SETUPS: Array<[string, () => Partial<CacheOptions>]> = [
  ['memory only', () => ({})],
  ['memory + disk', () => ({ disk: { path: tempDir() } })],
];

describe.each(SETUPS)('MultiTierCache (%s)', (_label, tiers) => {
  function setup(options: Partial<CacheOptions> = {}) {
    const { clock, time } = manualClock();
    const cache = createCache({ ...tiers(), ...options, clock });
    return { cache, time };
  }

  it('sets, gets and deletes', async () => {
    const { cache } = setup();
    expect(await cache.get('a')).toBeUndefined();
    await cache.set('a', { name: 'farm-1', at: new Date(START) });
    await cache.set('b', 2);
    expect(await cache.get('a')).toEqual({ name: 'farm-1', at: new Date(START) });
    expect(await cache.get('b')).toBe(2);
    await cache.set('b', 3);
    expect(await cache.get('b')).toBe(3);
    await cache.delete('a');
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('a', { allowStale: true })).toBeUndefined();
    expect(await cache.get('b')).toBe(3);
  });

  it('stops serving a value after its ttl, and stale after its grace', async () => {
    const { cache, time } = setup();
    await cache.set('k', 'v', { ttlMs: 1000, graceMs: 5000 });
    // Fresh for [0, 1000) ms, stale for [1000, 6000), whichever tier answers.
    time.now += 999;
    expect(await cache.get('k')).toBe('v');
    time.now += 1;
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.get('k', { allowStale: true })).toBe('v');
    time.now += 4999;
    expect(await cache.get('k', { allowStale: true })).toBe('v');
    time.now += 1;
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
    expect(await cache.get('k')).toBeUndefined();
  });

  it('applies the default ttl when none is given', async () => {
    const { cache, time } = setup({ defaults: { ttlMs: 200 } });
    await cache.set('k', 'v');
    time.now += 199;
    expect(await cache.get('k')).toBe('v');
    time.now += 1;
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
  });

  it('getOrSet: 1,000 concurrent callers of one key run the loader once and all get its value', async () => {
    const { cache } = setup();
    const gate = deferred<{ rows: number[] }>();
    const loader = vi.fn(() => gate.promise);
    const calls = Array.from({ length: 1000 }, () => cache.getOrSet('report', loader));
    // Let every caller reach the flight before the loader answers.
    await new Promise((resolve) => setImmediate(resolve));
    gate.resolve({ rows: [1, 2, 3] });
    const values = await Promise.all(calls);
    expect(loader).toHaveBeenCalledTimes(1);
    expect(values.every((v) => v === values[0])).toBe(true);
    expect(values[0]).toEqual({ rows: [1, 2, 3] });
    expect(cache.metrics()).toMatchObject({ loads: 1, singleFlightJoins: 999, misses: 1000 });
    // Then it is cached.
    expect(await cache.getOrSet('report', loader)).toEqual({ rows: [1, 2, 3] });
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('getOrSet: a failed load is not cached and the next caller loads again', async () => {
    const { cache } = setup();
    const loader = vi.fn().mockRejectedValueOnce(new Error('db down')).mockResolvedValueOnce('ok');
    await expect(cache.getOrSet('k', loader)).rejects.toThrow('db down');
    expect(await cache.getOrSet('k', loader)).toBe('ok');
    expect(loader).toHaveBeenCalledTimes(2);
  });

  it('stale-while-revalidate: within grace answers stale at once, refreshes in the background, then serves fresh', async () => {
    const { cache, time } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 60_000 });
    time.now += 2000;
    const gate = deferred<string>();
    const loader = vi.fn((_context: { signal: AbortSignal; stale: string | undefined }) => gate.promise);
    // The loader has not answered, yet the callers have theirs: the stale value, and one refresh for all.
    const answers = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSet('k', loader, { ttlMs: 1000 })));
    expect(answers).toEqual(Array.from({ length: 10 }, () => 'old'));
    expect(loader).toHaveBeenCalledTimes(1);
    expect(loader.mock.calls[0]![0].stale).toBe('old');
    expect(cache.metrics()).toMatchObject({ staleServed: 10, loads: 1, singleFlightJoins: 9 });
    gate.resolve('new');
    await vi.waitFor(async () => expect(await cache.get('k')).toBe('new'), PATIENCE);
    expect(await cache.getOrSet('k', loader)).toBe('new');
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('without stale-while-revalidate, a caller within grace waits for the loader', async () => {
    const { cache, time } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 60_000 });
    time.now += 2000;
    expect(await cache.getOrSet('k', () => 'new', { staleWhileRevalidate: false })).toBe('new');
    expect(cache.metrics().staleServed).toBe(0);
  });

  it('soft timeout: answers stale when the loader is slow, and the fresh value lands later', async () => {
    const { cache, time } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 60_000 });
    time.now += 2000;
    const gate = deferred<string>();
    const loader = vi.fn(() => gate.promise);
    expect(await cache.getOrSet('k', loader, { staleWhileRevalidate: false, softTimeoutMs: 20 })).toBe('old');
    expect(cache.metrics()).toMatchObject({ softTimeouts: 1, staleServed: 1, loads: 1 });
    gate.resolve('new');
    await vi.waitFor(async () => expect(await cache.get('k')).toBe('new'), PATIENCE);
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('soft timeout: with nothing stale to fall back on, the caller waits for the loader', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    const call = cache.getOrSet('k', () => gate.promise, { softTimeoutMs: 5 });
    // Proves a negative: well past the soft timeout nothing is served (there is nothing stale); no event marks it.
    await new Promise((resolve) => setTimeout(resolve, 30));
    gate.resolve('loaded');
    expect(await call).toBe('loaded');
    expect(cache.metrics()).toMatchObject({ softTimeouts: 0, staleServed: 0 });
  });

  it('hard timeout: fails with CACHE_LOADER_TIMEOUT and aborts the loader', async () => {
    const { cache } = setup();
    let signal: AbortSignal | undefined;
    const loader = vi.fn((context: { signal: AbortSignal }) => {
      signal = context.signal;
      return new Promise<string>(() => {});
    });
    const error = await cache.getOrSet('k', loader, { hardTimeoutMs: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FarmlinkError);
    expect((error as FarmlinkError).code).toBe('CACHE_LOADER_TIMEOUT');
    expect(signal?.aborted).toBe(true);
    expect(cache.metrics()).toMatchObject({ hardTimeouts: 1, loadErrors: 1 });
    // Nothing was cached and the flight is over: the next caller loads afresh.
    expect(await cache.getOrSet('k', () => 'second try', { hardTimeoutMs: 1000 })).toBe('second try');
  });

  it('hard timeout with a stale value within grace: the stale value is served', async () => {
    const { cache, time } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 60_000 });
    time.now += 2000;
    let signal: AbortSignal | undefined;
    const value = await cache.getOrSet(
      'k',
      (context) => {
        signal = context.signal;
        return new Promise<string>(() => {});
      },
      { staleWhileRevalidate: false, hardTimeoutMs: 30 },
    );
    expect(value).toBe('old');
    expect(signal?.aborted).toBe(true);
    expect(cache.metrics()).toMatchObject({ hardTimeouts: 1, staleServed: 1 });
  });

  it('fail-safe: a failing loader is covered by a stale value within grace', async () => {
    const { cache, time } = setup();
    await cache.set('k', 'old', { ttlMs: 1000, graceMs: 5000 });
    time.now += 2000;
    const failing = vi.fn(() => {
      throw new Error('db down');
    });
    expect(await cache.getOrSet('k', failing, { staleWhileRevalidate: false })).toBe('old');
    expect(
      await cache.getOrSet('k', () => Promise.reject(new Error('still down')), { staleWhileRevalidate: false }),
    ).toBe('old');
    expect(cache.metrics()).toMatchObject({ loadErrors: 2, staleServed: 2 });
    // With stale-while-revalidate the failure happens in the background; the stale value stays.
    expect(await cache.getOrSet('k', failing)).toBe('old');
    await vi.waitFor(() => expect(cache.metrics().loadErrors).toBe(3), PATIENCE);
    expect(await cache.get('k', { allowStale: true })).toBe('old');
    // Past the grace there is nothing to fall back on.
    time.now += 4000;
    await expect(cache.getOrSet('k', failing)).rejects.toThrow('db down');
  });

  it('fail-safe: without a stale value the loader error propagates', async () => {
    const { cache } = setup();
    const error = new FarmlinkError('UPSTREAM', 'db down');
    await expect(cache.getOrSet('k', () => Promise.reject(error), { graceMs: 60_000 })).rejects.toBe(error);
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
  });

  it('expire(): the value turns stale at once, is served stale within grace and refreshed', async () => {
    const { cache } = setup();
    await cache.set('k', 'v1', { ttlMs: 60_000, graceMs: 60_000 });
    await cache.set('other', 'o', { ttlMs: 60_000 });
    await cache.expire('k');
    await cache.expire('missing');
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.get('k', { allowStale: true })).toBe('v1');
    expect(await cache.get('missing', { allowStale: true })).toBeUndefined();
    expect(await cache.get('other')).toBe('o');
    const loader = vi.fn(() => 'v2');
    expect(await cache.getOrSet('k', loader)).toBe('v1');
    await vi.waitFor(async () => expect(await cache.get('k')).toBe('v2'), PATIENCE);
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('expire() on a value written without grace: gone at once, not served stale until its old end', async () => {
    const { cache } = setup();
    await cache.set('k', 'v1', { ttlMs: 60_000, graceMs: 0 });
    await cache.expire('k');
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
    expect(await cache.getOrSet('k', () => 'v2')).toBe('v2');
  });

  it('invalidateTags while a load runs: what the load read predates the invalidation, so it is not served after it', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    const loader = vi.fn(() => gate.promise);
    const loading = cache.getOrSet('row', loader, { ttlMs: 60_000, tags: ['table'] });
    // The source changes and the tag is invalidated while the old row is in flight (the load has begun).
    await vi.waitFor(() => expect(loader).toHaveBeenCalledTimes(1), PATIENCE);
    await cache.invalidateTags(['table']);
    gate.resolve('old row');
    // The caller that asked before the invalidation gets what it asked for…
    expect(await loading).toBe('old row');
    // …but nobody after it does.
    expect(await cache.get('row', { allowStale: true })).toBeUndefined();
    expect(await cache.getOrSet('row', () => 'new row', { ttlMs: 60_000, tags: ['table'] })).toBe('new row');
    expect(await cache.get('row')).toBe('new row');
  });

  it('invalidateTags: a tagged value is never served again, not even stale; untagged values are untouched', async () => {
    const { cache } = setup();
    const long = { ttlMs: 60_000, graceMs: 60_000 };
    await cache.set('a', 'A', { ...long, tags: ['farm:1'] });
    await cache.set('b', 'B', { ...long, tags: ['farm:2'] });
    await cache.set('ab', 'AB', { ...long, tags: ['farm:2', 'farm:1'] });
    await cache.set('plain', 'P', long);
    await cache.invalidateTags(['farm:1']);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('a', { allowStale: true })).toBeUndefined();
    expect(await cache.get('ab', { allowStale: true })).toBeUndefined();
    expect(await cache.get('b')).toBe('B');
    expect(await cache.get('plain')).toBe('P');
    // getOrSet must load, stale-while-revalidate or not.
    const loader = vi.fn(() => 'A2');
    expect(await cache.getOrSet('a', loader, { ...long, tags: ['farm:1'] })).toBe('A2');
    expect(loader).toHaveBeenCalledTimes(1);
    expect(cache.metrics().staleServed).toBe(0);
    // Written after the invalidation: alive, until the tag is invalidated again.
    expect(await cache.get('a')).toBe('A2');
    await cache.invalidateTags(['farm:1', 'farm:3']);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBe('B');
    await cache.invalidateTags([]);
    expect(await cache.get('b')).toBe('B');
  });

  it('namespace clear() drops every value of the namespace and nothing else', async () => {
    const { cache } = setup();
    const users = cache.namespace('users');
    const devices = cache.namespace('devices');
    await users.set('1', 'alice', { graceMs: 60_000 });
    await users.set('2', 'bob');
    await devices.set('1', 'pixel');
    await cache.set('users-total', 2);
    expect(await users.get('1')).toBe('alice');
    expect(await cache.get('users:1')).toBe('alice');
    expect(await devices.get('1')).toBe('pixel');

    await users.clear();
    expect(await users.get('1')).toBeUndefined();
    expect(await users.get('1', { allowStale: true })).toBeUndefined();
    expect(await users.get('2')).toBeUndefined();
    expect(await cache.get('users:1')).toBeUndefined();
    expect(await devices.get('1')).toBe('pixel');
    expect(await cache.get('users-total')).toBe(2);

    expect(await users.getOrSet('1', () => 'alice again')).toBe('alice again');
    await users.set('3', 'carol');
    expect(await users.get('3')).toBe('carol');
    await users.delete('3');
    expect(await users.get('3')).toBeUndefined();
  });

  it('the lru policy evicts by recency where W-TinyLFU keeps a frequently used entry', async () => {
    const run = async (policy: 'lru' | 'tinylfu') => {
      const { cache } = setup({ memory: { maxEntries: 10, policy } });
      for (let i = 0; i < 10; i += 1) await cache.set(`k${i}`, i);
      for (let i = 0; i < 5; i += 1) expect(await cache.get('k0')).toBe(0);
      for (let i = 0; i < 10; i += 1) await cache.set(`new${i}`, i);
      return { inMemory: cache.metrics().tiers.memory, k0: await cache.get('k0'), newest: await cache.get('new9') };
    };
    const lru = await run('lru');
    const tinyLfu = await run('tinylfu');
    expect(lru.newest).toBe(9);
    expect(tinyLfu.newest).toBe(9);
    expect(lru.inMemory.admissionsRejected).toBe(0);
    expect(tinyLfu.inMemory.admissionsRejected).toBeGreaterThan(0);
    expect(lru.inMemory.entries).toBe(10);
    expect(tinyLfu.inMemory.entries).toBe(10);
    if (_label === 'memory only') {
      expect(lru.k0).toBeUndefined();
      expect(tinyLfu.k0).toBe(0);
    } else {
      // The disk tier still has what memory let go.
      expect(lru.k0).toBe(0);
    }
  });
});

describe('MultiTierCache metrics', () => {
  it('counts hits, misses, loads, single-flight joins and stale answers exactly', async () => {
    const { clock, time } = manualClock();
    const cache = createCache({ clock });
    const opts = { ttlMs: 1000, graceMs: 10_000 };
    // 1. A miss and a load.
    expect(await cache.getOrSet('a', () => 'A', opts)).toBe('A');
    // 2. A hit.
    expect(await cache.getOrSet('a', () => 'never', opts)).toBe('A');
    // 3. A plain miss.
    expect(await cache.get('nothing')).toBeUndefined();
    // 4. Five callers at once: five misses, one load, four joins.
    const gate = deferred<string>();
    const five = Array.from({ length: 5 }, () => cache.getOrSet('b', () => gate.promise, opts));
    await new Promise((resolve) => setImmediate(resolve));
    gate.resolve('B');
    expect(await Promise.all(five)).toEqual(['B', 'B', 'B', 'B', 'B']);
    // 5. Stale within grace: a hit answered stale, and a background load.
    time.now += 1500;
    expect(await cache.getOrSet('a', () => 'A2', opts)).toBe('A');
    // Memory only: the refresh is all microtasks, done before the next macrotask.
    await new Promise((resolve) => setImmediate(resolve));
    // 6. A hit on the refreshed value.
    expect(await cache.get('a')).toBe('A2');
    // 7. Fail-safe: the loader fails, the stale value is served.
    expect(
      await cache.getOrSet(
        'b',
        () => {
          throw new Error('down');
        },
        { ...opts, staleWhileRevalidate: false },
      ),
    ).toBe('B');

    const m = cache.metrics();
    expect(m).toMatchObject({
      hits: 4,
      misses: 7,
      loads: 4,
      loadErrors: 1,
      singleFlightJoins: 4,
      staleServed: 2,
      softTimeouts: 0,
      hardTimeouts: 0,
      warmStart: null,
    });
    expect(m.tiers.memory).toMatchObject({ hits: 4, misses: 7, entries: 2 });
    expect(m.tiers.disk).toBeUndefined();
    expect(m.tiers.redis).toBeUndefined();
    expect(m.tiers.memory.latency.count).toBe(m.hits + m.misses);
  });
});

describe('MultiTierCache with a disk tier', () => {
  it('serves values larger than memory.maxValueBytes from disk', async () => {
    const { clock } = manualClock();
    const cache = createCache({ clock, memory: { maxEntries: 100, maxValueBytes: 1024 }, disk: { path: tempDir() } });
    const big = { blob: Buffer.alloc(10_000, 7), note: 'x'.repeat(5000) };
    await cache.set('big', big);
    await cache.set('small', 'tiny');
    expect(cache.metrics().tiers.memory.entries).toBe(1);
    expect(await cache.get('big')).toEqual(big);
    expect(await cache.get('big')).toEqual(big);
    expect(await cache.get('small')).toBe('tiny');
    const m = cache.metrics();
    // Never promoted: each read of it is a disk hit.
    expect(m.tiers.memory.entries).toBe(1);
    expect(m.tiers.disk?.hits).toBe(2);
    expect(m.tiers.memory.hits).toBe(1);

    const loader = vi.fn(() => ({ blob: Buffer.alloc(20_000, 1) }));
    const first = await cache.getOrSet('big-load', loader);
    const second = await cache.getOrSet('big-load', loader);
    expect(second).toEqual(first);
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('replacing a value by one too large for memory never serves the old one', async () => {
    const { clock } = manualClock();
    const cache = createCache({ clock, memory: { maxEntries: 100, maxValueBytes: 1024 }, disk: { path: tempDir() } });
    await cache.set('k', 'small old value');
    await cache.set('k', 'L'.repeat(5000));
    expect(await cache.get('k')).toBe('L'.repeat(5000));
  });

  it('rejects a value it cannot serialize with CACHE_UNSERIALIZABLE and stores nothing', async () => {
    const { clock } = manualClock();
    const cache = createCache({ clock, disk: { path: tempDir() } });
    const error = await cache.set('fn', { run: () => 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FarmlinkError);
    expect((error as FarmlinkError).code).toBe('CACHE_UNSERIALIZABLE');
    expect((error as FarmlinkError).message).toContain('fn');
    expect(await cache.get('fn')).toBeUndefined();
    await expect(cache.getOrSet('sym', () => Symbol('s'))).rejects.toMatchObject({ code: 'CACHE_UNSERIALIZABLE' });
  });

  it('after a restart, memory is warmed from disk and tag invalidations still hold', async () => {
    const dir = tempDir();
    const { clock, time } = manualClock();
    const first = createCache({ clock, disk: { path: dir } });
    await first.set('live-1', 'one', { ttlMs: 60_000 });
    await first.set('live-2', { two: 2n }, { ttlMs: 60_000, tags: ['farm:2'] });
    await first.set('short', 'gone soon', { ttlMs: 1000 });
    await first.set('tagged', 'invalidated', { ttlMs: 60_000, graceMs: 60_000, tags: ['farm:1'] });
    await first.invalidateTags(['farm:1']);
    await first.set('tagged-after', 'written after', { ttlMs: 60_000, tags: ['farm:1'] });
    await closeCache(first);

    time.now += 5000;
    const second = createCache({ clock, disk: { path: dir } });
    expect(second.metrics().warmStart?.entries).toBe(3);
    expect(second.metrics().tiers.memory.entries).toBe(3);
    expect(await second.get('live-1')).toBe('one');
    expect(await second.get('live-2')).toEqual({ two: 2n });
    expect(await second.get('tagged-after')).toBe('written after');
    expect(second.metrics().tiers.memory.hits).toBe(3);
    expect(second.metrics().tiers.disk?.hits).toBe(0);
    expect(await second.get('short', { allowStale: true })).toBeUndefined();
    expect(await second.get('tagged', { allowStale: true })).toBeUndefined();

    // The tag's version went on from where it was: this invalidation reaches what was written after the first.
    await second.invalidateTags(['farm:1']);
    expect(await second.get('tagged-after')).toBeUndefined();
    expect(await second.get('live-2')).toEqual({ two: 2n });
    await closeCache(second);

    const third = createCache({ clock, disk: { path: dir }, memory: { maxEntries: 1000, policy: 'lru' } });
    expect(third.metrics().warmStart).toMatchObject({ entries: 2, found: 2 });
    expect(await third.get('tagged-after', { allowStale: true })).toBeUndefined();
    expect(await third.get('live-1')).toBe('one');
    await closeCache(third);

    // A memory smaller than the disk: the warm start says how many it found and how many it took.
    const small = createCache({ clock, disk: { path: dir }, memory: { maxEntries: 1 } });
    expect(small.metrics().warmStart).toMatchObject({ entries: 1, found: 2 });
  });

  it('without warmStart, memory starts empty and reads come from disk', async () => {
    const dir = tempDir();
    const { clock } = manualClock();
    const first = createCache({ clock, disk: { path: dir } });
    await first.set('k', 'v');
    await closeCache(first);
    const second = createCache({ clock, disk: { path: dir, warmStart: false } });
    expect(second.metrics().warmStart).toBeNull();
    expect(second.metrics().tiers.memory.entries).toBe(0);
    expect(await second.get('k')).toBe('v');
    expect(second.metrics().tiers.disk?.hits).toBe(1);
    // Promoted: the next read is a memory hit.
    expect(await second.get('k')).toBe('v');
    expect(second.metrics().tiers.memory.hits).toBe(1);
  });

  it('clear() drops every tier', async () => {
    const dir = tempDir();
    const { clock } = manualClock();
    const cache = createCache({ clock, disk: { path: dir } });
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.clear();
    expect(await cache.get('a')).toBeUndefined();
    expect(cache.metrics().tiers.disk?.entries).toBe(0);
    await closeCache(cache);
    const reopened = createCache({ clock, disk: { path: dir } });
    expect(await reopened.get('b')).toBeUndefined();
  });
});
