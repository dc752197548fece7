import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TypedEmitter } from '../events.js';
import { ManualClock } from '../manual-clock.fixture.js';
import { Coherence, type CacheBus } from './coherence.js';
import type { MemoryEntry } from './lifetime.js';
import { newTotals } from './options.js';
import { ReadPath } from './read-path.js';
import type { CacheRecord } from './record.js';
import type { BusMessage, RedisTierEvents } from './redis-tier.js';
import { TagVersions } from './tag-versions.js';
import { TinyLfuMemoryTier } from './tinylfu-memory-tier.js';

/**
 * Coherence between processes (coherence.ts) with a bus that is a plain emitter: what "another
 * process" says is emitted on it, what this one says is collected. The real bus (Redis Pub/Sub)
 * is covered in test/cache-redis.test.ts and test/cache-cluster.test.ts.
 */

class FakeBus implements CacheBus {
  readonly events = new TypedEmitter<RedisTierEvents>();
  readonly published: BusMessage[] = [];

  publish(message: BusMessage): Promise<void> {
    this.published.push(message);
    return Promise.resolve();
  }

  fromOtherProcess(message: Omit<BusMessage, 'origin'>): void {
    this.events.emit('message', { origin: 'other', ...message });
  }
}

/** Tag versions as the shared tier holds them; counts how often it is asked. */
function sharedVersions(initial: Record<string, number> = {}) {
  const versions = new Map(Object.entries(initial));
  const asked: string[][] = [];
  return {
    versions,
    asked,
    tagVersions: (tags: readonly string[]) => {
      asked.push([...tags]);
      return Promise.resolve(tags.map((tag) => versions.get(tag) ?? 0));
    },
  };
}

function setup(shared = sharedVersions(), options: { bus?: boolean } = {}) {
  const clock = new ManualClock();
  const bus = options.bus === false ? undefined : new FakeBus();
  const memory = new TinyLfuMemoryTier<MemoryEntry>({ maxEntries: 100, now: () => clock.monotonic() });
  const tagVersions = new TagVersions(shared, undefined);
  const totals = newTotals();
  const reads = new ReadPath({
    clock,
    memory,
    redis: undefined,
    disk: undefined,
    tagVersions,
    maxValueBytes: 1 << 20,
    totals,
  });
  const disk = { dropped: [] as string[], cleared: 0 };
  const coherence = new Coherence({
    bus,
    origin: 'me',
    name: 'test',
    clock,
    memory,
    tagVersions,
    dropFromDisk: (key) => {
      disk.dropped.push(key);
      return Promise.resolve();
    },
    clearDisk: () => {
      disk.cleared += 1;
      return Promise.resolve();
    },
    log: pino({ level: 'silent' }),
  });
  /** A record written now, fresh for ttl, then stale for grace, under these tag versions. */
  const put = (key: string, value: string, o: { ttl?: number; grace?: number; tags?: Record<string, number> } = {}) => {
    const now = clock.now();
    const freshUntil = now + (o.ttl ?? 60_000);
    const tags = Object.keys(o.tags ?? {});
    const record: CacheRecord<string> = {
      value,
      createdAt: now,
      freshUntil,
      staleUntil: freshUntil + (o.grace ?? 0),
      tags,
      tagVersions: tags.map((tag) => o.tags?.[tag] ?? 0),
    };
    reads.remember(key, record, 10);
  };
  return { clock, bus: bus!, memory, tagVersions, reads, coherence, disk, put, shared };
}

describe('coherence: what other processes say', () => {
  it('an invalidation of a key from another process evicts it from memory and from this process’s disk', async () => {
    const { bus, memory, reads, disk, put } = setup();
    put('a', '1');
    put('b', '2');
    bus.fromOtherProcess({ keys: ['a'] });
    expect(memory.has('a')).toBe(false);
    expect(disk.dropped).toEqual(['a']);
    expect(await reads.lookup('a')).toBeUndefined();
    expect((await reads.lookup('b'))?.record.value).toBe('2');
  });

  it('an expiry from another process makes the copy here stale, servable for its grace, not fresh', async () => {
    const { bus, clock, reads, put } = setup();
    put('a', '1', { ttl: 60_000, grace: 5000 });
    bus.fromOtherProcess({ expire: ['a'] });
    const found = await reads.lookup('a');
    const now = clock.monotonic();
    expect(found && now >= found.freshUntil).toBe(true);
    expect(found && now < found.staleUntil).toBe(true);
    await clock.advance(5000);
    expect(await reads.lookup('a')).toBeUndefined();
  });

  it('a tag-version bump kills what was written under the older version, and an older bump heard late changes nothing', async () => {
    const { bus, reads, put, tagVersions } = setup(sharedVersions({ t: 1 }));
    put('tagged', 'v1', { tags: { t: 1 } });
    put('other', 'x', { tags: { u: 1 } });
    expect((await reads.lookup('tagged'))?.record.value).toBe('v1');
    bus.fromOtherProcess({ tags: { t: 2 } });
    expect(await reads.lookup('tagged')).toBeUndefined();
    expect((await reads.lookup('other'))?.record.value).toBe('x');
    // Written under the new version: alive. A late message with version 1 does not revive the old nor kill the new.
    put('tagged', 'v2', { tags: { t: 2 } });
    bus.fromOtherProcess({ tags: { t: 1 } });
    expect((await reads.lookup('tagged'))?.record.value).toBe('v2');
    expect(await tagVersions.current(['t'])).toEqual([2]);
  });

  it('clear from another process empties memory and this process’s disk', () => {
    const { bus, memory, disk, put } = setup();
    put('a', '1');
    put('b', '2');
    bus.fromOtherProcess({ clear: true });
    expect(memory.size).toBe(0);
    expect(disk.cleared).toBe(1);
  });

  it('resync after the bus reconnects: memory and disk are dropped and tag versions are asked of the shared tier again', async () => {
    const shared = sharedVersions({ t: 1 });
    const { bus, memory, disk, reads, put } = setup(shared);
    put('a', '1', { tags: { t: 1 } });
    expect((await reads.lookup('a'))?.record.value).toBe('1');
    expect(shared.asked).toEqual([['t']]);
    // While the bus was down another process bumped t; its message was lost.
    shared.versions.set('t', 2);
    bus.events.emit('resync', undefined);
    expect(memory.size).toBe(0);
    expect(disk.cleared).toBe(1);
    put('a', '1', { tags: { t: 1 } });
    expect(await reads.lookup('a')).toBeUndefined();
    expect(shared.asked).toEqual([['t'], ['t']]);
  });
});

describe('coherence: what this process says', () => {
  it('announcements of one turn go out as one message, stamped with this instance, on the clock’s next turn', async () => {
    const { bus, clock, coherence } = setup();
    coherence.announce({ keys: ['a'] });
    coherence.announce({ keys: ['b'], tags: { t: 3 } });
    coherence.announce({ expire: ['c'] });
    expect(bus.published).toEqual([]);
    await clock.advance(0);
    expect(bus.published).toEqual([{ origin: 'me', keys: ['a', 'b'], expire: ['c'], tags: { t: 3 } }]);
    coherence.announce({ clear: true });
    await clock.advance(0);
    expect(bus.published[1]).toEqual({ origin: 'me', clear: true });
  });

  it('flush() sends what is queued at once (at close), and the turn after finds nothing left to send', async () => {
    const { bus, clock, coherence } = setup();
    coherence.announce({ keys: ['a'] });
    coherence.flush();
    expect(bus.published).toEqual([{ origin: 'me', keys: ['a'] }]);
    await clock.advance(0);
    expect(bus.published).toHaveLength(1);
  });

  it('without a shared tier there is nobody to tell: nothing is queued', async () => {
    const { clock, coherence } = setup(sharedVersions(), { bus: false });
    coherence.announce({ keys: ['a'] });
    expect(clock.pending).toBe(0);
    await clock.advance(0);
  });
});
