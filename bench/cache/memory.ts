/**
 * What each entry costs the cache itself: the heap (and ArrayBuffer memory, where typed arrays
 * live) a full cache adds over the keys and values the bench already holds, after forced GCs.
 */
import { LRUCache } from 'lru-cache';
import { LruMemoryTier } from '../../lib/cache/lru-memory-tier.js';
import { TinyLfuMemoryTier } from '../../lib/cache/tinylfu-memory-tier.js';
import { table } from '../lib/markdown.js';
import { bytes, collect, count, forceGc, versus, type Log } from './common.js';
import type { CacheBenchOptions } from './options.js';

interface Filler {
  name: string;
  /** Builds a cache of `n` entries and returns it (kept alive until measured). */
  fill(keys: string[], values: object[]): unknown;
}

const FILLERS: Filler[] = [
  {
    name: '`TinyLfuMemoryTier` (ours)',
    fill(keys, values) {
      const c = new TinyLfuMemoryTier<object>({ maxEntries: keys.length });
      for (let i = 0; i < keys.length; i += 1) c.set(keys[i]!, values[i]!);
      return c.size === keys.length ? c : new Error(`held ${c.size}`);
    },
  },
  {
    name: '`LruMemoryTier` (ours)',
    fill(keys, values) {
      const c = new LruMemoryTier<object>({ maxEntries: keys.length });
      for (let i = 0; i < keys.length; i += 1) c.set(keys[i]!, values[i]!);
      return c.size === keys.length ? c : new Error(`held ${c.size}`);
    },
  },
  {
    name: '`lru-cache` (`LRUCache({ max })`)',
    fill(keys, values) {
      const c = new LRUCache<string, object>({ max: keys.length });
      for (let i = 0; i < keys.length; i += 1) c.set(keys[i]!, values[i]);
      return c.size === keys.length ? c : new Error(`held ${c.size}`);
    },
  },
];

export interface MemoryRow {
  name: string;
  heap: number;
  arrayBuffers: number;
}

function used(): { heap: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  return { heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

/**
 * One contender, synchronously, in its own stack frame: nothing of it (not even a stale variable
 * slot of an async function) outlives the return, so the next measurement starts clean.
 */
function measure(filler: Filler, keys: string[], values: object[], gc: () => void): MemoryRow {
  // A small fill first, so compiling the code is not counted.
  filler.fill(keys.slice(0, 1000), values.slice(0, 1000));
  gc();
  gc();
  const before = used();
  let cache = filler.fill(keys, values);
  gc();
  gc();
  const after = used();
  if (cache instanceof Error) throw new Error(`${filler.name}: ${cache.message} of ${keys.length} entries`);
  cache = undefined;
  return {
    name: filler.name,
    heap: (after.heap - before.heap) / keys.length,
    arrayBuffers: (after.arrayBuffers - before.arrayBuffers) / keys.length,
  };
}

export async function runMemory(options: CacheBenchOptions, log: Log): Promise<MemoryRow[] | undefined> {
  const gc = forceGc;
  if (!gc) {
    log('bytes per entry: skipped, no way to force a GC');
    return undefined;
  }
  const n = options.memoryEntries;
  const keys = Array.from({ length: n }, (_, i) => `key:${i}`);
  const values = Array.from({ length: n }, (_, i) => ({ id: i, ok: true }));
  const rows: MemoryRow[] = [];
  for (const filler of FILLERS) {
    await collect();
    const row = measure(filler, keys, values, gc);
    rows.push(row);
    log(`bytes per entry: ${filler.name}: ${(row.heap + row.arrayBuffers).toFixed(0)}`);
  }
  return rows;
}

export function memoryTables(rows: MemoryRow[] | undefined, options: CacheBenchOptions): string {
  if (!rows) return 'Skipped: this Node could not force a garbage collection (run with `node --expose-gc`).';
  const lru = rows.find((r) => r.name.startsWith('`lru-cache`'));
  const total = (r: MemoryRow) => r.heap + r.arrayBuffers;
  return [
    `${count(options.memoryEntries)} entries (capacity = entries, so nothing is evicted), keys \`key:i\` and ` +
      `values \`{ id, ok }\` created beforehand and held by the bench, so only the cache's own structures ` +
      `are counted: \`heapUsed\` and \`arrayBuffers\` from \`process.memoryUsage()\` after two forced full ` +
      `GCs, before and after filling, ÷ entries. ArrayBuffer memory is where typed arrays (the W-TinyLFU ` +
      `links and frequency sketch) live, outside the JS heap. "vs lru-cache": total as a percentage of ` +
      `\`lru-cache\`'s.`,
    table(
      ['cache', 'JS heap per entry', 'ArrayBuffers per entry', 'total per entry', 'vs lru-cache'],
      rows.map((r) => [
        r.name,
        bytes(r.heap),
        bytes(r.arrayBuffers),
        bytes(total(r)),
        r === lru ? 'baseline' : lru ? versus(total(r), total(lru)) : 'n/a',
      ]),
    ),
  ].join('\n\n');
}
