import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ManualClock } from '../manual-clock.fixture.js';
import { FrameKind, encodeFrame } from '../../protocol/tunnel-frame.js';
import { TUNNEL_PROTOCOL_VERSION, TUNNEL_WS_PATH, type BrokerTimings } from '../../protocol/tunnel.js';
import { BrokerLink, type BrokerLinkEvents } from './broker-link.js';

const TIMINGS: BrokerTimings = {
  ping_interval_ms: 1000,
  ping_timeout_ms: 3000,
  resume_window_ms: 30_000,
  idle_timeout_ms: 300_000,
  max_frame_bytes: 256 * 1024,
};

interface Conn {
  ws: WebSocket;
  req: IncomingMessage;
  /** Parsed text messages from the link, in order. */
  texts: Record<string, unknown>[];
  binaries: Buffer[];
  pings: number;
  /** The bytes as they came off the socket, WebSocket framing and all. */
  raw: Buffer[];
}

/** A small stand-in broker: welcomes every hello, records what it gets. */
class FakeBroker {
  readonly conns: Conn[] = [];
  private readonly wss: WebSocketServer;
  private waiters: (() => void)[] = [];

  constructor(options: { autoPong?: boolean; welcome?: boolean } = {}) {
    this.wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: options.autoPong ?? true });
    this.wss.on('connection', (ws, req) => {
      const conn: Conn = { ws, req, texts: [], binaries: [], pings: 0, raw: [] };
      req.socket.on('data', (chunk: Buffer) => conn.raw.push(chunk));
      this.conns.push(conn);
      ws.on('ping', () => {
        conn.pings += 1;
        this.wake();
      });
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) conn.binaries.push(data);
        else {
          const msg = JSON.parse(data.toString()) as Record<string, unknown>;
          conn.texts.push(msg);
          if (msg.type === 'client_hello' && options.welcome !== false) {
            ws.send(
              JSON.stringify({
                type: 'welcome',
                protocol: TUNNEL_PROTOCOL_VERSION,
                broker_id: 'b1',
                role: 'client',
                observed_address: '127.0.0.1:5555',
                timings: TIMINGS,
              }),
            );
          }
        }
        this.wake();
      });
      this.wake();
    });
  }

  ready(): Promise<this> {
    return new Promise((resolve) => {
      if (this.wss.address()) resolve(this);
      else this.wss.once('listening', () => resolve(this));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  async until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

/** An HTTP server that refuses every upgrade with 401. */
async function refusingServer(): Promise<{ url: string; server: Server }> {
  const server = createServer();
  server.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nbad token\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function makeLink(servers: string[], clock: ManualClock): BrokerLink<'client'> {
  const link = new BrokerLink({
    role: 'client',
    servers,
    token: 'tok-123',
    hello: () => ({ type: 'client_hello', protocol: TUNNEL_PROTOCOL_VERSION, boot_id: 'ab'.repeat(8), version: '1' }),
    clock,
    random: () => 0.5,
    logger: pino({ level: 'silent' }),
    backoff: { initialMs: 500, maxMs: 4000, jitter: 0 },
  });
  cleanups.push(() => link.stop());
  return link;
}

function next<K extends keyof BrokerLinkEvents<'client'>>(
  link: BrokerLink<'client'>,
  event: K,
): Promise<BrokerLinkEvents<'client'>[K]> {
  return new Promise((resolve) => link.events.once(event, resolve));
}

/** The masking key of the first WebSocket frame in `bytes` (a client frame is always masked). */
function firstMaskKey(bytes: Buffer): Buffer {
  expect(bytes[1]! & 0x80).toBe(0x80);
  const len7 = bytes[1]! & 0x7f;
  const offset = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
  return bytes.subarray(offset, offset + 4);
}

/** A fake broker and a link to it (on a manual clock), once the link is connected. */
async function connectedLink(): Promise<{ broker: FakeBroker; link: BrokerLink<'client'> }> {
  const broker = await new FakeBroker().ready();
  cleanups.push(() => broker.close());
  const link = makeLink([broker.url], new ManualClock());
  const connected = next(link, 'connected');
  link.start();
  await connected;
  return { broker, link };
}

describe('BrokerLink', () => {
  it('masks its frames with a zero key on loopback, which ws on the broker leaves as they are', async () => {
    const { broker } = await connectedLink();
    expect(firstMaskKey(Buffer.concat(broker.conns[0]!.raw))).toEqual(Buffer.alloc(4));
    expect(broker.conns[0]!.texts[0]).toMatchObject({ type: 'client_hello' }); // and it still reads right
  });

  it('dials the tunnel path with the token as a bearer, says hello and reports the welcome', async () => {
    const broker = await new FakeBroker().ready();
    cleanups.push(() => broker.close());
    const link = makeLink([broker.url], new ManualClock());
    const connected = next(link, 'connected');
    link.start();
    const { welcome } = await connected;
    expect(welcome.timings).toEqual(TIMINGS);
    expect(broker.conns[0]!.req.url).toBe(TUNNEL_WS_PATH);
    expect(broker.conns[0]!.req.headers.authorization).toBe('Bearer tok-123');
    expect(broker.conns[0]!.texts[0]).toMatchObject({ type: 'client_hello' });
    expect(link.status()).toMatchObject({ state: 'connected', observed_address: '127.0.0.1:5555' });
  });

  it('goes primary → fallback at once, and waits the backoff only after a whole round failed', async () => {
    const refusing = await refusingServer();
    cleanups.push(() => void refusing.server.close());
    const broker = await new FakeBroker().ready();
    cleanups.push(() => broker.close());
    const clock = new ManualClock();
    const link = makeLink([refusing.url, broker.url], clock);
    const failed = next(link, 'dialFailed');
    const connected = next(link, 'connected');
    link.start();
    const failure = await failed;
    expect(failure).toMatchObject({ index: 0, status: 401 });
    expect(failure.reason).toContain('bad token');
    expect((await connected).index).toBe(1);

    // The fallback goes away: the link tries the primary at once (a fresh round), which refuses; the
    // round is over, so it waits.
    const waiting = next(link, 'waiting');
    await broker.close();
    expect((await waiting).delayMs).toBe(500);
    expect(link.status().state).toBe('waiting');
  });

  it('terminates and reconnects a socket whose pongs stopped, as a network timeout', async () => {
    const broker = await new FakeBroker({ autoPong: false }).ready();
    cleanups.push(() => broker.close());
    const clock = new ManualClock();
    const link = makeLink([broker.url], clock);
    const connected = next(link, 'connected');
    link.start();
    await connected;
    const down = next(link, 'disconnected');
    const again = next(link, 'connected');
    await clock.advance(TIMINGS.ping_timeout_ms);
    expect(await down).toMatchObject({ kind: 'network_timeout' });
    await again;
    expect(broker.conns.length).toBe(2);
  });

  it('keeps a socket that answers its pings', async () => {
    const broker = await new FakeBroker().ready();
    cleanups.push(() => broker.close());
    const clock = new ManualClock();
    const link = makeLink([broker.url], clock);
    let downs = 0;
    link.events.on('disconnected', () => downs++);
    const connected = next(link, 'connected');
    link.start();
    await connected;
    for (let i = 1; i <= 10; i++) {
      await clock.advance(TIMINGS.ping_interval_ms);
      // The pong comes over a real socket: the clock moves on only once the broker had the ping (its
      // pong left before it, and the deadline is three intervals away).
      await broker.until(() => broker.conns[0]!.pings >= i);
    }
    expect(downs).toBe(0);
    expect(link.isConnected).toBe(true);
  });

  it('leaves a draining broker for the next server at once', async () => {
    const first = await new FakeBroker().ready();
    const second = await new FakeBroker().ready();
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    const link = makeLink([first.url, second.url], new ManualClock());
    const connected = next(link, 'connected');
    link.start();
    await connected;
    const down = next(link, 'disconnected');
    const again = next(link, 'connected');
    first.conns[0]!.ws.send(JSON.stringify({ type: 'draining', reason: 'restart' }));
    expect(await down).toMatchObject({ kind: 'broker_restart' });
    expect((await again).index).toBe(1);
  });

  it('reconnectNow drops the socket and dials again at once with the kind given', async () => {
    const { broker, link } = await connectedLink();
    const down = next(link, 'disconnected');
    const again = next(link, 'connected');
    link.reconnectNow('addresses changed', 'address_change');
    expect(await down).toMatchObject({ kind: 'address_change', reason: 'addresses changed' });
    await again;
    expect(broker.conns.length).toBe(2);
  });

  it('routes frames by route to relay paths, sends theirs, and takes them down with the socket', async () => {
    const { broker, link } = await connectedLink();
    const seven = link.relayPath(7)!;
    const nine = link.relayPath(9)!;
    const got7: Buffer[] = [];
    const got9: Buffer[] = [];
    seven.events.on('frame', (f) => got7.push(f));
    nine.events.on('frame', (f) => got9.push(f));
    const conn = broker.conns[0]!;
    conn.ws.send(encodeFrame(FrameKind.PING, 9, 0, 0, Buffer.alloc(12)));
    conn.ws.send(encodeFrame(FrameKind.PING, 8, 0, 0, Buffer.alloc(12)));
    conn.ws.send(encodeFrame(FrameKind.DATA, 7, 1, 1, Buffer.from('hi')));
    expect(seven.send(encodeFrame(FrameKind.ACK, 7, 2, 0))).toBe(true);
    await broker.until(() => conn.binaries.length === 1);
    await new Promise<void>((resolve) => {
      const check = (): void => (got7.length === 1 ? resolve() : void setTimeout(check, 1));
      check();
    });
    expect(got9).toHaveLength(1);
    expect(got7[0]!.subarray(17).toString()).toBe('hi');
    expect(conn.binaries[0]!.readUInt32BE(1)).toBe(7);

    const down = new Promise<{ reason: string }>((resolve) => seven.events.once('down', resolve));
    conn.ws.terminate();
    expect((await down).reason).toMatch(/socket closed/);
    expect(seven.isUp).toBe(false);
    expect(nine.isUp).toBe(false);
    expect(seven.send(encodeFrame(FrameKind.ACK, 7, 2, 0))).toBe(false);
  });

  it('ignores control messages that do not validate and refuses to send one', async () => {
    const broker = await new FakeBroker().ready();
    cleanups.push(() => broker.close());
    const link = makeLink([broker.url], new ManualClock());
    const seen: string[] = [];
    link.events.on('message', (m) => seen.push(m.type));
    const connected = next(link, 'connected');
    link.start();
    await connected;
    const conn = broker.conns[0]!;
    conn.ws.send(JSON.stringify({ type: 'session_open', session_id: 'x' }));
    conn.ws.send('not json');
    conn.ws.send(JSON.stringify({ type: 'draining', reason: 'bye' }));
    await new Promise<void>((resolve) => link.events.once('disconnected', () => resolve()));
    expect(seen).toEqual(['welcome', 'draining']);
    expect(() =>
      link.send({ type: 'open', request_id: 1, agent_id: 'pc 1', service: 'adb', client_key: 'k' } as never),
    ).toThrow(/invalid client control message/);
  });
});
