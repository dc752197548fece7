import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeBrokerWithFarm } from './fake-broker.fixture.js';
import { TunnelClient, type TunnelClientEvents } from './tunnel-client.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function echoServer(): Promise<{ host: string; port: number }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
}

async function setup(
  options: { connectTimeoutMs?: number } = {},
): Promise<{ broker: FakeBrokerWithFarm; client: TunnelClient; port: number; seen: string[] }> {
  const broker = await new FakeBrokerWithFarm(await echoServer()).ready();
  cleanups.push(() => broker.close());
  const client = new TunnelClient({
    hubs: [broker.url],
    token: 'client-token',
    agentId: 'pc-017',
    service: 'adb',
    logger: pino({ level: 'silent' }),
    backoff: { initialMs: 20, maxMs: 100 },
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
  });
  cleanups.push(() => client.close('test over'));
  const seen: string[] = [];
  for (const name of [
    'listening',
    'relay',
    'direct',
    'farm_unavailable',
    'resumed',
    'link_down',
    'session_replaced',
    'connection_refused',
    'closed',
  ] as const) {
    client.events.on(name, () => seen.push(name));
  }
  const { port } = await client.listen({ host: '127.0.0.1', port: 0 });
  return { broker, client, port, seen };
}

function next<K extends keyof TunnelClientEvents>(client: TunnelClient, event: K): Promise<TunnelClientEvents[K]> {
  return new Promise((resolve) => client.events.once(event, resolve));
}

/** Sends `data` through a new connection to the listener and resolves with what comes back once it ends. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= data.length) socket.end();
    });
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.write(data);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('TunnelClient', () => {
  it('serves a local port whose connections reach the service, byte for byte, many at once', async () => {
    const { client, port, seen } = await setup();
    await next(client, 'relay');
    const payloads = Array.from({ length: 20 }, () => randomBytes(200_000));
    const echoes = await Promise.all(payloads.map((p) => roundTrip(port, p)));
    echoes.forEach((echo, i) => expect(sha(echo)).toBe(sha(payloads[i]!)));
    expect(seen.slice(0, 2)).toEqual(['listening', 'relay']);
    expect(client.info()?.streams_total).toBe(20);
  });

  it('says when the farm moved, and the session carries on on the relay', async () => {
    const { broker, client, port } = await setup();
    await next(client, 'relay');
    const moved = next(client, 'farm_moved');
    broker.farmMoved('203.0.113.7:40123');
    expect(await moved).toMatchObject({ sessionId: broker.sessionId, address: '203.0.113.7:40123' });
    const data = randomBytes(10_000);
    expect(sha(await roundTrip(port, data))).toBe(sha(data));
  });

  it('opens a new session at once when the farm restarted, and new connections work again', async () => {
    const { broker, client, port } = await setup();
    await next(client, 'relay');
    const first = broker.sessionId;
    const resumed = next(client, 'resumed');
    broker.farmRestarted();
    const back = await resumed;
    expect(back.newSession).toBe(true);
    expect(broker.sessionId).not.toBe(first);
    expect(broker.opens.at(-1)?.resume).toBeUndefined();
    const data = randomBytes(10_000);
    expect(sha(await roundTrip(port, data))).toBe(sha(data));
  });

  it('after the farm stops on purpose (closed), says it is unavailable and opens again, waiting for it', async () => {
    const { broker, client, port } = await setup();
    await next(client, 'relay');
    const first = broker.sessionId;
    const opensBefore = broker.opens.length;
    broker.onOpen = () => 'hold';
    const ended = next(client, 'session_ended');
    const unavailable = next(client, 'farm_unavailable');
    broker.farmRestarted('closed');
    expect(await ended).toMatchObject({ sessionId: first, code: 'closed' });
    await unavailable;
    // Nobody connected: the client opens again by itself, waiting for the farm.
    await new Promise<void>((resolve) => {
      const check = (): void => (broker.opens.length > opensBefore ? resolve() : void setTimeout(check, 5));
      check();
    });
    expect(broker.opens.at(-1)).toMatchObject({ wait: true });
    expect(broker.opens.at(-1)?.resume).toBeUndefined();
    const resumed = next(client, 'resumed');
    broker.release('open');
    expect((await resumed).newSession).toBe(true);
    expect(broker.sessionId).not.toBe(first);
    const data = randomBytes(10_000);
    expect(sha(await roundTrip(port, data))).toBe(sha(data));
  });

  it('after an idle end, keeps listening and opens a new session for the next connection', async () => {
    const { broker, client, port } = await setup();
    await next(client, 'relay');
    const first = broker.sessionId;
    const opensBefore = broker.opens.length;
    const ended = next(client, 'session_ended');
    broker.farmRestarted('idle_timeout');
    expect(await ended).toMatchObject({ sessionId: first, code: 'idle_timeout' });
    // Nobody asks for a session until a connection comes.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(broker.opens.length).toBe(opensBefore);
    const data = randomBytes(10_000);
    expect(sha(await roundTrip(port, data))).toBe(sha(data));
    expect(broker.opens.length).toBe(opensBefore + 1);
    expect(broker.sessionId).not.toBe(first);
  });

  it('resumes its session after the hub socket drops, and an open stream carries on', async () => {
    const { broker, client, port } = await setup();
    await next(client, 'relay');
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let total = 0;
    const gotAll = (n: number) =>
      new Promise<void>((resolve) => {
        const check = (): void => (total >= n ? resolve() : void setTimeout(check, 5));
        check();
      });
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      total += chunk.length;
    });
    const part1 = randomBytes(50_000);
    socket.write(part1);
    await gotAll(part1.length);
    const down = next(client, 'link_down');
    const resumed = next(client, 'resumed');
    broker.dropClient();
    expect((await down).kind).toBe('network_timeout');
    const back = await resumed;
    expect(back.newSession).toBe(false);
    expect(broker.opens.at(-1)).toMatchObject({ resume: broker.sessionId, wait: true });
    const part2 = randomBytes(50_000);
    socket.write(part2);
    await gotAll(part1.length + part2.length);
    socket.destroy();
    expect(sha(Buffer.concat(received))).toBe(sha(Buffer.concat([part1, part2])));
  });

  it('holds connections while the farm is unavailable and carries them once it is back', async () => {
    const broker = await new FakeBrokerWithFarm(await echoServer()).ready();
    cleanups.push(() => broker.close());
    broker.onOpen = (request) => (request.wait === true ? 'hold' : 'farm_unavailable');
    const client = new TunnelClient({
      hubs: [broker.url],
      token: 't',
      agentId: 'pc-017',
      service: 'adb',
      logger: pino({ level: 'silent' }),
    });
    cleanups.push(() => client.close('test over'));
    const unavailable = next(client, 'farm_unavailable');
    const { port } = await client.listen({ port: 0 });
    await unavailable;
    const data = randomBytes(5000);
    const echo = roundTrip(port, data);
    // The connection waits; the farm comes back (the broker answers the waiting open).
    await new Promise<void>((resolve) => {
      const check = (): void => (broker.opens.some((o) => o.wait === true) ? resolve() : void setTimeout(check, 5));
      check();
    });
    const resumed = next(client, 'resumed');
    broker.release('open');
    await resumed;
    expect(sha(await echo)).toBe(sha(data));
  });

  it('closes a waiting connection after the connect timeout with a reason, and keeps listening', async () => {
    const broker = await new FakeBrokerWithFarm(await echoServer()).ready();
    cleanups.push(() => broker.close());
    broker.onOpen = () => 'hold';
    const client = new TunnelClient({
      hubs: [broker.url],
      token: 't',
      agentId: 'pc-017',
      service: 'adb',
      logger: pino({ level: 'silent' }),
      connectTimeoutMs: 200,
    });
    cleanups.push(() => client.close('test over'));
    const { port } = await client.listen({ port: 0 });
    const refused = next(client, 'connection_refused');
    const echo = await roundTrip(port, Buffer.from('hello'));
    expect(echo.length).toBe(0);
    expect((await refused).reason).toMatch(/no session to pc-017\/adb/);
    broker.release('open');
    await next(client, 'relay');
    const data = randomBytes(1000);
    expect(sha(await roundTrip(port, data))).toBe(sha(data));
  });

  it('stops with the code when the hub refuses for good (not authorised)', async () => {
    const broker = await new FakeBrokerWithFarm(await echoServer()).ready();
    cleanups.push(() => broker.close());
    broker.onOpen = () => 'not_authorized';
    const client = new TunnelClient({ hubs: [broker.url], token: 't', agentId: 'pc-017', service: 'adb' });
    const closed = next(client, 'closed');
    client.start();
    expect((await closed).code).toBe('not_authorized');
    await expect(client.openStream()).rejects.toThrow(/fake: not_authorized/);
  });

  it('tells the hub when it closes', async () => {
    const { broker, client } = await setup();
    await next(client, 'relay');
    await client.close('bye');
    await new Promise<void>((resolve) => {
      const check = (): void => (broker.closes.length > 0 ? resolve() : void setTimeout(check, 5));
      check();
    });
    expect(broker.closes).toEqual(['bye']);
  });
});
