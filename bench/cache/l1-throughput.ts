/**
 * L1 throughput: get, set and a 90/10 mix for our two memory tiers, the libraries they are
 * measured against, and the whole MultiTierCache with only its memory tier, each in a process of
 * its own (runL1Throughput), on the same pre-generated keys and Zipf(0.99) key sequence.
 *
 * Made to tell a 10 % change from noise on a shared two-core machine: each round is timed on the
 * process's CPU time (user + system, process.cpuUsage) as well as on the wall clock, so time slices
 * other processes take do not count against a contender (the wall figure is logged, and it is
 * what moved by a third from round to round on a busy machine); every synchronous contender runs
 * in several fresh processes, interleaved with the others in a rotating order, so a quiet or busy
 * minute does not favour one of them; the warm-up is pinned (a fixed number of untimed rounds and
 * a floor of time) and a full GC precedes every timed round.
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
  /** As in --contenders (options.ts CONTENDER_IDS). */
  id: string;
  name: string;
  api: 'sync' | 'async';
  make(capacity: number): Runner;
}

const execFileAsync = promisify(execFile);
const HOUR = 3_600_000;
const WARMUP_ROUNDS = 3;
/** Warm-up goes on past WARMUP_ROUNDS until this much time has passed: a fast contender's rounds are short. */
const WARMUP_MS = 500;

type Value = { id: number; ok: boolean };

/** The loops over a synchronous cache. Each contender runs in a process of its own, so every call site stays monomorphic. */
function syncRunner(c: { get(key: string): unknown; set(key: string, value: Value): unknown; clear(): void }): Runner {
  return {
    fill({ keys, values, seq }) {
      for (let i = 0; i < seq.length; i += 1)
        if (c.get(keys[seq[i]!]!) === undefined) c.set(keys[seq[i]!]!, values[seq[i]!]!);
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
function asyncRunner(
  c: { get(key: string): Promise<unknown>; set(key: string, value: Value): Promise<unknown> },
  close: () => Promise<unknown>,
): Runner {
  const found = (v: unknown) => v !== undefined && v !== null;
  return {
    async fill({ keys, values, seq }) {
      for (let i = 0; i < seq.length; i += 1)
        if (!found(await c.get(keys[seq[i]!]!))) await c.set(keys[seq[i]!]!, values[seq[i]!]!);
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
    id: 'tinylfu',
    name: '`TinyLfuMemoryTier` (ours, W-TinyLFU)',
    api: 'sync',
    make: (capacity) => syncRunner(new TinyLfuMemoryTier<Value>({ maxEntries: capacity })),
  },
  {
    id: 'lru-tier',
    name: '`LruMemoryTier` (ours, LRU on lru-cache)',
    api: 'sync',
    make: (capacity) => syncRunner(new LruMemoryTier<Value>({ maxEntries: capacity })),
  },
  {
    id: 'lru-cache',
    name: '`lru-cache` (`LRUCache({ max })`)',
    api: 'sync',
    make: (capacity) => syncRunner(new LRUCache<string, Value>({ max: capacity })),
  },
  {
    id: 'bentocache',
    name: '`bentocache` (memory driver only)',
    api: 'async',
    make(capacity) {
      // serialize: false keeps values by reference, as the tiers above do (the default, true, stores JSON).
      const c = new BentoCache({
        default: 'memory',
        stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: capacity, serialize: false })) },
        ttl: HOUR,
      });
      return asyncRunner({ get: (key) => c.get({ key }), set: (key, value) => c.set({ key, value }) }, () =>
        c.disconnectAll(),
      );
    },
  },
  {
    id: 'cache-manager',
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
    id: 'multitier',
    name: '`MultiTierCache` (ours, memory tier only)',
    api: 'async',
    make(capacity) {
      const c = MultiTierCache.create({
        name: 'bench-l1',
        memory: { maxEntries: capacity },
        defaults: { ttlMs: HOUR },
        logger: silentLogger,
      });
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

/** Rates of one kind of operation: per CPU-second (what the tables show) and per wall-clock second, one per timed round. */
export interface Rates {
  cpu: number[];
  wall: number[];
}

/** What one process measured. */
export interface L1Sample {
  contender: string;
  api: 'sync' | 'async';
  capacity: number;
  get: Rates;
  set: Rates;
  mixed: Rates;
  hitRatio: number;
}

/** One contender at one capacity, over every process it ran in (in the order they ran). */
export interface L1Row {
  contender: string;
  api: 'sync' | 'async';
  capacity: number;
  /** CPU-time rates of every timed round of every process. */
  get: number[];
  set: number[];
  mixed: number[];
  /** Per process: the median CPU-time rate, and which repetition it was (to pair with lru-cache's). */
  processes: Array<{ repeat: number; get: number; set: number; mixed: number; wallGet: number }>;
  hitRatio: number;
}

async function timed(rounds: number, run: () => unknown, ops: number): Promise<Rates> {
  // Untimed rounds first: the JIT's turn. One was not enough — the first contender's code was still
  // being optimised during its timed rounds (it climbed by a quarter from round to round). A floor of
  // time as well: three rounds of a fast contender are over in a tenth of a second.
  const warmUntil = performance.now() + WARMUP_MS;
  for (let r = 0; r < WARMUP_ROUNDS || performance.now() < warmUntil; r += 1) await run();
  const out: Rates = { cpu: [], wall: [] };
  for (let r = 0; r < rounds; r += 1) {
    // The garbage of the previous round is collected now, not during this one.
    await collect();
    const cpu = process.cpuUsage();
    const started = performance.now();
    await run();
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    out.wall.push(ops / (wallMs / 1000));
    // CPU time is counted in microseconds; a round shorter than a few of them would not be measured.
    out.cpu.push(ops / (Math.max(1, used.user + used.system) / 1e6));
  }
  return out;
}

/** One contender at one capacity, measured in this process. */
export async function measureContender(
  index: number,
  capacity: number,
  options: Pick<CacheBenchOptions, 'ops' | 'rounds' | 'seed'>,
): Promise<L1Sample> {
  const contender = CONTENDERS[index];
  if (!contender) throw new RangeError(`No L1 contender ${index} (there are ${CONTENDERS.length})`);
  const w = makeWorkload(capacity, options.ops, options.seed);
  await collect();
  const runner = contender.make(capacity);
  try {
    await runner.fill(w);
    let hits = 0;
    let gets = 0;
    const get = await timed(
      options.rounds,
      async () => {
        hits += await runner.get(w);
        gets += w.seq.length;
      },
      w.seq.length,
    );
    const set = await timed(options.rounds, () => runner.set(w), w.seq.length);
    const mixed = await timed(options.rounds, () => runner.mixed(w), w.seq.length);
    return { contender: contender.name, api: contender.api, capacity, get, set, mixed, hitRatio: hits / gets };
  } finally {
    await runner.close();
  }
}

/** Rounds per process for the async contenders: they are 5–100× slower, and one process of five rounds tells that. */
const ASYNC_ROUNDS = 5;

/**
 * Every contender at every capacity, each in fresh Node processes (l1-child.js): run one after
 * another in one process, the figures depended on the order — whose code the JIT had optimised
 * and whose garbage the collector was still working through — by as much as a factor of two.
 * The synchronous contenders (the comparison that matters to within 10 %) run `repeats` times,
 * interleaved and in a rotating order; the async ones once each.
 */
export async function runL1Throughput(options: CacheBenchOptions, log: Log): Promise<L1Row[]> {
  const child = path.join(import.meta.dirname, 'l1-child.js');
  const chosen = CONTENDERS.map((c, index) => ({ c, index })).filter(
    ({ c }) => !options.contenders || options.contenders.includes(c.id),
  );
  const sync = chosen.filter(({ c }) => c.api === 'sync');
  const async = chosen.filter(({ c }) => c.api === 'async');
  const rows: L1Row[] = [];
  for (const capacity of options.sizes) {
    const byIndex = new Map<number, L1Row>();
    const jobs: Array<{ index: number; repeat: number; rounds: number }> = [];
    for (let repeat = 0; repeat < options.repeats; repeat += 1) {
      // Rotated by one each repetition: every contender runs first, in the middle and last in turn.
      const order = [
        ...sync.slice(repeat % Math.max(1, sync.length)),
        ...sync.slice(0, repeat % Math.max(1, sync.length)),
      ];
      for (const { index } of order) jobs.push({ index, repeat, rounds: options.rounds });
      if (repeat === 0)
        for (const { index } of async) jobs.push({ index, repeat, rounds: Math.min(options.rounds, ASYNC_ROUNDS) });
    }
    for (const job of jobs) {
      const { stdout } = await execFileAsync(
        process.execPath,
        [
          '--expose-gc',
          child,
          String(job.index),
          String(capacity),
          String(options.ops),
          String(job.rounds),
          String(options.seed),
        ],
        { maxBuffer: 1 << 22 },
      );
      const sample = JSON.parse(stdout.trim().split('\n').pop() ?? '') as L1Sample;
      let row = byIndex.get(job.index);
      if (!row) {
        row = {
          contender: sample.contender,
          api: sample.api,
          capacity,
          get: [],
          set: [],
          mixed: [],
          processes: [],
          hitRatio: sample.hitRatio,
        };
        byIndex.set(job.index, row);
      }
      row.get.push(...sample.get.cpu);
      row.set.push(...sample.set.cpu);
      row.mixed.push(...sample.mixed.cpu);
      row.processes.push({
        repeat: job.repeat,
        get: median(sample.get.cpu),
        set: median(sample.set.cpu),
        mixed: median(sample.mixed.cpu),
        wallGet: median(sample.get.wall),
      });
      log(
        `L1 ${capacity} #${job.repeat + 1}: ${sample.contender}: per CPU-second get ` +
          `${rate(median(sample.get.cpu))}/s, set ${rate(median(sample.set.cpu))}/s, ` +
          `mixed ${rate(median(sample.mixed.cpu))}/s (wall-clock get ${rate(median(sample.get.wall))}/s)`,
      );
    }
    for (const { index } of chosen) {
      const row = byIndex.get(index);
      if (row) rows.push(row);
    }
  }
  return rows;
}

/** The p-quantile (0..1) of the samples, interpolated. */
function quantile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (sorted.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  const low = sorted[lo] ?? Number.NaN;
  return low + ((sorted[hi] ?? Number.NaN) - low) * (at - lo);
}

/** Median, and the middle half of the rounds around it: "12.3 M (11.9–12.6)". */
function cell(samples: number[]): string {
  return `${rate(median(samples))} (${rate(quantile(samples, 0.25))}–${rate(quantile(samples, 0.75))})`;
}

type Kind = 'get' | 'set' | 'mixed';

/**
 * Ours against lru-cache's at the same capacity: the ratio of the medians over all rounds, and the
 * range of the per-repetition ratios (each process's median against lru-cache's process of the same
 * repetition, which ran next to it) — if that range is narrow, a change of 10 % shows.
 */
function against(rows: L1Row[], r: L1Row, kind: Kind): string {
  if (r.contender.startsWith('`lru-cache`')) return 'baseline';
  const lru = rows.find((x) => x.capacity === r.capacity && x.contender.startsWith('`lru-cache`'));
  if (!lru) return 'n/a';
  const overall = versus(median(r[kind]), median(lru[kind]));
  const paired = r.processes
    .map((p) => {
      const other = lru.processes.find((q) => q.repeat === p.repeat);
      return other ? p[kind] / other[kind] : Number.NaN;
    })
    .filter(Number.isFinite);
  if (paired.length < 2) return overall;
  return `${overall} (${(Math.min(...paired) * 100).toFixed(0)}–${(Math.max(...paired) * 100).toFixed(0)})`;
}

export function l1Tables(rows: L1Row[], options: CacheBenchOptions): string {
  const body = rows.map((r) => [
    r.contender,
    r.api === 'sync' ? 'sync' : '`await`',
    count(r.capacity),
    String(r.processes.length),
    cell(r.get),
    against(rows, r, 'get'),
    percent(r.hitRatio),
    cell(r.set),
    against(rows, r, 'set'),
    cell(r.mixed),
    against(rows, r, 'mixed'),
  ]);
  return [
    `Operations per CPU-second of the contender's process (user + system time, so what other processes on ` +
      `the machine take is not counted against it), one call at a time. Each synchronous contender ran in ` +
      `${options.repeats} fresh Node process${options.repeats === 1 ? '' : 'es'} ("proc."), interleaved with ` +
      `the others in a rotating order, each ${options.rounds} timed rounds of ${count(options.ops)} ` +
      `operations after a pinned warm-up (${WARMUP_ROUNDS} untimed rounds and at least ${WARMUP_MS} ms), a ` +
      `full GC before every round; the async ones in one process of ` +
      `${Math.min(options.rounds, ASYNC_ROUNDS)} rounds. Each cell: the median over all rounds, in brackets ` +
      `the middle half of them (25th–75th percentile). Keys \`key:0\`, \`key:1\`, … (2 × capacity of them), ` +
      `drawn Zipf(0.99) — the same pre-generated sequence for every contender; ` +
      `values are small objects \`{ id, ok }\` held by reference. Before the rounds each cache is filled ` +
      `cache-aside (get, on a miss set) ` +
      `over the sequence. **get**: get only, no set on a miss ("hits" is the share of those gets that found ` +
      `a value, which depends on the eviction policy). **set**: set of each key in the sequence (mostly ` +
      `overwrites of hot keys; inserts and evictions for the tail). **90/10**: 90 % get, 10 % set, the same ` +
      `sequence. "vs lru-cache": the median as a percentage of \`lru-cache\`'s at the same capacity (above ` +
      `100 % is faster), in brackets the lowest and highest of the per-repetition ratios (each process ` +
      `against the \`lru-cache\` process of the same repetition).`,
    table(
      [
        'cache',
        'API',
        'capacity',
        'proc.',
        'get ops/s',
        'vs lru-cache',
        'get hits',
        'set ops/s',
        'vs lru-cache',
        '90/10 ops/s',
        'vs lru-cache',
      ],
      body,
    ),
    [
      'Not apples to apples:',
      '- `bentocache`, `cache-manager` and `MultiTierCache` have promise-returning APIs, so what is measured ' +
        'is what a caller does, `await cache.get(…)`, one call at a time: every call pays at least one ' +
        'promise and a microtask turn, which the synchronous tiers do not.',
      '- `bentocache`: `new BentoCache({ stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: ' +
        'capacity, serialize: false })) } })`; `serialize: false` keeps values by reference like the others ' +
        '(its default serialises them). Its memory driver is `lru-cache` underneath.',
      '- `cache-manager`: `createCache()` with its default store, a Keyv over a plain `Map`: **unbounded** ' +
        '(it never evicts, so it ends up holding all 2 × capacity keys and every get hits) and every value ' +
        'is JSON-serialised on set and parsed on get.',
      '- `MultiTierCache`: the whole cache (records with lifetimes and tags, latency histogram, counters) ' +
        'with only its memory tier (W-TinyLFU); `get` is `await cache.get(key)`, ' +
        '`set` is `await cache.set(key, value)`.',
    ].join('\n'),
  ].join('\n\n');
}
