/**
 * L1 throughput: get, set and a 90/10 mix for our two memory tiers, the libraries they are
 * measured against, and the whole MultiTierCache with only its memory tier, each in a process of
 * its own (runL1Throughput), on the same pre-generated keys and Zipf(0.99) key sequence.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { createCache } from 'cache-manager';
import { LRUCache } from 'lru-cache';
import { MultiTierCache } from '../../lib/cache/cache.js';
import { LruMemoryTier } from '../../lib/cache/lru-memory-tier.js';
import { TinyLfuMemoryTier } from '../../lib/cache/tinylfu-memory-tier.js';
import { table } from '../lib/markdown.js';
import { collect, count, median, percent, rate, silentLogger, versus, type Log } from './common.js';
import type { CacheBenchOptions } from './options.js';
import { mulberry32, zipfIds } from './traces.js';

/** What every round runs over: keys and values made once, a key sequence, and which ops of the mix are sets. */
export interface Workload {
  keys: string[];
  values: Array<{ id: number; ok: boolean }>;
  seq: Uint32Array;
  isSet: Uint8Array;
}

/** One contender at one capacity. Each method runs the whole sequence once; get returns its hits. */
interface Runner {
  /** Cache-aside over the sequence (get; on a miss, set): fills the cache the way it would fill in use. */
  fill(w: Workload): Promise<void> | void;
  get(w: Workload): Promise<number> | number;
  set(w: Workload): Promise<void> | void;
  mixed(w: Workload): Promise<void> | void;
  close(): Promise<void> | void;
}

interface Contender {
  name: string;
  api: 'sync' | 'async';
  make(capacity: number): Runner;
}

const execFileAsync = promisify(execFile);
const HOUR = 3_600_000;
const WARMUP_ROUNDS = 3;

type Value = { id: number; ok: boolean };

/** The loops over a synchronous cache. Each contender runs in a process of its own, so every call site stays monomorphic. */
function syncRunner(c: { get(key: string): unknown; set(key: string, value: Value): unknown; clear(): void }): Runner {
  return {
    fill({ keys, values, seq }) {
      for (let i = 0; i < seq.length; i += 1) if (c.get(keys[seq[i]!]!) === undefined) c.set(keys[seq[i]!]!, values[seq[i]!]!);
    },
    get({ keys, seq }) {
      let hits = 0;
      for (let i = 0; i < seq.length; i += 1) if (c.get(keys[seq[i]!]!) !== undefined) hits += 1;
      return hits;
    },
    set({ keys, values, seq }) {
      for (let i = 0; i < seq.length; i += 1) c.set(keys[seq[i]!]!, values[seq[i]!]!);
    },
    mixed({ keys, values, seq, isSet }) {
      for (let i = 0; i < seq.length; i += 1) {
        if (isSet[i] === 1) c.set(keys[seq[i]!]!, values[seq[i]!]!);
        else c.get(keys[seq[i]!]!);
      }
    },
    close: () => c.clear(),
  };
}

/** The same loops over a promise-returning cache: each call awaited, as a caller would. A miss is undefined or null. */
function asyncRunner(c: { get(key: string): Promise<unknown>; set(key: string, value: Value): Promise<unknown> }, close: () => Promise<unknown>): Runner {
  const found = (v: unknown) => v !== undefined && v !== null;
  return {
    async fill({ keys, values, seq }) {
      for (let i = 0; i < seq.length; i += 1) if (!found(await c.get(keys[seq[i]!]!))) await c.set(keys[seq[i]!]!, values[seq[i]!]!);
    },
    async get({ keys, seq }) {
      let hits = 0;
      for (let i = 0; i < seq.length; i += 1) if (found(await c.get(keys[seq[i]!]!))) hits += 1;
      return hits;
    },
    async set({ keys, values, seq }) {
      for (let i = 0; i < seq.length; i += 1) await c.set(keys[seq[i]!]!, values[seq[i]!]!);
    },
    async mixed({ keys, values, seq, isSet }) {
      for (let i = 0; i < seq.length; i += 1) {
        if (isSet[i] === 1) await c.set(keys[seq[i]!]!, values[seq[i]!]!);
        else await c.get(keys[seq[i]!]!);
      }
    },
    close: async () => {
      await close();
    },
  };
}

export const CONTENDERS: Contender[] = [
  {
    name: '`TinyLfuMemoryTier` (ours, W-TinyLFU)',
    api: 'sync',
    make: (capacity) => syncRunner(new TinyLfuMemoryTier<Value>({ maxEntries: capacity })),
  },
  {
    name: '`LruMemoryTier` (ours, LRU on lru-cache)',
    api: 'sync',
    make: (capacity) => syncRunner(new LruMemoryTier<Value>({ maxEntries: capacity })),
  },
  {
    name: '`lru-cache` (`LRUCache({ max })`)',
    api: 'sync',
    make: (capacity) => syncRunner(new LRUCache<string, Value>({ max: capacity })),
  },
  {
    name: '`bentocache` (memory driver only)',
    api: 'async',
    make(capacity) {
      // serialize: false keeps values by reference, as the tiers above do (the default, true, stores JSON).
      const c = new BentoCache({ default: 'memory', stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: capacity, serialize: false })) }, ttl: HOUR });
      return asyncRunner({ get: (key) => c.get({ key }), set: (key, value) => c.set({ key, value }) }, () => c.disconnectAll());
    },
  },
  {
    name: '`cache-manager` (default in-memory Keyv store)',
    api: 'async',
    make() {
      // The default store is an unbounded Map with JSON-serialised values; it has no capacity to set.
      const c = createCache({ ttl: HOUR });
      return asyncRunner(c, async () => {
        await c.clear();
        await c.disconnect();
      });
    },
  },
  {
    name: '`MultiTierCache` (ours, memory tier only)',
    api: 'async',
    make(capacity) {
      const c = MultiTierCache.create({ name: 'bench-l1', memory: { maxEntries: capacity }, defaults: { ttlMs: HOUR }, logger: silentLogger });
      return asyncRunner(c, () => c.close());
    },
  },
];

export function makeWorkload(capacity: number, ops: number, seed: number): Workload {
  const universe = capacity * 2;
  const keys = Array.from({ length: universe }, (_, i) => `key:${i}`);
  const values = Array.from({ length: universe }, (_, i) => ({ id: i, ok: true }));
  const seq = zipfIds(ops, universe, 0.99, seed);
  const random = mulberry32(seed + 7);
  const isSet = new Uint8Array(ops);
  for (let i = 0; i < ops; i += 1) isSet[i] = random() < 0.1 ? 1 : 0;
  return { keys, values, seq, isSet };
}

export interface L1Row {
  contender: string;
  api: 'sync' | 'async';
  capacity: number;
  get: number[];
  set: number[];
  mixed: number[];
  hitRatio: number;
}

async function timed(rounds: number, run: () => unknown, ops: number): Promise<number[]> {
  // Untimed rounds first: the JIT's turn. One was not enough — the first contender's code was still
  // being optimised during its timed rounds (it climbed by a quarter from round to round).
  for (let r = 0; r < WARMUP_ROUNDS; r += 1) await run();
  const out: number[] = [];
  for (let r = 0; r < rounds; r += 1) {
    const started = performance.now();
    await run();
    out.push(ops / ((performance.now() - started) / 1000));
  }
  return out;
}

/** One contender at one capacity, measured in this process. */
export async function measureContender(index: number, capacity: number, options: Pick<CacheBenchOptions, 'ops' | 'rounds' | 'seed'>): Promise<L1Row> {
  const contender = CONTENDERS[index]!;
  const w = makeWorkload(capacity, options.ops, options.seed);
  await collect();
  const runner = contender.make(capacity);
  try {
    await runner.fill(w);
    let hits = 0;
    let gets = 0;
    const get = await timed(options.rounds, async () => {
      hits += await runner.get(w);
      gets += w.seq.length;
    }, w.seq.length);
    const set = await timed(options.rounds, () => runner.set(w), w.seq.length);
    const mixed = await timed(options.rounds, () => runner.mixed(w), w.seq.length);
    return { contender: contender.name, api: contender.api, capacity, get, set, mixed, hitRatio: hits / gets };
  } finally {
    await runner.close();
  }
}

/**
 * Every contender at every capacity, each in a fresh Node process (l1-child.js): run one after
 * another in one process, the figures depended on the order — whose code the JIT had optimised
 * and whose garbage the collector was still working through — by as much as a factor of two.
 */
export async function runL1Throughput(options: CacheBenchOptions, log: Log): Promise<L1Row[]> {
  const rows: L1Row[] = [];
  const child = path.join(import.meta.dirname, 'l1-child.js');
  for (const capacity of options.sizes) {
    for (let index = 0; index < CONTENDERS.length; index += 1) {
      const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', child, String(index), String(capacity), String(options.ops), String(options.rounds), String(options.seed)], { maxBuffer: 1 << 20 });
      const row = JSON.parse(stdout.trim().split('\n').pop()!) as L1Row;
      rows.push(row);
      log(`L1 ${capacity}: ${row.contender}: get ${rate(median(row.get))}/s, set ${rate(median(row.set))}/s, mixed ${rate(median(row.mixed))}/s`);
    }
  }
  return rows;
}

/** Median, and the spread of the rounds around it: "12.3 M ±4 %". */
function cell(samples: number[]): string {
  const m = median(samples);
  const spread = ((Math.max(...samples) - Math.min(...samples)) / 2 / m) * 100;
  return `${rate(m)} ±${spread < 10 ? spread.toFixed(1) : spread.toFixed(0)} %`;
}

export function l1Tables(rows: L1Row[], options: CacheBenchOptions): string {
  const baseline = (capacity: number, pick: (r: L1Row) => number[]) => {
    const row = rows.find((r) => r.capacity === capacity && r.contender.startsWith('`lru-cache`'));
    return row ? median(pick(row)) : Number.NaN;
  };
  const vs = (r: L1Row, pick: (x: L1Row) => number[]) => (r.contender.startsWith('`lru-cache`') ? 'baseline' : versus(median(pick(r)), baseline(r.capacity, pick)));
  const body = rows.map((r) => [
    r.contender,
    r.api === 'sync' ? 'sync' : '`await`',
    count(r.capacity),
    cell(r.get),
    vs(r, (x) => x.get),
    percent(r.hitRatio),
    cell(r.set),
    vs(r, (x) => x.set),
    cell(r.mixed),
    vs(r, (x) => x.mixed),
  ]);
  return [
    `Each contender at each capacity in a fresh Node process. Operations per second, one call at a time, median of ${options.rounds} timed rounds of ${count(options.ops)} operations after ${WARMUP_ROUNDS} untimed rounds (± is half the range of the rounds). Keys \`key:0\`, \`key:1\`, … (2 × capacity of them), drawn Zipf(0.99) — the same pre-generated sequence for every contender; values are small objects \`{ id, ok }\` held by reference. Before the rounds each cache is filled cache-aside (get, on a miss set) over the sequence. **get**: get only, no set on a miss ("hits" is the share of those gets that found a value, which depends on the eviction policy). **set**: set of each key in the sequence (mostly overwrites of hot keys; inserts and evictions for the tail). **90/10**: 90 % get, 10 % set, the same sequence. "vs lru-cache": the median as a percentage of \`lru-cache\`'s at the same capacity (above 100 % is faster).`,
    table(['cache', 'API', 'capacity', 'get ops/s', 'vs lru-cache', 'get hits', 'set ops/s', 'vs lru-cache', '90/10 ops/s', 'vs lru-cache'], body),
    [
      'Not apples to apples:',
      '- `bentocache`, `cache-manager` and `MultiTierCache` have promise-returning APIs, so what is measured is what a caller does, `await cache.get(…)`, one call at a time: every call pays at least one promise and a microtask turn, which the synchronous tiers do not.',
      '- `bentocache`: `new BentoCache({ stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: capacity, serialize: false })) } })`; `serialize: false` keeps values by reference like the others (its default serialises them). Its memory driver is `lru-cache` underneath.',
      '- `cache-manager`: `createCache()` with its default store, a Keyv over a plain `Map`: **unbounded** (it never evicts, so it ends up holding all 2 × capacity keys and every get hits) and every value is JSON-serialised on set and parsed on get.',
      '- `MultiTierCache`: the whole cache (records with lifetimes and tags, latency histogram, counters) with only its memory tier (W-TinyLFU); `get` is `await cache.get(key)`, `set` is `await cache.set(key, value)`.',
    ].join('\n'),
  ].join('\n\n');
}

