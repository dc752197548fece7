import { once } from 'node:events';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryPathPair } from './memory-path.fixture.js';
import { hashOf, patternSource, sessionPair, until } from './session-harness.fixture.js';
import type { TunnelSession } from './tunnel-session.js';
import type { TunnelStream } from './tunnel-stream.js';

/**
 * Bytes through sessions on real timers: every transfer is checked by length and sha256 on the far side,
 * across path switches, a relay going down and another coming, and a direct path going silent.
 */

const MB = 1024 * 1024;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function pair(options: Parameters<typeof sessionPair>[0] = {}) {
  const p = sessionPair(options);
  cleanups.push(() => {
    p.client.close('closed', 'test over');
    p.farm.close('closed', 'test over');
  });
  return p;
}

/** The farm end echoes every stream back. */
function echo(farm: TunnelSession): void {
  farm.events.on('stream', (stream: TunnelStream) => {
    stream.accept();
    stream.pipe(stream);
  });
}

/** Sends `bytes` through a new stream to an echoing farm; resolves with what came back, once it all came. */
async function echoTransfer(client: TunnelSession, bytes: number, salt = 1) {
  const stream = client.openStream();
  const { source, sha256 } = patternSource(bytes, 64 * 1024, salt);
  const [back] = await Promise.all([hashOf(stream), pipeline(source, stream)]);
  return { back, sha256: sha256() };
}

/** A real TCP echo server on loopback (the "service" on the farm PC). */
async function echoServer(): Promise<net.AddressInfo> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return server.address() as net.AddressInfo;
}

/** The farm dials the service for each stream, as the agent does: socket.pipe(stream).pipe(socket). */
function dialEach(farm: TunnelSession, port: number): void {
  farm.events.on('stream', (stream: TunnelStream) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      stream.accept();
      socket.pipe(stream).pipe(socket);
    });
    socket.on('error', (error) => stream.destroy(error));
    stream.on('error', () => socket.destroy());
  });
}

/** A real TCP client through the tunnel: the client end's listener accepted `socket`. */
async function tcpThrough(client: TunnelSession, bytes: number) {
  // Half-open allowed on every socket: the sender's FIN must not end the other direction early.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const stream = client.openStream();
    socket.pipe(stream).pipe(socket);
    stream.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  const socket = net.connect({ port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  await once(socket, 'connect');
  const { source, sha256 } = patternSource(bytes);
  const [back] = await Promise.all([hashOf(socket), pipeline(source, socket)]);
  return { back, sha256: sha256() };
}

describe('TunnelSession: bytes', () => {
  it('carries a stream both ways and goes active', async () => {
    const { client, farm } = pair();
    echo(farm);
    const stream = client.openStream();
    const connected = new Promise((resolve) => stream.once('connect', resolve));
    const { source, sha256 } = patternSource(1_000_000);
    const [result] = await Promise.all([hashOf(stream), pipeline(source, stream), connected]);
    expect(result).toEqual({ bytes: 1_000_000, sha256: sha256() });
    await until(() => client.info().streams_open === 0 && farm.info().streams_open === 0, 'streams to close');
    expect(client.info()).toMatchObject({ state: 'active', path: 'relay', bytes_out: 1_000_000, streams_total: 1 });
    expect(farm.info()).toMatchObject({ state: 'active', bytes_in: 1_000_000, bytes_out: 1_000_000 });
  });

  it('moves 50 MB between real TCP sockets byte for byte while traffic switches from relay to direct', async () => {
    const { client, farm } = pair({ directHoldMs: 100 });
    const service = await echoServer();
    dialEach(farm, service.port);
    const direct = memoryPathPair({ kind: 'direct' });
    const switched = until(() => farm.info().bytes_in >= 10 * MB, '10 MB through the relay').then(async () => {
      client.attach(direct.a);
      farm.attach(direct.b);
      await until(() => client.pathInUse === 'direct' && farm.pathInUse === 'direct', 'both ends on direct');
    });
    const { back, sha256 } = await tcpThrough(client, 50 * MB);
    await switched;
    expect(back).toEqual({ bytes: 50 * MB, sha256 });
    expect(direct.a.framesSent).toBeGreaterThan(0);
    expect(client.info().recoveries.map((r) => r.kind)).toContain('direct_up');
    expect(farm.info().recoveries.map((r) => r.kind)).toContain('direct_up');
  });

  it('resumes 50 MB byte for byte when the relay goes down mid-transfer and a new relay is attached', async () => {
    const { client, farm, relay } = pair();
    echo(farm);
    const next = memoryPathPair({ kind: 'relay', route: 9 });
    const reconnected = until(() => farm.info().bytes_in >= 10 * MB, '10 MB through the first relay').then(async () => {
      relay.down('broker connection lost');
      await until(() => client.info().state === 'degraded' && farm.info().state === 'degraded', 'degraded');
      // The broker-link would reconnect here; the new relay gets another route.
      await new Promise((resolve) => setTimeout(resolve, 20));
      farm.attach(next.b);
      client.attach(next.a);
    });
    const { back, sha256 } = await echoTransfer(client, 50 * MB);
    await reconnected;
    expect(back).toEqual({ bytes: 50 * MB, sha256 });
    expect(next.a.framesSent).toBeGreaterThan(0);
    expect(client.info().state).toBe('active');
  });

  it('falls back to the relay when the direct path goes silent mid-transfer, and the 50 MB arrive intact', async () => {
    const { client, farm } = pair({ directHoldMs: 50, pingIntervalMs: 50, pingTimeoutMs: 1000 });
    echo(farm);
    const direct = memoryPathPair({ kind: 'direct' });
    client.attach(direct.a);
    farm.attach(direct.b);
    await until(() => client.pathInUse === 'direct' && farm.pathInUse === 'direct', 'both ends on direct');
    const dead: string[] = [];
    client.events.on('pathDead', ({ path }) => dead.push(`client ${path.kind}`));
    farm.events.on('pathDead', ({ path }) => dead.push(`farm ${path.kind}`));
    const silenced = until(() => farm.info().bytes_in >= 10 * MB, '10 MB over direct').then(() => {
      direct.blackhole();
    });
    const { back, sha256 } = await echoTransfer(client, 50 * MB);
    await silenced;
    expect(back).toEqual({ bytes: 50 * MB, sha256 });
    expect(dead).toEqual(expect.arrayContaining(['client direct', 'farm direct']));
    expect(client.pathInUse).toBe('relay');
    expect(client.info().recoveries.map((r) => r.kind)).toEqual(['direct_up', 'direct_lost']);
  });

  it('carries 120 concurrent streams, each with its own bytes and hash', async () => {
    const { client, farm } = pair();
    echo(farm);
    const results = await Promise.all(
      Array.from({ length: 120 }, async (_, i) => {
        const { back, sha256 } = await echoTransfer(client, 100_000 + i * 997, i + 1);
        return back.sha256 === sha256 && back.bytes === 100_000 + i * 997;
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    await until(() => client.info().streams_open === 0, 'all streams closed');
    expect(client.info().streams_total).toBe(120);
    expect(farm.info().streams_total).toBe(120);
  });

  it('sends nothing reliable before the peer listens on a path, then everything from its RESUME on', async () => {
    const { client, farm, relay } = pair({ relay: false });
    echo(farm);
    client.attach(relay.a); // the farm has not attached its end: frames sent now would go nowhere
    const { source, sha256 } = patternSource(3 * MB);
    const transfer = (async () => {
      const stream = client.openStream();
      const [back] = await Promise.all([hashOf(stream), pipeline(source, stream)]);
      return back;
    })();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.info().state).toBe('establishing');
    farm.attach(relay.b);
    expect(await transfer).toEqual({ bytes: 3 * MB, sha256: sha256() });
  });

  it('keeps at most about one window per stream for retransmission while no path carries frames', async () => {
    const window = 256 * 1024;
    const { client, farm, relay } = pair({ windowBytes: window });
    echo(farm);
    const streams = Array.from({ length: 4 }, () => client.openStream());
    await Promise.all(streams.map((s) => once(s, 'connect')));
    relay.blackhole(); // the writes below go nowhere and are never acknowledged
    for (const stream of streams) stream.write(Buffer.alloc(4 * MB));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // DATA is made only within the peer's credit: a window per stream, in 64 KiB frames, plus control frames.
    expect(client.unackedFrames).toBeLessThanOrEqual(4 * (window / (64 * 1024)) + 8);
    expect(client.info().bytes_out).toBe(4 * window);
  });
});
