import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { systemClock } from '../../lib/clock.js';
import type { HubLink, HubLinkEvents } from './hub-link.js';
import { wsHubLinkFactory } from './ws-hub-link.js';

/** A real WebSocket server on a loopback port the OS picks, standing in for the hub. */
async function listen(): Promise<{ url: string; wss: WebSocketServer; peer: Promise<[WebSocket, IncomingMessage]> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const peer = new Promise<[WebSocket, IncomingMessage]>((resolve) => {
    wss.once('connection', (ws, req) => resolve([ws, req]));
  });
  const { port } = wss.address() as AddressInfo;
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  return { url: `ws://127.0.0.1:${port}/api/v1/pc/ws`, wss, peer };
}

function next<K extends keyof HubLinkEvents>(link: HubLink, event: K): Promise<HubLinkEvents[K]> {
  return new Promise((resolve) => link.events.once(event, resolve));
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the ws hub link', () => {
  it('dials with the user agent and token, and carries typed messages both ways', async () => {
    const { url, peer } = await listen();
    const link = wsHubLinkFactory({ clock: systemClock })({ url, version: '1.2.3', token: 'tok' });
    cleanups.push(() => {
      link.terminate();
      return Promise.resolve();
    });
    await next(link, 'open');
    expect(link.isOpen).toBe(true);
    const [ws, req] = await peer;
    expect(req.headers['user-agent']).toBe('farmlink-agent/1.2.3');
    expect(req.headers.authorization).toBe('Bearer tok');

    const received = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
    const frame = next(link, 'frame');
    link.send({ type: 'disconnect', reason: 'agent_shutdown' });
    expect(JSON.parse(await received)).toEqual({ type: 'disconnect', reason: 'agent_shutdown' });
    expect(await frame).toEqual({
      direction: 'out',
      messages: 1,
      bytes: Buffer.byteLength('{"type":"disconnect","reason":"agent_shutdown"}'),
    });

    const message = next(link, 'message');
    ws.send(JSON.stringify({ type: 'draining', reason: 'deploy', deadline: 1_700_000_000_000 }));
    expect(await message).toMatchObject({ message: { type: 'draining', reason: 'deploy' } });

    const undecodable = next(link, 'undecodable');
    ws.send(Buffer.from([1, 2]), { binary: true });
    expect(await undecodable).toEqual({ bytes: 2, decoded: { ok: false, problem: 'binary' } });

    const pong = next(link, 'pong');
    link.ping();
    await pong;
  });

  it('refuses to send past the limits the hub announced', async () => {
    const { url } = await listen();
    const link = wsHubLinkFactory({ clock: systemClock })({ url, version: '1.2.3' });
    cleanups.push(() => {
      link.terminate();
      return Promise.resolve();
    });
    await next(link, 'open');
    link.limits = { max_payload_bytes: 20, max_messages_per_second: 1, burst_messages: 1 };
    expect(() => link.send({ type: 'disconnect', reason: 'agent_shutdown' })).toThrow(
      expect.objectContaining({
        code: 'MESSAGE_TOO_LARGE',
        message: 'disconnect is 47 bytes; the hub accepts at most 20',
      }),
    );
  });

  it('legacy: holds frames once as many are unread by the hub as its burst allows, until it reads them', async () => {
    const { url, peer } = await listen();
    const link = wsHubLinkFactory({ clock: systemClock })({ url, version: '1.2.3' });
    cleanups.push(() => {
      link.terminate();
      return Promise.resolve();
    });
    await next(link, 'open');
    const [ws] = await peer;
    const received: string[] = [];
    ws.on('message', (data: Buffer) => received.push(data.toString()));
    let pongs = 0;
    link.events.on('pong', () => (pongs += 1));
    // A hub that stopped reading: nothing it has not read is answered.
    (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    link.limits = { max_payload_bytes: 65536, max_messages_per_second: 10_000, burst_messages: 20 };
    let sent = 0;
    while (link.frameWaitMs() === 0) {
      link.send({ type: 'heartbeat', seq: sent, cpu_usage: 1, ram_usage: 1, timestamp: 0 });
      sent += 1;
    }
    expect(sent).toBe(8);
    expect(link.frameWaitMs()).toBe(Number.POSITIVE_INFINITY);
    const caughtUp = next(link, 'caughtUp');
    (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.resume();
    await caughtUp;
    expect(received).toHaveLength(8);
    expect(link.frameWaitMs()).toBe(0);
    // The probes' pongs are not the ping monitor's.
    expect(pongs).toBe(0);
  });

  it("reports the hub's close code and reason, and a graceful close completes the handshake", async () => {
    const { url, peer } = await listen();
    const factory = wsHubLinkFactory({ clock: systemClock });
    const first = factory({ url, version: '1.2.3' });
    await next(first, 'open');
    const [ws] = await peer;
    const closed = next(first, 'close');
    ws.close(4409, 'replaced');
    expect(await closed).toEqual({ code: 4409, reason: 'replaced' });
    expect(first.isOpen).toBe(false);

    const again = await listen();
    const second = factory({ url: again.url, version: '1.2.3' });
    await next(second, 'open');
    const [hubSide] = await again.peer;
    const hubSaw = new Promise<[number, string]>((resolve) => {
      hubSide.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()]));
    });
    // A long timeout: the handshake, not the timer, must end it.
    await second.close(1000, 'agent_shutdown', 60_000);
    expect(await hubSaw).toEqual([1000, 'agent_shutdown']);
  });

  it('reports an HTTP answer to the upgrade, and a refused port as an error then a close', async () => {
    const http: Server = createServer((_req, res) => res.end());
    http.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const { port } = http.address() as AddressInfo;
    const factory = wsHubLinkFactory({ clock: systemClock });
    const rejected = factory({ url: `ws://127.0.0.1:${port}/elsewhere`, version: '1.2.3' });
    expect(await next(rejected, 'rejected')).toEqual({ status: 404 });

    // Port 1: nothing listens there (a privileged port no test server takes).
    const refused = factory({ url: 'ws://127.0.0.1:1/', version: '1.2.3' });
    const error = next(refused, 'error');
    const close = next(refused, 'close');
    expect(await error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(await close).toEqual({ code: 1006, reason: '' });
  });

  it('throws at once for a dial that cannot start (a token a header cannot carry)', () => {
    const factory = wsHubLinkFactory({ clock: systemClock });
    expect(() => factory({ url: 'ws://127.0.0.1:1/', version: '1.2.3', token: 'a\nb' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CHAR' }),
    );
  });
});
