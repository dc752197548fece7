import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CloseCode, UpgradeRefusal } from '../protocol/close-codes.js';
import { AgentHarness } from './helpers/agent-harness.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { RawClient, errorCount, expectClosedWith, metric, withTimeout } from './helpers/raw-client.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Connections that cost the hub without ever becoming agents: sockets that never show a token
 * (held open, or reopened in a loop, from one address) and HTTP requests whose head trickles in.
 * Real hub processes and real sockets; the "other hosts" are other loopback addresses (Linux
 * routes all of 127/8 to lo), so per-address limits are exercised for real.
 */

const FLOOD_ADDRESS = '127.0.0.5';
const SECOND_ADDRESS = '127.0.0.6';

const hubs: HubProcess[] = [];
const harnesses: AgentHarness[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  RawClient.terminateAll();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(harnesses.splice(0).map((h) => h.stop()));
  await Promise.all(hubs.splice(0).map((h) => h.kill()));
});

async function hub(args: string[]): Promise<HubProcess> {
  const started = await startHub({ args: ['--broadcast-interval', '0', ...args] });
  hubs.push(started);
  return started;
}

/** A real agent (from 127.0.0.1, token in the Authorization header) that must register. */
async function realAgent(on: HubProcess, id: string): Promise<AgentHarness> {
  const harness = await AgentHarness.create({
    servers: [on.url],
    id,
    timing: { deadTimeoutMs: 5000, pingTimeoutMs: 3000 },
  });
  harnesses.push(harness);
  harness.start();
  await harness.registeredOn(0);
  return harness;
}

async function registeredRaw(on: HubProcess, id: string): Promise<RawClient> {
  const client = await RawClient.connect(on.wsUrl, { token: await on.agentToken(id) });
  await client.register(id);
  return client;
}

interface Flood {
  open: RawClient[];
  refused: RawClient[];
  /** Neither open nor refused with an HTTP status: closed some other way. */
  other: RawClient[];
}

/** Dials `count` WebSockets without a token from `localAddress`, all at once, and waits until each is open or refused. */
async function flood(on: HubProcess, localAddress: string, count: number): Promise<Flood> {
  const clients = Array.from({ length: count }, () => RawClient.dial(on.wsUrl, { localAddress }));
  const settled = (c: RawClient) => c.ws.readyState === WebSocket.OPEN || c.isClosed;
  await waitUntil(
    `all ${count} sockets from ${localAddress} to be open or refused`,
    () => clients.every(settled),
    15_000,
  );
  return {
    open: clients.filter((c) => c.ws.readyState === WebSocket.OPEN),
    refused: clients.filter((c) => c.rejection !== undefined),
    other: clients.filter((c) => c.isClosed && c.rejection === undefined),
  };
}

function unauthenticatedOpen(on: HubProcess): Promise<number> {
  return metric(on, 'farmlink_connections_unauthenticated');
}

describe('hub: connections without a token have their own budget', () => {
  it(`a flood from ${FLOOD_ADDRESS} holds only its per-address seats; agents from 127.0.0.1 take every --max-connections seat`, async () => {
    const h = await hub([
      '--max-connections',
      '4',
      '--max-unauthenticated',
      '12',
      '--max-unauthenticated-per-address',
      '8',
      '--hello-timeout',
      '60',
    ]);
    const refusedBefore = await errorCount(h, 'unauthenticated_per_address');

    const { open, refused, other } = await flood(h, FLOOD_ADDRESS, 30);
    expect(
      other.map((c) => c.ws.readyState),
      'flood sockets closed without an HTTP refusal',
    ).toEqual([]);
    expect(open, 'flood sockets the hub accepted').toHaveLength(8);
    expect(refused, 'flood sockets refused at the upgrade').toHaveLength(22);
    for (const client of refused) {
      expect(client.rejection?.status).toBe(UpgradeRefusal.UNAUTHENTICATED_PER_ADDRESS);
      expect(client.rejection?.body).toMatch(
        /127\.0\.0\.5 already holds 8 connections without a valid agent token \(--max-unauthenticated-per-address\)/,
      );
    }
    expect(await errorCount(h, 'unauthenticated_per_address')).toBe(refusedBefore + 22);
    expect(await unauthenticatedOpen(h)).toBe(8);

    // While the flood holds its seats, all four --max-connections seats go to agents with tokens.
    const agent = await realAgent(h, 'real-agent');
    const others = await Promise.all(['seat-2', 'seat-3', 'seat-4'].map((id) => registeredRaw(h, id)));
    // The limit itself still holds, counting agents only.
    const fifth = RawClient.dial(h.wsUrl, { token: await h.agentToken('seat-5') });
    await expectClosedWith(fifth, CloseCode.TRY_AGAIN_LATER, /capacity \(4 connections\)/);

    expect(
      open.filter((c) => c.isClosed),
      'flood sockets the hub closed meanwhile',
    ).toEqual([]);
    expect(agent.state().phase).toBe('connected');
    expect(others.filter((c) => c.isClosed)).toEqual([]);
    expect(await metric(h, 'farmlink_agents_connected')).toBe(4);
  });

  it('all addresses together stop at --max-unauthenticated (HTTP 503); seats come back when flood sockets close', async () => {
    const h = await hub([
      '--max-connections',
      '10',
      '--max-unauthenticated',
      '12',
      '--max-unauthenticated-per-address',
      '8',
      '--hello-timeout',
      '60',
    ]);
    const first = await flood(h, FLOOD_ADDRESS, 8);
    expect(first.open).toHaveLength(8);
    const second = await flood(h, SECOND_ADDRESS, 8);
    expect(second.open, `sockets from ${SECOND_ADDRESS} accepted`).toHaveLength(4);
    expect(second.refused).toHaveLength(4);
    for (const client of second.refused) {
      expect(client.rejection?.status).toBe(UpgradeRefusal.UNAUTHENTICATED_TOTAL);
      expect(client.rejection?.body).toMatch(
        /already holds 12 connections without a valid agent token \(--max-unauthenticated\)/,
      );
    }
    expect(await errorCount(h, 'unauthenticated_total')).toBe(4);

    // A client that would show its token only in hello is unauthenticated at the upgrade: refused too.
    const helloOnly = RawClient.dial(h.wsUrl);
    await withTimeout(helloOnly.closed, 5000, 'the tokenless upgrade to be refused');
    expect(helloOnly.rejection?.status).toBe(UpgradeRefusal.UNAUTHENTICATED_TOTAL);
    // One with its token in the Authorization header is not.
    await realAgent(h, 'real-agent');

    for (const client of first.open) client.ws.terminate();
    await waitUntil(
      'the closed flood sockets to give their seats back',
      async () => (await unauthenticatedOpen(h)) === 4,
      5000,
    );
    const again = await RawClient.connect(h.wsUrl, { localAddress: '127.0.0.7' });
    expect(again.isClosed).toBe(false);
    expect(await unauthenticatedOpen(h)).toBe(5);
  });

  it('a socket without a token that authenticates in hello moves to a --max-connections seat, or is closed with 1013 when there is none', async () => {
    const h = await hub([
      '--max-connections',
      '2',
      '--max-unauthenticated',
      '4',
      '--max-unauthenticated-per-address',
      '4',
    ]);
    const late = await RawClient.connect(h.wsUrl);
    expect(await unauthenticatedOpen(h)).toBe(1);
    late.sendHello('hello-token', { token: await h.agentToken('hello-token') });
    await late.nextFrame('registered');
    expect(await unauthenticatedOpen(h), 'registered: no longer unauthenticated').toBe(0);

    await registeredRaw(h, 'seat-2');
    const overflow = await RawClient.connect(h.wsUrl);
    overflow.sendHello('overflow', { token: await h.agentToken('overflow') });
    await expectClosedWith(overflow, CloseCode.TRY_AGAIN_LATER, /capacity \(2 connections\)/);
    await waitUntil(
      'the refused socket to give its unauthenticated seat back',
      async () => (await unauthenticatedOpen(h)) === 0,
      5000,
    );
    expect(await metric(h, 'farmlink_agents_connected')).toBe(2);
  });
});

/** A raw TCP socket from `localAddress` that sends `head` now and `trickle` every 100 ms, and records what comes back. */
function trickler(
  port: number,
  localAddress: string,
  head: string,
  trickle: string,
): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(socket);
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.write(head));
  const timer = setInterval(() => {
    if (socket.writable && !socket.connecting) socket.write(trickle);
  }, 100);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => clearInterval(timer));
  return { socket, received: () => received, closed };
}

describe('hub: requests that trickle in (slow headers, slow bodies)', () => {
  it('cuts requests whose head or body trickles past --headers-timeout / --request-timeout with 408, while an agent registers', async () => {
    const h = await hub(['--headers-timeout', '0.5', '--request-timeout', '1']);
    const upgradeHead = `GET /api/v1/pc/ws HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
    const slowHeads = Array.from({ length: 40 }, (_, i) =>
      trickler(
        h.port,
        FLOOD_ADDRESS,
        i % 2 ? upgradeHead : `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\n`,
        'X-Padding: 1\r\n',
      ),
    );
    const slowBody = trickler(
      h.port,
      FLOOD_ADDRESS,
      `POST /api/v1/admin/broadcast HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nAuthorization: Bearer ` +
        `${await h.adminToken()}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n` +
        `{"data":{"x":"`,
      'x',
    );
    const agent = await realAgent(h, 'real-agent');

    const all = [...slowHeads, slowBody];
    // Bounded: with Node's defaults (60 s head, 300 s request, checked every 30 s) none would be cut in time.
    await withTimeout(Promise.all(all.map((t) => t.closed)), 20_000, 'the hub to close every trickling request');
    for (const t of all)
      expect(t.received(), 'what a trickling request got back').toMatch(/^HTTP\/1\.1 408 Request Timeout/);

    // The agent that registered meanwhile is still on its first session, and the hub answers it.
    expect(agent.state().phase).toBe('connected');
    expect(
      agent.events.filter((e) => e.to.phase === 'connected'),
      'registered once, no reconnect',
    ).toHaveLength(1);
    expect((await h.get('/health')).status).toBe(200);
  });
});
