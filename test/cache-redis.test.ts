import { describe, expect, it } from 'vitest';
import type { MultiTierCache } from '../lib/cache/cache.js';
import { encodeRecord } from '../lib/cache/record.js';
import {
  busSubscribers,
  cleanUpAfterEach,
  openCache,
  PeerProcess,
  rawClient,
  redisServer,
  restartRedis,
  tempDir,
  within,
} from './helpers/cache-harness.js';
import { sleep, waitUntil } from './helpers/wait.js';

/**
 * The multi-tier cache against real redis-server processes: tiers in every
 * combination, two processes sharing L2, Redis killed and paused mid-run, warm start from L3,
 * single-flight with the Redis tier, values through Redis, key prefixes. Faults are real: SIGKILL,
 * SIGSTOP, FLUSHALL.
 */

cleanUpAfterEach();

/** Generous: these tests check behaviour, not latency, on a shared two-core machine. */
const OP_TIMEOUT_MS = 1000;

const memory = { maxEntries: 1000 };

type Counts = ReturnType<MultiTierCache['metrics']>;
const delta = (after: Counts, before: Counts) => ({
  memoryHits: after.tiers.memory.hits - before.tiers.memory.hits,
  memoryMisses: after.tiers.memory.misses - before.tiers.memory.misses,
  redisHits: (after.tiers.redis?.hits ?? 0) - (before.tiers.redis?.hits ?? 0),
  redisMisses: (after.tiers.redis?.misses ?? 0) - (before.tiers.redis?.misses ?? 0),
  diskHits: (after.tiers.disk?.hits ?? 0) - (before.tiers.disk?.hits ?? 0),
  diskMisses: (after.tiers.disk?.misses ?? 0) - (before.tiers.disk?.misses ?? 0),
});

/** Runs `read` and returns its value with how the per-tier counters moved meanwhile. */
async function counted<T>(
  cache: MultiTierCache,
  read: () => Promise<T>,
): Promise<{ value: T; moved: ReturnType<typeof delta> }> {
  const before = cache.metrics();
  const value = await read();
  return { value, moved: delta(cache.metrics(), before) };
}

const record = (value: unknown, ttlMs = 60_000) => {
  const now = Date.now();
  return encodeRecord({
    value,
    createdAt: now,
    freshUntil: now + ttlMs,
    staleUntil: now + ttlMs,
    tags: [],
    tagVersions: [],
  });
};

describe('tiers in every combination', () => {
  const combinations = [
    { tiers: 'memory+redis', withRedis: true, withDisk: false },
    { tiers: 'memory+disk', withRedis: false, withDisk: true },
    { tiers: 'memory+redis+disk', withRedis: true, withDisk: true },
  ];

  it.each(combinations)(
    '$tiers: set/get/getOrSet/delete; another instance reads from the shared tier and promotes to memory',
    async ({ withRedis, withDisk }) => {
      const server = withRedis ? await redisServer() : undefined;
      const raw = server ? rawClient(server.url) : undefined;
      const prefix = 'combo:';
      const make = (diskPath: string | undefined) =>
        openCache({
          name: 'combo',
          memory,
          ...(server ? { redis: { url: server.url, prefix, opTimeoutMs: OP_TIMEOUT_MS } } : {}),
          ...(diskPath ? { disk: { path: diskPath, warmStart: false } } : {}),
        });
      const diskA = withDisk ? tempDir() : undefined;
      const a = make(diskA);
      expect(await a.redisReady(10_000)).toBe(withRedis);

      // set → get: a memory hit, no other tier asked.
      await a.set('k', { n: 1 });
      const read = await counted(a, () => a.get('k'));
      expect(read.value).toEqual({ n: 1 });
      expect(read.moved).toEqual({
        memoryHits: 1,
        memoryMisses: 0,
        redisHits: 0,
        redisMisses: 0,
        diskHits: 0,
        diskMisses: 0,
      });

      // A miss asks every lower tier once.
      const miss = await counted(a, () => a.get('absent'));
      expect(miss.value).toBeUndefined();
      expect(miss.moved).toEqual({
        memoryHits: 0,
        memoryMisses: 1,
        redisHits: 0,
        redisMisses: withRedis ? 1 : 0,
        diskHits: 0,
        diskMisses: withDisk ? 1 : 0,
      });

      // getOrSet: the loader once, then the cached value.
      let calls = 0;
      expect(await a.getOrSet('g', () => (calls++, 'loaded'))).toBe('loaded');
      expect(await a.getOrSet('g', () => (calls++, 'again'))).toBe('loaded');
      expect(calls).toBe(1);

      // The writes reached the lower tiers (a loaded value goes to Redis in the background).
      if (raw) {
        await waitUntil('both keys in Redis', async () => (await raw.exists(`${prefix}k`, `${prefix}g`)) === 2, 10_000);
        expect(await raw.pttl(`${prefix}k`)).toBeGreaterThan(0);
      }
      if (withDisk)
        await waitUntil('the disk tier to hold both keys', () => a.metrics().tiers.disk!.entries === 2, 10_000);

      // Another instance: same Redis with its own disk directory, or (memory+disk) the same directory after a restart.
      let b: MultiTierCache;
      if (withRedis) {
        b = make(withDisk ? tempDir() : undefined);
        expect(await b.redisReady(10_000)).toBe(true);
      } else {
        await a.close();
        b = make(diskA);
      }
      const first = await counted(b, () => b.get('k'));
      expect(first.value).toEqual({ n: 1 });
      expect(first.moved).toEqual({
        memoryHits: 0,
        memoryMisses: 1,
        redisHits: withRedis ? 1 : 0,
        redisMisses: 0,
        diskHits: withRedis ? 0 : 1,
        diskMisses: 0,
      });
      // Promoted: the next read is a memory hit.
      const second = await counted(b, () => b.get('k'));
      expect(second.value).toEqual({ n: 1 });
      expect(second.moved).toEqual({
        memoryHits: 1,
        memoryMisses: 0,
        redisHits: 0,
        redisMisses: 0,
        diskHits: 0,
        diskMisses: 0,
      });
      expect(b.metrics().hits).toBe(2);

      // delete: gone from every tier, in every instance.
      await b.delete('k');
      expect(await b.get('k')).toBeUndefined();
      expect(await b.get('g')).toBe('loaded');
      if (raw) {
        expect(await raw.exists(`${prefix}k`)).toBe(0);
        expect(await raw.exists(`${prefix}g`)).toBe(1);
        // a had it in memory: the bus drops it there.
        await waitUntil('a to drop the deleted key', async () => (await a.get('k')) === undefined, 10_000);
      }
      if (diskA) {
        // Read a's directory afresh, without Redis: the deletion reached that disk too (with Redis,
        // through the bus message from b), and the other key is still there.
        await a.close();
        await b.close();
        const reopened = openCache({ name: 'combo', memory, disk: { path: diskA, warmStart: false } });
        expect(await reopened.get('g')).toBe('loaded');
        expect(await reopened.get('k')).toBeUndefined();
      }
    },
  );

  it('memory+redis+disk: with the key gone from memory and Redis, the disk tier answers and the value is promoted', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const dir = tempDir();
    const options = {
      name: 'l3',
      memory,
      redis: { url: server.url, prefix: 'l3:', opTimeoutMs: OP_TIMEOUT_MS },
      disk: { path: dir, warmStart: false },
    };
    const a = openCache(options);
    expect(await a.redisReady(10_000)).toBe(true);
    await a.set('k', 'on disk');
    await a.close();
    expect(await raw.del('l3:k')).toBe(1);

    const b = openCache(options);
    expect(await b.redisReady(10_000)).toBe(true);
    const first = await counted(b, () => b.get('k'));
    expect(first.value).toBe('on disk');
    expect(first.moved).toEqual({
      memoryHits: 0,
      memoryMisses: 1,
      redisHits: 0,
      redisMisses: 1,
      diskHits: 1,
      diskMisses: 0,
    });
    const second = await counted(b, () => b.get('k'));
    expect(second.value).toBe('on disk');
    expect(second.moved.memoryHits).toBe(1);
  });
});

/** One side of the two-process scenario: this process's cache or the peer process's, driven alike. */
interface Side {
  name: string;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, tags?: string[]): Promise<void>;
  delete(key: string): Promise<void>;
  invalidateTags(tags: string[]): Promise<void>;
  nsGet(ns: string, key: string): Promise<unknown>;
  nsSet(ns: string, key: string, value: unknown): Promise<void>;
  nsClear(ns: string): Promise<void>;
  clear(): Promise<void>;
  memoryHits(): Promise<number>;
  messagesIn(): Promise<number>;
}

function local(cache: MultiTierCache): Side {
  return {
    name: 'this process',
    get: (key) => cache.get(key),
    set: (key, value, tags) => cache.set(key, value, tags ? { tags } : {}),
    delete: (key) => cache.delete(key),
    invalidateTags: (tags) => cache.invalidateTags(tags),
    nsGet: (ns, key) => cache.namespace(ns).get(key),
    nsSet: (ns, key, value) => cache.namespace(ns).set(key, value),
    nsClear: (ns) => cache.namespace(ns).clear(),
    clear: () => cache.clear(),
    memoryHits: () => Promise.resolve(cache.metrics().tiers.memory.hits),
    messagesIn: () => Promise.resolve(cache.metrics().tiers.redis!.messagesIn),
  };
}

function remote(peer: PeerProcess): Side {
  return {
    name: 'the peer process',
    get: (key) => peer.get(key),
    set: (key, value, tags) => peer.call('set', key, value, tags ? { tags } : {}),
    delete: (key) => peer.call('delete', key),
    invalidateTags: (tags) => peer.call('invalidateTags', tags),
    nsGet: (ns, key) => peer.nsGet(ns, key),
    nsSet: (ns, key, value) => peer.call('nsSet', ns, key, value),
    nsClear: (ns) => peer.call('nsClear', ns),
    clear: () => peer.call('clear'),
    memoryHits: async () => (await peer.metrics()).memoryHits,
    messagesIn: async () => (await peer.metrics()).messagesIn,
  };
}

describe('two processes sharing L2', () => {
  async function setUp() {
    const server = await redisServer();
    const prefix = 'shared:';
    const redis = { url: server.url, prefix, opTimeoutMs: OP_TIMEOUT_MS };
    const cache = openCache({ name: 'shared', memory, redis, disk: { path: tempDir() } });
    const peer = await PeerProcess.start({ name: 'shared', memory, redis, disk: { path: tempDir() } });
    expect(await cache.redisReady(10_000)).toBe(true);
    expect(await peer.call('ready', 10_000)).toBe(true);
    await busSubscribers(rawClient(server.url), prefix, 2);
    return { here: local(cache), there: remote(peer) };
  }

  /** The writer changes what the reader holds in its memory tier; the reader's copy goes within a short time. */
  async function scenario(writer: Side, reader: Side) {
    const soon = 10_000;
    // The reader writes them itself, so they are in its memory at once.
    await reader.set('k', 1);
    await reader.set('d', 1);
    await reader.set('t', 1, ['grp']);
    await reader.nsSet('ns', 'n', 1);
    await reader.set('c', 1);
    // Shared: the writer reads them from Redis.
    for (const key of ['k', 'd', 't', 'c']) expect(await writer.get(key)).toBe(1);
    expect(await writer.nsGet('ns', 'n')).toBe(1);
    // All five are in the reader's memory: reading them is five memory hits.
    const hits = await reader.memoryHits();
    for (const key of ['k', 'd', 't', 'c']) expect(await reader.get(key)).toBe(1);
    expect(await reader.nsGet('ns', 'n')).toBe(1);
    expect((await reader.memoryHits()) - hits).toBe(5);

    await writer.set('k', 2);
    await waitUntil(`${reader.name} to read the new value of k`, async () => (await reader.get('k')) === 2, soon);
    await writer.delete('d');
    await waitUntil(`${reader.name} to drop the deleted d`, async () => (await reader.get('d')) === undefined, soon);
    await writer.invalidateTags(['grp']);
    await waitUntil(
      `${reader.name} to drop t (tag invalidated)`,
      async () => (await reader.get('t')) === undefined,
      soon,
    );
    await writer.nsClear('ns');
    await waitUntil(
      `${reader.name} to drop ns:n (namespace cleared)`,
      async () => (await reader.nsGet('ns', 'n')) === undefined,
      soon,
    );
    // Values written after the invalidations are served.
    await writer.set('t', 3, ['grp']);
    await writer.nsSet('ns', 'n', 3);
    await waitUntil(
      `${reader.name} to read t and ns:n written anew`,
      async () => (await reader.get('t')) === 3 && (await reader.nsGet('ns', 'n')) === 3,
      soon,
    );
    // clear(): every tier everywhere, the reader's own disk included (c is there: the reader wrote it).
    await writer.clear();
    await waitUntil(
      `${reader.name} to drop everything (clear)`,
      async () => (await reader.get('c')) === undefined && (await reader.get('k')) === undefined,
      soon,
    );
    expect(await reader.messagesIn()).toBeGreaterThanOrEqual(5);
    // And nothing comes back later (the reader's disk copy would).
    await sleep(200);
    expect(await reader.get('c')).toBeUndefined();
  }

  it('the peer process writes, deletes, invalidates tags, clears a namespace and everything → this process drops its copies', async () => {
    const { here, there } = await setUp();
    await scenario(there, here);
  });

  it('this process writes, deletes, invalidates tags, clears a namespace and everything → the peer process drops its copies', async () => {
    const { here, there } = await setUp();
    await scenario(here, there);
  });
});

describe('Redis failing mid-run', () => {
  const opTimeoutMs = 200;
  /** Every call settles before this: the op timeout plus generous slack ("never hangs", not a latency figure). */
  const bound = opTimeoutMs + 1000;

  async function setUp(name: string) {
    const server = await redisServer();
    const prefix = `${name}:`;
    const redis = { url: server.url, prefix, opTimeoutMs, failureThreshold: 3, cooldownMs: 100 };
    const a = openCache({ name, memory, redis, disk: { path: tempDir() } });
    const b = openCache({ name, memory, redis });
    expect(await a.redisReady(10_000)).toBe(true);
    expect(await b.redisReady(10_000)).toBe(true);
    await busSubscribers(rawClient(server.url), prefix, 2);
    for (let i = 0; i < 10; i += 1) {
      await a.set(`mem${i}`, i);
      await a.set(`disk${i}`, i, { tiers: ['redis', 'disk'] }); // not in memory: only L3 can answer it in an outage
    }
    // b's own write: in its memory at once. (Read from Redis after a's write, the copy could still
    // be dropped by a's invalidation for that very write, arriving just after the read.)
    await b.set('shared', 'old');
    return { server, a, b, prefix };
  }

  /** get/set/getOrSet/delete/invalidateTags keep answering from L1/L3, each within the bound. */
  async function keepsAnswering(a: MultiTierCache, b: MultiTierCache, rounds: number) {
    for (let round = 0; round < rounds; round += 1) {
      for (let i = 0; i < 10; i += 1) {
        expect(await within(bound, 'get from memory', a.get(`mem${i}`))).toBe(i);
        expect(await within(bound, 'get from disk', a.get(`disk${i}`))).toBe(i);
      }
      await within(bound, 'set', a.set(`new${round}`, round));
      expect(await within(bound, 'get what was just set', a.get(`new${round}`))).toBe(round);
      expect(
        await within(
          bound,
          'getOrSet',
          a.getOrSet(`load${round}`, () => `loaded${round}`),
        ),
      ).toBe(`loaded${round}`);
      expect(
        await within(
          bound,
          'getOrSet again',
          a.getOrSet(`load${round}`, () => 'twice'),
        ),
      ).toBe(`loaded${round}`);
      expect(await within(bound, 'get a missing key', a.get(`nowhere${round}`))).toBeUndefined();
      await within(bound, 'delete', a.delete(`new${round}`));
      expect(await within(bound, 'get a deleted key', a.get(`new${round}`))).toBeUndefined();
      await within(bound, 'invalidateTags', a.invalidateTags([`tag${round}`]));
      expect(await within(bound, 'get from the other cache’s memory', b.get('shared'))).toBe('old');
      await sleep(60); // let cooldowns pass now and then, so half-open probes are tried too
    }
  }

  it(
    'SIGKILL: answers from L1/L3 within the bound, counts errors, opens the breaker; recovers by itself on ' +
      'restart and drops L1 and L3 on resync',
    async () => {
      const { server, a, b, prefix } = await setUp('outage');
      await server.kill();
      await keepsAnswering(a, b, 6);

      const stats = a.metrics().tiers.redis!;
      expect(stats.connected).toBe(false);
      expect(stats.errors + stats.timeouts).toBeGreaterThanOrEqual(3);
      expect(stats.breakerOpens).toBeGreaterThanOrEqual(1);
      expect(stats.skipped).toBeGreaterThan(0);

      const again = await restartRedis(server);
      await waitUntil(
        'both caches to reconnect by themselves',
        () => a.metrics().tiers.redis!.connected && b.metrics().tiers.redis!.connected,
        30_000,
        20,
      );
      const raw = rawClient(again.url);
      await busSubscribers(raw, prefix, 2);
      // Writes reach Redis again (the breaker closed on reconnect), and the other cache reads them.
      await a.set('back', 'yes');
      expect(await raw.exists(`${prefix}back`)).toBe(1);
      expect(await b.get('back')).toBe('yes');
      expect(a.metrics().tiers.redis!.breaker).toBe('closed');

      // b's bus was down: invalidations may have been lost, so b dropped its memory on resync. A
      // value written meanwhile without a bus message is what b reads — not its old copy.
      await raw.set(`${prefix}shared`, record('new'), 'PX', 60_000);
      await waitUntil(
        'b to read the value written behind its back',
        async () => (await b.get('shared')) === 'new',
        10_000,
      );
      // a's disk went on resync too (what was invalidated during the gap could be there): nothing of
      // before the outage is served until written again.
      await waitUntil(
        'a to drop what it held before the outage',
        async () => (await a.get('disk0')) === undefined && (await a.get('mem0')) === undefined,
        10_000,
      );
    },
  );

  it(
    'SIGSTOP (a hang, not a crash): calls still answer within the bound; after SIGCONT writes reach Redis ' +
      'again, and what changed meanwhile is not read back',
    async () => {
      const { server, a, b, prefix } = await setUp('paused');
      for (const key of ['gone', 'changed', 'tagged'])
        await a.set(key, 'before', key === 'tagged' ? { tags: ['t'] } : {});
      for (const key of ['gone', 'changed', 'tagged']) expect(await b.get(key)).toBe('before');
      server.pause();
      try {
        await keepsAnswering(a, b, 6);
        const stats = a.metrics().tiers.redis!;
        expect(stats.timeouts).toBeGreaterThanOrEqual(3);
        expect(stats.breakerOpens).toBeGreaterThanOrEqual(1);
        // Changes Redis cannot take now (the circuit is open, or the call times out).
        await within(bound, 'delete', a.delete('gone'));
        await within(bound, 'set', a.set('changed', 'after'));
        await within(bound, 'invalidateTags', a.invalidateTags(['t']));
        expect(await a.get('gone')).toBeUndefined();
        expect(await a.get('changed')).toBe('after');
        expect(await a.get('tagged')).toBeUndefined();
      } finally {
        server.resume();
      }
      const raw = rawClient(server.url);
      // The connection never dropped: the breaker closes after its cooldown, on the first probe that succeeds.
      await waitUntil(
        'a write to reach Redis after SIGCONT',
        async () => {
          await a.set('after', 'resumed');
          return (await raw.exists(`${prefix}after`)) === 1;
        },
        30_000,
        100,
      );
      await waitUntil('b to read it', async () => (await b.get('after')) === 'resumed', 10_000);
      // Redis kept what it had before the pause; neither cache serves it back.
      const current = async () => [
        await a.get('gone'),
        await a.get('changed'),
        await a.get('tagged'),
        await b.get('gone'),
        await b.get('changed'),
        await b.get('tagged'),
      ];
      const expected = [undefined, 'after', undefined, undefined, undefined, undefined];
      await waitUntil(
        'the changes made during the pause to hold everywhere',
        async () => {
          const now = await current();
          // b may have nothing for 'changed' (reloads it) or a's new value; never the old one.
          if (now[4] === 'after') now[4] = undefined;
          return JSON.stringify(now) === JSON.stringify(expected);
        },
        10_000,
      );
      // Proves a negative: a late bus message or disk copy does not bring 'before' back; nothing marks "no more".
      await sleep(300);
      const later = await current();
      expect(later[4]).not.toBe('before');
      expect(later.filter((value) => value === 'before')).toEqual([]);
    },
  );
});

describe('a gap in the invalidation bus', () => {
  it('Pub/Sub connections killed: what was invalidated meanwhile is not served again, from memory or disk', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const prefix = 'gap:';
    const redis = { url: server.url, prefix, opTimeoutMs: OP_TIMEOUT_MS };
    const a = openCache({ name: 'gap', memory, redis });
    const b = openCache({ name: 'gap', memory, redis, disk: { path: tempDir() } });
    expect(await a.redisReady(10_000)).toBe(true);
    expect(await b.redisReady(10_000)).toBe(true);
    await busSubscribers(raw, prefix, 2);
    await b.set('deleted', 'old'); // in b's memory and disk
    await b.set('tagged', 'old', { tags: ['grp'] });
    const heard = b.metrics().tiers.redis!.messagesIn;

    // Both subscribers drop; ioredis reconnects them after its backoff (200 ms at first).
    expect(await raw.client('KILL', 'TYPE', 'pubsub')).toBe(2);
    await a.delete('deleted');
    await a.invalidateTags(['grp']);
    await busSubscribers(raw, prefix, 2);
    // b heard nothing of it (else this test would prove nothing)…
    expect(b.metrics().tiers.redis!.messagesIn).toBe(heard);
    // …yet, once subscribed again, serves neither the deleted key nor the invalidated one.
    await waitUntil(
      'b to stop serving what was invalidated during the gap',
      async () => (await b.get('deleted')) === undefined && (await b.get('tagged')) === undefined,
      10_000,
    );
    // Proves a negative: it stays dropped (no late reload from b's disk); there is no event for "stays".
    await sleep(200);
    expect(await b.get('deleted')).toBeUndefined();
    expect(await b.get('tagged')).toBeUndefined();
    // And the bus works again.
    await b.set('after', 1);
    await a.set('after', 2);
    await waitUntil('b to hear of a’s write', async () => (await b.get('after')) === 2, 10_000);
  });
});

describe('tag invalidation when Redis has lost its tag versions', () => {
  it('after FLUSHALL, an invalidation still drops values tagged before it, in every process', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const redis = { url: server.url, prefix: 'flush:', opTimeoutMs: OP_TIMEOUT_MS };
    const a = openCache({ name: 'flush', memory, redis });
    const b = openCache({ name: 'flush', memory, redis });
    expect(await a.redisReady(10_000)).toBe(true);
    expect(await b.redisReady(10_000)).toBe(true);
    await busSubscribers(raw, 'flush:', 2);
    await a.set('t', 1, { tags: ['grp'] });
    await a.invalidateTags(['grp']);
    await a.set('t', 2, { tags: ['grp'] }); // in a's memory, under the tag's current version
    await b.set('u', 2, { tags: ['grp'] }); // in b's memory, likewise
    expect(await b.get('t')).toBe(2);
    expect(await raw.flushall()).toBe('OK'); // the tag versions go with everything else
    await a.invalidateTags(['grp']);
    expect(await a.get('t')).toBeUndefined();
    await waitUntil('b to drop u', async () => (await b.get('u')) === undefined, 10_000);
    // And values tagged afterwards live.
    await a.set('t', 3, { tags: ['grp'] });
    await waitUntil('b to read t = 3', async () => (await b.get('t')) === 3, 10_000);
  });

  it('after a restart of Redis (no persistence), an invalidation still drops values a process kept on disk', async () => {
    const server = await redisServer();
    const dir = tempDir();
    const options = {
      name: 'tagrestart',
      memory,
      redis: { url: server.url, prefix: 'tagrestart:', opTimeoutMs: OP_TIMEOUT_MS },
      disk: { path: dir },
    };
    const a = openCache(options);
    expect(await a.redisReady(10_000)).toBe(true);
    await a.set('t', 1, { tags: ['grp'] });
    await a.invalidateTags(['grp']);
    await a.set('t', 2, { tags: ['grp'] });
    await a.close();
    // Redis restarts empty while the process is down; the process comes back warm from its disk.
    await server.kill();
    const again = await restartRedis(server);
    const restarted = openCache(options);
    expect(await restarted.redisReady(10_000)).toBe(true);
    await busSubscribers(rawClient(again.url), 'tagrestart:', 1);
    expect(await restarted.get('t')).toBe(2); // warm from disk, still valid
    await restarted.invalidateTags(['grp']);
    expect(await restarted.get('t')).toBeUndefined();
  });
});

describe('restart → warm from L3 with Redis present', () => {
  it('a new instance on the same disk directory starts with the entries in memory', async () => {
    const server = await redisServer();
    const dir = tempDir();
    const options = {
      name: 'warm',
      memory,
      redis: { url: server.url, prefix: 'warm:', opTimeoutMs: OP_TIMEOUT_MS },
      disk: { path: dir },
    };
    const a = openCache(options);
    expect(await a.redisReady(10_000)).toBe(true);
    expect(a.metrics().warmStart?.entries).toBe(0);
    for (let i = 0; i < 20; i += 1) await a.set(`w${i}`, { i });
    await a.close();

    const again = openCache(options);
    expect(again.metrics().warmStart?.entries).toBe(20);
    expect(again.metrics().tiers.memory.entries).toBe(20);
    const reads = await counted(again, async () => {
      const values = [];
      for (let i = 0; i < 20; i += 1) values.push(await again.get(`w${i}`));
      return values;
    });
    expect(reads.value).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    expect(reads.moved).toEqual({
      memoryHits: 20,
      memoryMisses: 0,
      redisHits: 0,
      redisMisses: 0,
      diskHits: 0,
      diskMisses: 0,
    });
  });
});

describe('single-flight with the Redis tier', () => {
  it('1,000 concurrent callers of one missing key → one loader call, every caller gets its value', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const redis = { url: server.url, prefix: 'sf:', opTimeoutMs: OP_TIMEOUT_MS };
    const a = openCache({ name: 'sf', memory, redis });
    expect(await a.redisReady(10_000)).toBe(true);

    let calls = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const callers = Array.from({ length: 1000 }, () =>
      a.getOrSet('hot', async () => {
        calls += 1;
        await gate;
        return { answer: 42 };
      }),
    );
    // Hold the load until every caller has joined it.
    await waitUntil('999 callers to join the load', () => a.metrics().singleFlightJoins === 999, 20_000);
    release();
    const results = await Promise.all(callers);
    expect(calls).toBe(1);
    expect(results.every((r) => r.answer === 42)).toBe(true);
    expect(a.metrics().loads).toBe(1);
    await waitUntil('the loaded value in Redis', async () => (await raw.exists('sf:hot')) === 1, 10_000); // written in the background

    // A loader that answers at once, 1,000 callers in one go: still one call.
    let instantCalls = 0;
    const instant = await Promise.all(
      Array.from({ length: 1000 }, () => a.getOrSet('instant', () => (instantCalls++, 'now'))),
    );
    expect(instantCalls).toBe(1);
    expect(new Set(instant)).toEqual(new Set(['now']));

    // Another instance finds the value in Redis: its loader is not called at all.
    const b = openCache({ name: 'sf', memory, redis });
    expect(await b.redisReady(10_000)).toBe(true);
    let bCalls = 0;
    const fromB = await Promise.all(
      Array.from({ length: 1000 }, () => b.getOrSet('hot', () => (bCalls++, { answer: 0 }))),
    );
    expect(bCalls).toBe(0);
    expect(fromB.every((r) => r.answer === 42)).toBe(true);
  });
});

describe('values through Redis', () => {
  it('Date, Buffer, Map, Set, bigint, typed arrays, RegExp, NaN, -0, undefined, nested and cyclic values round-trip to another instance', async () => {
    const server = await redisServer();
    const redis = { url: server.url, prefix: 'rt:', opTimeoutMs: OP_TIMEOUT_MS };
    const a = openCache({ name: 'rt', memory, redis });
    const b = openCache({ name: 'rt', memory, redis });
    expect(await a.redisReady(10_000)).toBe(true);
    expect(await b.redisReady(10_000)).toBe(true);

    const value: Record<string, unknown> = {
      date: new Date('2026-01-02T03:04:05.678Z'),
      buffer: Buffer.from([0, 1, 2, 254, 255]),
      map: new Map<unknown, unknown>([
        ['a', { deep: [1, { big: 2n }] }],
        [3, new Set(['x'])],
      ]),
      set: new Set([1, 'two', 3n]),
      bigint: 2n ** 70n + 1n,
      negative: -(2n ** 64n),
      typed: new Float64Array([1.5, -2.25]),
      regexp: /fo+\d/giu,
      nan: NaN,
      negativeZero: -0,
      undef: undefined,
      nil: null,
      text: 'ünïcødé ✓ 🚀',
      nested: { a: { b: { c: [1, [2, [3, { d: new Date(0) }]]] } } },
      sparse: [1, , 3], // eslint-disable-line no-sparse-arrays
    };
    value.self = value;
    await a.set('v', value);

    const read = await counted(b, () => b.get<Record<string, unknown>>('v'));
    expect(read.moved.redisHits).toBe(1);
    const got = read.value!;
    expect(got).toEqual(value);
    expect(got.date).toBeInstanceOf(Date);
    expect((got.date as Date).toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(Buffer.isBuffer(got.buffer)).toBe(true);
    expect([...(got.buffer as Buffer)]).toEqual([0, 1, 2, 254, 255]);
    expect(got.map).toBeInstanceOf(Map);
    expect((got.map as Map<unknown, unknown>).get('a')).toEqual({ deep: [1, { big: 2n }] });
    expect(got.set).toBeInstanceOf(Set);
    expect(got.bigint).toBe(2n ** 70n + 1n);
    expect(got.negative).toBe(-(2n ** 64n));
    expect(got.typed).toBeInstanceOf(Float64Array);
    expect(got.regexp).toEqual(/fo+\d/giu);
    expect(Number.isNaN(got.nan)).toBe(true);
    expect(Object.is(got.negativeZero, -0)).toBe(true);
    expect('undef' in got).toBe(true);
    expect(got.nil).toBeNull();
    expect(got.text).toBe('ünïcødé ✓ 🚀');
    expect(got.self).toBe(got);
    expect(1 in (got.sparse as unknown[])).toBe(false);
  });

  it('a function cannot be stored: set() rejects it with CACHE_UNSERIALIZABLE and Redis is left alone', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const a = openCache({ name: 'fn', memory, redis: { url: server.url, prefix: 'fn:', opTimeoutMs: OP_TIMEOUT_MS } });
    expect(await a.redisReady(10_000)).toBe(true);
    await expect(a.set('f', { run: () => 1 })).rejects.toMatchObject({ code: 'CACHE_UNSERIALIZABLE' });
    expect(await raw.exists('fn:f')).toBe(0);
  });
});

describe('clear() with many keys', () => {
  it('resolves once Redis holds none of them, so no other process reads one back after the announcement', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const prefix = 'many:';
    // A tight bound, as in production (50 ms there): clearing takes far longer than one operation's bound.
    const redis = { url: server.url, prefix, opTimeoutMs: 500, failureThreshold: 1000 };
    const a = openCache({ name: 'many', memory, redis });
    const b = openCache({ name: 'many', memory, redis });
    expect(await a.redisReady(10_000)).toBe(true);
    expect(await b.redisReady(10_000)).toBe(true);
    await busSubscribers(raw, prefix, 2);
    const count = 20_000;
    const pipeline = raw.pipeline();
    for (let i = 0; i < count; i += 1) pipeline.set(`${prefix}k${i}`, record(i), 'PX', 60_000);
    await pipeline.exec();
    await b.set('mine', 'b'); // in b's memory

    await a.clear();
    expect(await raw.dbsize()).toBe(0);
    expect(a.metrics().tiers.redis!.timeouts).toBe(0);
    await waitUntil('b to drop its memory', async () => (await b.get('mine')) === undefined, 10_000);
    for (const i of [0, count / 2, count - 1]) expect(await b.get(`k${i}`)).toBeUndefined();
  });
});

describe('key prefixes', () => {
  it('two caches with different prefixes on one Redis see neither each other’s values nor each other’s invalidations', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const make = (prefix: string) =>
      openCache({ name: 'same-name', memory, redis: { url: server.url, prefix, opTimeoutMs: OP_TIMEOUT_MS } });
    const one = make('app1:');
    const two = make('app2:');
    expect(await one.redisReady(10_000)).toBe(true);
    expect(await two.redisReady(10_000)).toBe(true);
    await busSubscribers(raw, 'app1:', 1);
    await busSubscribers(raw, 'app2:', 1);

    await one.set('k', 'one', { tags: ['grp'] });
    expect(await two.get('k')).toBeUndefined();
    await two.set('k', 'two', { tags: ['grp'] });
    expect(await raw.get('app1:k')).not.toBeNull();
    expect(await raw.get('app2:k')).not.toBeNull();
    expect((await raw.keys('*')).filter((key) => !key.startsWith('app1:') && !key.startsWith('app2:'))).toEqual([]);

    // Fresh instances read each prefix's own value from Redis.
    const oneAgain = make('app1:');
    const twoAgain = make('app2:');
    expect(await oneAgain.redisReady(10_000)).toBe(true);
    expect(await twoAgain.redisReady(10_000)).toBe(true);
    expect(await oneAgain.get('k')).toBe('one');
    expect(await twoAgain.get('k')).toBe('two');

    // Invalidations stay within a prefix: tags, deletes and clear of app1 leave app2 alone.
    await one.invalidateTags(['grp']);
    await waitUntil('app1’s other instance to drop k', async () => (await oneAgain.get('k')) === undefined, 10_000);
    const heard = twoAgain.metrics().tiers.redis!.messagesIn;
    await one.set('k2', 'one');
    await one.delete('k2');
    await one.clear();
    await sleep(200); // any (wrong) bus message would have arrived by now
    expect(await two.get('k')).toBe('two');
    expect(await twoAgain.get('k')).toBe('two');
    expect(twoAgain.metrics().tiers.redis!.messagesIn).toBe(heard);
    expect(await raw.get('app2:k')).not.toBeNull();
    expect(await raw.keys('app1:*')).toEqual([]);
  });

  it('clear() takes the prefix literally: glob characters in it match nothing else', async () => {
    const server = await redisServer();
    const raw = rawClient(server.url);
    const make = (prefix: string) =>
      openCache({ name: 'glob', memory, redis: { url: server.url, prefix, opTimeoutMs: OP_TIMEOUT_MS } });
    const glob = make('a?[b]*:');
    const plain = make('ax[b]z:');
    const other = make('ab*:');
    for (const cache of [glob, plain, other]) expect(await cache.redisReady(10_000)).toBe(true);
    await glob.set('k', 'glob');
    await plain.set('k', 'plain');
    await other.set('k', 'other');
    await glob.clear();
    expect(await raw.get('a?[b]*:k')).toBeNull();
    expect(await raw.get('ax[b]z:k')).not.toBeNull();
    expect(await raw.get('ab*:k')).not.toBeNull();
  });
});
