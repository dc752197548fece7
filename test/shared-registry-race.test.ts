import { describe, expect, it } from 'vitest';
import type { MultiTierCache } from '../lib/cache/cache.js';
import type { RedisTier } from '../lib/cache/redis-tier.js';
import { SharedRegistry, type RegistryEntry } from '../server/shared-registry.js';
import {
  busSubscribers,
  cleanUpAfterEach,
  openCache,
  rawClient,
  redisServer,
  silent,
} from './helpers/cache-harness.js';

/**
 * The shared registry's withdraw against a real redis-server, with the race that made a moved
 * agent vanish replayed deterministically: the old hub reads the entry, the new hub writes its
 * own, then the old hub's withdraw goes on. The hook sits on the old hub's Redis tier reads, the
 * one step every way of withdrawing has to take, so the order is forced rather than hoped for.
 */

cleanUpAfterEach();

const PREFIX = 'race:registry:';

async function twoHubs() {
  const server = await redisServer();
  const make = () =>
    openCache({
      name: 'registry',
      memory: { maxEntries: 100 },
      redis: { url: server.url, prefix: PREFIX, opTimeoutMs: 1000 },
    });
  const cacheA = make();
  const cacheB = make();
  expect(await cacheA.redisReady(10_000)).toBe(true);
  expect(await cacheB.redisReady(10_000)).toBe(true);
  const raw = rawClient(server.url);
  await busSubscribers(raw, PREFIX, 2);
  return {
    server,
    raw,
    cacheA,
    cacheB,
    hubA: new SharedRegistry(cacheA, 'hub-a', 60_000, silent),
    hubB: new SharedRegistry(cacheB, 'hub-b', 60_000, silent),
  };
}

/** Runs `between` once, right after the cache's next Redis read of `key` answered and before the caller sees the answer. */
function afterNextRedisRead(
  cache: MultiTierCache,
  key: string,
  between: () => Promise<void>,
): { fired: () => boolean } {
  const tier = (cache as unknown as { redis: RedisTier }).redis;
  const read = tier.get.bind(tier);
  let fired = false;
  tier.get = async (k: string) => {
    const bytes = await read(k);
    if (k === key && !fired) {
      fired = true;
      await between();
    }
    return bytes;
  };
  return { fired: () => fired };
}

const agent = (session: string) => ({
  agent_id: 'mover',
  name: 'Mover',
  session_id: session,
  address: '127.0.0.1',
  connected_since: 1,
});

describe('shared registry withdraw', () => {
  it('the old hub withdrawing after reading its own entry does not erase the new hub’s, written in between', async () => {
    const { cacheA, cacheB, hubA, hubB } = await twoHubs();
    await hubA.announce(agent('session-on-a'));
    const hook = afterNextRedisRead(cacheA, 'agent:mover', () => hubB.announce(agent('session-on-b')));

    await hubA.withdraw('mover', 'session-on-a');

    expect(hook.fired()).toBe(true);
    const truth = await cacheB.get<RegistryEntry>('agent:mover', { consistent: true });
    expect(truth).toMatchObject({ hub_id: 'hub-b', session_id: 'session-on-b' });
    expect(await hubA.lookup('mover')).toMatchObject({ hub_id: 'hub-b' });
  });

  it('with nothing written in between, the old hub’s entry is withdrawn everywhere', async () => {
    const { raw, hubA, hubB } = await twoHubs();
    await hubA.announce(agent('session-on-a'));
    expect(await hubB.lookup('mover')).toMatchObject({ hub_id: 'hub-a' });

    await hubA.withdraw('mover', 'session-on-a');

    expect(await raw.exists(`${PREFIX}agent:mover`)).toBe(0);
    expect(await hubA.lookup('mover')).toBeUndefined();
  });
});

describe('deleteIf', () => {
  it('deletes only if the value read still stands: a write between the read and the delete survives, and others hear of a delete', async () => {
    const { raw, cacheA, cacheB } = await twoHubs();
    await cacheA.set('k', { owner: 'a' });
    afterNextRedisRead(cacheA, 'k', () => cacheB.set('k', { owner: 'b' }));
    expect(await cacheA.deleteIf<{ owner: string }>('k', (v) => v.owner === 'a')).toBe(false);
    expect(await cacheB.get('k', { consistent: true })).toEqual({ owner: 'b' });

    // The predicate says no: nothing goes.
    expect(await cacheA.deleteIf<{ owner: string }>('k', (v) => v.owner === 'a')).toBe(false);
    expect(await raw.exists(`${PREFIX}k`)).toBe(1);

    // It says yes and nothing changed: gone from Redis and from the other process's memory.
    expect(await cacheB.get('k')).toEqual({ owner: 'b' });
    expect(await cacheA.deleteIf<{ owner: string }>('k', (v) => v.owner === 'b')).toBe(true);
    expect(await raw.exists(`${PREFIX}k`)).toBe(0);
    await expect.poll(() => cacheB.get('k')).toBeUndefined();
  });

  it('with Redis gone, nothing is deleted there; only this process’s own matching copy goes', async () => {
    const { server, raw, cacheA, cacheB } = await twoHubs();
    await cacheA.set('k', { owner: 'a' });
    await cacheB.get('k');
    // The write's announcement goes out on the next turn; answered before the pause, or (under load)
    // it would time out, be remembered as unsynced and replayed as a delete of 'k' after the resume.
    await expect.poll(() => cacheA.metrics().tiers.redis?.messagesOut).toBe(1);
    server.pause();
    expect(await cacheA.deleteIf<{ owner: string }>('k', (v) => v.owner === 'a')).toBe(false);
    server.resume();
    // Read back through cache A first: its next successful Redis call would also replay anything it
    // had remembered to delete there, and nothing must be.
    await expect.poll(() => cacheA.get('k'), { timeout: 10_000 }).toEqual({ owner: 'a' });
    expect(await raw.exists(`${PREFIX}k`)).toBe(1);
  });
});
