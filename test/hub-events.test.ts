import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { RawClient, metric } from './helpers/raw-client.js';
import { startRedis, type RedisProcess } from './helpers/redis-server.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Where a hub puts the events legacy agents send (a real hub process, a raw legacy client): its
 * event log in --data-dir without Redis, the shared Redis Stream with it; and how an operator
 * reads them back through GET /api/v1/admin/events.
 */

interface EventsAnswer {
  events: Array<{ cursor: string; agent_id: string; seq: number | null; name: string; data: unknown; ts: number }>;
  next: string | null;
  sink: 'local' | 'redis';
}

interface ApiError {
  error: { code: string; message: string };
}

afterEach(() => {
  RawClient.terminateAll();
});

async function legacyAgent(hub: HubProcess, agentId: string): Promise<RawClient> {
  const client = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken(agentId) });
  await client.register(agentId);
  return client;
}

function sendEvent(client: RawClient, name: string, seq: number | undefined, data: unknown): void {
  client.sendJson({ type: 'event', name, data, timestamp: 1_700_000_000_000, ...(seq !== undefined ? { seq } : {}) });
}

async function eventsOf(hub: HubProcess, query = ''): Promise<EventsAnswer> {
  const answer = await hub.get(`/api/v1/admin/events${query}`, await hub.adminToken());
  expect(answer.status, answer.text).toBe(200);
  return answer.body as EventsAnswer;
}

describe('legacy events without Redis: the event log in --data-dir', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-hub-events-'));
  let hub: HubProcess;

  beforeAll(async () => {
    hub = await startHub({ args: ['--data-dir', dataDir] });
  });
  afterAll(async () => {
    await hub.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('lands each event in the log once (a replayed seq is dropped) and answers them in order', async () => {
    const client = await legacyAgent(hub, 'legacy-pc');
    sendEvent(client, 'device_plugged', 1, { serial: 'A1' });
    sendEvent(client, 'device_plugged', 2, { serial: 'B2' });
    sendEvent(client, 'device_plugged', 2, { serial: 'B2' });
    sendEvent(client, 'note', undefined, 'no seq');
    sendEvent(client, 'device_unplugged', 3, { serial: 'A1' });
    await waitUntil('the four events in the log', async () => (await eventsOf(hub)).events.length === 4);
    const answer = await eventsOf(hub);
    expect(answer.sink).toBe('local');
    expect(answer.next).toBeNull();
    expect(answer.events).toEqual([
      {
        cursor: '1',
        agent_id: 'legacy-pc',
        seq: 1,
        name: 'device_plugged',
        data: { serial: 'A1' },
        ts: 1_700_000_000_000,
      },
      {
        cursor: '2',
        agent_id: 'legacy-pc',
        seq: 2,
        name: 'device_plugged',
        data: { serial: 'B2' },
        ts: 1_700_000_000_000,
      },
      { cursor: '3', agent_id: 'legacy-pc', seq: null, name: 'note', data: 'no seq', ts: 1_700_000_000_000 },
      {
        cursor: '4',
        agent_id: 'legacy-pc',
        seq: 3,
        name: 'device_unplugged',
        data: { serial: 'A1' },
        ts: 1_700_000_000_000,
      },
    ]);
    expect(fs.existsSync(path.join(dataDir, 'events', 'data.mdb'))).toBe(true);
    await waitUntil(
      'the duplicate counted',
      async () => (await metric(hub, 'farmlink_hub_sink_appends_total', { sink: 'local', outcome: 'duplicate' })) === 1,
    );
    expect(await metric(hub, 'farmlink_hub_sink_appends_total', { sink: 'local', outcome: 'appended' })).toBe(4);
    // Per event at debug, not info: a farm's thousands of events must not flood the log.
    const eventLines = hub.logs.filter((line) => /^Event device_plugged from/.test(line.msg));
    expect(eventLines).toHaveLength(3);
    expect(eventLines.every((line) => line.level === 20)).toBe(true);
  });

  it('pages with after and limit', async () => {
    const first = await eventsOf(hub, '?limit=3');
    expect(first.events.map((e) => e.cursor)).toEqual(['1', '2', '3']);
    expect(first.next).toBe('3');
    const second = await eventsOf(hub, `?after=${first.next ?? ''}&limit=3`);
    expect(second.events.map((e) => e.cursor)).toEqual(['4']);
    expect(second.next).toBeNull();
  });

  it('answers a bad after or limit with 400 naming the parameter, and asks for the admin token', async () => {
    const admin = await hub.adminToken();
    for (const [query, code, named] of [
      ['?limit=0', 'BAD_LIMIT', /^limit: expected a whole number from 1 to 1000, got "0"/],
      ['?limit=1001', 'BAD_LIMIT', /^limit: expected a whole number from 1 to 1000/],
      ['?limit=ten', 'BAD_LIMIT', /^limit: .*got "ten"/],
      ['?after=1700000000000-0', 'BAD_CURSOR', /^after: expected a position in the hub's event log/],
      ['?after=', 'BAD_CURSOR', /^after: expected a cursor/],
    ] as const) {
      const answer = await hub.get(`/api/v1/admin/events${query}`, admin);
      expect(answer.status, query).toBe(400);
      expect((answer.body as ApiError).error.code, query).toBe(code);
      expect((answer.body as ApiError).error.message, query).toMatch(named);
    }
    expect((await hub.get('/api/v1/admin/events')).status).toBe(401);
    expect((await hub.get('/api/v1/admin/events', await hub.agentToken('legacy-pc'))).status).toBe(403);
  });

  it('keeps the log across a restart on the same data dir, and goes on after it', async () => {
    await hub.kill();
    hub = await startHub({ args: ['--data-dir', dataDir] });
    expect((await eventsOf(hub)).events).toHaveLength(4);
    const client = await legacyAgent(hub, 'legacy-pc');
    sendEvent(client, 'device_plugged', 3, { serial: 'replayed' });
    sendEvent(client, 'device_plugged', 4, { serial: 'C3' });
    await waitUntil('the fifth event', async () => (await eventsOf(hub)).events.length === 5);
    expect((await eventsOf(hub, '?after=4')).events).toMatchObject([{ cursor: '5', seq: 4, data: { serial: 'C3' } }]);
  });
});

describe('legacy events with Redis: the stream every hub of the farm shares', () => {
  let redis: RedisProcess;
  const hubs: HubProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    // One after the other: two CLIs starting at once on a busy machine can take past the start timeout.
    for (const hubId of ['one', 'two']) {
      hubs.push(await startHub({ hubId, args: ['--redis-url', redis.url, '--redis-prefix', 'events-test:'] }));
    }
  });
  afterAll(async () => {
    for (const hub of hubs) await hub.kill();
    await redis.stop();
  });

  it('appends to <prefix>events once per seq across hubs, readable from either', async () => {
    const [one, two] = hubs as [HubProcess, HubProcess];
    const onOne = await legacyAgent(one, 'redis-pc');
    sendEvent(onOne, 'device_plugged', 1, { serial: 'R1' });
    sendEvent(onOne, 'device_plugged', 2, { serial: 'R2' });
    await waitUntil('two events in the stream', async () => (await eventsOf(two)).events.length === 2);
    onOne.ws.terminate();
    // The agent reconnects to the other hub and replays seq 2: the stream keeps it once.
    const onTwo = await legacyAgent(two, 'redis-pc');
    sendEvent(onTwo, 'device_plugged', 2, { serial: 'R2' });
    sendEvent(onTwo, 'device_plugged', 3, { serial: 'R3' });
    await waitUntil('the third event', async () => (await eventsOf(one)).events.length === 3);
    await waitUntil(
      'the replay counted as a duplicate',
      async () => (await metric(two, 'farmlink_hub_sink_appends_total', { sink: 'redis', outcome: 'duplicate' })) === 1,
    );
    const answer = await eventsOf(one);
    expect(answer.sink).toBe('redis');
    expect(answer.events.map((e) => [e.agent_id, e.seq, e.data])).toEqual([
      ['redis-pc', 1, { serial: 'R1' }],
      ['redis-pc', 2, { serial: 'R2' }],
      ['redis-pc', 3, { serial: 'R3' }],
    ]);
    expect(answer.events[0]?.cursor).toMatch(/^\d+-\d+$/);
    const fromMs = await one.get('/api/v1/admin/events?after=7', await one.adminToken());
    expect(fromMs.status).toBe(200);
    const wrong = await one.get('/api/v1/admin/events?after=x-y', await one.adminToken());
    expect(wrong.status).toBe(400);
    expect((wrong.body as ApiError).error.message).toMatch(
      /^after: expected an id of the Redis Stream events-test:events/,
    );
  });
});
