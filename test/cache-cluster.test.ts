import { describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { busSubscribers, cleanUpAfterEach, openCache, rawCluster, redisCluster } from './helpers/cache-harness.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The multi-tier cache on a real Redis Cluster (three masters, no replicas): keys spread over
 * slots on different nodes, a key prefix, the invalidation bus and tag versions across nodes.
 */

cleanUpAfterEach();

/** Every key under the prefix, from every master (SCAN per node: a Cluster has no global keyspace). */
async function keysUnder(client: Cluster, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of client.nodes('master')) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return keys.sort();
}

describe('Redis Cluster with a key prefix', () => {
  it('set/get/delete/invalidate across two caches; keys carry the prefix and spread over the nodes; tag bumps and clear work across slots', async () => {
    const cluster = await redisCluster();
    const raw = rawCluster(cluster);
    const prefix = 'clu:';
    const redis = { cluster: cluster.seeds, prefix, opTimeoutMs: 1000 };
    const a = openCache({ name: 'cluster', memory: { maxEntries: 1000 }, redis });
    const b = openCache({ name: 'cluster', memory: { maxEntries: 1000 }, redis });
    expect(await a.redisReady(20_000)).toBe(true);
    expect(await b.redisReady(20_000)).toBe(true);
    await busSubscribers(raw, prefix, 2);

    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    for (const key of keys) await a.set(key, { key }, { tags: ['grp', `own-${key}`] });

    // Stored under the prefix, on more than one node (so cross-slot handling is exercised).
    const stored = await keysUnder(raw, prefix);
    expect(stored.filter((key) => !key.includes('{tag-versions}'))).toEqual(keys.map((key) => prefix + key).sort());
    let nodesHolding = 0;
    for (const node of raw.nodes('master')) {
      const all = await node.keys('*');
      // Nothing outside the prefix on any node.
      expect(all.filter((key) => !key.startsWith(prefix))).toEqual([]);
      if (all.some((key) => !key.includes('{tag-versions}'))) nodesHolding += 1;
    }
    expect(nodesHolding).toBeGreaterThan(1);

    // b reads every key from Redis (its memory is empty: every first read goes there)…
    const before = b.metrics();
    for (const key of keys) expect(await b.get(key)).toEqual({ key });
    expect(b.metrics().tiers.redis!.hits - before.tiers.redis!.hits).toBe(keys.length);
    // …and then holds it in memory. (a's messages for its own writes may still arrive and drop a
    // copy: a publishes through any node, so they can come late and out of order. Read again then.)
    for (const key of keys) {
      await waitUntil(`b to answer ${key} from memory`, async () => {
        const hits = b.metrics().tiers.memory.hits;
        expect(await b.get(key)).toEqual({ key });
        return b.metrics().tiers.memory.hits === hits + 1;
      }, 10_000);
    }

    // The bus crosses the cluster: a new value and a delete reach b's memory.
    await a.set('k0', 'new');
    await waitUntil('b to read the new k0', async () => (await b.get('k0')) === 'new', 10_000);
    await a.delete('k1');
    expect(await raw.exists(`${prefix}k1`)).toBe(0);
    await waitUntil('b to drop k1', async () => (await b.get('k1')) === undefined, 10_000);

    // One tag on keys in many slots, bumped together with another tag: every tagged key dies, in both caches.
    await a.invalidateTags(['grp', 'unused']);
    for (const key of keys.slice(2)) expect(await a.get(key)).toBeUndefined();
    await waitUntil('b to drop every key tagged grp', async () => {
      for (const key of keys.slice(2)) if ((await b.get(key)) !== undefined) return false;
      return true;
    }, 10_000);
    // A third cache, starting cold, learns the tag versions from the cluster and serves nothing stale.
    const c = openCache({ name: 'cluster', memory: { maxEntries: 1000 }, redis });
    expect(await c.redisReady(20_000)).toBe(true);
    await busSubscribers(raw, prefix, 3);
    expect(await c.get('k2')).toBeUndefined();
    expect(await c.get('k0')).toBe('new'); // written untagged after the bump
    await a.set('k2', 'again', { tags: ['grp'] });
    await waitUntil('b and c to read k2 written after the bump', async () => (await b.get('k2')) === 'again' && (await c.get('k2')) === 'again', 10_000);

    // A namespace is a tag too.
    await a.namespace('ns').set('x', 1);
    expect(await b.namespace('ns').get('x')).toBe(1);
    await b.namespace('ns').clear();
    await waitUntil('a to drop ns:x', async () => (await a.namespace('ns').get('x')) === undefined, 10_000);

    // clear(): SCAN + DEL on every master.
    await b.clear();
    expect(await keysUnder(raw, prefix)).toEqual([]);
    await waitUntil('a and c to drop everything', async () => (await a.get('k0')) === undefined && (await c.get('k2')) === undefined, 10_000);
    // And tag invalidation still works after the tag versions went with the clear.
    await a.set('t', 1, { tags: ['grp'] });
    expect(await b.get('t')).toBe(1);
    await a.invalidateTags(['grp']);
    await waitUntil('b to drop t', async () => (await b.get('t')) === undefined, 10_000);
  });

  it('caches with different prefixes on one cluster keep apart', async () => {
    const cluster = await redisCluster();
    const raw = rawCluster(cluster);
    const one = openCache({ name: 'same', memory: { maxEntries: 100 }, redis: { cluster: cluster.seeds, prefix: 'one:', opTimeoutMs: 1000 } });
    const two = openCache({ name: 'same', memory: { maxEntries: 100 }, redis: { cluster: cluster.seeds, prefix: 'two:', opTimeoutMs: 1000 } });
    expect(await one.redisReady(20_000)).toBe(true);
    expect(await two.redisReady(20_000)).toBe(true);
    await one.set('k', 'one');
    await two.set('k', 'two');
    expect(await raw.get('one:k')).not.toBeNull();
    expect(await raw.get('two:k')).not.toBeNull();
    await one.clear();
    expect(await keysUnder(raw, 'one:')).toEqual([]);
    expect(await keysUnder(raw, 'two:')).toEqual(['two:k']);
    expect(await two.get('k')).toBe('two');
  });
});
