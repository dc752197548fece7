import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../protocol/close-codes.js';
import { ConnectionStatsSchema } from '../../protocol/connection-state.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { AgentConnection } from './connection.js';
import { FakeHub, TEST_TIMING as TIMING } from './fake-hub-link.fixture.js';
import type { ServerBreakerSettings } from './server-breakers.js';

const A = 'ws://hub-a.test/api/v1/pc/ws';
const B = 'ws://hub-b.test/api/v1/pc/ws';
const C = 'ws://hub-c.test/api/v1/pc/ws';
const RECOVERY = 120_000;

interface LogLine {
  level: number;
  msg: string;
}
const WARN = 40;

function setup(servers: readonly string[], breaker?: ServerBreakerSettings) {
  const clock = new ManualClock();
  const hub = new FakeHub(clock);
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const connection = new AgentConnection({
    servers,
    timing: TIMING,
    identity: { id: 'pc-017', name: 'rack 3', token: 't', version: '0.0.0-test', hostname: 'test', platform: 'linux' },
    clock,
    random: () => 0.5,
    logger,
    usage: () => ({ cpu_usage: 12, ram_usage: 34 }),
    link: hub.factory,
    ...(breaker ? { breaker } : {}),
  });
  const logged = (re: RegExp, level?: number): LogLine[] =>
    lines.filter((l) => re.test(l.msg) && (level === undefined || l.level === level));
  const urls = (): string[] => hub.links.map((l) => l.url);
  /** The current dial is answered with a bad-token close before registered. */
  const badToken = (): void => {
    hub.last().accept().hubCloses(CloseCode.UNAUTHORIZED, 'invalid token');
  };
  const connect = (): void => {
    const link = hub.last();
    link.accept();
    link.register();
  };
  /** Waits out the reconnect timer (the backoff, or the wait for a probe). */
  const waitOut = (): void => {
    const state = connection.getState();
    if (state.phase !== 'reconnecting') throw new Error(`expected reconnecting, got ${state.phase}`);
    clock.advanceSync(state.delay_ms);
  };
  const breakerOf = (index: number) => connection.getStats().servers[index]?.breaker;
  return { clock, hub, connection, lines, logged, urls, badToken, connect, waitOut, breakerOf };
}

describe('AgentConnection: per-server breakers (defaults: 3 refusals within 10 min, probe after 120 s)', () => {
  it('a bad token on the primary opens its breaker; the agent settles on the fallback, then probes the primary once', () => {
    const t = setup([A, B]);
    t.connection.start();
    // Three rounds: the primary refuses this PC, the fallback is down (a network error: not counted).
    for (let round = 1; round <= 3; round += 1) {
      t.badToken();
      expect(t.hub.last().url).toBe(B);
      if (round === 3) break;
      t.hub.last().refuse();
      t.waitOut();
    }
    expect(t.breakerOf(0)).toMatchObject({ state: 'open', failures: 3, reason: '4401 UNAUTHORIZED "invalid token"' });
    expect(t.breakerOf(1)).toMatchObject({ state: 'closed', failures: 0 });
    const opened = t.logged(/refused this PC/, WARN);
    expect(opened).toHaveLength(1);
    expect(opened[0]?.msg).toMatch(
      new RegExp(
        '^Server #0 \\(primary, ws://hub-a\\.test/api/v1/pc/ws\\) refused this PC 3 times in 10m ' +
          '\\(4401 UNAUTHORIZED "invalid token"\\): skipping it until \\d\\d:\\d\\d:\\d\\d; ' +
          'next: server #1 \\(fallback #1/1, ws://hub-b\\.test/api/v1/pc/ws\\)$',
      ),
    );
    const openedAt = t.clock.monotonic();
    const retryAt = t.breakerOf(0)?.retry_at;
    expect(retryAt).toBe(t.clock.now() + RECOVERY);

    // The fallback registers; its losses send the agent back to it, never to the primary, until recovery.
    t.connect();
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', server: { index: 1 } });
    const dialsBefore = t.urls().length;
    t.hub.last().hubCloses(1006);
    expect(t.connection.getState()).toMatchObject({ phase: 'reconnecting', next_server: { index: 1 } });
    expect(t.logged(/^All 2 servers failed \(1 skipped: breaker open\): retrying fallback #1\/1 in /)).toHaveLength(1);
    while (t.clock.monotonic() - openedAt < RECOVERY) {
      t.waitOut();
      if (t.clock.monotonic() - openedAt >= RECOVERY) break;
      expect(t.hub.last().url).toBe(B);
      t.hub.last().refuse();
    }
    expect(
      t
        .urls()
        .slice(dialsBefore)
        .every((u) => u === B),
    ).toBe(true);

    // Past the recovery time, the next round starts with the primary: the probe.
    if (t.hub.last().url === B) {
      t.hub.last().refuse();
      t.waitOut();
    }
    expect(t.hub.last().url).toBe(A);
    expect(t.breakerOf(0)?.state).toBe('half-open');
    expect(t.logged(/^Probing server #0 \(primary, .*\) again \(it refused this PC: 4401 UNAUTHORIZED/)).toHaveLength(
      1,
    );
    t.connect();
    expect(t.breakerOf(0)).toMatchObject({ state: 'closed', failures: 0, reason: null, retry_at: null });
    expect(t.logged(/^Server #0 \(primary, .*\) accepts this PC again: its breaker is closed$/)).toHaveLength(1);
  });

  it('a probe that is refused opens the breaker again for another recovery time', () => {
    const t = setup([A, B]);
    t.connection.start();
    for (let i = 0; i < 3; i += 1) {
      t.badToken();
      t.connect(); // the fallback registers…
      t.hub.last().hubCloses(1006); // …and is lost at once: the next dial is the primary while it is closed
      if (t.connection.getState().phase === 'reconnecting') t.waitOut();
    }
    expect(t.breakerOf(0)?.state).toBe('open');
    // Only the fallback is dialled until the primary's recovery time is up.
    let guard = 0;
    while (t.hub.last().url !== A && guard++ < 50) {
      t.hub.last().refuse();
      t.waitOut();
    }
    expect(t.breakerOf(0)?.state).toBe('half-open');
    t.badToken();
    expect(t.breakerOf(0)).toMatchObject({ state: 'open', retry_at: t.clock.now() + RECOVERY });
    expect(
      t.logged(/^Server #0 .* still refuses this PC \(4401 UNAUTHORIZED "invalid token"\) after 2m/, WARN),
    ).toHaveLength(1);
    expect(t.hub.last().url).toBe(B);
  });

  it('when every server refuses this PC, waits until the earliest probe and says so', () => {
    const t = setup([A]);
    t.connection.start();
    t.badToken();
    t.waitOut();
    t.badToken();
    t.waitOut();
    t.badToken();
    const state = t.connection.getState();
    expect(state).toMatchObject({ phase: 'reconnecting', next_server: { index: 0 } });
    if (state.phase !== 'reconnecting') return;
    expect(state.delay_ms).toBe(RECOVERY); // longer than the backoff (4 s), so the recovery time
    expect(
      t.logged(/^Every server refuses this PC \(all 1 breakers open\): probing server #0 .* in 2m$/, WARN),
    ).toHaveLength(1);
    const dials = t.urls().length;
    t.clock.advanceSync(RECOVERY - 1);
    expect(t.urls()).toHaveLength(dials);
    t.clock.advanceSync(1);
    expect(t.urls()).toHaveLength(dials + 1);
    expect(t.breakerOf(0)?.state).toBe('half-open');
  });

  it('never waits less than the backoff for a probe', () => {
    const t = setup([A], { failures: 1, windowMs: 60_000, recoveryMs: 10 });
    t.connection.start();
    t.badToken();
    expect(t.connection.getState()).toMatchObject({ phase: 'reconnecting', delay_ms: 1000 });
  });

  it('network errors, timeouts, drains and load shedding do not count; other refusals do', () => {
    const t = setup([A, B, C], { failures: 100, windowMs: 600_000, recoveryMs: RECOVERY });
    t.connection.start();
    const notCounted = [
      () => t.hub.last().refuse(), // ECONNREFUSED
      () => t.hub.last().refuse('ENOTFOUND'),
      () => t.hub.last().accept().hubCloses(1006), // lost without a close frame
      () => t.hub.last().accept().hubCloses(CloseCode.GOING_AWAY, 'draining'),
      () => t.hub.last().accept().hubCloses(CloseCode.TRY_AGAIN_LATER, 'full'),
      () => t.hub.last().rejectUpgrade(503),
      () => t.hub.last().rejectUpgrade(429),
      () => t.clock.advanceSync(TIMING.connectTimeoutMs),
      () => {
        t.hub.last().accept();
        t.clock.advanceSync(TIMING.registrationTimeoutMs);
      },
      () => {
        t.connect();
        t.hub.last().deliver({ type: 'draining', reason: 'deploy', deadline: t.clock.now() + 60_000 });
      },
    ];
    for (const end of notCounted) {
      end();
      if (t.connection.getState().phase === 'reconnecting') t.waitOut();
    }
    expect(t.connection.getStats().servers.map((s) => s.breaker?.failures)).toEqual([0, 0, 0]);

    const counted = [
      () => t.hub.last().accept().hubCloses(CloseCode.UNAUTHORIZED),
      () => t.hub.last().accept().hubCloses(CloseCode.FORBIDDEN),
      () => t.hub.last().accept().hubCloses(CloseCode.UNSUPPORTED_PROTOCOL),
      () => t.hub.last().accept().hubCloses(CloseCode.INVALID_MESSAGE),
      () => t.hub.last().accept().hubCloses(CloseCode.INTERNAL_ERROR), // an instant close
      () => t.hub.last().accept().hubCloses(CloseCode.NORMAL), // closed before registered
      () => t.hub.last().rejectUpgrade(401),
      () => t.hub.last().rejectUpgrade(404),
    ];
    let total = 0;
    for (const end of counted) {
      end();
      total += 1;
      const sum = t.connection.getStats().servers.reduce((n, s) => n + (s.breaker?.failures ?? 0), 0);
      expect(sum).toBe(total);
      if (t.connection.getState().phase === 'reconnecting') t.waitOut();
    }
    // A configuration close counts while connected too (a registration first clears that server's count).
    t.connect();
    const state = t.connection.getState();
    if (state.phase !== 'connected') throw new Error('expected connected');
    t.hub.last().hubCloses(CloseCode.TOKEN_EXPIRED, 'token expired');
    expect(t.breakerOf(state.server.index)).toMatchObject({ failures: 1, state: 'closed' });
  });

  it('a close after registration that is not a configuration code does not count', () => {
    const t = setup([A, B], { failures: 1, windowMs: 600_000, recoveryMs: RECOVERY });
    t.connection.start();
    t.connect();
    t.hub.last().hubCloses(CloseCode.REPLACED, 'replaced');
    expect(t.breakerOf(0)?.state).toBe('closed');
  });

  it('reconnectNow skips a primary whose breaker is open', () => {
    const t = setup([A, B], { failures: 1, windowMs: 600_000, recoveryMs: RECOVERY });
    t.connection.start();
    t.badToken();
    t.connect();
    t.connection.reconnectNow();
    expect(t.hub.last().url).toBe(B);
  });

  it('fills ServerStats.breaker for every server, in the protocol shape', () => {
    const t = setup([A, B, C]);
    t.connection.start();
    const stats = t.connection.getStats();
    expect(ConnectionStatsSchema.parse(stats)).toEqual(stats);
    expect(stats.servers.map((s) => s.breaker?.state)).toEqual(['closed', 'closed', 'closed']);
  });
});
