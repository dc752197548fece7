import { describe, expect, it } from 'vitest';
import { LruMemoryTier } from './lru-memory-tier.js';
import type { MemoryTier, MemoryTierOptions } from './memory-tier.js';
import { prng } from '../prng.js';
import { TinyLfuMemoryTier } from './tinylfu-memory-tier.js';

type Create = (options: MemoryTierOptions) => MemoryTier<string>;

const POLICIES: Array<[string, Create]> = [
  ['TinyLfuMemoryTier', (options) => new TinyLfuMemoryTier<string>(options)],
  ['LruMemoryTier', (options) => new LruMemoryTier<string>(options)],
];

/** A tier with a clock the test moves and every onEvict call recorded. */
function setup(create: Create, options: Omit<MemoryTierOptions, 'now' | 'onEvict'>) {
  const clock = { now: 1000 };
  const evicted: Array<[string, 'capacity' | 'expired']> = [];
  const tier = create({ ...options, now: () => clock.now, onEvict: (key, reason) => evicted.push([key, reason]) });
  return { tier, clock, evicted };
}

/** How a cache uses its memory tier: read, and on a miss load and store. True on a hit. */
function access(tier: MemoryTier<string>, key: string): boolean {
  if (tier.get(key) !== undefined) return true;
  tier.set(key, `value of ${key}`);
  return false;
}

describe.each(POLICIES)('%s: the MemoryTier contract', (_name, create) => {
  it('refuses a capacity that is not a positive integer', () => {
    expect(() => create({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => create({ maxEntries: 2.5 })).toThrow(RangeError);
  });

  it('stores, reads, deletes and clears', () => {
    const { tier, evicted } = setup(create, { maxEntries: 10 });
    expect(tier.set('a', 'A')).toBe(true);
    expect(tier.set('b', 'B')).toBe(true);
    expect(tier.get('a')).toBe('A');
    expect(tier.peek('b')).toBe('B');
    expect(tier.has('a')).toBe(true);
    expect(tier.has('c')).toBe(false);
    expect(tier.peek('c')).toBeUndefined();
    expect(tier.size).toBe(2);
    expect([...tier.keys()].sort()).toEqual(['a', 'b']);

    expect(tier.delete('a')).toBe(true);
    expect(tier.delete('a')).toBe(false);
    expect(tier.get('a')).toBeUndefined();
    expect(tier.has('a')).toBe(false);
    expect(tier.size).toBe(1);
    expect([...tier.keys()]).toEqual(['b']);

    tier.clear();
    expect(tier.size).toBe(0);
    expect([...tier.keys()]).toEqual([]);
    expect(tier.get('b')).toBeUndefined();
    expect(tier.stats()).toMatchObject({ entries: 0, bytes: 0 });
    // delete and clear are the caller's doing, not evictions.
    expect(evicted).toEqual([]);
    expect(tier.stats()).toMatchObject({ evictions: 0, expirations: 0 });

    // Usable again after clear.
    tier.set('c', 'C');
    expect(tier.get('c')).toBe('C');
    expect(tier.size).toBe(1);
  });

  it('overwrites a key in place', () => {
    const { tier } = setup(create, { maxEntries: 10 });
    tier.set('a', 'one');
    tier.set('a', 'two');
    expect(tier.get('a')).toBe('two');
    expect(tier.size).toBe(1);
    expect([...tier.keys()]).toEqual(['a']);
  });

  it('counts hits and misses exactly; peek and has count neither', () => {
    const { tier } = setup(create, { maxEntries: 10 });
    tier.set('a', 'A');
    tier.get('a');
    tier.get('a');
    tier.get('nope');
    tier.peek('a');
    tier.peek('nope');
    tier.has('a');
    tier.has('nope');
    tier.get('a');
    tier.get('also-nope');
    expect(tier.stats()).toMatchObject({ hits: 3, misses: 2 });
  });

  it('evicts to stay within maxEntries and reports each eviction', () => {
    const { tier, evicted } = setup(create, { maxEntries: 100 });
    for (let i = 0; i < 1000; i += 1) {
      tier.set(`k${i}`, `v${i}`);
      expect(tier.size).toBeLessThanOrEqual(100);
    }
    expect(tier.size).toBe(100);
    expect(evicted).toHaveLength(900);
    expect(evicted.every(([, reason]) => reason === 'capacity')).toBe(true);
    expect(tier.stats()).toMatchObject({ entries: 100, evictions: 900, expirations: 0 });
    const live = new Set(tier.keys());
    for (const [key] of evicted) expect(live.has(key)).toBe(false);
    expect(new Set([...live, ...evicted.map(([key]) => key)]).size).toBe(1000);
    // Whatever it kept, it returns as written.
    for (const key of live) expect(tier.get(key)).toBe(`v${key.slice(1)}`);
  });

  it('with room for one entry, the newest write pushes the other out', () => {
    const { tier, evicted } = setup(create, { maxEntries: 1 });
    tier.set('a', 'A');
    tier.set('b', 'B');
    expect(tier.size).toBe(1);
    expect(evicted).toEqual([['a', 'capacity']]);
    expect(tier.get('b')).toBe('B');
  });

  it.each<[string, { maxEntries: number; maxBytes?: number }]>([
    ['entries only', { maxEntries: 64 }],
    ['entries and bytes', { maxEntries: 64, maxBytes: 2000 }],
  ])('keeps every bound and its bookkeeping exact under 10k random operations (%s)', (_label, options) => {
    const { tier, clock, evicted } = setup(create, options);
    const random = prng(2026);
    /** What the tier must hold: key → [value, size], updated by our calls and its evictions. */
    const model = new Map<string, [string, number]>();
    let evictionsSeen = 0;
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    for (let op = 0; op < 10_000; op += 1) {
      const key = `k${Math.floor(random() * 300)}`;
      const r = random();
      if (r < 0.45) {
        const value = tier.get(key);
        if (value !== undefined) expect(value).toBe(model.get(key)![0]);
        else if (model.has(key)) throw new Error(`${key} is held but get() missed`);
        if (value === undefined) {
          const size = 1 + Math.floor(random() * 100);
          if (tier.set(key, `${key}@${op}`, { size })) model.set(key, [`${key}@${op}`, size]);
        }
      } else if (r < 0.8) {
        // Now and then a value too large to hold at all.
        const tooLarge = Number.isFinite(maxBytes) && random() < 0.02;
        const size = tooLarge ? maxBytes + 1 : 1 + Math.floor(random() * 100);
        expect(tier.set(key, `${key}@${op}`, { size })).toBe(!tooLarge);
        if (tooLarge) model.delete(key);
        else model.set(key, [`${key}@${op}`, size]);
      } else if (r < 0.92) {
        expect(tier.delete(key)).toBe(model.has(key));
        model.delete(key);
      } else if (r < 0.999) {
        expect(tier.peek(key)).toBe(model.get(key)?.[0]);
        expect(tier.has(key)).toBe(model.has(key));
      } else {
        tier.clear();
        model.clear();
      }
      for (; evictionsSeen < evicted.length; evictionsSeen += 1) {
        const [gone, reason] = evicted[evictionsSeen]!;
        expect(reason).toBe('capacity');
        expect(model.has(gone)).toBe(true);
        model.delete(gone);
      }
      const stats = tier.stats();
      expect(tier.size).toBeLessThanOrEqual(options.maxEntries);
      expect(stats.entries).toBe(tier.size);
      expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
      const keys = [...tier.keys()];
      // Compared by hand first: a deep Set comparison on every operation is slow.
      if (keys.length !== model.size || keys.some((key) => !model.has(key)))
        expect(new Set(keys)).toEqual(new Set(model.keys()));
      expect(stats.bytes).toBe([...model.values()].reduce((sum, [, size]) => sum + size, 0));
    }
    expect(clock.now).toBe(1000);
    expect(tier.stats().evictions).toBe(evicted.length);
    expect(evicted.length).toBeGreaterThan(100);
  });

  it('counts bytes exactly through writes, overwrites, deletes and clear', () => {
    const { tier } = setup(create, { maxEntries: 10, maxBytes: 1000 });
    tier.set('a', 'A', { size: 10 });
    tier.set('b', 'B', { size: 20 });
    expect(tier.stats().bytes).toBe(30);
    tier.set('a', 'A2', { size: 5 });
    expect(tier.stats().bytes).toBe(25);
    tier.set('a', 'A3', { size: 105 });
    expect(tier.stats().bytes).toBe(125);
    tier.set('c', 'C');
    expect(tier.stats().bytes).toBe(125);
    tier.delete('b');
    expect(tier.stats().bytes).toBe(105);
    tier.clear();
    expect(tier.stats().bytes).toBe(0);
  });

  it('evicts to stay within maxBytes, keeping the entry just written', () => {
    const { tier, evicted } = setup(create, { maxEntries: 100, maxBytes: 100 });
    for (let i = 0; i < 5; i += 1) tier.set(`k${i}`, `v${i}`, { size: 20 });
    expect(tier.stats().bytes).toBe(100);
    expect(evicted).toEqual([]);
    tier.set('big', 'BIG', { size: 70 });
    expect(tier.get('big')).toBe('BIG');
    expect(tier.stats().bytes).toBeLessThanOrEqual(100);
    expect(tier.stats().bytes).toBe(70 + 20 * tier.size - 20);
    expect(evicted.length).toBeGreaterThanOrEqual(3);
    expect(evicted.every(([, reason]) => reason === 'capacity')).toBe(true);
    // Exactly the byte bound fits, alone.
    tier.set('whole', 'W', { size: 100 });
    expect(tier.get('whole')).toBe('W');
    expect(tier.size).toBe(1);
    expect(tier.stats().bytes).toBe(100);
  });

  it('refuses a value larger than maxBytes: set returns false, the key is absent, the refusal counted', () => {
    const { tier, evicted } = setup(create, { maxEntries: 10, maxBytes: 100 });
    tier.set('small', 's', { size: 40 });
    tier.set('k', 'old', { size: 10 });
    expect(tier.set('k', 'huge', { size: 101 })).toBe(false);
    expect(tier.get('k')).toBeUndefined();
    expect(tier.has('k')).toBe(false);
    expect(tier.set('other', 'huge', { size: 1000 })).toBe(false);
    expect(tier.has('other')).toBe(false);
    expect(tier.stats()).toMatchObject({ admissionsRejected: 2, bytes: 40, entries: 1 });
    expect(tier.get('small')).toBe('s');
    expect(evicted).toEqual([]);
  });

  it('stops returning an entry at its removeAt, counts it as expired and reports it', () => {
    const { tier, clock, evicted } = setup(create, { maxEntries: 10, maxBytes: 1000 });
    tier.set('a', 'A', { removeAt: 1100, size: 7 });
    tier.set('forever', 'F', { size: 3 });
    clock.now = 1099;
    expect(tier.get('a')).toBe('A');
    expect(tier.peek('a')).toBe('A');
    expect(tier.has('a')).toBe(true);
    clock.now = 1100;
    expect(tier.peek('a')).toBeUndefined();
    expect(tier.has('a')).toBe(false);
    expect(tier.get('a')).toBeUndefined();
    expect(evicted).toEqual([['a', 'expired']]);
    expect(tier.stats()).toMatchObject({ hits: 1, misses: 1, expirations: 1, evictions: 0, entries: 1, bytes: 3 });
    expect([...tier.keys()]).toEqual(['forever']);
    // Reported once: the entry is gone now.
    expect(tier.get('a')).toBeUndefined();
    expect(evicted).toHaveLength(1);
    clock.now = 1e12;
    expect(tier.get('forever')).toBe('F');
  });

  it('keys() lists live keys only, not those past their removeAt', () => {
    const { tier, clock } = setup(create, { maxEntries: 10 });
    tier.set('short', 'S', { removeAt: 1100 });
    tier.set('long', 'L', { removeAt: 5000 });
    tier.set('forever', 'F');
    expect([...tier.keys()].sort()).toEqual(['forever', 'long', 'short']);
    clock.now = 1100;
    expect([...tier.keys()].sort()).toEqual(['forever', 'long']);
  });

  it('keys() can be walked while deleting what it yields (dropping a group of keys)', () => {
    const { tier } = setup(create, { maxEntries: 100 });
    for (let i = 0; i < 50; i += 1) tier.set(i % 2 === 0 ? `ns:${i}` : `other:${i}`, 'v', { size: 1 });
    for (const key of tier.keys()) if (key.startsWith('ns:')) tier.delete(key);
    expect([...tier.keys()].filter((key) => key.startsWith('ns:'))).toEqual([]);
    expect(tier.size).toBe(25);
    expect(tier.stats().bytes).toBe(25);
  });

  it('an overwrite sets a new removeAt (or none)', () => {
    const { tier, clock } = setup(create, { maxEntries: 10 });
    tier.set('a', 'A', { removeAt: 1100 });
    tier.set('a', 'A2');
    tier.set('b', 'B');
    tier.set('b', 'B2', { removeAt: 1050 });
    clock.now = 2000;
    expect(tier.get('a')).toBe('A2');
    expect(tier.get('b')).toBeUndefined();
  });

  it('an expired entry pushed out for room is reported as expired, not as a capacity eviction', () => {
    const { tier, clock, evicted } = setup(create, { maxEntries: 1 });
    tier.set('old', 'O', { removeAt: 1010 });
    clock.now = 1020;
    tier.set('new', 'N');
    expect(evicted).toEqual([['old', 'expired']]);
    expect(tier.stats()).toMatchObject({ expirations: 1, evictions: 0 });
    expect(tier.get('new')).toBe('N');
  });
});

describe('LruMemoryTier: recency', () => {
  it('evicts the least recently used; get refreshes recency, peek does not', () => {
    const { tier, evicted } = setup((options) => new LruMemoryTier<string>(options), { maxEntries: 3 });
    tier.set('a', 'A');
    tier.set('b', 'B');
    tier.set('c', 'C');
    tier.get('a');
    tier.peek('b');
    tier.set('d', 'D');
    expect(evicted).toEqual([['b', 'capacity']]);
    tier.set('e', 'E');
    expect(evicted).toEqual([
      ['b', 'capacity'],
      ['c', 'capacity'],
    ]);
    expect([...tier.keys()].sort()).toEqual(['a', 'd', 'e']);
  });
});

describe('W-TinyLFU against LRU', () => {
  const tinyLfu = (options: MemoryTierOptions) => new TinyLfuMemoryTier<string>(options);
  const lru = (options: MemoryTierOptions) => new LruMemoryTier<string>(options);

  /** Warms a hot set, runs a one-off scan, then measures how much of the hot set is still held. */
  function scanScenario(create: Create) {
    const tier = create({ maxEntries: 1000 });
    const random = prng(99);
    const hot = Array.from({ length: 500 }, (_, i) => `hot:${i}`);
    for (let pass = 0; pass < 20; pass += 1) {
      const order = [...hot].sort(() => random() - 0.5);
      for (const key of order) access(tier, key);
    }
    const hotHeldBefore = hot.filter((key) => tier.has(key)).length;
    const rejectedBefore = tier.stats().admissionsRejected;
    for (let i = 0; i < 10_000; i += 1) access(tier, `scan:${i}`);
    const rejectedDuringScan = tier.stats().admissionsRejected - rejectedBefore;
    let hits = 0;
    for (const key of hot) if (tier.get(key) !== undefined) hits += 1;
    return { hotHeldBefore, hitRatio: hits / hot.length, rejectedDuringScan, size: tier.size };
  }

  it('keeps a hot set through a long one-off scan, where LRU loses it', () => {
    const w = scanScenario(tinyLfu);
    const l = scanScenario(lru);
    expect(w.hotHeldBefore).toBe(500);
    expect(l.hotHeldBefore).toBe(500);
    expect(w.size).toBe(1000);
    expect(l.size).toBe(1000);
    expect(w.hitRatio).toBeGreaterThan(0.95);
    expect(l.hitRatio).toBeLessThan(0.05);
    expect(w.hitRatio - l.hitRatio).toBeGreaterThan(0.9);
  });

  it('refuses most one-off keys during a scan (admissionsRejected grows); LRU refuses none', () => {
    const w = scanScenario(tinyLfu);
    const l = scanScenario(lru);
    // 10,000 one-off keys: ~500 fill the free part of the main space, and after each halving of the
    // sketch a newer one-off key outscores the older ones on probation and replaces them; the rest is refused.
    expect(w.rejectedDuringScan).toBeGreaterThan(5000);
    expect(l.rejectedDuringScan).toBe(0);
  });

  it('admits, in the end, a new key that keeps being asked for', () => {
    const tier = new TinyLfuMemoryTier<string>({ maxEntries: 100 });
    // The main space full of keys asked for many times.
    for (let pass = 0; pass < 20; pass += 1) for (let i = 0; i < 99; i += 1) access(tier, `resident:${i}`);
    let oneOff = 0;
    const round = () => {
      const hit = access(tier, 'newcomer');
      // Traffic of keys asked for once pushes the newcomer out of the admission window.
      for (let i = 0; i < 5; i += 1) access(tier, `once:${oneOff++}`);
      return hit;
    };
    round();
    // Its first duel: asked for once against residents asked for twenty times. It loses.
    expect(tier.has('newcomer')).toBe(false);
    const rejected = tier.stats().admissionsRejected;
    expect(rejected).toBeGreaterThan(0);

    const hits: boolean[] = [];
    for (let i = 0; i < 1000; i += 1) hits.push(round());
    const firstHit = hits.indexOf(true);
    expect(firstHit).toBeGreaterThan(0);
    // Once admitted it stays: every round after the first hit is a hit.
    expect(hits.slice(firstHit).every(Boolean)).toBe(true);
    expect(tier.has('newcomer')).toBe(true);
    // Meanwhile the one-off keys kept being refused.
    expect(tier.stats().admissionsRejected - rejected).toBeGreaterThan(4000);
  });
});
