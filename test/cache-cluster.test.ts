import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { decodeRecord } from '../lib/cache/record.js';
import {
  busSubscribers,
  cleanUpAfterEach,
  openCache,
  rawCluster,
  redisCluster,
  within,
} from './helpers/cache-harness.js';
import { sleep, waitUntil } from './helpers/wait.js';

/**
 * The multi-tier cache on a real Redis Cluster (three masters; with replicas for the failover): keys spread over
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

/** The port of the live master serving `slot`, as the node on `port` sees the cluster (CLUSTER NODES). */
function slotOwner(port: number, slot: number): number | undefined {
  const lines = execFileSync('redis-cli', ['-p', String(port), 'cluster', 'nodes'], { encoding: 'utf8', timeout: 5000 })
    .trim()
    .split('\n');
  for (const line of lines) {
    const [, address, flags, , , , , , ...ranges] = line.split(' ');
    if (!flags?.includes('master') || flags.includes('fail')) continue;
    for (const range of ranges) {
      const [from, to] = range.split('-').map(Number);
      if (slot >= from! && slot <= (to ?? from)!) return Number(address!.split('@')[0]!.split(':')[1]);
    }
  }
  return undefined;
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
      await waitUntil(
        `b to answer ${key} from memory`,
        async () => {
          const hits = b.metrics().tiers.memory.hits;
          expect(await b.get(key)).toEqual({ key });
          return b.metrics().tiers.memory.hits === hits + 1;
        },
        10_000,
      );
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
    await waitUntil(
      'b to drop every key tagged grp',
      async () => {
        for (const key of keys.slice(2)) if ((await b.get(key)) !== undefined) return false;
        return true;
      },
      10_000,
    );
    // A third cache, starting cold, learns the tag versions from the cluster and serves nothing stale.
    const c = openCache({ name: 'cluster', memory: { maxEntries: 1000 }, redis });
    expect(await c.redisReady(20_000)).toBe(true);
    await busSubscribers(raw, prefix, 3);
    expect(await c.get('k2')).toBeUndefined();
    expect(await c.get('k0')).toBe('new'); // written untagged after the bump
    await a.set('k2', 'again', { tags: ['grp'] });
    await waitUntil(
      'b and c to read k2 written after the bump',
      async () => (await b.get('k2')) === 'again' && (await c.get('k2')) === 'again',
      10_000,
    );

    // A namespace is a tag too.
    await a.namespace('ns').set('x', 1);
    expect(await b.namespace('ns').get('x')).toBe(1);
    await b.namespace('ns').clear();
    await waitUntil('a to drop ns:x', async () => (await a.namespace('ns').get('x')) === undefined, 10_000);

    // clear(): SCAN + DEL on every master.
    await b.clear();
    expect(await keysUnder(raw, prefix)).toEqual([]);
    await waitUntil(
      'a and c to drop everything',
      async () => (await a.get('k0')) === undefined && (await c.get('k2')) === undefined,
      10_000,
    );
    // And tag invalidation still works after the tag versions went with the clear.
    await a.set('t', 1, { tags: ['grp'] });
    expect(await b.get('t')).toBe(1);
    await a.invalidateTags(['grp']);
    await waitUntil('b to drop t', async () => (await b.get('t')) === undefined, 10_000);
  });

  it('caches with different prefixes on one cluster keep apart', async () => {
    const cluster = await redisCluster();
    const raw = rawCluster(cluster);
    const one = openCache({
      name: 'same',
      memory: { maxEntries: 100 },
      redis: { cluster: cluster.seeds, prefix: 'one:', opTimeoutMs: 1000 },
    });
    const two = openCache({
      name: 'same',
      memory: { maxEntries: 100 },
      redis: { cluster: cluster.seeds, prefix: 'two:', opTimeoutMs: 1000 },
    });
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

  it('a master dies: calls keep answering within the bound while its replica takes over, then writes reach the new master', async () => {
    const cluster = await redisCluster({ replicas: 1 });
    const raw = rawCluster(cluster);
    const prefix = 'fo:';
    const a = openCache({
      name: 'failover',
      memory: { maxEntries: 1000 },
      redis: { cluster: cluster.seeds, prefix, opTimeoutMs: 200 },
    });
    expect(await a.redisReady(20_000)).toBe(true);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    for (const key of keys) await a.set(key, `v-${key}`, { ttlMs: 600_000 });

    // The master holding k0's slot, by its port.
    const slot = await raw.cluster('KEYSLOT', `${prefix}k0`);
    const slots = (await raw.cluster('SLOTS')) as unknown as Array<
      [number, number, [string, number, ...unknown[]], ...unknown[]]
    >;
    const owner = slots.find(([from, to]) => slot >= from && slot <= to)!;
    const master = cluster.nodes.find((n) => n.port === owner[2][1])!;
    const survivor = cluster.nodes.find((n) => n !== master)!;
    await master.kill();

    // While the cluster notices and promotes the replica: every call answers, from memory for
    // what this process holds, and none waits much past the 200 ms bound.
    for (let i = 0; i < 15; i += 1) {
      expect(await within(2000, `get k${i} during the failover`, a.get(`k${i}`))).toBe(`v-k${i}`);
      await within(2000, `set during the failover`, a.set(`during-${i}`, i));
      await sleep(100);
    }

    await waitUntil(
      "the replica to take over k0's slot",
      () => slotOwner(survivor.port, slot) !== undefined && slotOwner(survivor.port, slot) !== master.port,
      30_000,
      200,
    );
    // Writes to the dead master's slots land on its successor, by themselves.
    await waitUntil(
      'a write of k0 to reach the promoted replica',
      async () => {
        await a.set('k0', 'after-failover', { ttlMs: 600_000 });
        const bytes = await raw.getBuffer(`${prefix}k0`).catch(() => null);
        return bytes !== null && decodeRecord<string>(bytes)?.value === 'after-failover';
      },
      30_000,
      250,
    );
    // And a process that starts now reads it from the cluster. Its first call also learns the slots
    // (and may be redirected) on a machine busy with the rest of the suite: the 200 ms bound above is
    // what the failover is judged by, not this read, so it gets time enough not to answer a miss.
    const late = openCache({
      name: 'failover',
      memory: { maxEntries: 1000 },
      redis: { cluster: cluster.seeds.filter((n) => n.port !== master.port), prefix, opTimeoutMs: 10_000 },
    });
    expect(await late.redisReady(20_000)).toBe(true);
    expect(await late.get('k0')).toBe('after-failover');
  });
});
