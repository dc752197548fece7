/**
 * Deterministic request traces for the cache benchmark: a seeded PRNG, a Zipf sampler and the
 * four traces the hit-ratio table is made of. A trace is a sequence of key ids; `traceKey` turns an
 * id into the string key the caches see. Same seed, same trace, on every machine.
 */

/** mulberry32: a small, fast 32-bit PRNG (period 2^32), uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Zipf(s) over ranks 0..n−1 (rank 0 the most popular): P(rank k) ∝ 1 / (k + 1)^s. Exact, by
 * inversion: the cumulative distribution is precomputed once (8 bytes per rank) and each sample is
 * a binary search for the first rank whose cumulative probability exceeds a uniform draw.
 */
export class ZipfSampler {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Zipf: n must be a positive integer, got ${n}`);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k += 1) {
      sum += 1 / Math.pow(k + 1, s);
      this.cdf[k] = sum;
    }
    for (let k = 0; k < n; k += 1) this.cdf[k]! /= sum;
    this.cdf[n - 1] = 1;
  }

  /** The probability of rank k (for checks). */
  probability(k: number): number {
    return this.cdf[k]! - (k > 0 ? this.cdf[k - 1]! : 0);
  }

  /** A rank drawn with `u` uniform in [0, 1). */
  sample(u: number): number {
    const cdf = this.cdf;
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/**
 * The popular ranks are spread over the id space by a fixed permutation (a multiplicative map
 * modulo a prime ≥ n would do; an odd multiplier modulo a power of two is simpler and a bijection
 * on [0, 2^k)), so the hottest keys are not also the lexically first ones. Ids ≥ n are skipped.
 */
function scatter(n: number): (rank: number) => number {
  let size = 1;
  while (size < n) size *= 2;
  const mask = size - 1;
  return (rank: number) => {
    let x = rank;
    do x = (Math.imul(x, 0x2545f491) + 0x9e3779b9) & mask;
    while (x >= n);
    return x;
  };
}

/** `n` Zipf(s) draws over `universe` ids, with the popular ids scattered over the id space. */
export function zipfIds(length: number, universe: number, s: number, seed: number): Uint32Array {
  const random = mulberry32(seed);
  const zipf = new ZipfSampler(universe, s);
  const place = scatter(universe);
  const byRank = new Uint32Array(universe);
  for (let r = 0; r < universe; r += 1) byRank[r] = place(r);
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i += 1) out[i] = byRank[zipf.sample(random())]!;
  return out;
}

export interface Trace {
  /** Short name for the table. */
  name: string;
  /** What it is, for the table. */
  description: string;
  ids: Uint32Array;
  /** Distinct ids in the trace (compulsory misses: no cache can hit these first requests). */
  distinct: number;
}

/** The string key of a trace id, as the caches see it. */
export const traceKey = (id: number): string => `k:${id}`;

function countDistinct(ids: Uint32Array): number {
  let max = 0;
  for (let i = 0; i < ids.length; i += 1) if (ids[i]! > max) max = ids[i]!;
  const seen = new Uint8Array(max + 1);
  let distinct = 0;
  for (let i = 0; i < ids.length; i += 1) {
    if (seen[ids[i]!] === 0) {
      seen[ids[i]!] = 1;
      distinct += 1;
    }
  }
  return distinct;
}

function trace(name: string, description: string, ids: Uint32Array): Trace {
  return { name, description, ids, distinct: countDistinct(ids) };
}

export const ZIPF_UNIVERSE = 1_000_000;
export const ZIPF_S = 0.99;

/** (a) Zipf(0.99) over a universe of 1M keys. */
export function zipfTrace(length: number, seed: number): Trace {
  return trace(
    'zipf',
    `Zipf(${ZIPF_S}) over ${(ZIPF_UNIVERSE / 1e6).toFixed(0)}M keys`,
    zipfIds(length, ZIPF_UNIVERSE, ZIPF_S, seed),
  );
}

/**
 * (b) Scan-polluted, shaped to the cache size: Zipf(0.99) traffic over 5× as many keys as the cache
 * holds, interrupted after every ≈2× cache size of those requests by a sequential scan of ≈1×
 * cache size keys that are never asked for again (a batch job, a crawler, a full export) — so a
 * third of the requests are scan requests, and each scan is long enough to flush an LRU cache.
 * `scan[i]` marks the scan requests, so the hit ratio of the other requests can be told apart.
 */
export function scanTrace(length: number, cacheSize: number, seed: number): Trace & { scan: Uint8Array } {
  const random = mulberry32(seed);
  const universe = cacheSize * 5;
  const hot = zipfIds(length, universe, ZIPF_S, seed + 1);
  const out = new Uint32Array(length);
  const scan = new Uint8Array(length);
  let next = universe; // scan ids: above the Zipf universe, each used once
  let hotAt = 0;
  let i = 0;
  let scanning = false;
  while (i < length) {
    const mean = scanning ? cacheSize : cacheSize * 2;
    const run = Math.min(length - i, Math.max(1, Math.round(mean * (0.5 + random()))));
    for (let j = 0; j < run; j += 1, i += 1) {
      if (scanning) {
        out[i] = next++;
        scan[i] = 1;
      } else {
        out[i] = hot[hotAt++]!;
      }
    }
    scanning = !scanning;
  }
  return {
    ...trace(
      'scan',
      `Zipf(${ZIPF_S}) over ${universe.toLocaleString('en-US')} keys (5× the cache), a one-off sequential ` +
        `scan of ≈${cacheSize.toLocaleString('en-US')} keys (1× the cache) after every ` +
        `≈${(cacheSize * 2).toLocaleString('en-US')} of those requests: a third of the requests are scans`,
      out,
    ),
    scan,
  };
}

/**
 * (c) A loop: the same `keys` keys asked for in the same order, over and over. With more keys than
 * the cache holds, LRU always evicts the key that comes next (0 % hits after the first pass).
 */
export function loopTrace(length: number, keys: number): Trace {
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i += 1) out[i] = i % keys;
  return trace('loop', `cyclic over ${keys.toLocaleString('en-US')} keys`, out);
}

/**
 * (d) Hot data: `hotShare` of the requests go to a hot set of 10 % of the keys (uniformly within it),
 * the rest uniformly to the other 90 %. The universe is sized so the hot set is `hotOfCache` of the
 * cache: it fits, with room to spare.
 */
export function hotTrace(length: number, cacheSize: number, seed: number, hotShare = 0.9, hotOfCache = 0.8): Trace {
  const random = mulberry32(seed);
  const hotKeys = Math.max(1, Math.round(cacheSize * hotOfCache));
  const universe = hotKeys * 10;
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i += 1) {
    out[i] =
      random() < hotShare ? Math.floor(random() * hotKeys) : hotKeys + Math.floor(random() * (universe - hotKeys));
  }
  return trace(
    'hot',
    `${Math.round(hotShare * 100)} % of requests to 10 % of ${universe.toLocaleString('en-US')} keys (the ` +
      `hot ${hotKeys.toLocaleString('en-US')} = ${Math.round(hotOfCache * 100)} % of the cache), uniform ` +
      `within each part`,
    out,
  );
}
