/**
 * L3: the LMDB disk tier on its own (put and get throughput, small and 64 KiB records), and the
 * warm start of a disk-backed cache: fill it, close it, open it again on the same directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MultiTierCache } from '../../lib/cache/cache.js';
import { DiskTier } from '../../lib/cache/disk-tier.js';
import { encodeRecord, type CacheRecord } from '../../lib/cache/record.js';
import { table } from '../lib/markdown.js';
import { summarize, type Summary } from '../lib/stats.js';
import { bytes, collect, count, msFine, rate, removeTempDir, silentLogger, tempDir, type Log } from './common.js';
import type { CacheBenchOptions } from './options.js';
import { mulberry32 } from './traces.js';

const HOUR = 3_600_000;
const FILL_BATCH = 1000;
const small = (i: number) => ({
  id: i,
  serial: `R58M${String(i).padStart(6, '0')}`,
  model: 'SM-G991B',
  online: true,
  battery: 87,
});

function record(value: unknown): CacheRecord {
  const now = Date.now();
  return { value, createdAt: now, freshUntil: now + HOUR, staleUntil: now + HOUR, tags: [], tagVersions: [] };
}

function dirSize(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirSize(full) : fs.statSync(full).size;
  }
  return total;
}

export interface DiskRow {
  what: string;
  records: number;
  recordBytes: number;
  /** put() called for every record (the cache does not wait for disk writes). */
  putCallsPerS: number;
  /** …and every write committed. */
  putCommittedPerS: number;
  getPerS: number;
  getHits: number;
  fileBytes: number;
}

export interface WarmResult {
  entries: number;
  onDisk: number;
  warmed: number;
  /** Entries the memory tier holds right after create(). */
  inMemory: number;
  warmMs: number;
  createMs: number;
  fillS: number;
  rssDelta: number;
  rssDeltaAfterGc: number;
  heapDeltaAfterGc: number;
  fileBytes: number;
}

async function putGet(what: string, n: number, value: (i: number) => unknown, seed: number): Promise<DiskRow> {
  const dir = tempDir('disk');
  const disk = DiskTier.open({ path: dir });
  try {
    const keys = Array.from({ length: n }, (_, i) => `disk:${i}`);
    const encoded = keys.map((_, i) => encodeRecord(record(value(i))));
    await collect();
    const started = performance.now();
    const writes: Array<Promise<void>> = new Array<Promise<void>>(n);
    for (let i = 0; i < n; i += 1)
      writes[i] =
        disk.put(keys[i]!, encoded[i]!) ?? Promise.reject(new Error(`key ${keys[i]} too long for the disk tier`));
    const called = performance.now();
    await Promise.all(writes);
    await disk.flushed();
    const committed = performance.now();
    // Reads in a random order (seeded), each key once.
    const order = Uint32Array.from({ length: n }, (_, i) => i);
    const random = mulberry32(seed);
    for (let i = n - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    await collect();
    let hits = 0;
    const readStarted = performance.now();
    for (let i = 0; i < n; i += 1) if (disk.get(keys[order[i]!]!) !== undefined) hits += 1;
    const read = performance.now() - readStarted;
    return {
      what,
      records: n,
      recordBytes: encoded[0]!.length,
      putCallsPerS: n / ((called - started) / 1000),
      putCommittedPerS: n / ((committed - started) / 1000),
      getPerS: n / (read / 1000),
      getHits: hits,
      fileBytes: dirSize(dir),
    };
  } finally {
    await disk.close();
    removeTempDir(dir);
  }
}

export interface ThroughCache {
  what: string;
  calls: number;
  hits?: number;
  opsPerS: number;
  latency: Summary;
}

/** Bounded in time as well as count: an awaited durable write per call may be slow on some disks. */
const THROUGH_CACHE_MAX_S = 20;

/**
 * What a caller of a disk-backed MultiTierCache waits for: `await cache.set` one at a time, then,
 * from a second instance on the same directory (memory empty, no warm start), `await cache.get` of
 * each key once in a random order: a memory miss answered by the disk tier and promoted.
 */
async function throughCache(n: number, seed: number): Promise<ThroughCache[]> {
  const dir = tempDir('l3');
  const make = (maxEntries: number) =>
    MultiTierCache.create({
      name: 'bench-l3',
      memory: { maxEntries },
      disk: { path: dir, warmStart: false },
      defaults: { ttlMs: HOUR },
      logger: silentLogger,
    });
  try {
    const writer = make(1000);
    const setLat: number[] = [];
    let started = performance.now();
    try {
      for (let i = 0; i < n && performance.now() - started < THROUGH_CACHE_MAX_S * 1000; i += 1) {
        const t = performance.now();
        await writer.set(`l3:${i}`, small(i));
        setLat.push(performance.now() - t);
      }
    } finally {
      await writer.close();
    }
    const setS = setLat.reduce((a, b) => a + b, 0) / 1000;
    const written = setLat.length;
    const order = Uint32Array.from({ length: written }, (_, i) => i);
    const random = mulberry32(seed);
    for (let i = written - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    const reader = make(written + 1);
    const getLat = new Float64Array(written);
    let hits = 0;
    try {
      started = performance.now();
      for (let i = 0; i < written; i += 1) {
        const t = performance.now();
        if ((await reader.get(`l3:${order[i]!}`)) !== undefined) hits += 1;
        getLat[i] = performance.now() - t;
      }
    } finally {
      await reader.close();
    }
    const getS = (performance.now() - started) / 1000;
    return [
      {
        what: '`await cache.set` (memory + disk), one at a time',
        calls: written,
        opsPerS: written / setS,
        latency: summarize(setLat),
      },
      {
        what: '`await cache.get`, memory miss, disk hit (then promoted), one at a time',
        calls: written,
        hits,
        opsPerS: written / getS,
        latency: summarize(getLat),
      },
    ];
  } finally {
    removeTempDir(dir);
  }
}

async function warmStart(n: number): Promise<WarmResult> {
  const dir = tempDir('warm');
  const make = () =>
    MultiTierCache.create({
      name: 'bench-warm',
      memory: { maxEntries: n },
      disk: { path: dir },
      defaults: { ttlMs: HOUR },
      logger: silentLogger,
    });
  try {
    const first = make();
    const fillStarted = performance.now();
    // In batches of concurrent sets, as many callers would write: a set may wait for its disk write.
    for (let i = 0; i < n; i += FILL_BATCH) {
      const batch: Array<Promise<void>> = [];
      for (let j = i; j < Math.min(n, i + FILL_BATCH); j += 1) batch.push(first.set(`warm:${j}`, small(j)));
      await Promise.all(batch);
    }
    await first.close();
    const fillS = (performance.now() - fillStarted) / 1000;
    const probe = DiskTier.open({ path: dir });
    const onDisk = probe.stats().entries;
    await probe.close();
    await collect();
    const before = process.memoryUsage();
    const started = performance.now();
    const second = make();
    const createMs = performance.now() - started;
    const after = process.memoryUsage();
    await collect();
    const afterGc = process.memoryUsage();
    const warm = second.metrics().warmStart;
    const entries = second.metrics().tiers.memory.entries;
    await second.close();
    return {
      entries: n,
      onDisk,
      warmed: warm?.entries ?? 0,
      inMemory: entries,
      warmMs: warm?.ms ?? Number.NaN,
      createMs,
      fillS,
      rssDelta: after.rss - before.rss,
      rssDeltaAfterGc: afterGc.rss - before.rss,
      heapDeltaAfterGc: afterGc.heapUsed - before.heapUsed,
      fileBytes: dirSize(dir),
    };
  } finally {
    removeTempDir(dir);
  }
}

export interface DiskResult {
  rows: DiskRow[];
  cache: ThroughCache[];
  warm: WarmResult;
}

export async function runDisk(options: CacheBenchOptions, log: Log): Promise<DiskResult> {
  const rows: DiskRow[] = [];
  rows.push(await putGet('small record (≈100 B)', options.diskEntries, small, options.seed));
  log(`disk: small: put ${rate(rows[0]!.putCommittedPerS)}/s committed, get ${rate(rows[0]!.getPerS)}/s`);
  const blob = Buffer.alloc(64 * 1024, 7);
  rows.push(await putGet('64 KiB record', options.diskLarge, (i) => ({ id: i, blob }), options.seed + 1));
  log(`disk: 64 KiB: put ${rate(rows[1]!.putCommittedPerS)}/s committed, get ${rate(rows[1]!.getPerS)}/s`);
  const cache = await throughCache(Math.min(2000, Math.ceil(options.diskEntries / 20)), options.seed + 2);
  for (const row of cache)
    log(`disk: ${row.what}: p50 ${msFine(row.latency.p50)} ms, p99 ${msFine(row.latency.p99)} ms`);
  const warm = await warmStart(options.warmEntries);
  log(`disk: warm start of ${warm.entries}: ${warm.warmed} entries in ${msFine(warm.warmMs)} ms`);
  return { rows, cache, warm };
}

export function diskTables(result: DiskResult): string {
  const w = result.warm;
  return [
    "`DiskTier` (LMDB, the L3 tier) on its own in a new temporary directory on this machine's disk: records " +
      'encoded beforehand, `put` called for all of them (LMDB batches them into asynchronous transactions, ' +
      'committed durably), then every key read once, in a random order, with `get` (synchronous: a ' +
      'memory-mapped lookup, plus decoding the record). "put, calls" is how fast `put` hands back its ' +
      'promise; "put, committed" includes waiting until every write is on disk, which is what awaiting the ' +
      'writes costs.',
    table(
      [
        'records',
        'count',
        'encoded size',
        'put, calls ops/s',
        'put, committed ops/s',
        'get ops/s',
        'get hits',
        'files on disk',
      ],
      result.rows.map((r) => [
        r.what,
        count(r.records),
        bytes(r.recordBytes),
        rate(r.putCallsPerS),
        rate(r.putCommittedPerS),
        rate(r.getPerS),
        count(r.getHits),
        bytes(r.fileBytes),
      ]),
    ),
    `**Through the cache.** A \`MultiTierCache\` with memory and disk (no Redis), as a caller sees it: ` +
      `${count(result.cache[0]?.calls ?? 0)} small values set one at a time, each awaited; then a second ` +
      `instance on the same directory (empty memory, warm start off) reads each key once in a random order. ` +
      `Milliseconds per call.`,
    table(
      ['call', 'calls', 'hits', 'ops/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      result.cache.map((r) => [
        r.what,
        count(r.calls),
        r.hits === undefined ? '—' : count(r.hits),
        rate(r.opsPerS),
        msFine(r.latency.p50),
        msFine(r.latency.p90),
        msFine(r.latency.p99),
        msFine(r.latency.max),
      ]),
    ),
    `**Warm start.** A \`MultiTierCache\` with memory (capacity ${count(w.entries)}) and disk is filled with ` +
      `${count(w.entries)} small values (\`cache.set\`, ${FILL_BATCH} at a time in flight; ` +
      `${w.fillS.toFixed(1)} s with the close), closed, and created again on the same directory; ` +
      `\`create()\` opens LMDB and, synchronously, loads the newest live records into memory. Memory of this ` +
      `process around the second \`create()\`: RSS as the OS sees it (LMDB's pages read through the memory ` +
      `map count), then again after two forced GCs, and the JS heap after the GCs.`,
    table(
      [
        'entries written',
        'on disk after close',
        'warmed (`metrics().warmStart.entries`)',
        'in memory after `create()`',
        '`metrics().warmStart.ms`',
        '`create()` total',
        'RSS delta',
        'RSS delta after GC',
        'JS heap delta after GC',
        'files on disk',
      ],
      [
        [
          count(w.entries),
          count(w.onDisk),
          count(w.warmed),
          count(w.inMemory),
          `${msFine(w.warmMs)} ms`,
          `${msFine(w.createMs)} ms`,
          bytes(w.rssDelta),
          bytes(w.rssDeltaAfterGc),
          bytes(w.heapDeltaAfterGc),
          bytes(w.fileBytes),
        ],
      ],
    ),
  ].join('\n\n');
}
