import { createHash } from 'node:crypto';
import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../lib/clock.js';
import { TypedEmitter } from '../../lib/events.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import type { DirectConnectorEvents } from '../../lib/tunnel/direct-connector.js';
import { patternSource, until } from '../../lib/tunnel/session-harness.fixture.js';
import { StreamResetError } from '../../lib/tunnel/stream-reset-error.js';
import { TunnelSession } from '../../lib/tunnel/tunnel-session.js';
import { StreamResetCode } from '../../protocol/tunnel-frame.js';
import type { BrokerToFarm, SignalPayload } from '../../protocol/tunnel.js';
import { FakeFarmLink, TEST_TIMINGS } from './fake-farm-link.fixture.js';
import type { CreateFarmDirect } from './farm-ports.js';
import { FarmTunnel } from './farm-tunnel.js';
import { farmSessionFactory } from './farm-session.js';
import { ServiceAllowlist } from './service-allowlist.js';
import { dialService } from './service-dialer.js';

const SESSION = '0123456789abcdef0123456789abcdef';
const OTHER = 'fedcba9876543210fedcba9876543210';
const BOOT = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function echoServer(): Promise<{ port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as net.AddressInfo).port);
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port, sockets };
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as net.AddressInfo).port);
    });
  });
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function farm(options: {
  services: Record<string, string>;
  clock?: Clock;
  addresses?: string[];
  /** Sessions report this path (the direct path belongs to another part; the farm only reads it). */
  path?: 'direct';
  createDirect?: CreateFarmDirect;
}) {
  const clock = options.clock ?? systemClock;
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  let link: FakeFarmLink | undefined;
  let addresses = options.addresses ?? ['eth0/IPv4/192.168.1.17'];
  let addressChanged: () => void = () => {};
  const tunnel = new FarmTunnel({
    agentId: 'pc-017',
    bootId: BOOT,
    version: '1.2.3',
    services: new ServiceAllowlist(options.services),
    createLink: (hello) => (link = new FakeFarmLink(hello)),
    createSession: (sessionOptions) => {
      const session = farmSessionFactory(clock)(sessionOptions);
      if (options.path === undefined) return session;
      const info = session.info.bind(session);
      return Object.assign(session, { info: () => ({ ...info(), path: options.path ?? null }) });
    },
    dial: dialService,
    localAddresses: () => addresses,
    watchAddresses: (onChange) => {
      addressChanged = onChange;
      return () => {
        addressChanged = () => {};
      };
    },
    clock,
    logger,
    ...(options.createDirect ? { createDirect: options.createDirect } : {}),
  });
  cleanups.push(() => tunnel.stop('test over'));
  tunnel.start();
  if (!link) throw new Error('no link made');
  const theLink = link;
  theLink.connect();
  return {
    tunnel,
    link: theLink,
    lines,
    changeAddresses: (next: string[]) => {
      addresses = next;
      addressChanged();
    },
  };
}

function open(overrides: Partial<Extract<BrokerToFarm, { type: 'session_open' }>> = {}): BrokerToFarm {
  return {
    type: 'session_open',
    session_id: SESSION,
    route: 7,
    service: 'echo',
    client: { name: 'alice', address: '203.0.113.9:41000' },
    resume: false,
    ...overrides,
  };
}

/** The remote client's end of a session, on the route's memory relay path. */
function clientSession(link: FakeFarmLink, route: number, clock: Clock = systemClock): TunnelSession {
  const session = new TunnelSession({
    role: 'client',
    sessionId: SESSION,
    peer: 'pc-017',
    service: 'echo',
    clock,
    pingIntervalMs: TEST_TIMINGS.ping_interval_ms,
    pingTimeoutMs: TEST_TIMINGS.ping_timeout_ms,
  });
  cleanups.push(() => session.close('closed', 'test over'));
  session.attach(link.clientEnd(route));
  return session;
}

async function roundTrip(session: TunnelSession, payload: string): Promise<string> {
  const stream = session.openStream();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', () => undefined);
  stream.write(payload);
  await until(() => Buffer.concat(chunks).length >= payload.length, 'the echo');
  stream.end();
  return Buffer.concat(chunks).toString();
}

describe('FarmTunnel', () => {
  it('says hello with its boot id, the service names (never the targets) and its addresses', () => {
    const { link } = farm({ services: { adb: '127.0.0.1:5037', echo: '127.0.0.1:9' } });
    expect(link.started).toBe(true);
    expect(link.hellos).toEqual([
      {
        type: 'farm_hello',
        protocol: 1,
        agent_id: 'pc-017',
        boot_id: BOOT,
        services: ['adb', 'echo'],
        local_addresses: ['eth0/IPv4/192.168.1.17'],
        version: '1.2.3',
      },
    ]);
  });

  it('accepts a session to an allowed service and carries a stream to the local service and back', async () => {
    const { port } = await echoServer();
    const { tunnel, link } = farm({ services: { echo: `127.0.0.1:${port}` } });
    link.deliver(open());
    expect(link.sentOf('session_accept')).toEqual([{ type: 'session_accept', session_id: SESSION, route: 7 }]);
    const client = clientSession(link, 7);
    expect(await roundTrip(client, 'hello through the tunnel')).toBe('hello through the tunnel');
    await until(() => tunnel.summary().sessions[0]?.bytes_out === 24, 'the byte counts');
    expect(tunnel.summary()).toMatchObject({
      services: [{ name: 'echo', target: `127.0.0.1:${port}` }],
      link: { state: 'connected', observed_address: '127.0.0.1:50000' },
      sessions: [{ session_id: SESSION, peer: 'alice', service: 'echo', path: 'relay', bytes_in: 24, bytes_out: 24 }],
      closed_total: 0,
    });
  });

  it('refuses a service outside the allowlist, saying what the PC exposes, and holds no session', () => {
    const { tunnel, link, lines } = farm({ services: { adb: '127.0.0.1:5037' } });
    link.deliver(open({ service: 'ssh' }));
    expect(link.sentOf('session_accept')).toEqual([]);
    expect(link.sentOf('session_refuse')).toEqual([
      {
        type: 'session_refuse',
        session_id: SESSION,
        route: 7,
        code: 'unknown_service',
        reason: 'this PC does not expose "ssh" (it exposes adb)',
      },
    ]);
    expect(tunnel.summary().sessions).toEqual([]);
    expect(lines.some((l) => l.level === 40 && l.msg.includes('Refused alice\'s session to "ssh"'))).toBe(true);
  });

  it('resets a stream with CONNECT_FAILED and the dial error when the service refuses, and logs it', async () => {
    const port = await closedPort();
    const { tunnel, link, lines } = farm({ services: { echo: `127.0.0.1:${port}` } });
    link.deliver(open());
    const client = clientSession(link, 7);
    const stream = client.openStream();
    const error = await new Promise<Error>((resolve) => stream.once('error', resolve));
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({
      resetCode: StreamResetCode.CONNECT_FAILED,
      reason: `127.0.0.1:${port} refused the connection`,
    });
    const logged = lines.find((l) => l.msg.startsWith('Could not reach echo'));
    expect(logged).toMatchObject({ level: 40, code: 'SERVICE_DIAL_FAILED', target: `127.0.0.1:${port}` });
    // The session stays: the next stream may find the service up.
    expect(tunnel.summary().sessions).toHaveLength(1);
  });

  it('refuses to resume a session it does not hold, and resumes one it holds on the new route', async () => {
    const { port } = await echoServer();
    const { tunnel, link } = farm({ services: { echo: `127.0.0.1:${port}` } });
    link.deliver(open({ session_id: OTHER, resume: true }));
    expect(link.sentOf('session_refuse')).toMatchObject([{ session_id: OTHER, code: 'unknown_session' }]);

    link.deliver(open());
    const client = clientSession(link, 7);
    expect(await roundTrip(client, 'before')).toBe('before');
    // The broker restarted: the socket is lost, a new broker resumes the session on another route.
    link.drop('socket closed (1012)', 'broker_restart');
    await until(() => tunnel.summary().sessions[0]?.state === 'degraded', 'the session to wait');
    link.connect('broker-2');
    expect(link.sentOf('session_accept')).toHaveLength(1);
    link.deliver(open({ route: 9, resume: true }));
    expect(link.sentOf('session_accept').at(-1)).toEqual({ type: 'session_accept', session_id: SESSION, route: 9 });
    client.attach(link.clientEnd(9));
    expect(await roundTrip(client, 'after the broker restart')).toBe('after the broker restart');
    const info = tunnel.summary().sessions[0];
    expect(info?.state).toBe('active');
    expect(info?.recoveries).toMatchObject([{ kind: 'broker_restart', took_ms: expect.any(Number) as number }]);
  });

  it('waits for the broker to resume its sessions after the link comes back, then carries on', async () => {
    const { port } = await echoServer();
    const { tunnel, link } = farm({ services: { echo: `127.0.0.1:${port}` } });
    link.deliver(open());
    const client = clientSession(link, 7);
    expect(await roundTrip(client, 'one')).toBe('one');
    link.drop();
    link.connect('broker-1');
    expect(tunnel.summary().sessions[0]?.state).toBe('degraded');
    link.deliver(open({ resume: true }));
    expect(link.sentOf('session_accept')).toHaveLength(2);
    client.attach(link.clientEnd(7));
    expect(await roundTrip(client, 'two')).toBe('two');
    expect(tunnel.summary().sessions[0]?.recoveries).toMatchObject([{ kind: 'network_timeout' }]);
  });

  it('ends a session whose client stays away past the resume window, closing its local sockets', async () => {
    const clock = new ManualClock();
    const { port, sockets } = await echoServer();
    const { tunnel, link, lines } = farm({ services: { echo: `127.0.0.1:${port}` }, clock });
    link.deliver(open());
    const client = clientSession(link, 7, clock);
    const stream = client.openStream();
    stream.write('x');
    stream.on('error', () => undefined);
    // Real dial, manual timers: let I/O run (the clock standing still) until the service holds the connection.
    const deadline = Date.now() + 15_000;
    while (sockets.size === 0 && Date.now() < deadline) await clock.advance(0);
    expect(sockets.size).toBe(1);
    link.deliver({ type: 'peer_state', session_id: SESSION, state: 'down', reason: 'client socket lost' });
    expect(tunnel.summary().sessions[0]?.state).toBe('degraded');
    await clock.advance(TEST_TIMINGS.resume_window_ms - 1);
    expect(tunnel.summary().sessions).toHaveLength(1);
    await clock.advance(1);
    expect(tunnel.summary().sessions).toEqual([]);
    expect(tunnel.summary().closed_total).toBe(1);
    expect(link.sentOf('session_close')).toMatchObject([{ session_id: SESSION }]);
    expect(link.sentOf('session_close')[0]?.reason).toMatch(/^resume_window_expired: /);
    await until(() => sockets.size === 0, 'the local connection to close');
    expect(lines.some((l) => l.msg.includes('nobody came back within the resume window'))).toBe(true);
  });

  it('keeps a session whose client comes back within the window, and records the recovery', async () => {
    const clock = new ManualClock();
    const { tunnel, link } = farm({ services: { echo: '127.0.0.1:9' }, clock });
    link.deliver(open());
    link.deliver({ type: 'peer_state', session_id: SESSION, state: 'down', reason: 'client socket lost' });
    await clock.advance(4000);
    link.deliver({ type: 'peer_state', session_id: SESSION, state: 'up', reason: 'resumed', route: 7 });
    await clock.advance(TEST_TIMINGS.resume_window_ms);
    expect(tunnel.summary().sessions).toHaveLength(1);
    expect(tunnel.summary().sessions[0]?.recoveries).toEqual([
      expect.objectContaining({ kind: 'network_timeout', took_ms: 4000 }),
    ]);
  });

  describe('a relay that misses its ping deadline while the tunnel socket stays up', () => {
    /** Moves the fake clock on in 10 ms steps, letting the memory paths deliver in between, until `condition`. */
    async function runUntil(clock: ManualClock, condition: () => boolean, what: string, ms = 60_000): Promise<void> {
      const start = clock.monotonic();
      while (!condition()) {
        if (clock.monotonic() - start > ms) throw new Error(`${what}: not within ${ms} ms on the clock`);
        await clock.advance(10);
      }
    }

    it('keeps the relay attached, so a late answer revives it: same session, transfer intact', async () => {
      const { port } = await echoServer();
      const { tunnel, link, lines } = farm({ services: { echo: `127.0.0.1:${port}` } });
      link.deliver(open());
      const client = clientSession(link, 7);
      const total = 8 * 1024 * 1024;
      const { source, sha256 } = patternSource(total);
      const stream = client.openStream();
      stream.on('error', () => undefined);
      const hash = createHash('sha256');
      let received = 0;
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        hash.update(chunk);
      });
      source.pipe(stream);
      await until(() => received >= 1024 * 1024, 'the first MiB back through the echo');
      // Mid-transfer the relay carries nothing either way (pongs stuck behind data), the socket stays up.
      link.blackhole(7);
      await until(() => tunnel.summary().sessions[0]?.state === 'degraded', 'the farm to find the relay silent');
      expect(received).toBeLessThan(total);
      link.restore(7);
      await until(() => received >= total, 'the rest of the transfer once the relay answers again');
      expect(received).toBe(total);
      expect(hash.digest('hex')).toBe(sha256());
      const info = tunnel.summary().sessions[0];
      expect(info).toMatchObject({ session_id: SESSION, state: 'active', path: 'relay' });
      expect(info?.recoveries).toEqual([
        expect.objectContaining({
          kind: 'network_timeout',
          reason: expect.stringMatching(
            /^relay path stopped answering health pings while the tunnel socket was up/,
          ) as string,
          took_ms: expect.any(Number) as number,
        }),
      ]);
      expect(tunnel.summary().closed_total).toBe(0);
      expect(link.sentOf('session_close')).toEqual([]);
      const silent = lines.find((l) => l.msg.includes('the relay path stopped answering health pings'));
      expect(silent).toMatchObject({ level: 40, session: SESSION, path: 'relay' });
      expect(silent?.msg).toMatch(/keeping it attached/);
      expect(lines.some((l) => l.level === 30 && l.msg.startsWith(`Session ${SESSION} recovered after`))).toBe(true);
    });

    it('cancels the resume-window wait once the relay answers again', async () => {
      const clock = new ManualClock();
      const { tunnel, link } = farm({ services: { echo: '127.0.0.1:9' }, clock });
      link.deliver(open());
      const client = clientSession(link, 7, clock);
      await runUntil(clock, () => client.info().state === 'active', 'the session to be up');
      link.blackhole(7);
      await runUntil(clock, () => tunnel.summary().sessions[0]?.state === 'degraded', 'the relay to be found silent');
      await clock.advance(TEST_TIMINGS.resume_window_ms / 2);
      link.restore(7);
      await runUntil(clock, () => tunnel.summary().sessions[0]?.state === 'active', 'the relay to answer again');
      // Past where the window would have ended it.
      await clock.advance(TEST_TIMINGS.resume_window_ms);
      expect(tunnel.summary()).toMatchObject({ sessions: [{ session_id: SESSION, state: 'active' }], closed_total: 0 });
      expect(link.sentOf('session_close')).toEqual([]);
      const [recovery] = tunnel.summary().sessions[0]?.recoveries ?? [];
      expect(recovery?.kind).toBe('network_timeout');
      expect(recovery?.took_ms).toBeGreaterThanOrEqual(TEST_TIMINGS.resume_window_ms / 2);
      expect(recovery?.took_ms).toBeLessThan(TEST_TIMINGS.resume_window_ms);
    });

    it('still ends the session when the relay stays silent for the whole resume window', async () => {
      const clock = new ManualClock();
      const { tunnel, link, lines } = farm({ services: { echo: '127.0.0.1:9' }, clock });
      link.deliver(open());
      const client = clientSession(link, 7, clock);
      await runUntil(clock, () => client.info().state === 'active', 'the session to be up');
      link.blackhole(7);
      await runUntil(clock, () => tunnel.summary().sessions[0]?.state === 'degraded', 'the relay to be found silent');
      await clock.advance(TEST_TIMINGS.resume_window_ms - 20);
      expect(tunnel.summary().sessions).toHaveLength(1);
      await clock.advance(40);
      expect(tunnel.summary()).toMatchObject({ sessions: [], closed_total: 1 });
      expect(link.sentOf('session_close')[0]?.reason).toMatch(/^resume_window_expired: .*relay path stopped answering/);
      expect(
        lines.some(
          (l) => l.level === 40 && l.msg.includes('ended: its relay path stayed silent for the whole resume window'),
        ),
      ).toBe(true);
    });
  });

  it('carries on when the client is back before its relay missed a ping deadline (it waits for our RESUME)', async () => {
    const { port } = await echoServer();
    const { tunnel, link } = farm({ services: { echo: `127.0.0.1:${port}` } });
    link.deliver(open());
    const client = clientSession(link, 7);
    expect(await roundTrip(client, 'one')).toBe('one');
    client.detach(link.clientEnd(7), 'socket lost');
    link.deliver({ type: 'peer_state', session_id: SESSION, state: 'down', reason: 'client socket lost' });
    client.attach(link.clientEnd(7));
    link.deliver({ type: 'peer_state', session_id: SESSION, state: 'up', reason: 'back', route: 7 });
    expect(await roundTrip(client, 'two')).toBe('two');
    expect(tunnel.summary().sessions[0]).toMatchObject({ state: 'active', path: 'relay' });
    expect(tunnel.summary().sessions[0]?.recoveries).toMatchObject([{ kind: 'network_timeout' }]);
  });

  it('ends a session idle past the limit', async () => {
    const clock = new ManualClock();
    const { tunnel, link } = farm({ services: { echo: '127.0.0.1:9' }, clock });
    link.deliver(open());
    clientSession(link, 7, clock);
    await clock.advance(TEST_TIMINGS.idle_timeout_ms / 2);
    expect(tunnel.summary().sessions).toHaveLength(1);
    await clock.advance(TEST_TIMINGS.idle_timeout_ms);
    expect(tunnel.summary().sessions).toEqual([]);
    expect(link.sentOf('session_close')[0]?.reason).toMatch(/^idle_timeout: /);
  });

  it('ends a session the broker closed without telling the broker back', () => {
    const { tunnel, link } = farm({ services: { echo: '127.0.0.1:9' } });
    link.deliver(open());
    link.deliver({ type: 'session_closed', session_id: SESSION, code: 'replaced', reason: 'the client reopened' });
    expect(tunnel.summary()).toMatchObject({ sessions: [], closed_total: 1 });
    expect(link.sentOf('session_close')).toEqual([]);
  });

  it('on an address change tells the broker, reconnects at once, and restarts direct paths once back', () => {
    const { link, changeAddresses, lines } = farm({ services: { echo: '127.0.0.1:9' }, path: 'direct' });
    link.deliver(open());
    changeAddresses(['eth0/IPv4/10.0.0.5']);
    expect(link.sentOf('address_change')).toEqual([
      { type: 'address_change', local_addresses: ['eth0/IPv4/10.0.0.5'] },
    ]);
    expect(link.reconnects).toEqual([{ reason: 'this PC changed address', kind: 'address_change' }]);
    expect(lines.some((l) => l.msg.startsWith("This PC's addresses changed (now eth0/IPv4/10.0.0.5)"))).toBe(true);
    // Stale candidates are dropped only once the new socket can carry the signal.
    expect(link.sentOf('signal')).toEqual([]);
    link.drop('this PC changed address', 'address_change');
    link.connect('broker-1');
    expect(link.hellos.at(-1)?.local_addresses).toEqual(['eth0/IPv4/10.0.0.5']);
    expect(link.sentOf('signal')).toEqual([{ type: 'signal', session_id: SESSION, payload: { kind: 'restart' } }]);
  });

  it('sends no restart for a session on the relay after an address change', () => {
    const { link, changeAddresses } = farm({ services: { echo: '127.0.0.1:9' } });
    link.deliver(open());
    changeAddresses(['eth0/IPv4/10.0.0.5']);
    link.drop('this PC changed address', 'address_change');
    link.connect('broker-1');
    expect(link.sentOf('signal')).toEqual([]);
  });

  it('stopping closes every session at the broker, then the link', () => {
    const { tunnel, link } = farm({ services: { echo: '127.0.0.1:9' } });
    link.deliver(open());
    link.deliver(open({ session_id: OTHER, route: 8 }));
    tunnel.stop('the agent is stopping');
    expect(
      link
        .sentOf('session_close')
        .map((m) => m.session_id)
        .sort(),
    ).toEqual([SESSION, OTHER].sort());
    expect(link.stoppedWith).toBe('the agent is stopping');
    expect(tunnel.summary()).toMatchObject({ link: { state: 'off' }, sessions: [], closed_total: 2 });
  });

  describe('direct-path connectors', () => {
    /** A connector as the farm sees it: records what it was told. */
    function fakeDirects() {
      const made: Array<{ id: string; signal: (p: SignalPayload) => void; calls: string[] }> = [];
      const createDirect: CreateFarmDirect = (id, signal) => {
        const entry = { id, signal, calls: [] as string[] };
        made.push(entry);
        return {
          events: new TypedEmitter<DirectConnectorEvents>(),
          receive: (payload) => entry.calls.push(`receive ${payload.kind}`),
          restart: (reason) => entry.calls.push(`restart ${reason}`),
          close: (reason) => entry.calls.push(`close ${reason ?? ''}`),
        };
      };
      return { made, createDirect };
    }

    it('makes one per session, routes its signals both ways, and closes it when the session ends', () => {
      const directs = fakeDirects();
      const { link } = farm({ services: { echo: '127.0.0.1:9' }, createDirect: directs.createDirect });
      link.deliver(open());
      expect(directs.made.map((d) => d.id)).toEqual([SESSION]);
      link.deliver({ type: 'signal', session_id: SESSION, payload: { kind: 'offer', sdp: 'v=0' } });
      link.deliver({ type: 'signal', session_id: OTHER, payload: { kind: 'offer', sdp: 'v=0' } });
      expect(directs.made[0]?.calls).toEqual(['receive offer']);
      directs.made[0]?.signal({ kind: 'answer', sdp: 'v=0' });
      expect(link.sentOf('signal')).toEqual([
        { type: 'signal', session_id: SESSION, payload: { kind: 'answer', sdp: 'v=0' } },
      ]);
      link.deliver({ type: 'session_closed', session_id: SESSION, code: 'closed', reason: 'client stopped' });
      expect(directs.made[0]?.calls.slice(0, 2)).toEqual(['receive offer', 'close session ended (closed)']);
    });

    it('closes the connector when the client goes away and makes a new one when it is back', () => {
      const directs = fakeDirects();
      const { link } = farm({ services: { echo: '127.0.0.1:9' }, createDirect: directs.createDirect });
      link.deliver(open());
      link.deliver({ type: 'peer_state', session_id: SESSION, state: 'down', reason: 'socket lost' });
      expect(directs.made[0]?.calls).toEqual(['close client away (socket lost)']);
      link.deliver({ type: 'signal', session_id: SESSION, payload: { kind: 'offer', sdp: 'v=0' } });
      expect(directs.made[0]?.calls).toHaveLength(1);
      link.deliver({ type: 'peer_state', session_id: SESSION, state: 'up', reason: 'back', route: 7 });
      expect(directs.made).toHaveLength(2);
      link.deliver({ type: 'signal', session_id: SESSION, payload: { kind: 'offer', sdp: 'v=0' } });
      expect(directs.made[1]?.calls).toEqual(['receive offer']);
    });

    it('restarts each connector once the link is back after an address change', () => {
      const directs = fakeDirects();
      const { link, changeAddresses } = farm({ services: { echo: '127.0.0.1:9' }, createDirect: directs.createDirect });
      link.deliver(open());
      changeAddresses(['eth0/IPv4/10.0.0.5']);
      link.drop('this PC changed address', 'address_change');
      link.connect('broker-1');
      expect(directs.made[0]?.calls).toEqual(['restart this PC changed address']);
    });
  });
});
