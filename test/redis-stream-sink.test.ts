import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, startRedisCluster, type RedisCluster, type RedisProcess } from './helpers/redis-server.js';
import { waitUntil } from './helpers/wait.js';
import type { SinkEvent, StoredEvent } from '../server/events/event-sink.js';
import { RedisStreamSink, type RedisStreamSinkOptions } from '../server/events/redis-stream-sink.js';

const logger = pino({ level: 'silent' });
const sinks: RedisStreamSink[] = [];
const clients: Redis[] = [];
let prefixes = 0;

function sink(options: Omit<RedisStreamSinkOptions, 'logger' | 'prefix'> & { prefix?: string }): RedisStreamSink {
  const created = new RedisStreamSink({ prefix: `t${(prefixes += 1)}:`, timeoutMs: 2000, ...options, logger });
  sinks.push(created);
  return created;
}

function redisClient(url: string): Redis {
  const client = new Redis(url);
  clients.push(client);
  return client;
}

const events = (agent: string, seqs: ReadonlyArray<number | null>): SinkEvent[] =>
  seqs.map((seq, i) => ({ agent_id: agent, seq, name: 'plugged', data: { serial: `S${seq}`, i }, ts: 1000 + i }));

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Appends seqs in batches of `size`, one batch after the other, as one hub would. */
async function appendInBatches(target: RedisStreamSink, agent: string, seqs: number[], size: number) {
  let appended = 0;
  let duplicates = 0;
  for (let i = 0; i < seqs.length; i += size) {
    const outcome = await target.append(agent, events(agent, seqs.slice(i, i + size)));
    appended += outcome.appended;
    duplicates += outcome.duplicates;
  }
  return { appended, duplicates };
}

async function readAll(target: RedisStreamSink, limit = 1000): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await target.read(after, limit);
    all.push(...page.events);
    if (page.next === null) return all;
    after = page.next;
  }
}

afterEach(async () => {
  for (const created of sinks.splice(0)) await created.close();
  for (const client of clients.splice(0)) client.disconnect();
});

describe('RedisStreamSink on one Redis node', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('keeps each seq once, in order, when two hubs append overlapping ranges of one agent at once', async () => {
    const prefix = 'farm-a:';
    const hubOne = sink({ url: redis.url, prefix });
    const hubTwo = sink({ url: redis.url, prefix });
    const [one, two] = await Promise.all([
      appendInBatches(hubOne, 'pc-1', range(1, 300), 7),
      appendInBatches(hubTwo, 'pc-1', range(1, 300), 5),
    ]);
    expect(one.appended + two.appended).toBe(300);
    expect(one.duplicates + two.duplicates).toBe(300);
    const stream = await readAll(hubOne, 64);
    expect(stream.map((e) => e.seq)).toEqual(range(1, 300));
    expect(await hubTwo.lastSeq('pc-1')).toBe(300);
    // The fields a consumer reads, straight from Redis.
    const raw = await redisClient(redis.url).xrange(`${prefix}events`, '-', '+', 'COUNT', 1);
    expect(raw[0]?.[1]).toEqual([
      'agent_id',
      'pc-1',
      'seq',
      '1',
      'name',
      'plugged',
      'data',
      JSON.stringify({ serial: 'S1', i: 0 }),
      'ts',
      '1000',
    ]);
  });

  it('answers lastSeq per agent (0 for one it never saw) and the outcome of each append', async () => {
    const target = sink({ url: redis.url });
    expect(await target.lastSeq('pc-1')).toBe(0);
    expect(await target.append('pc-1', events('pc-1', [1, 2, 3]))).toEqual({ appended: 3, duplicates: 0, last_seq: 3 });
    expect(await target.append('pc-1', events('pc-1', [3, 4]))).toEqual({ appended: 1, duplicates: 1, last_seq: 4 });
    expect(await target.append('pc-2', events('pc-2', [9]))).toEqual({ appended: 1, duplicates: 0, last_seq: 9 });
    expect(await target.lastSeq('pc-1')).toBe(4);
    expect(await target.lastSeq('pc-2')).toBe(9);
    expect(await target.append('pc-1', [])).toEqual({ appended: 0, duplicates: 0, last_seq: 4 });
  });

  it('keeps large seqs exactly', async () => {
    const target = sink({ url: redis.url });
    const big = 2 ** 50 + 3;
    expect(await target.append('pc-1', events('pc-1', [big]))).toEqual({ appended: 1, duplicates: 0, last_seq: big });
    expect(await target.append('pc-1', events('pc-1', [big]))).toMatchObject({ appended: 0, duplicates: 1 });
    expect((await readAll(target))[0]?.seq).toBe(big);
  });

  it('appends events without a seq (legacy agents) unchecked, leaving the last seq as it was', async () => {
    const target = sink({ url: redis.url });
    await target.append('pc-1', events('pc-1', [5]));
    expect(await target.append('pc-1', events('pc-1', [null, null]))).toEqual({
      appended: 2,
      duplicates: 0,
      last_seq: 5,
    });
    expect((await readAll(target)).map((e) => e.seq)).toEqual([5, null, null]);
  });

  it('pages with read: after is an exclusive stream id, next is set only when more follow', async () => {
    const target = sink({ url: redis.url });
    await target.append('pc-1', events('pc-1', [1, 2, 3, 4, 5]));
    const first = await target.read(undefined, 2);
    expect(first.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(first.next).toBe(first.events[1]?.cursor);
    const second = await target.read(first.next ?? '', 2);
    expect(second.events.map((e) => e.seq)).toEqual([3, 4]);
    const last = await target.read(second.next ?? '', 2);
    expect(last.events.map((e) => [e.agent_id, e.seq, e.name, e.data])).toEqual([
      ['pc-1', 5, 'plugged', { serial: 'S5', i: 4 }],
    ]);
    expect(last.next).toBeNull();
    await expect(target.read('99999999999999', 2)).resolves.toEqual({ events: [], next: null });
    expect((await target.read('0', 10)).events).toHaveLength(5);
    await expect(target.read('not-an-id', 2)).rejects.toMatchObject({
      code: 'BAD_CURSOR',
      message: expect.stringMatching(/^after: expected an id of the Redis Stream/) as unknown,
    });
  });

  it('refuses an append Redis cannot take (out of memory) whole: nothing of it in the stream', async () => {
    const target = sink({ url: redis.url });
    await target.append('pc-1', events('pc-1', [1, 2]));
    const admin = redisClient(redis.url);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      await expect(target.append('pc-1', events('pc-1', [3, 4, 5]))).rejects.toMatchObject({
        code: 'SINK_WRITE_FAILED',
        message: expect.stringContaining('OOM') as unknown,
      });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(await target.lastSeq('pc-1')).toBe(2);
    expect((await readAll(target)).map((e) => e.seq)).toEqual([1, 2]);
    expect(await target.append('pc-1', events('pc-1', [3]))).toMatchObject({ appended: 1, last_seq: 3 });
  });
});

describe('RedisStreamSink when Redis goes away', () => {
  it('rejects at once with SINK_UNAVAILABLE while Redis is down, and keeps what it acknowledged across a restart', async () => {
    // Persisted as docs/delivery.md tells operators to: every acknowledged append survives a crash.
    const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    let current = redis;
    try {
      const target = sink({ url: redis.url });
      await target.append('pc-1', events('pc-1', [1, 2, 3]));
      await redis.kill();
      await waitUntil('the sink to see Redis gone', async () => {
        try {
          await target.append('pc-1', events('pc-1', [4]));
          return false;
        } catch (error) {
          expect(error).toMatchObject({ code: 'SINK_UNAVAILABLE', name: 'SinkError' });
          return true;
        }
      });
      current = await redis.restart();
      await waitUntil('the sink to append again', async () => {
        try {
          return (await target.append('pc-1', events('pc-1', [3, 4]))).last_seq === 4;
        } catch {
          return false;
        }
      });
      expect((await readAll(target)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    } finally {
      await current.stop();
    }
  });

  it('rejects with SINK_UNAVAILABLE when Redis never answered', async () => {
    const redis = await startRedis();
    const url = redis.url;
    await redis.stop();
    const target = sink({ url, timeoutMs: 300 });
    await expect(target.append('pc-1', events('pc-1', [1]))).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' });
  });
});

describe('RedisStreamSink on a 3-node Redis Cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('keeps each seq once, in order, across two hubs, with the stream and its last-seq hash in one slot', async () => {
    const hubOne = sink({ cluster: cluster.seeds, prefix: 'farm-c:' });
    const hubTwo = sink({ cluster: cluster.seeds, prefix: 'farm-c:' });
    expect(hubOne.lastSeqKey).toBe('{farm-c:events}:last_seq');
    const [one, two] = await Promise.all([
      appendInBatches(hubOne, 'pc-1', range(1, 120), 6),
      appendInBatches(hubTwo, 'pc-1', range(1, 120), 4),
    ]);
    expect(one.appended + two.appended).toBe(120);
    expect((await readAll(hubTwo, 50)).map((e) => e.seq)).toEqual(range(1, 120));
    expect(await hubOne.lastSeq('pc-1')).toBe(120);
    expect(await hubOne.append('pc-2', events('pc-2', [null]))).toEqual({ appended: 1, duplicates: 0, last_seq: 0 });
  });

  it('refuses a prefix with a brace, which would put the two keys in different slots', () => {
    expect(() => sink({ cluster: cluster.seeds, prefix: 'farm{x}:' })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('--redis-prefix') as unknown,
      }),
    );
  });
});
