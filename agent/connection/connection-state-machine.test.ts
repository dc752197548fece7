import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../protocol/close-codes.js';
import type { ConnectionEvent, ConnectionPhase } from '../../protocol/connection-state.js';
import { PROTOCOL_VERSION } from '../../protocol/version.js';
import { AgentConnection } from './connection.js';
import { FakeHub, TEST_TIMING as TIMING, type FakeHubLink } from './fake-hub-link.fixture.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';

const A = 'ws://hub-a.test/api/v1/pc/ws';
const B = 'ws://hub-b.test/api/v1/pc/ws';
const C = 'ws://hub-c.test/api/v1/pc/ws';

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
}

const WARN = 40;
const ERROR = 50;

function setup(servers: readonly string[] = [A], token: string | null = 'agent-token') {
  const clock = new ManualClock();
  const hub = new FakeHub(clock);
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const connection = new AgentConnection({
    servers,
    timing: TIMING,
    identity: {
      id: 'pc-017',
      name: 'rack 3',
      ...(token !== null ? { token } : {}),
      version: '0.0.0-test',
      hostname: 'test',
      platform: 'linux',
    },
    clock,
    random: () => 0.5,
    logger,
    usage: () => ({ cpu_usage: 12, ram_usage: 34 }),
    link: hub.factory,
  });
  const events: ConnectionEvent[] = [];
  connection.events.on('state', (e) => events.push(e));
  /** Phases entered since the last call. */
  let seen = 0;
  const phases = (): ConnectionPhase[] => {
    const out = events.slice(seen).map((e) => e.to.phase);
    seen = events.length;
    return out;
  };
  const lastEvent = (): ConnectionEvent => {
    const last = events.at(-1);
    if (!last) throw new Error('no state event yet');
    return last;
  };
  const logged = (re: RegExp, level?: number): LogLine[] =>
    lines.filter((l) => re.test(l.msg) && (level === undefined || l.level === level));
  /** Accept the current dial and register with the hub. */
  const connect = (): FakeHubLink => {
    const link = hub.last();
    link.accept();
    link.register({ hub_id: `hub-${link.url.slice(9, 10)}` });
    return link;
  };
  return { clock, hub, connection, events, lines, phases, lastEvent, logged, connect };
}

describe('AgentConnection on a fake link: connecting and registering', () => {
  it('dials with the token, says hello on open, and is connected on registered', () => {
    const t = setup();
    const registered: string[] = [];
    t.connection.events.on('registered', ({ registered: r }) => registered.push(r.session_id));
    t.connection.start();
    expect(t.phases()).toEqual(['connecting']);
    expect(t.hub.last().dial).toEqual({ url: A, version: '0.0.0-test', token: 'agent-token' });
    expect(t.logged(/^Connecting to ws:\/\/hub-a\.test/)).toHaveLength(1);

    const link = t.hub.last().accept();
    expect(t.phases()).toEqual(['registering']);
    expect(t.lastEvent().reason.code).toBe('socket_open');
    expect(link.sent).toEqual([
      {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        agent_id: 'pc-017',
        name: 'rack 3',
        version: '0.0.0-test',
        hostname: 'test',
        platform: 'linux',
        // protocol.mode defaults to auto: enhanced is offered, legacy is what a hub that ignores it speaks.
        capabilities: ['batch.v1'],
      },
    ]);

    link.register({ hub_id: 'hub-a', session_id: 's-1' });
    expect(t.phases()).toEqual(['connected']);
    const state = t.connection.getState();
    expect(state).toMatchObject({
      phase: 'connected',
      server: { index: 0, url: A },
      session_id: 's-1',
      hub_id: 'hub-a',
    });
    expect(t.lastEvent().reason).toEqual({ code: 'registered', message: 'Registered with hub hub-a' });
    expect(registered).toEqual(['s-1']);
    expect(t.logged(/^✓ Connected to server ws:\/\/hub-a\.test.* \(hub hub-a\)$/)).toHaveLength(1);
    expect(t.logged(/^✓ Registered as rack 3 \(pc-017\)$/)).toHaveLength(1);
    // The first heartbeat goes out as soon as the agent is registered, carrying the usage sample.
    expect(link.sentOf('heartbeat')).toMatchObject([{ seq: 1, cpu_usage: 12, ram_usage: 34 }]);
    expect(t.connection.getHubLimits()).toEqual(link.limits);
    expect(t.connection.getStats()).toMatchObject({
      server: { index: 0, url: A },
      reconnect_count: 0,
      servers: [{ attempts: 1, failures: 0, registrations: 1 }],
      last_heartbeat_rtt_ms: 0,
    });
  });

  it('sends no authorization when there is no token', () => {
    const t = setup([A], null);
    t.connection.start();
    expect(t.hub.last().dial).toEqual({ url: A, version: '0.0.0-test' });
  });

  it('passes hub messages it does not consume to listeners, only once registered', () => {
    const t = setup();
    const seen: string[] = [];
    t.connection.events.on('message', (m) => seen.push(m.type));
    t.connection.start();
    const link = t.hub.last().accept();
    const broadcast = { type: 'broadcast', server_time: t.clock.now(), data: { note: 'hello farm' } } as const;
    link.deliver(broadcast);
    expect(seen).toEqual([]);
    link.register();
    link.deliver(broadcast);
    expect(seen).toEqual(['broadcast']);
  });

  it('ignores frames it cannot read, says so, and stays connected', () => {
    const t = setup();
    t.connection.start();
    const link = t.connect();
    const before = t.connection.getStats().bytes_received;
    link.deliverFrame(Buffer.from([1, 2, 3]), true);
    link.deliverFrame('not json');
    link.deliverFrame('{"type":"from_the_future"}');
    expect(t.connection.getState().phase).toBe('connected');
    expect(t.logged(/^Ignoring a binary frame/, WARN)).toHaveLength(1);
    expect(t.logged(/^Ignoring a frame from the hub that is not JSON$/, WARN)).toHaveLength(1);
    expect(t.logged(/^Ignoring a hub message this agent does not understand$/, WARN)).toHaveLength(1);
    expect(t.connection.getStats().bytes_received).toBe(before + 3 + 8 + 26);
  });

  it("send() refuses when not connected and past the hub's limit, and counts what it sends", () => {
    const t = setup();
    const heartbeat = { type: 'heartbeat', seq: 99, cpu_usage: 1, ram_usage: 1, timestamp: 0 } as const;
    expect(() => t.connection.send(heartbeat)).toThrow(expect.objectContaining({ code: 'NOT_CONNECTED' }));
    t.connection.start();
    const link = t.hub.last().accept();
    expect(() => t.connection.send(heartbeat)).toThrow(expect.objectContaining({ code: 'NOT_CONNECTED' }));
    link.register({ limits: { max_payload_bytes: 200, max_messages_per_second: 10, burst_messages: 10 } });
    const sent = t.connection.getStats().messages_sent;
    t.connection.send(heartbeat);
    expect(link.sent.at(-1)).toEqual(heartbeat);
    expect(t.connection.getStats().messages_sent).toBe(sent + 1);
    const big = { type: 'result', id: 'c1', ok: true, data: 'x'.repeat(300) } as const;
    expect(() => t.connection.send(big)).toThrow(expect.objectContaining({ code: 'MESSAGE_TOO_LARGE' }));
  });
});

describe('AgentConnection on a fake link: failures of one attempt', () => {
  it('connection refused: logged with its reason, counted, and retried after the backoff', () => {
    const t = setup();
    t.connection.start();
    t.hub.last().refuse();
    expect(t.phases()).toEqual(['connecting', 'reconnecting']);
    const state = t.connection.getState();
    expect(state).toMatchObject({ phase: 'reconnecting', next_server: { index: 0 }, delay_ms: 1000, backoff_step: 1 });
    expect(t.lastEvent().reason).toEqual({
      code: 'connect_refused',
      message: 'Connection refused by hub-a.test (nothing listening there?)',
    });
    expect(t.logged(/^Connection refused by hub-a\.test/, ERROR)[0]?.reason).toBe('connect_refused');
    expect(t.logged(/^Attempt failed: retrying in 1s \(backoff #1\)$/)).toHaveLength(1);
    expect(t.connection.getStats().servers[0]).toMatchObject({
      attempts: 1,
      failures: 1,
      last_error: { code: 'connect_refused' },
    });

    t.clock.advanceSync(999);
    expect(t.hub.links).toHaveLength(1);
    t.clock.advanceSync(1);
    expect(t.hub.links).toHaveLength(2);
    expect(t.phases()).toEqual(['connecting']);
    expect(t.lastEvent().reason.code).toBe('backoff_elapsed');
    // Each failed round doubles the wait.
    t.hub.last().refuse();
    expect(t.connection.getState()).toMatchObject({ delay_ms: 2000, backoff_step: 2 });
  });

  it('other socket errors are told apart: DNS, network', () => {
    const t = setup();
    t.connection.start();
    t.hub.last().refuse('ENOTFOUND');
    expect(t.lastEvent().reason).toEqual({ code: 'dns_failed', message: 'Could not resolve hub-a.test (ENOTFOUND)' });
    t.clock.advanceSync(1000);
    t.hub.last().refuse('EHOSTUNREACH');
    expect(t.lastEvent().reason.code).toBe('network_error');
  });

  it('connect timeout: no answer within connect_timeout cuts the dial', () => {
    const t = setup();
    t.connection.start();
    const link = t.hub.last();
    t.clock.advanceSync(TIMING.connectTimeoutMs - 1);
    expect(t.connection.getState().phase).toBe('connecting');
    t.clock.advanceSync(1);
    expect(link.ended).toEqual({ how: 'terminated' });
    expect(t.phases()).toEqual(['connecting', 'reconnecting']);
    expect(t.lastEvent().reason).toEqual({ code: 'connect_timeout', message: `No connection to ${A} within 30s` });
    expect(t.logged(new RegExp(`^Connect timeout to ${A}$`), ERROR)).toHaveLength(1);
  });

  it('registration timeout: open but no registered within registration_timeout', () => {
    const t = setup();
    t.connection.start();
    const link = t.hub.last().accept();
    t.clock.advanceSync(TIMING.registrationTimeoutMs);
    expect(link.ended).toEqual({ how: 'terminated' });
    expect(t.phases()).toEqual(['connecting', 'registering', 'reconnecting']);
    expect(t.lastEvent().reason.code).toBe('registration_timeout');
    expect(t.logged(/^No "registered" from the hub within 15s of hello$/, ERROR)).toHaveLength(1);
  });

  it('an HTTP answer instead of the upgrade says so, with a hint on 404', () => {
    const t = setup();
    t.connection.start();
    t.hub.last().rejectUpgrade(404);
    expect(t.lastEvent().reason).toEqual({
      code: 'handshake_rejected',
      message:
        `${A} answered HTTP 404 instead of a WebSocket upgrade ` +
        "(is this the hub's URL? the agent endpoint is /api/v1/pc/ws)",
    });
    expect(t.connection.getState().phase).toBe('reconnecting');
  });

  it('dial_failed: a dial that throws while it is set up backs off like any failure', () => {
    const t = setup();
    const refused = new Error('Invalid character in header content ["authorization"]');
    t.hub.failNextDial = Object.assign(refused, { code: 'ERR_INVALID_CHAR' });
    t.connection.start();
    expect(t.phases()).toEqual(['connecting', 'reconnecting']);
    expect(t.lastEvent().reason).toEqual({
      code: 'dial_failed',
      message:
        `Could not start a connection to ${A}: the token has a character an HTTP header cannot carry ` +
        '(a line break, a space, "…"?); check agent.token',
    });
    expect(t.connection.getStats().servers[0]).toMatchObject({ attempts: 1, failures: 1 });
    expect(t.clock.pending).toBe(1);
    t.clock.advanceSync(1000);
    expect(t.hub.links).toHaveLength(1);
    expect(t.phases()).toEqual(['connecting']);
  });
});

describe('AgentConnection on a fake link: a registered connection that dies', () => {
  it('dead heartbeat: no ack within the dead timeout ends the connection', () => {
    const t = setup();
    t.connection.start();
    const link = t.connect();
    link.answerHeartbeats = false;
    t.phases();
    t.clock.advanceSync(TIMING.deadTimeoutMs - 1);
    expect(t.connection.getState().phase).toBe('connected');
    // Pings still come back: only the application-level heartbeat notices a hub that stopped handling messages.
    expect(link.pings).toBeGreaterThan(0);
    t.clock.advanceSync(1);
    expect(link.ended).toEqual({ how: 'terminated' });
    expect(t.phases()).toEqual(['reconnecting']);
    expect(t.lastEvent().reason).toEqual({
      code: 'heartbeat_timeout',
      message: 'No heartbeat_ack for 1m 30s (dead timeout 1m 30s)',
    });
    expect(t.logged(/^Connection lost: No heartbeat_ack/, WARN)[0]?.reason).toBe('heartbeat_timeout');
    const stats = t.connection.getStats();
    // Sent at 30 s, unanswered at 60 s: lost. (The one sent at 60 s is still within its interval at 90 s.)
    expect(stats.heartbeat_lost).toEqual([t.clock.now() - 30_000]);
    expect(stats.disconnected_since).toBe(t.clock.now());
    expect(stats.server).toBeNull();
  });

  it('dead ping: a ping with no pong within the ping timeout ends the connection', () => {
    const t = setup();
    t.connection.start();
    const link = t.connect();
    link.answerPings = false;
    t.phases();
    t.clock.advanceSync(TIMING.pingIntervalMs + TIMING.pingTimeoutMs - 1);
    expect(t.connection.getState().phase).toBe('connected');
    t.clock.advanceSync(1);
    expect(link.ended).toEqual({ how: 'terminated' });
    expect(t.phases()).toEqual(['reconnecting']);
    expect(t.lastEvent().reason).toEqual({ code: 'ping_timeout', message: 'No pong within 20s' });
    expect(t.logged(/^Connection lost: No pong within 20s$/, WARN)).toHaveLength(1);
  });

  it('answered pings and heartbeats keep it up, and their round trips are recorded', () => {
    const t = setup();
    t.connection.start();
    t.connect();
    t.phases();
    t.clock.advanceSync(10 * 60_000);
    expect(t.phases()).toEqual([]);
    const stats = t.connection.getStats();
    expect(stats.last_ping_rtt_ms).toBe(0);
    expect(stats.heartbeat_rtt).toHaveLength(21);
    expect(stats.heartbeat_lost).toEqual([]);
  });

  it('a close without a close frame (1006) is a network error', () => {
    const t = setup();
    t.connection.start();
    t.connect().hubCloses(1006);
    const reason = { code: 'network_error', message: 'Connection lost without a close frame (1006)' };
    expect(t.lastEvent().reason).toEqual(reason);
    expect(t.logged(/^Connection lost: Connection lost without a close frame \(1006\)$/, WARN)).toHaveLength(1);
  });

  // What the agent says on each close code the hub uses; every one is retried (with backoff on one server).
  const closes: Array<[number, string, RegExp | undefined]> = [
    [CloseCode.GOING_AWAY, 'GOING_AWAY', undefined],
    [CloseCode.TRY_AGAIN_LATER, 'TRY_AGAIN_LATER', undefined],
    [CloseCode.RATE_LIMITED, 'RATE_LIMITED', undefined],
    [CloseCode.SLOW_CONSUMER, 'SLOW_CONSUMER', undefined],
    [CloseCode.MESSAGE_TOO_BIG, 'MESSAGE_TOO_BIG', undefined],
    [CloseCode.UNAUTHORIZED, 'UNAUTHORIZED', /this will not change until the token is fixed: set agent\.token/],
    [CloseCode.FORBIDDEN, 'FORBIDDEN', /an agent token minted for "pc-017"; retrying with backoff meanwhile$/],
    [CloseCode.UNSUPPORTED_PROTOCOL, 'UNSUPPORTED_PROTOCOL', /agent and the hub run compatible versions/],
    [CloseCode.INVALID_MESSAGE, 'INVALID_MESSAGE', /agent and the hub run compatible versions/],
    [CloseCode.REPLACED, 'REPLACED', /another agent registered with the same id "pc-017"; do two PCs share one/],
  ];
  for (const [code, name, advice] of closes) {
    const what = advice ? 'its code and what to do' : 'its code';
    it(`hub close ${code} ${name} while connected: reported with ${what}, then retried`, () => {
      const t = setup();
      t.connection.start();
      t.connect().hubCloses(code, 'because');
      const reason = t.lastEvent().reason;
      expect(reason.code).toBe('closed_by_hub');
      expect(reason.close_code).toBe(code);
      expect(reason.message).toMatch(new RegExp(`^Hub closed the connection: ${code} ${name} "because"`));
      if (advice) expect(reason.message).toMatch(advice);
      else expect(reason.message).not.toContain(' — ');
      expect(t.logged(/^Connection lost: Hub closed the connection/, WARN)).toEqual([
        expect.objectContaining({ msg: `Connection lost: ${reason.message}` }),
      ]);
      expect(t.connection.getState()).toMatchObject({ phase: 'reconnecting', delay_ms: 1000 });
      expect(t.connection.getStats().servers[0]?.last_error).toMatchObject({ code: 'closed_by_hub', close_code: code });
    });
  }

  it('a close before registration (a refused token) is an error line, not "connection lost"', () => {
    const t = setup();
    t.connection.start();
    t.hub.last().accept().hubCloses(CloseCode.UNAUTHORIZED, 'invalid token');
    expect(t.phases()).toEqual(['connecting', 'registering', 'reconnecting']);
    const errors = t.logged(/^Hub closed the connection: 4401 UNAUTHORIZED "invalid token" — this will not/, ERROR);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.reason).toBe('closed_by_hub');
    expect(t.logged(/^Connection lost/)).toEqual([]);
  });
});

describe('AgentConnection on a fake link: rotation over the fallbacks', () => {
  it('goes primary → fallbacks at once, then waits the backoff and wraps to the primary', () => {
    const t = setup([A, B, C]);
    t.connection.start();
    t.hub.last().refuse();
    expect(t.hub.last().url).toBe(B);
    expect(t.logged(/^Switching to fallback #1\/2$/)).toHaveLength(1);
    expect(t.logged(new RegExp(`^Using fallback server: ${B}$`))).toHaveLength(1);
    t.hub.last().refuse();
    expect(t.hub.last().url).toBe(C);
    t.hub.last().refuse();
    expect(t.phases()).toEqual(['connecting', 'connecting', 'connecting', 'reconnecting']);
    expect(t.connection.getState()).toMatchObject({
      phase: 'reconnecting',
      next_server: { index: 0, url: A },
      delay_ms: 1000,
      backoff_step: 1,
    });
    expect(t.logged(/^All 3 servers failed: retrying the primary in 1s \(backoff #1\)$/)).toHaveLength(1);

    t.clock.advanceSync(1000);
    expect(t.hub.links.map((l) => l.url)).toEqual([A, B, C, A]);
    expect(t.logged(new RegExp(`^Returning to the primary server: ${A}$`))).toHaveLength(1);
    for (let i = 0; i < 3; i += 1) t.hub.last().refuse();
    expect(t.connection.getState()).toMatchObject({ delay_ms: 2000, backoff_step: 2 });
    expect(t.connection.getStats().servers.map((s) => s.failures)).toEqual([2, 2, 2]);
  });

  it('a lost connection fails over to the next server at once', () => {
    const t = setup([A, B]);
    t.connection.start();
    t.connect().hubCloses(1006);
    t.phases();
    expect(t.hub.last().url).toBe(B);
    expect(t.connection.getState().phase).toBe('connecting');
    t.connect();
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', server: { index: 1 } });
    expect(t.connection.getStats().reconnect_count).toBe(1);
  });

  it('the backoff is reset only after a connection stayed up for stable_after', () => {
    const t = setup();
    t.connection.start();
    t.hub.last().refuse();
    t.clock.advanceSync(1000);
    t.hub.last().refuse();
    expect(t.connection.getState()).toMatchObject({ backoff_step: 2, delay_ms: 2000 });
    t.clock.advanceSync(2000);
    // Up, but lost before stable_after: the backoff goes on growing.
    t.connect();
    t.clock.advanceSync(TIMING.stableAfterMs - 1);
    t.hub.last().hubCloses(1006);
    expect(t.connection.getState()).toMatchObject({ backoff_step: 3, delay_ms: 4000 });
    t.clock.advanceSync(4000);
    t.connect();
    t.clock.advanceSync(TIMING.stableAfterMs);
    expect(t.logged(/^Connection stable: backoff reset$/)).toHaveLength(1);
    t.hub.last().hubCloses(1006);
    expect(t.connection.getState()).toMatchObject({ backoff_step: 1, delay_ms: 1000 });
  });

  it('start(firstIndex) dials the server that worked last time first', () => {
    const t = setup([A, B, C]);
    t.connection.start(2);
    expect(t.hub.last().url).toBe(C);
    expect(t.lastEvent().reason.message).toBe(
      'Agent started; dialing fallback #2/2 first, the server that worked last time',
    );
    t.hub.last().refuse();
    expect(t.hub.last().url).toBe(A);
  });
});

describe('AgentConnection on a fake link: a draining hub', () => {
  it('moves on to the next server at once and leaves the draining hub only once registered there', () => {
    const t = setup([A, B]);
    t.connection.start();
    const a = t.connect();
    t.phases();
    a.deliver({ type: 'draining', reason: 'deploy', deadline: t.clock.now() + 60_000 });
    expect(t.phases()).toEqual(['connecting']);
    expect(t.lastEvent().reason).toEqual({ code: 'drained', message: 'Hub is draining: deploy' });
    const moving = /^Hub is draining \(deploy\): moving to fallback #1\/1 now, staying on this hub until registered/;
    expect(t.logged(moving, WARN)).toHaveLength(1);
    const b = t.hub.last();
    expect(b.url).toBe(B);
    // Still served by the draining hub meanwhile: its limits, its heartbeats, send() through it.
    expect(a.ended).toBeUndefined();
    expect(t.connection.getHubLimits()).toEqual(a.limits);
    t.connection.send({ type: 'heartbeat', seq: 500, cpu_usage: 0, ram_usage: 0, timestamp: 0 });
    expect(a.sent.at(-1)).toMatchObject({ seq: 500 });
    // Its pings go on too (within the next dial's connect timeout).
    t.clock.advanceSync(TIMING.pingIntervalMs);
    expect(a.pings).toBe(1);

    b.accept();
    b.register({ hub_id: 'hub-b' });
    expect(t.phases()).toEqual(['registering', 'connected']);
    expect(a.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'drained' }]);
    expect(a.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'drained' });
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', server: { index: 1 } });
    expect(t.connection.getStats().disconnected_since).toBeNull();
  });

  it('with nowhere else to go, lets the draining hub go instead of pinning it', () => {
    const t = setup([A, B]);
    t.connection.start();
    const a = t.connect();
    a.deliver({ type: 'draining', reason: 'deploy', deadline: t.clock.now() + 60_000 });
    t.hub.last().refuse();
    expect(a.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'drained' });
    expect(a.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'drained' }]);
    expect(t.connection.getState()).toMatchObject({ phase: 'reconnecting', next_server: { index: 0 } });
    expect(t.connection.getStats().disconnected_since).toBe(t.clock.now());
  });

  it('the draining hub closing first ends the handover and the dial to the next server goes on', () => {
    const t = setup([A, B]);
    t.connection.start();
    const a = t.connect();
    a.deliver({ type: 'draining', reason: 'deploy', deadline: t.clock.now() + 60_000 });
    t.phases();
    a.hubCloses(CloseCode.GOING_AWAY, 'drain timeout');
    const ended = /^Draining hub connection ended: Hub closed the connection: 1001 GOING_AWAY "drain timeout"$/;
    expect(t.logged(ended)).toHaveLength(1);
    expect(t.phases()).toEqual([]);
    t.connect();
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', server: { index: 1 } });
  });

  it('on a single server, leaves gracefully and reconnects after the backoff', () => {
    const t = setup();
    t.connection.start();
    const a = t.connect();
    t.phases();
    a.deliver({ type: 'draining', reason: 'deploy', deadline: t.clock.now() + 60_000 });
    expect(t.logged(/^Hub is draining \(deploy\): reconnecting$/, WARN)).toHaveLength(1);
    expect(a.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'drained' }]);
    expect(a.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'drained' });
    expect(t.phases()).toEqual(['reconnecting']);
    t.clock.advanceSync(1000);
    expect(t.hub.links.map((l) => l.url)).toEqual([A, A]);
  });

  it('a hub refusing new connections while it drains (1001 before registered) makes the agent try the next', () => {
    const t = setup([A, B]);
    t.connection.start();
    t.hub.last().accept().hubCloses(CloseCode.GOING_AWAY, 'draining');
    expect(t.lastEvent().reason).toMatchObject({ code: 'closed_by_hub', close_code: 1001 });
    expect(t.hub.last().url).toBe(B);
  });
});

describe('AgentConnection on a fake link: reconnect and check requests', () => {
  it('reconnectNow while connected leaves gracefully and dials the primary at once', () => {
    const t = setup([A, B]);
    t.connection.start();
    t.hub.last().refuse();
    const b = t.connect();
    t.phases();
    t.connection.reconnectNow('Reconnect now (panel)');
    expect(b.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'reconnect_requested' }]);
    expect(b.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'reconnect_requested' });
    expect(t.phases()).toEqual(['connecting']);
    expect(t.hub.last().url).toBe(A);
    expect(t.lastEvent().reason).toEqual({ code: 'reconnect_requested', message: 'Reconnect now (panel)' });
    // A reconnect someone asked for is not a failure of the server.
    expect(t.connection.getStats().servers[1]?.failures).toBe(0);
  });

  it('reconnectNow while backing off dials the primary now', () => {
    const t = setup([A, B]);
    t.connection.start();
    t.hub.last().refuse();
    t.hub.last().refuse();
    expect(t.connection.getState().phase).toBe('reconnecting');
    t.connection.reconnectNow();
    expect(t.hub.links.map((l) => l.url)).toEqual([A, B, A]);
    expect(t.clock.pending).toBe(1); // the new dial's connect timeout; the backoff timer is gone
  });

  it('checkNow pings at once when connected, and retries at once when backing off', () => {
    const t = setup();
    t.connection.start();
    const link = t.connect();
    const before = link.pings;
    t.connection.checkNow('Network changed');
    expect(link.pings).toBe(before + 1);
    expect(t.logged(/^Network changed: checking the connection$/)).toHaveLength(1);
    link.hubCloses(1006);
    expect(t.connection.getState().phase).toBe('reconnecting');
    t.connection.checkNow('Woke up');
    expect(t.hub.links).toHaveLength(2);
    expect(t.lastEvent().reason).toEqual({ code: 'reconnect_requested', message: 'Woke up' });
  });
});

describe('AgentConnection on a fake link: stop() in every state', () => {
  async function expectStopped(t: ReturnType<typeof setup>, stopping: Promise<void>): Promise<void> {
    await stopping;
    expect(t.phases().slice(-2)).toEqual(['stopping', 'stopped']);
    expect(t.lastEvent().reason).toEqual({ code: 'stop_requested', message: 'Agent stopping' });
    expect(t.connection.getState().phase).toBe('stopped');
    expect(t.clock.pending).toBe(0);
  }

  it('idle', async () => {
    const t = setup();
    await expectStopped(t, t.connection.stop());
    t.connection.start();
    expect(t.hub.links).toEqual([]);
  });

  it('connecting: the dial is cut, nothing more is dialled', async () => {
    const t = setup();
    t.connection.start();
    const link = t.hub.last();
    await expectStopped(t, t.connection.stop());
    expect(link.ended).toEqual({ how: 'terminated' });
    expect(link.sent).toEqual([]);
    link.accept();
    expect(t.connection.getState().phase).toBe('stopped');
    expect(t.hub.links).toHaveLength(1);
  });

  it('registering: cut without a disconnect (not registered yet)', async () => {
    const t = setup();
    t.connection.start();
    const link = t.hub.last().accept();
    await expectStopped(t, t.connection.stop());
    expect(link.ended).toEqual({ how: 'terminated' });
    expect(link.sentOf('disconnect')).toEqual([]);
    link.register();
    expect(t.connection.getState().phase).toBe('stopped');
  });

  it('connected: the graceful disconnect (disconnect agent_shutdown, close 1000), and no failure counted', async () => {
    const t = setup();
    t.connection.start();
    const link = t.connect();
    await expectStopped(t, t.connection.stop());
    expect(link.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'agent_shutdown' }]);
    expect(link.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'agent_shutdown' });
    expect(t.connection.getStats().servers[0]?.failures).toBe(0);
    expect(t.logged(/^Connection lost/)).toEqual([]);
  });

  it('connected, with a hub that never answers the close: stop waits close_timeout, then cuts the socket', async () => {
    const t = setup();
    t.connection.start();
    const link = t.connect();
    link.answerClose = false;
    let done = false;
    const stopping = t.connection.stop().then(() => {
      done = true;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    expect(t.connection.getState().phase).toBe('stopping');
    t.clock.advanceSync(TIMING.closeTimeoutMs);
    await expectStopped(t, stopping);
    expect(link.ended).toEqual({ how: 'terminated' });
  });

  it('backing off: the backoff timer is cleared', async () => {
    const t = setup();
    t.connection.start();
    t.hub.last().refuse();
    await expectStopped(t, t.connection.stop());
    t.clock.advanceSync(60_000);
    expect(t.hub.links).toHaveLength(1);
  });

  it('draining: both the draining hub and the dial to the next are ended', async () => {
    const t = setup([A, B]);
    t.connection.start();
    const a = t.connect();
    a.deliver({ type: 'draining', reason: 'deploy', deadline: t.clock.now() + 60_000 });
    const b = t.hub.last().accept();
    await expectStopped(t, t.connection.stop());
    expect(a.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'drained' }]);
    expect(a.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'drained' });
    expect(b.ended).toEqual({ how: 'terminated' });
  });

  it('twice: one stop', async () => {
    const t = setup();
    t.connection.start();
    t.connect();
    const first = t.connection.stop();
    expect(t.connection.stop()).toBe(first);
    await expectStopped(t, first);
    t.connection.reconnectNow();
    expect(t.hub.links).toHaveLength(1);
  });
});
