import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ConnectionEvent } from '../../protocol/connection-state.js';
import { AgentConnection, displayId } from './connection.js';
import { TEST_TIMING as TIMING } from './fake-hub-link.fixture.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';

function connectionWithToken(token: string) {
  const clock = new ManualClock();
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  const connection = new AgentConnection({
    // Port 1: should anything be dialled for real, it is refused at once rather than reaching a hub.
    servers: ['ws://127.0.0.1:1/api/v1/pc/ws'],
    timing: TIMING,
    identity: { id: 'pc-017', name: 'rack 3', token, version: '0.0.0-test', hostname: 'test', platform: 'linux' },
    clock,
    random: () => 0.5,
    logger,
    usage: () => ({ cpu_usage: 0, ram_usage: 0 }),
  });
  const events: ConnectionEvent[] = [];
  connection.events.on('state', (e) => events.push(e));
  return { connection, clock, events, lines };
}

describe('AgentConnection: an attempt that fails while it is set up', () => {
  it('a token an HTTP header cannot carry ends the attempt with dial_failed and goes through the backoff', async () => {
    // A YAML block scalar adds a line break; the schema refuses it, this is the mechanism underneath.
    const { connection, clock, events, lines } = connectionWithToken(
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYy0wMTcifQ.c2ln\n',
    );
    expect(() => connection.start()).not.toThrow();

    const state = connection.getState();
    expect(state.phase).toBe('reconnecting');
    const last = events[events.length - 1]!;
    expect(last.to.phase).toBe('reconnecting');
    expect(last.reason.code).toBe('dial_failed');
    expect(last.reason.message).toMatch(
      /Could not start a connection to ws:\/\/127\.0\.0\.1:1\/api\/v1\/pc\/ws: the token has a character an HTTP header cannot carry/,
    );
    expect(last.reason.message).not.toContain('c2ln'); // the token is not repeated
    expect(connection.getStats().servers[0]).toMatchObject({
      attempts: 1,
      failures: 1,
      last_error: { code: 'dial_failed' },
    });
    expect(lines.some((l) => l.level === 50 && l.reason === 'dial_failed')).toBe(true);

    // The backoff timer is the only thing pending, and when it fires the agent dials again.
    const delay = state.phase === 'reconnecting' ? state.delay_ms : NaN;
    expect(delay).toBe(1000);
    expect(clock.pending).toBe(1);
    clock.advanceSync(delay - 1);
    expect(events.filter((e) => e.to.phase === 'connecting')).toHaveLength(1);
    clock.advanceSync(1);
    const dials = events.filter((e) => e.to.phase === 'connecting');
    expect(dials).toHaveLength(2);
    expect(dials[1]!.reason.code).toBe('backoff_elapsed');
    const again = connection.getState();
    expect(again.phase === 'reconnecting' && again.backoff_step).toBe(2);

    // And a stop is still a clean stop.
    await connection.stop();
    expect(connection.getState().phase).toBe('stopped');
    expect(clock.pending).toBe(0);
  });
});

describe('displayId', () => {
  it('shows short ids whole and abbreviates long ones visibly', () => {
    expect(displayId('vm')).toBe('vm');
    expect(displayId('pc-017')).toBe('pc-017');
    expect(displayId('3f2a9c1e-8d4b-4c2a-9f1e-0a1b2c3d4e5f')).toBe('3f2a9c1e…4e5f');
  });
});
