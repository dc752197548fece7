import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { RawClient, metric } from './helpers/raw-client.js';
import { startRedis, type RedisProcess } from './helpers/redis-server.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Two real hub processes sharing a real redis-server: each answers for the other's agents
 * (where is it, which hub to send a command to), entries go when agents leave, and the hub keeps
 * serving — and says so in /metrics — when Redis dies and comes back. Also the token cache: an
 * agent that reconnects is verified from memory.
 */

interface AgentAnswer {
  agent_id: string;
  hub_id: string;
  here: boolean;
}
interface ApiError {
  error: { code: string; message: string; hub_id?: string };
}

afterEach(() => {
  RawClient.terminateAll();
});

describe('hubs sharing Redis', () => {
  let redis: RedisProcess;
  let hubA: HubProcess;
  let hubB: HubProcess;
  let admin: string;

  beforeAll(async () => {
    redis = await startRedis();
    const common = [
      '--redis-url',
      redis.url,
      '--redis-prefix',
      'farm-test:',
      '--registry-ttl',
      '3',
      '--broadcast-interval',
      '0',
    ];
    [hubA, hubB] = await Promise.all([
      startHub({ args: [...common, '--hub-id', 'hub-a'] }),
      startHub({ args: [...common, '--hub-id', 'hub-b'] }),
    ]);
    admin = await hubA.adminToken();
    // Both connected to Redis before the first agent arrives, so no announcement is missed.
    await waitUntil(
      'both hubs connected to Redis',
      async () =>
        (await metric(hubA, 'farmlink_cache_redis_up', { cache: 'registry' })) === 1 &&
        (await metric(hubB, 'farmlink_cache_redis_up', { cache: 'registry' })) === 1,
    );
  });

  afterAll(async () => {
    // beforeAll may have failed before assigning these.
    await Promise.all([(hubA as HubProcess | undefined)?.kill(), (hubB as HubProcess | undefined)?.kill()]);
    await (redis as RedisProcess | undefined)?.kill();
  });

  async function register(hub: HubProcess, agentId: string): Promise<RawClient> {
    const client = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken(agentId) });
    await client.register(agentId);
    return client;
  }

  it('a hub answers for an agent connected to the other one, and forgets it when it leaves', async () => {
    const client = await register(hubA, 'shared-1');

    const here = await hubA.get('/api/v1/admin/agents/shared-1', admin);
    expect(here.status).toBe(200);
    expect(here.body).toMatchObject({ agent_id: 'shared-1', hub_id: 'hub-a', here: true });

    const there = await waitUntil('hub B to know where shared-1 is', async () => {
      const res = await hubB.get('/api/v1/admin/agents/shared-1', admin);
      return res.status === 200 ? res : undefined;
    });
    expect(there.body as AgentAnswer).toMatchObject({ agent_id: 'shared-1', hub_id: 'hub-a', here: false });

    const command = await hubB.post('/api/v1/admin/agents/shared-1/commands', { name: 'system.info' }, admin);
    expect(command.status).toBe(409);
    expect((command.body as ApiError).error).toMatchObject({ code: 'AGENT_ON_OTHER_HUB', hub_id: 'hub-a' });
    expect((command.body as ApiError).error.message).toMatch(/hub-a/);

    client.sendJson({ type: 'disconnect', reason: 'test over' });
    client.ws.close(1000);
    await client.closed;
    const gone = await waitUntil('hub B to forget shared-1', async () => {
      const res = await hubB.get('/api/v1/admin/agents/shared-1', admin);
      return res.status === 404 ? res : undefined;
    });
    expect((gone.body as ApiError).error.code).toBe('AGENT_NOT_CONNECTED');
    expect((gone.body as ApiError).error.message).toMatch(/any hub sharing its Redis/);
  });

  it('an agent that moves from one hub to the other is found on the new one, and the old hub does not erase it', async () => {
    const first = await register(hubA, 'mover');
    await waitUntil(
      'hub B to see mover on hub A',
      async () => ((await hubB.get('/api/v1/admin/agents/mover', admin)).body as AgentAnswer).hub_id === 'hub-a',
    );
    const second = await register(hubB, 'mover');
    // The old connection drops after the new one registered (a failover where the old hub noticed late).
    first.ws.terminate();
    await first.closed;
    await hubB.waitForLog('the move logged', (line) => line.msg.includes('moved here from hub hub-a'));
    const fromA = await waitUntil('hub A to point at hub B', async () => {
      const res = await hubA.get('/api/v1/admin/agents/mover', admin);
      return res.status === 200 && (res.body as AgentAnswer).hub_id === 'hub-b' ? res : undefined;
    });
    expect(fromA.body).toMatchObject({ here: false, hub_id: 'hub-b' });
    // Once hub A is done withdrawing its old connection's entry (whichever way the race with hub B's
    // announcement went), the entry still says hub B.
    await hubA.waitForLog(
      'hub A done withdrawing mover',
      (line) => line.agent_id === 'mover' && typeof line.withdrawn === 'boolean',
    );
    expect(((await hubA.get('/api/v1/admin/agents/mover', admin)).body as AgentAnswer).hub_id).toBe('hub-b');
    second.ws.terminate();
  });

  it('the entries of a hub that died lapse after the registry TTL', async () => {
    const hubC = await startHub({
      args: [
        '--redis-url',
        redis.url,
        '--redis-prefix',
        'farm-test:',
        '--registry-ttl',
        '1.5',
        '--hub-id',
        'hub-c',
        '--broadcast-interval',
        '0',
      ],
    });
    await waitUntil(
      'hub C connected to Redis',
      async () => (await metric(hubC, 'farmlink_cache_redis_up', { cache: 'registry' })) === 1,
    );
    await register(hubC, 'orphan');
    await waitUntil(
      'hub B to see orphan on hub C',
      async () => ((await hubB.get('/api/v1/admin/agents/orphan', admin)).body as AgentAnswer).hub_id === 'hub-c',
    );
    await hubC.kill();
    const gone = await waitUntil(
      'the orphan entry to lapse',
      async () => ((await hubB.get('/api/v1/admin/agents/orphan', admin)).status === 404 ? true : undefined),
      10_000,
      100,
    );
    expect(gone).toBe(true);
  });

  it('Redis dies: agents still register and hubs answer for their own; it comes back and sharing resumes', async () => {
    await redis.kill();
    await waitUntil(
      'hub A to notice Redis is gone',
      async () => (await metric(hubA, 'farmlink_cache_redis_up', { cache: 'registry' })) === 0,
    );
    const during = await register(hubA, 'outage-agent');
    const local = await hubA.get('/api/v1/admin/agents/outage-agent', admin);
    expect(local.status).toBe(200);
    const elsewhere = await hubB.get('/api/v1/admin/agents/outage-agent', admin);
    expect(elsewhere.status).toBe(404);
    during.ws.terminate();

    redis = await redis.restart();
    await waitUntil(
      'hubs reconnected to Redis',
      async () =>
        (await metric(hubA, 'farmlink_cache_redis_up', { cache: 'registry' })) === 1 &&
        (await metric(hubB, 'farmlink_cache_redis_up', { cache: 'registry' })) === 1,
      15_000,
      100,
    );
    await register(hubA, 'after-outage');
    const found = await waitUntil('hub B to see after-outage', async () => {
      const res = await hubB.get('/api/v1/admin/agents/after-outage', admin);
      return res.status === 200 ? res : undefined;
    });
    expect(found.body).toMatchObject({ hub_id: 'hub-a', here: false });
    expect(await metric(hubA, 'farmlink_cache_errors_total', { cache: 'registry', tier: 'redis' })).toBeGreaterThan(0);
  });
});

describe('token verification cache', () => {
  let hub: HubProcess;

  beforeAll(async () => {
    hub = await startHub({ args: ['--broadcast-interval', '0'] });
  });

  afterAll(async () => {
    // beforeAll may have failed before assigning these.
    await (hub as HubProcess | undefined)?.kill();
  });

  it('a reconnecting agent is verified from memory; a bad token is refused every time', async () => {
    const token = await hub.agentToken('returning');
    const hitsBefore = await metric(hub, 'farmlink_cache_requests_total', {
      cache: 'tokens',
      tier: 'memory',
      result: 'hit',
    });
    for (let i = 0; i < 3; i += 1) {
      const client = await RawClient.connect(hub.wsUrl, { token });
      await client.register('returning');
      client.ws.close(1000);
      await client.closed;
    }
    const hits =
      (await metric(hub, 'farmlink_cache_requests_total', { cache: 'tokens', tier: 'memory', result: 'hit' })) -
      hitsBefore;
    expect(hits).toBeGreaterThanOrEqual(2);

    for (let i = 0; i < 2; i += 1) {
      const bad = await RawClient.connect(hub.wsUrl, { token: `${token.slice(0, -4)}AAAA` });
      bad.sendHello('returning');
      const closed = await bad.closed;
      expect(closed.code).toBe(4401);
      expect(closed.reason).toMatch(/signature/);
    }
    const text = (await hub.get('/metrics')).text;
    expect(text).toMatch(
      /^farmlink_cache_operation_duration_seconds_bucket\{cache="tokens",tier="memory",le="\+Inf"\} \d+/m,
    );
    expect(text).toMatch(/^farmlink_cache_hit_ratio\{cache="tokens"\} 0\.\d+/m);
  });
});
