/**
 * Hit ratio of W-TinyLFU against LRU: our two memory tiers replay the same generated traces
 * cache-aside (get; on a miss, set), and the share of gets that hit is counted over the whole
 * trace, cold start included.
 */
import { LruMemoryTier } from '../../lib/cache/lru-memory-tier.js';
import { TinyLfuMemoryTier } from '../../lib/cache/tinylfu-memory-tier.js';
import { table } from '../lib/markdown.js';
import { collect, count, percent, type Log } from './common.js';
import type { CacheBenchOptions } from './options.js';
import { hotTrace, loopTrace, scanTrace, traceKey, zipfTrace, type Trace } from './traces.js';

const VALUE = { ok: true };

/** Hits ÷ requests over the whole trace, over its second half only (the cache warm), and over the requests that are not scans. */
interface Ratio {
  all: number;
  secondHalf: number;
  /** Only for traces with scans: hits ÷ requests that are not part of a scan. */
  withoutScans?: number;
}

interface Replayable {
  get(key: string): unknown;
  set(key: string, value: typeof VALUE): unknown;
}

function replay(c: Replayable, trace: Trace & { scan?: Uint8Array }): Ratio {
  const ids = trace.ids;
  const scan = trace.scan;
  const half = ids.length >> 1;
  let hits = 0;
  let firstHalf = 0;
  let otherRequests = 0;
  let otherHits = 0;
  for (let i = 0; i < ids.length; i += 1) {
    if (i === half) firstHalf = hits;
    const key = traceKey(ids[i]!);
    const hit = c.get(key) !== undefined;
    if (hit) hits += 1;
    else c.set(key, VALUE);
    if (scan && scan[i] === 0) {
      otherRequests += 1;
      if (hit) otherHits += 1;
    }
  }
  return {
    all: hits / ids.length,
    secondHalf: (hits - firstHalf) / (ids.length - half),
    ...(scan ? { withoutScans: otherHits / otherRequests } : {}),
  };
}

const replayTinyLfu = (trace: Trace, size: number): Ratio =>
  replay(new TinyLfuMemoryTier<typeof VALUE>({ maxEntries: size }), trace);
const replayLru = (trace: Trace, size: number): Ratio =>
  replay(new LruMemoryTier<typeof VALUE>({ maxEntries: size }), trace);

export interface HitRow {
  trace: string;
  description: string;
  size: number;
  requests: number;
  distinct: number;
  tinylfu: Ratio;
  lru: Ratio;
}

/** The loop for a cache of `size`: 20 % more keys than it holds. */
export const loopKeys = (size: number): number => Math.ceil(size * 1.2);

export async function runHitRatio(options: CacheBenchOptions, log: Log): Promise<{ rows: HitRow[]; seconds: number }> {
  const started = performance.now();
  const rows: HitRow[] = [];
  const length = options.traceLength;
  const run = async (trace: Trace, size: number) => {
    await collect();
    const tinylfu = replayTinyLfu(trace, size);
    const lru = replayLru(trace, size);
    rows.push({
      trace: trace.name,
      description: trace.description,
      size,
      requests: trace.ids.length,
      distinct: trace.distinct,
      tinylfu,
      lru,
    });
    log(`hit ratio ${trace.name} @ ${size}: TinyLFU ${percent(tinylfu.all)}, LRU ${percent(lru.all)}`);
  };
  // A fixed trace, every cache size.
  const zipf = zipfTrace(length, options.seed);
  for (const size of options.hitSizes) await run(zipf, size);
  // Traces shaped to the cache size.
  for (const size of options.hitSizes) await run(scanTrace(length, size, options.seed + 100), size);
  for (const size of options.hitSizes) await run(loopTrace(length, loopKeys(size)), size);
  for (const size of options.hitSizes) await run(hotTrace(length, size, options.seed + 200), size);
  return { rows, seconds: (performance.now() - started) / 1000 };
}

function points(a: number, b: number): string {
  const d = (a - b) * 100;
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}`;
}

export function hitTables(result: { rows: HitRow[]; seconds: number }, options: CacheBenchOptions): string {
  const body = result.rows.map((r) => [
    `**${r.trace}**: ${r.description}`,
    count(r.size),
    count(r.requests),
    count(r.distinct),
    percent(r.tinylfu.all),
    percent(r.lru.all),
    points(r.tinylfu.all, r.lru.all),
    // No policy can do better than hitting every repeat request.
    percent(1 - r.distinct / r.requests),
    `${percent(r.tinylfu.secondHalf)} / ${percent(r.lru.secondHalf)}`,
    r.tinylfu.withoutScans === undefined || r.lru.withoutScans === undefined
      ? '—'
      : `${percent(r.tinylfu.withoutScans)} / ${percent(r.lru.withoutScans)} (${points(r.tinylfu.withoutScans, r.lru.withoutScans)})`,
  ]);
  const worse = result.rows.filter((r) => r.tinylfu.all < r.lru.all || r.tinylfu.secondHalf < r.lru.secondHalf);
  return [
    `\`TinyLfuMemoryTier\` and \`LruMemoryTier\`, each replaying the same trace of ` +
      `${count(options.traceLength)} requests cache-aside (get; on a miss, set the key); hits ÷ requests ` +
      `over the whole trace, the cold start included. Traces are generated with a seeded PRNG (mulberry32, ` +
      `seed ${options.seed}; Zipf by inversion of the exact cumulative distribution), so every run replays ` +
      `the same requests. "ceiling" is 1 − distinct keys ÷ requests: what a cache that never evicts would ` +
      `get over the whole trace. "second half only" counts the requests of the trace's second half, the ` +
      `cache warm (its own ceiling is higher, as fewer first requests fall there). The scan trace is sized ` +
      `to the cache (its Zipf part over 5× the cache's keys, scans of 1× the cache); its last column counts ` +
      `only the requests that are not part of a scan — no cache can hit a scan key, so that is where the ` +
      `policies differ. The loop trace has 20 % more keys than the cache; the hot trace is sized so the hot ` +
      `set is 80 % of the cache. All ${result.rows.length} replays took ${result.seconds.toFixed(0)} s.`,
    table(
      [
        'trace',
        'cache size',
        'requests',
        'distinct keys',
        'TinyLFU',
        'LRU',
        'TinyLFU − LRU (points)',
        'ceiling',
        'second half only: TinyLFU / LRU',
        'requests other than scans: TinyLFU / LRU',
      ],
      body,
    ),
    worse.length
      ? `TinyLFU below LRU in: ` +
        `${worse
          .map(
            (r) =>
              `${r.trace} @ ${count(r.size)} (${points(r.tinylfu.all, r.lru.all)} points over the whole trace, ` +
              `${points(r.tinylfu.secondHalf, r.lru.secondHalf)} over the second half)`,
          )
          .join(', ')}.`
      : 'TinyLFU is at or above LRU on every trace and size of this run (whole trace and second half).',
  ].join('\n\n');
}
