import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/close-codes.js';
import { FrameKind, encodeFrame } from '../protocol/tunnel-frame.js';
import { TUNNEL_PROTOCOL_VERSION } from '../protocol/tunnel.js';
import { mintToken } from '../server/auth.js';
import { TEST_SECRET, startHub, type HubProcess } from './helpers/hub-process.js';
import { RawClient, metric } from './helpers/raw-client.js';
import { TunnelPeer, bootId, type TunnelMessage } from './helpers/tunnel-peer.js';
import { waitUntil } from './helpers/wait.js';
import { systemClock } from '../lib/clock.js';
import { TypedEmitter } from '../lib/events.js';
import type { TunnelPath, TunnelPathEvents } from '../lib/tunnel/tunnel-path.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import type { TunnelStream } from '../lib/tunnel/tunnel-stream.js';

/**
 * The tunnel broker in a real hub process (docs/tunnel.md), driven by raw tunnel ends that speak the
 * control messages and binary frames by hand: who may connect as what, how sessions open, relay,
 * resume, are replaced and end, and what the hub shows of them.
 */

let hub: HubProcess;
/** A hub with short limits, for the timers: resume window, idle limit, ping deadline. */
let quick: HubProcess;

const QUICK = { pingInterval: 100, pingTimeout: 400, resumeWindow: 700, idle: 500 };

beforeAll(async () => {
  [hub, quick] = await Promise.all([
    startHub({
      args: ['--hello-timeout', '0.5', '--tunnel-resume-window-ms', '20000', '--tunnel-max-sessions-per-client', '3'],
    }),
    startHub({
      args: [
        '--tunnel-ping-interval-ms',
        String(QUICK.pingInterval),
        '--tunnel-ping-timeout-ms',
        String(QUICK.pingTimeout),
        '--tunnel-resume-window-ms',
        String(QUICK.resumeWindow),
        '--tunnel-idle-timeout-ms',
        String(QUICK.idle),
      ],
    }),
  ]);
});

afterEach(() => {
  TunnelPeer.terminateAll();
  RawClient.terminateAll();
});

afterAll(async () => {
  await Promise.all([hub.kill(), quick.kill()]);
});

let serial = 0;
/** An agent id of its own for each test, so tests on one hub never see each other's sessions. */
const agentId = (what: string) => `pc-${what}-${++serial}`;

/** Opens a session from `client` to `farm` (the farm accepts) and returns the client's `opened`. */
async function openSession(
  client: TunnelPeer,
  farm: TunnelPeer,
  agent: string,
  options: { clientKey?: string; service?: string } = {},
): Promise<TunnelMessage> {
  const answer = client.open(agent, options.service ?? 'adb', options);
  await farm.accept();
  const opened = await answer;
  expect(opened, JSON.stringify(opened)).toMatchObject({ type: 'opened', agent_id: agent, resumed: false });
  return opened;
}

function upgradeRefusal(peer: TunnelPeer): Promise<{ status: number; body: string }> {
  return waitUntil('the HTTP refusal of the upgrade', () => peer.rejection);
}

describe('who may connect as what', () => {
  it('refuses the upgrade without a token (401), with a bad token (401) and with an admin token (403), saying why', async () => {
    const none = await upgradeRefusal(TunnelPeer.dial(hub, undefined));
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/no token: send Authorization: Bearer/);
    const forged = await mintToken('another-secret-0123456789-abcdefghijkl', { role: 'agent', agentId: 'pc-x' });
    const bad = await upgradeRefusal(TunnelPeer.dial(hub, forged));
    expect(bad.status).toBe(401);
    expect(bad.body).toMatch(/token refused: .*secret/);
    const admin = await upgradeRefusal(TunnelPeer.dial(hub, await hub.adminToken()));
    expect(admin.status).toBe(403);
    expect(admin.body).toMatch(/admin token cannot open a tunnel socket/);
    expect(await metric(hub, 'farmlink_tunnel_upgrades_refused_total', { status: '401' })).toBeGreaterThanOrEqual(2);
  });

  it('an agent token makes a farm end and a client token a client end; neither can be the other', async () => {
    const agent = agentId('roles');
    const farm = await TunnelPeer.farm(hub, agent);
    expect(farm.messages[0]).toMatchObject({
      type: 'welcome',
      protocol: TUNNEL_PROTOCOL_VERSION,
      role: 'farm',
      observed_address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as string,
      timings: { resume_window_ms: 20_000, ping_interval_ms: 5000, ping_timeout_ms: 10_000, idle_timeout_ms: 300_000 },
    });
    const client = await TunnelPeer.client(hub, 'alice');
    expect(client.messages[0]).toMatchObject({ type: 'welcome', role: 'client' });

    // An agent token saying client_hello, or opening a session: not a farm message (4422).
    const agentAsClient = await TunnelPeer.connect(hub, await hub.agentToken(agent));
    agentAsClient.send({ type: 'client_hello', protocol: 1, boot_id: bootId(), version: 'x' });
    expect(await agentAsClient.closed).toMatchObject({ code: CloseCode.INVALID_MESSAGE });
    // A client token saying farm_hello: not a client message (4422): no client takes over a farm's identity.
    const clientToken = await mintToken(TEST_SECRET, { role: 'client', clientName: 'mallory', agents: ['*'] });
    const clientAsFarm = await TunnelPeer.connect(hub, clientToken);
    clientAsFarm.send({
      type: 'farm_hello',
      protocol: 1,
      agent_id: agent,
      boot_id: bootId(),
      services: ['adb'],
      local_addresses: [],
      version: 'x',
    });
    expect(await clientAsFarm.closed).toMatchObject({ code: CloseCode.INVALID_MESSAGE });
    // …nor on the agent endpoint.
    const raw = await RawClient.connect(hub.wsUrl, { token: clientToken });
    raw.sendHello(agent);
    expect(await raw.closed).toMatchObject({ code: CloseCode.FORBIDDEN, reason: /client token cannot register/ });
    // Another agent's token cannot say hello as this farm.
    const other = await TunnelPeer.connect(hub, await hub.agentToken('pc-other'));
    other.send({
      type: 'farm_hello',
      protocol: 1,
      agent_id: agent,
      boot_id: bootId(),
      services: ['adb'],
      local_addresses: [],
      version: 'x',
    });
    expect(await other.closed).toMatchObject({ code: CloseCode.FORBIDDEN, reason: /token is for "pc-other"/ });
    // The real farm is still there and still reachable.
    await openSession(client, farm, agent);
  });

  it('closes a socket for no hello (4408), bad JSON (4400), a schema error (4422, the issue as reason) and a binary frame before hello (4422)', async () => {
    const token = await hub.agentToken(agentId('bad'));
    const silent = await TunnelPeer.connect(hub, token);
    expect(await silent.closed).toMatchObject({ code: CloseCode.HELLO_TIMEOUT, reason: /no farm_hello within 500 ms/ });
    const garbage = await TunnelPeer.connect(hub, token);
    garbage.sendText('{not json');
    expect(await garbage.closed).toMatchObject({ code: CloseCode.INVALID_JSON });
    const wrong = await TunnelPeer.connect(hub, token);
    wrong.send({
      type: 'farm_hello',
      protocol: 1,
      agent_id: 'x',
      boot_id: 'nothex',
      services: [],
      local_addresses: [],
    });
    expect(await wrong.closed).toMatchObject({
      code: CloseCode.INVALID_MESSAGE,
      reason: /boot_id: expected 16–64 hex/,
    });
    const binary = await TunnelPeer.connect(hub, token);
    binary.sendFrame(encodeFrame(FrameKind.DATA, 1, 0, 1, Buffer.from('x')));
    expect(await binary.closed).toMatchObject({ code: CloseCode.INVALID_MESSAGE, reason: /binary frame before/ });
    const early = await TunnelPeer.connect(
      hub,
      await mintToken(TEST_SECRET, { role: 'client', clientName: 'c', agents: ['*'] }),
    );
    early.send({ type: 'open', request_id: 1, agent_id: 'pc-1', service: 'adb', client_key: 'k' });
    expect(await early.closed).toMatchObject({ code: CloseCode.INVALID_MESSAGE, reason: /open before client_hello/ });
  });
});

describe('opening sessions', () => {
  it('answers not_authorized, farm_unavailable, unknown_service, the farm refusal and limit_reached with their codes', async () => {
    const agent = agentId('open');
    const farm = await TunnelPeer.farm(hub, agent, { services: ['adb', 'ssh'] });
    const narrow = await TunnelPeer.client(hub, 'narrow', ['pc-elsewhere']);
    expect(await narrow.open(agent, 'adb')).toMatchObject({
      type: 'open_failed',
      code: 'not_authorized',
      reason: expect.stringContaining(`does not allow ${agent}`) as string,
    });
    const client = await TunnelPeer.client(hub, 'limited');
    expect(await client.open('pc-nowhere', 'adb')).toMatchObject({ code: 'farm_unavailable' });
    expect(await client.open(agent, 'vnc')).toMatchObject({
      code: 'unknown_service',
      reason: expect.stringContaining('it exposes: adb, ssh') as string,
    });
    // The farm says no (its allowlist changed, say): the client gets the farm's code.
    const refused = client.open(agent, 'ssh');
    const offer = await farm.next('session_open');
    expect(offer).toMatchObject({ service: 'ssh', resume: false, client: { name: 'limited' } });
    expect(offer.session_id).toMatch(/^[0-9a-f]{32}$/);
    farm.send({
      type: 'session_refuse',
      session_id: offer.session_id,
      route: offer.route,
      code: 'unknown_service',
      reason: 'not any more',
    });
    expect(await refused).toMatchObject({
      code: 'unknown_service',
      reason: expect.stringContaining('not any more') as string,
    });
    // Three live sessions per client on this hub: the fourth is refused.
    for (let i = 0; i < 3; i += 1) await openSession(client, farm, agent);
    expect(await client.open(agent, 'adb')).toMatchObject({
      code: 'limit_reached',
      reason: expect.stringContaining('--tunnel-max-sessions-per-client 3') as string,
    });
    expect(await metric(hub, 'farmlink_tunnel_open_failed_total', { code: 'limit_reached' })).toBeGreaterThanOrEqual(1);
  });

  it('waits for a farm not yet connected when asked to (wait: true)', async () => {
    const agent = agentId('wait');
    const client = await TunnelPeer.client(hub, 'patient');
    const answer = client.open(agent, 'adb', { wait: true });
    const farm = await TunnelPeer.farm(hub, agent);
    await farm.accept();
    expect(await answer).toMatchObject({
      type: 'opened',
      resumed: false,
      farm_address: farm.messages[0]!.observed_address,
    });
  });
});

describe('the relay', () => {
  it('carries binary frames both ways byte for byte; frames for unknown routes are dropped and counted', async () => {
    const agent = agentId('relay');
    const farm = await TunnelPeer.farm(hub, agent);
    const client = await TunnelPeer.client(hub, 'relay-user');
    const opened = await openSession(client, farm, agent);
    const route = opened.route as number;
    const up = Array.from({ length: 40 }, (_, i) =>
      encodeFrame(FrameKind.DATA, route, i + 1, 1, randomBytes(1 + i * 1500)),
    );
    const down = Array.from({ length: 40 }, (_, i) =>
      encodeFrame(FrameKind.DATA, route, i + 1, 1, randomBytes(60_000 - i)),
    );
    for (const frame of up) client.sendFrame(frame);
    for (const frame of down) farm.sendFrame(frame);
    await waitUntil(
      'every frame across',
      () => farm.framesFor(route).length === up.length && client.framesFor(route).length === down.length,
    );
    const hash = (frames: Buffer[]) => createHash('sha256').update(Buffer.concat(frames)).digest('hex');
    expect(hash(farm.framesFor(route))).toBe(hash(up));
    expect(hash(client.framesFor(route))).toBe(hash(down));

    const before = await metric(hub, 'farmlink_tunnel_dropped_frames_total', { reason: 'unknown_route' });
    client.sendFrame(encodeFrame(FrameKind.DATA, 0xfffffff0, 1, 1, Buffer.from('lost')));
    await waitUntil(
      'the drop counted',
      async () =>
        (await metric(hub, 'farmlink_tunnel_dropped_frames_total', { reason: 'unknown_route' })) === before + 1,
    );
    // Another client cannot write into this session by guessing its route.
    const intruder = await TunnelPeer.client(hub, 'intruder');
    intruder.sendFrame(encodeFrame(FrameKind.DATA, route, 99, 1, Buffer.from('injected')));
    await waitUntil(
      'the intrusion counted',
      async () => (await metric(hub, 'farmlink_tunnel_dropped_frames_total', { reason: 'not_a_party' })) >= 1,
    );
    expect(farm.framesFor(route)).toHaveLength(up.length);
    const upBytes = up.reduce((n, f) => n + f.length, 0);
    const downBytes = down.reduce((n, f) => n + f.length, 0);
    expect(
      await metric(hub, 'farmlink_tunnel_relay_bytes_total', { direction: 'client_to_farm' }),
    ).toBeGreaterThanOrEqual(upBytes);
    expect(
      await metric(hub, 'farmlink_tunnel_relay_bytes_total', { direction: 'farm_to_client' }),
    ).toBeGreaterThanOrEqual(downBytes);

    // signal goes to the other side untouched.
    const text = JSON.stringify({
      type: 'signal',
      session_id: opened.session_id,
      payload: { kind: 'offer', sdp: 'v=0 x' },
    });
    client.sendText(text);
    await farm.next('signal');
    expect(farm.messages.find((m) => m.type === 'signal')).toEqual(JSON.parse(text));
  });
});

/** A bare relay path over a raw tunnel socket: enough to run real sessions through the broker. */
function relayPath(peer: TunnelPeer, route: number): TunnelPath {
  const events = new TypedEmitter<TunnelPathEvents>();
  peer.ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary && data.readUInt32BE(1) === route) events.emit('frame', data);
  });
  return {
    kind: 'relay',
    route,
    events,
    isUp: true,
    send: (frame) => {
      peer.ws.send(frame, { binary: true });
      return true;
    },
    get buffered() {
      return peer.ws.bufferedAmount;
    },
  };
}

describe('real sessions through the broker', () => {
  it('a stream between two TunnelSessions carries 8 MB to an echo and back, byte for byte', async () => {
    const agent = agentId('session');
    const farm = await TunnelPeer.farm(hub, agent);
    const client = await TunnelPeer.client(hub, 'session-user');
    const opened = await openSession(client, farm, agent);
    const common = {
      sessionId: opened.session_id as string,
      service: 'adb',
      clock: systemClock,
      pingIntervalMs: 1000,
      pingTimeoutMs: 10_000,
    };
    const farmSession = new TunnelSession({ ...common, role: 'farm', peer: 'session-user' });
    const clientSession = new TunnelSession({ ...common, role: 'client', peer: agent });
    farmSession.events.on('stream', (stream: TunnelStream) => {
      stream.accept();
      stream.pipe(stream);
    });
    farmSession.attach(relayPath(farm, opened.route as number));
    clientSession.attach(relayPath(client, opened.route as number));
    try {
      const data = randomBytes(8 * 1024 * 1024);
      const stream = clientSession.openStream();
      const received: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = new Promise((resolve) => stream.on('end', resolve));
      stream.end(data);
      await ended;
      const back = Buffer.concat(received);
      expect(back.length).toBe(data.length);
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      clientSession.close('closed', 'test over');
      farmSession.close('closed', 'test over');
    }
  });
});

describe('restarts, reconnects and replacements', () => {
  it('the same client_key opening again replaces the old session at once (replaced, both sides told)', async () => {
    const agent = agentId('replace');
    const farm = await TunnelPeer.farm(hub, agent);
    const first = await TunnelPeer.client(hub, 'restarter');
    const old = await openSession(first, farm, agent, { clientKey: 'pc/adb/15037' });
    // The client restarted: a new socket, the same key.
    const second = await TunnelPeer.client(hub, 'restarter');
    const answer = second.open(agent, 'adb', { clientKey: 'pc/adb/15037' });
    const closedOnFarm = await farm.next('session_closed', (m) => m.session_id === old.session_id);
    expect(closedOnFarm).toMatchObject({ code: 'replaced' });
    expect(await first.next('session_closed')).toMatchObject({ session_id: old.session_id, code: 'replaced' });
    await farm.accept();
    const renewed = await answer;
    expect(renewed).toMatchObject({ type: 'opened' });
    expect(renewed.session_id).not.toBe(old.session_id);
    expect(renewed.route).not.toBe(old.route);
  });

  it('a new socket for the same farm replaces the old one (4409); the same boot id resumes, another ends its sessions (peer_restarted)', async () => {
    const agent = agentId('farm-restart');
    const boot = bootId();
    const farm1 = await TunnelPeer.farm(hub, agent, { bootId: boot });
    const client = await TunnelPeer.client(hub, 'watcher');
    const opened = await openSession(client, farm1, agent);

    // Reconnect (same boot id) while the old socket is still up: replaced at once, the session offered again.
    const farm2 = await TunnelPeer.farm(hub, agent, { bootId: boot });
    expect(await farm1.closed).toMatchObject({ code: CloseCode.REPLACED, reason: /replaced by a new connection/ });
    const offer = await farm2.next('session_open');
    expect(offer).toMatchObject({ session_id: opened.session_id, route: opened.route, resume: true });
    farm2.send({ type: 'session_accept', session_id: offer.session_id, route: offer.route });
    expect(await client.next('peer_state', (m) => m.state === 'up')).toMatchObject({
      session_id: opened.session_id,
      route: opened.route,
    });
    const log = await hub.waitForLog(
      'replace line',
      (l) => typeof l.msg === 'string' && l.msg.startsWith(`Farm ${agent} replaced`),
    );
    expect(log.msg).toMatch(/1 session offered for resume/);
    // Relay works on the new socket.
    client.sendData(opened.route as number, 1, 1, Buffer.from('after reconnect'));
    await waitUntil('the frame on the new farm socket', () => farm2.framesFor(opened.route as number).length === 1);

    // Restart (another boot id): the old session ends for the client at once.
    const farm3 = await TunnelPeer.farm(hub, agent, { bootId: bootId() });
    expect(await client.next('session_closed')).toMatchObject({
      session_id: opened.session_id,
      code: 'peer_restarted',
    });
    expect(farm3.has('session_open')).toBe(false);
    await openSession(client, farm3, agent);
  });

  it('a client that reconnects resumes its session (resumed: true); the farm is told down, then up', async () => {
    const agent = agentId('client-resume');
    const farm = await TunnelPeer.farm(hub, agent);
    const client1 = await TunnelPeer.client(hub, 'roamer');
    const opened = await openSession(client1, farm, agent, { clientKey: 'k1' });
    client1.ws.terminate();
    expect(await farm.next('peer_state')).toMatchObject({ session_id: opened.session_id, state: 'down' });
    const client2 = await TunnelPeer.client(hub, 'roamer');
    const resumed = await client2.open(agent, 'adb', {
      clientKey: 'k1',
      resume: opened.session_id as string,
      wait: true,
    });
    expect(resumed).toMatchObject({
      type: 'opened',
      resumed: true,
      session_id: opened.session_id,
      route: opened.route,
    });
    expect(await farm.next('peer_state')).toMatchObject({ state: 'up', route: opened.route });
    // Another client name cannot take it over.
    const thief = await TunnelPeer.client(hub, 'thief');
    expect(await thief.open(agent, 'adb', { resume: opened.session_id as string })).toMatchObject({
      code: 'not_authorized',
    });
  });

  it('a resume this broker does not know (it restarted) is offered to the farm; unknown there → open_failed unknown_session', async () => {
    const agent = agentId('broker-restart');
    const farm = await TunnelPeer.farm(hub, agent);
    const client = await TunnelPeer.client(hub, 'survivor');
    const held = randomBytes(16).toString('hex');
    const kept = client.open(agent, 'adb', { resume: held });
    const offer = await farm.next('session_open');
    expect(offer).toMatchObject({ session_id: held, resume: true });
    farm.send({ type: 'session_accept', session_id: held, route: offer.route });
    expect(await kept).toMatchObject({ type: 'opened', session_id: held, resumed: true });

    const lost = randomBytes(16).toString('hex');
    const gone = client.open(agent, 'adb', { resume: lost });
    const offer2 = await farm.next('session_open');
    farm.send({
      type: 'session_refuse',
      session_id: lost,
      route: offer2.route,
      code: 'unknown_session',
      reason: 'not held',
    });
    expect(await gone).toMatchObject({ type: 'open_failed', code: 'unknown_session' });
  });

  it("an address_change tells the farm's clients the farm moved", async () => {
    const agent = agentId('moved');
    const farm = await TunnelPeer.farm(hub, agent);
    const client = await TunnelPeer.client(hub, 'follower');
    const opened = await openSession(client, farm, agent);
    farm.send({ type: 'address_change', local_addresses: ['10.0.0.9'] });
    expect(await client.next('peer_state')).toMatchObject({
      session_id: opened.session_id,
      state: 'moved',
      address: farm.messages[0]!.observed_address,
      reason: expect.stringContaining('10.0.0.9') as string,
    });
  });
});

describe('timers (a hub with millisecond limits)', () => {
  it('a farm cut off (no pongs) is dropped within the ping deadline: its clients are told down, then the session ends after the resume window', async () => {
    const agent = agentId('cut');
    const farm = await TunnelPeer.farm(quick, agent);
    expect(farm.messages[0]).toMatchObject({ timings: { ping_timeout_ms: QUICK.pingTimeout } });
    const client = await TunnelPeer.client(quick, 'bystander');
    const opened = await openSession(client, farm, agent);
    farm.pauseReading();
    const down = await client.next('peer_state', (m) => m.state === 'down');
    expect(down).toMatchObject({ session_id: opened.session_id });
    await quick.waitForLog('ping timeout', (l) => l.kind === 'ping_timeout' && l.name === agent);
    expect(await client.next('session_closed')).toMatchObject({
      session_id: opened.session_id,
      code: 'resume_window_expired',
      reason: expect.stringContaining(`${agent} was away longer than the resume window`) as string,
    });
  });

  it('ends an idle session on both sides (idle_timeout); one whose ends report an open stream stays', async () => {
    const agent = agentId('idle');
    const farm = await TunnelPeer.farm(quick, agent);
    const client = await TunnelPeer.client(quick, 'idler');
    const idle = await openSession(client, farm, agent);
    const busy = await openSession(client, farm, agent);
    client.send({ type: 'session_report', session_id: busy.session_id, path: 'direct', rtt_ms: 1.5, streams_open: 1 });
    expect(await client.next('session_closed', (m) => m.session_id === idle.session_id)).toMatchObject({
      code: 'idle_timeout',
    });
    expect(await farm.next('session_closed', (m) => m.session_id === idle.session_id)).toMatchObject({
      code: 'idle_timeout',
    });
    const listing = await quick.get('/api/v1/admin/tunnel/sessions', await quick.adminToken());
    const sessions = (listing.body as { sessions: Array<Record<string, unknown>> }).sessions;
    expect(sessions.find((s) => s.session_id === busy.session_id)).toMatchObject({
      state: 'active',
      path: 'direct',
      rtt_ms: 1.5,
      streams_open: 1,
    });
    expect(client.has('session_closed', (m) => m.session_id === busy.session_id)).toBe(false);
  });
});

describe('diagnostics', () => {
  it('lists sessions with their fields and the farm address for an admin token only; /metrics counts them', async () => {
    const agent = agentId('listed');
    const farm = await TunnelPeer.farm(hub, agent, { services: ['adb'] });
    const client = await TunnelPeer.client(hub, 'lister');
    const opened = await openSession(client, farm, agent, { clientKey: 'list-key' });
    client.sendData(opened.route as number, 1, 1, Buffer.alloc(1000));
    await waitUntil('the frame across', () => farm.framesFor(opened.route as number).length === 1);
    const clientToken = await mintToken(TEST_SECRET, { role: 'client', clientName: 'lister', agents: ['*'] });
    expect((await hub.get('/api/v1/admin/tunnel/sessions', clientToken)).status).toBe(403);
    expect((await hub.get('/api/v1/admin/tunnel/sessions')).status).toBe(401);
    const res = await hub.get('/api/v1/admin/tunnel/sessions', await hub.adminToken());
    expect(res.status).toBe(200);
    const body = res.body as { sessions: Array<Record<string, unknown>>; farms: Array<Record<string, unknown>> };
    expect(body.sessions.find((s) => s.session_id === opened.session_id)).toMatchObject({
      route: opened.route,
      client: 'lister',
      client_key: 'list-key',
      agent_id: agent,
      service: 'adb',
      state: 'active',
      bytes_client_to_farm: 1017,
      bytes_farm_to_client: 0,
      farm_address: farm.messages[0]!.observed_address,
      created_at: expect.any(Number) as number,
      last_activity_at: expect.any(Number) as number,
    });
    expect(body.farms.find((f) => f.agent_id === agent)).toMatchObject({
      services: ['adb'],
      local_addresses: ['192.168.1.17'],
    });
    expect(await metric(hub, 'farmlink_tunnel_sessions', { state: 'active' })).toBeGreaterThanOrEqual(1);
    expect(await metric(hub, 'farmlink_tunnel_farms_connected')).toBeGreaterThanOrEqual(1);
    expect(await metric(hub, 'farmlink_tunnel_clients_connected')).toBeGreaterThanOrEqual(1);
    expect(await metric(hub, 'farmlink_tunnel_sessions_opened_total', { kind: 'new' })).toBeGreaterThanOrEqual(1);
    const json = await fetch(`${hub.url}/metrics`, { headers: { accept: 'application/json' } });
    const view = (await json.json()) as { tunnel: Record<string, unknown> };
    expect(view.tunnel).toMatchObject({
      farms_connected: expect.any(Number) as number,
      sessions: { active: expect.any(Number) as number },
      relay_bytes: { client_to_farm: expect.any(Number) as number },
    });
    const line = await hub.waitForLog('opened line', (l) => l.session === opened.session_id && /opened/.test(l.msg));
    expect(line.msg).toBe(
      `Tunnel session ${(opened.session_id as string).slice(0, 8)}… lister → ${agent}/adb opened (route ${String(opened.route)})`,
    );
  });
});

describe('drain', () => {
  it('tells every tunnel socket `draining` and closes it 1001; new tunnel upgrades get 503', async () => {
    const own = await startHub();
    try {
      const agent = agentId('drain');
      const farm = await TunnelPeer.farm(own, agent);
      const client = await TunnelPeer.client(own, 'drained');
      await openSession(client, farm, agent);
      const res = await own.post('/api/v1/admin/drain', { reason: 'deploy' }, await own.adminToken());
      expect(res.status).toBe(202);
      for (const peer of [farm, client]) {
        expect(await peer.next('draining')).toMatchObject({ reason: 'deploy' });
        expect(await peer.closed).toMatchObject({ code: CloseCode.GOING_AWAY, reason: /draining.*next server/ });
      }
      const late = await upgradeRefusal(TunnelPeer.dial(own, await own.agentToken(agent)));
      expect(late.status).toBe(503);
      expect(late.body).toMatch(/draining: connect to the next server/);
    } finally {
      await own.kill();
    }
  });
});

describe('a hub of several worker processes', () => {
  it('refuses tunnel upgrades with 503 and a sentence saying why (both ends must be on one process)', async () => {
    const workers = await startHub({ args: ['--workers', '2'], startTimeoutMs: 30_000 });
    try {
      const refused = await upgradeRefusal(TunnelPeer.dial(workers, await workers.agentToken('pc-w')));
      expect(refused.status).toBe(503);
      expect(refused.body).toMatch(/several worker processes \(--workers\).*--workers 1/);
    } finally {
      await workers.kill();
    }
  });
});
