/**
 * L2: a real redis-server on loopback. First the latency of reads that miss memory and hit Redis
 * (each key read once by a cache that did not write it), then the latency of get / getOrSet / set
 * while Redis is down — killed, or paused with SIGSTOP so it holds its connections and answers
 * nothing.
 */
import { Redis } from 'ioredis';
import { MultiTierCache } from '../../lib/cache/cache.js';
import { table } from '../lib/markdown.js';
import { summarize, type Summary } from '../lib/stats.js';
import { sleep } from '../lib/time.js';
import { count, msFine, rate, silentLogger, type Log } from './common.js';
import type { CacheBenchOptions } from './options.js';
import { startRedis, type BenchRedis } from './redis-server.js';

const HOUR = 3_600_000;
const HANG_MS = 5000;
const SLOW_MS = 100;

/** A small record, the kind the agent and hub cache (≈100 bytes encoded). */
const small = (i: number) => ({
  id: i,
  serial: `R58M${String(i).padStart(6, '0')}`,
  model: 'SM-G991B',
  online: true,
  battery: 87,
});
const LARGE_TEXT = 'x'.repeat(4096);
const large = (i: number) => ({ id: i, blob: LARGE_TEXT });

function newCache(redis: BenchRedis, name: string, maxEntries: number): MultiTierCache {
  return MultiTierCache.create({
    name,
    memory: { maxEntries },
    redis: { url: redis.url },
    defaults: { ttlMs: HOUR },
    logger: silentLogger,
  });
}

async function connected(cache: MultiTierCache): Promise<MultiTierCache> {
  if (!(await cache.redisReady(10_000))) throw new Error(`cache ${cache.name} did not connect to Redis within 10 s`);
  return cache;
}

export interface LatencyRow {
  what: string;
  calls: number;
  hits?: number;
  opsPerS: number;
  latency: Summary;
  /** The cache's Redis tier counters over the measurement: calls past the time bound, failed, skipped (circuit open). */
  redis?: { timeouts: number; errors: number; skipped: number };
}

function redisCounters(cache: MultiTierCache): { timeouts: number; errors: number; skipped: number } | undefined {
  const r = cache.metrics().tiers.redis;
  return r ? { timeouts: r.timeouts, errors: r.errors, skipped: r.skipped } : undefined;
}

/** Runs a measurement and adds the growth of the cache's Redis counters to its row. */
async function counted(cache: MultiTierCache, measure: () => Promise<LatencyRow>): Promise<LatencyRow> {
  const before = redisCounters(cache);
  const row = await measure();
  const after = redisCounters(cache);
  if (before && after)
    row.redis = {
      timeouts: after.timeouts - before.timeouts,
      errors: after.errors - before.errors,
      skipped: after.skipped - before.skipped,
    };
  return row;
}

async function sequential(what: string, keys: string[], call: (key: string) => Promise<unknown>): Promise<LatencyRow> {
  const lat = new Float64Array(keys.length);
  let hits = 0;
  const started = performance.now();
  for (let i = 0; i < keys.length; i += 1) {
    const t = performance.now();
    const v = await call(keys[i]!);
    lat[i] = performance.now() - t;
    if (v !== undefined && v !== null) hits += 1;
  }
  const elapsed = (performance.now() - started) / 1000;
  return { what, calls: keys.length, hits, opsPerS: keys.length / elapsed, latency: summarize(lat) };
}

async function concurrent(
  what: string,
  keys: string[],
  inFlight: number,
  call: (key: string) => Promise<unknown>,
): Promise<LatencyRow> {
  const lat = new Float64Array(keys.length);
  let hits = 0;
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < keys.length; i = next++) {
      const t = performance.now();
      const v = await call(keys[i]!);
      lat[i] = performance.now() - t;
      if (v !== undefined && v !== null) hits += 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - started) / 1000;
  return { what, calls: keys.length, hits, opsPerS: keys.length / elapsed, latency: summarize(lat) };
}

export interface DownRow {
  how: 'kill' | 'pause';
  op: 'get' | 'getOrSet' | 'set';
  calls: number;
  seconds: number;
  latency: Summary;
  slow: number;
  hung: number;
  wrong: number;
  redis: { timeouts: number; errors: number; skipped: number; breakerOpens: number };
}

export interface RedisResult {
  hits: LatencyRow[];
  down: DownRow[];
  version: string;
}

/** Calls one kind of operation, one at a time with a 1 ms pause between, while Redis is down. */
async function whileDown(
  redis: BenchRedis,
  how: 'kill' | 'pause',
  op: DownRow['op'],
  options: CacheBenchOptions,
): Promise<DownRow> {
  const cache = await connected(newCache(redis, `bench-down-${how}-${op}`, 10_000));
  try {
    // One round trip each way while Redis is up, so the connection is in use, not just open.
    await cache.set('up', small(0));
    if ((await cache.get('up')) === undefined) throw new Error('Redis-backed cache did not read back its own write');
    if (how === 'kill') await redis.kill();
    else redis.pause();
    const lat: number[] = [];
    let hung = 0;
    let wrong = 0;
    const started = performance.now();
    const deadline = started + options.downSeconds * 1000;
    for (let i = 0; i < options.downMaxCalls && performance.now() < deadline && hung < 3; i += 1) {
      // A fresh key every call: never in memory, so every call would have to go to Redis.
      const key = `down:${op}:${i}`;
      const call: Promise<unknown> =
        op === 'get'
          ? cache.get(key)
          : op === 'getOrSet'
            ? cache.getOrSet(key, () => small(i))
            : cache.set(key, small(i)).then(() => 'done');
      let timer: NodeJS.Timeout | undefined;
      const watchdog = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS)));
      const t = performance.now();
      const result = await Promise.race([call.catch((error: unknown) => ({ error })), watchdog]);
      lat.push(performance.now() - t);
      clearTimeout(timer);
      if (result === 'hung') hung += 1;
      else if (typeof result === 'object' && result !== null && 'error' in result) wrong += 1;
      else if (op === 'get' && result !== undefined) wrong += 1;
      else if (op === 'getOrSet' && (result as { id?: number } | undefined)?.id !== i) wrong += 1;
      await sleep(1);
    }
    const seconds = (performance.now() - started) / 1000;
    const r = cache.metrics().tiers.redis!;
    const sorted = lat.slice().sort((a, b) => a - b);
    return {
      how,
      op,
      calls: lat.length,
      seconds,
      latency: summarize(sorted),
      slow: lat.filter((x) => x > SLOW_MS).length,
      hung,
      wrong,
      redis: { timeouts: r.timeouts, errors: r.errors, skipped: r.skipped, breakerOpens: r.breakerOpens },
    };
  } finally {
    await cache.close();
    if (how === 'kill') await redis.restart();
    else redis.resume();
  }
}

export async function runRedis(options: CacheBenchOptions, log: Log): Promise<RedisResult> {
  const redis = await startRedis();
  const caches: MultiTierCache[] = [];
  const raw = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false });
  // Its own reconnect attempts once Redis is gone are not news; the bench closes it before that anyway.
  raw.on('error', () => undefined);
  try {
    await raw.connect();
    const info = await raw.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const n = options.redisOps;
    const nLarge = Math.min(n, 2000);
    const keys = Array.from({ length: n }, (_, i) => `l2:${i}`);
    const largeKeys = Array.from({ length: nLarge }, (_, i) => `l2big:${i}`);

    const writer = await connected(newCache(redis, 'bench-l2', 1000));
    caches.push(writer);
    const hits: LatencyRow[] = [];
    let i = 0;
    hits.push(
      await counted(writer, () =>
        sequential('set, small value (memory + Redis write; sequential)', keys, (key) =>
          writer.set(key, small(i++)).then(() => 'done'),
        ),
      ),
    );
    i = 0;
    // One at a time, as the small ones: thousands of 4 KiB writes at once queue in the client past the
    // 50 ms bound and are dropped (by design: a cache write never waits for Redis longer than that).
    hits.push(
      await counted(writer, () =>
        sequential('set, 4 KiB value (memory + Redis write; sequential)', largeKeys, (key) =>
          writer.set(key, large(i++)).then(() => 'done'),
        ),
      ),
    );
    log(`L2: wrote ${n} small and ${nLarge} 4 KiB values`);

    hits.push(
      await sequential(
        'raw ioredis `GET` round trip (reference, no cache)',
        keys.map((k) => `farmlink:bench-l2:${k}`),
        (key) => raw.getBuffer(key),
      ),
    );
    raw.disconnect();
    // Each reader is a new process's view: empty memory, same Redis prefix (same cache name).
    const seqReader = await connected(newCache(redis, 'bench-l2', n + nLarge));
    caches.push(seqReader);
    hits.push(
      await counted(seqReader, () =>
        sequential('get, L2 hit, small value (sequential)', keys, (key) => seqReader.get(key)),
      ),
    );
    const concReader = await connected(newCache(redis, 'bench-l2', n + nLarge));
    caches.push(concReader);
    hits.push(
      await counted(concReader, () =>
        concurrent(`get, L2 hit, small value (${options.concurrency} in flight)`, keys, options.concurrency, (key) =>
          concReader.get(key),
        ),
      ),
    );
    hits.push(
      await counted(seqReader, () =>
        sequential('get, L2 hit, 4 KiB value (sequential)', largeKeys, (key) => seqReader.get(key)),
      ),
    );
    hits.push(
      await counted(seqReader, () =>
        sequential('get, memory hit after the promotion (sequential, for scale)', keys, (key) => seqReader.get(key)),
      ),
    );
    for (const row of hits)
      log(
        `L2: ${row.what}: p50 ${msFine(row.latency.p50)} ms, p99 ${msFine(row.latency.p99)} ms, ${rate(row.opsPerS)}/s`,
      );
    for (const c of caches.splice(0)) await c.close();

    const down: DownRow[] = [];
    for (const how of ['kill', 'pause'] as const) {
      for (const op of ['get', 'getOrSet', 'set'] as const) {
        const row = await whileDown(redis, how, op, options);
        down.push(row);
        log(
          `Redis ${how}: ${op}: ${row.calls} calls, p50 ${msFine(row.latency.p50)} ms, p99 ` +
            `${msFine(row.latency.p99)} ms, max ${msFine(row.latency.max)} ms, ` +
            `${row.slow} over ${SLOW_MS} ms, ${row.hung} hung`,
        );
      }
    }
    return { hits, down, version };
  } finally {
    raw.disconnect();
    for (const c of caches) await c.close();
    await redis.stop();
  }
}

export function redisTables(result: RedisResult, options: CacheBenchOptions): string {
  const hitRows = result.hits.map((r) => [
    r.what,
    count(r.calls),
    r.what.startsWith('set') ? '—' : count(r.hits ?? 0),
    rate(r.opsPerS),
    msFine(r.latency.p50),
    msFine(r.latency.p90),
    msFine(r.latency.p99),
    msFine(r.latency.max),
    r.redis ? `${r.redis.timeouts} / ${r.redis.errors} / ${r.redis.skipped}` : '—',
  ]);
  const downRows = result.down.map((r) => [
    r.how === 'kill' ? 'killed (SIGKILL)' : 'paused (SIGSTOP)',
    `\`${r.op}\``,
    count(r.calls),
    r.seconds.toFixed(1),
    msFine(r.latency.p50),
    msFine(r.latency.p99),
    msFine(r.latency.max),
    count(r.slow),
    count(r.hung),
    count(r.wrong),
    `${r.redis.timeouts} / ${r.redis.errors} / ${r.redis.skipped} / ${r.redis.breakerOpens}`,
  ]);
  const worstP99 = Math.max(...result.down.map((r) => r.latency.p99));
  const anySlow = result.down.reduce((s, r) => s + r.slow, 0);
  const anyHung = result.down.reduce((s, r) => s + r.hung, 0);
  return [
    `Redis ${result.version}, \`redis-server\` on 127.0.0.1 (no persistence), \`MultiTierCache\` with memory ` +
      `+ Redis and the default Redis settings (operation bound 50 ms, circuit opens after 3 failures, ` +
      `cool-down 500 ms doubling to 10 s). A writer cache sets ${count(options.redisOps)} small values ` +
      `(≈100 B encoded) and ${count(Math.min(options.redisOps, 2000))} of 4 KiB; then new cache instances — ` +
      `empty ` +
      `memory, same Redis — read each key once, so every read misses memory, hits Redis, decodes and ` +
      `promotes into memory. Milliseconds, per call, from the caller's side. The last column is the cache's ` +
      `Redis tier counters during the measurement: anything but zeros means some reads did not reach Redis ` +
      `in time (past the 50 ms bound, or skipped with the circuit open) and were answered as misses.`,
    table(
      [
        'measurement',
        'calls',
        'hits',
        'ops/s',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'Redis timeouts / errors / skipped',
      ],
      hitRows,
    ),
    `**Redis down.** For each kind of call, a new cache connects to Redis, does one set and get, then Redis ` +
      `is killed (SIGKILL: connections reset) or paused (SIGSTOP: connections stay open, nothing answers) ` +
      `and the call is made for ${options.downSeconds} s (at most ${count(options.downMaxCalls)} calls), one ` +
      `at a time with a 1 ms pause between, each on a fresh key (so each would have to go to Redis: the ` +
      `worst case; keys already in memory are answered from memory). getOrSet's loader answers at once. ` +
      `"wrong" counts calls that threw or returned something else than expected (undefined for get, the ` +
      `loader's value for getOrSet); a call is "hung" after ${HANG_MS / 1000} s. The last column is the ` +
      `Redis tier's own counters: timeouts / errors / calls skipped with the circuit open / times the ` +
      `circuit opened.`,
    table(
      [
        'Redis',
        'call',
        'calls',
        'seconds',
        'p50 ms',
        'p99 ms',
        'max ms',
        `over ${SLOW_MS} ms`,
        'hung',
        'wrong',
        'timeouts / errors / skipped / opens',
      ],
      downRows,
    ),
    `Worst p99 while Redis was down: ${msFine(worstP99)} ms (target < 5 ms: ` +
      `${worstP99 < 5 ? 'met' : 'not met'}); calls over ${SLOW_MS} ms: ${anySlow}; hung: ${anyHung}.`,
  ].join('\n\n');
}
