import { describe, expect, it } from 'vitest';
import type { ConnectionState } from './connection-state.js';
import { OFFLINE_AFTER_MS, downSince, linkStatus } from './link-status.js';
import { QUALITY_THRESHOLDS, connectionQuality } from './quality.js';

const connected: ConnectionState = {
  phase: 'connected',
  server: { index: 0, url: 'ws://a' },
  since: 0,
  session_id: 's',
  hub_id: 'h',
};
const rtts = (...values: number[]) => values.map((rtt_ms, i) => ({ at: 1000 + i, rtt_ms }));

describe('connectionQuality', () => {
  it('is excellent under 100 ms median with no loss, good under 300 ms with ≤ 10 % loss, poor beyond', () => {
    expect(connectionQuality(connected, { heartbeat_rtt: rtts(20, 30, 40), heartbeat_lost: [] }).level).toBe(
      'excellent',
    );
    expect(connectionQuality(connected, { heartbeat_rtt: rtts(120, 150, 200), heartbeat_lost: [] }).level).toBe('good');
    expect(
      connectionQuality(connected, { heartbeat_rtt: rtts(20, 20, 20, 20, 20, 20, 20, 20, 20), heartbeat_lost: [2000] }),
    ).toMatchObject({ level: 'good', loss: 0.1 });
    expect(
      connectionQuality(connected, {
        heartbeat_rtt: rtts(20, 20, 20, 20, 20, 20, 20, 20),
        heartbeat_lost: [2000, 2001],
      }),
    ).toMatchObject({ level: 'poor', loss: 0.2 });
    expect(connectionQuality(connected, { heartbeat_rtt: rtts(400, 500, 600), heartbeat_lost: [] }).level).toBe('poor');
  });

  it('judges only the latest heartbeats, so an old bad patch is forgotten', () => {
    const old = rtts(900, 900, 900, 900, 900);
    const recent = Array.from({ length: QUALITY_THRESHOLDS.window }, (_, i) => ({ at: 5000 + i, rtt_ms: 10 }));
    expect(connectionQuality(connected, { heartbeat_rtt: [...old, ...recent], heartbeat_lost: [1] })).toMatchObject({
      level: 'excellent',
      samples: 10,
      median_rtt_ms: 10,
    });
  });

  it('says disconnected whenever the agent is not registered, and good right after registering', () => {
    expect(
      connectionQuality(
        {
          phase: 'reconnecting',
          next_server: { index: 0, url: 'ws://a' },
          next_attempt_at: 0,
          delay_ms: 0,
          backoff_step: 1,
        },
        { heartbeat_rtt: rtts(10), heartbeat_lost: [] },
      ).level,
    ).toBe('disconnected');
    expect(connectionQuality(connected, { heartbeat_rtt: [], heartbeat_lost: [] })).toMatchObject({
      level: 'good',
      median_rtt_ms: null,
      samples: 0,
    });
    expect(connectionQuality(connected, { heartbeat_rtt: [], heartbeat_lost: [5] }).level).toBe('poor');
  });
});

describe('linkStatus (tray and header)', () => {
  const now = 10_000_000;
  const hourAgo = now - 3_600_000;
  const waiting: ConnectionState = {
    phase: 'reconnecting',
    next_server: { index: 1, url: 'ws://b' },
    next_attempt_at: now + 3_200,
    delay_ms: 4000,
    backoff_step: 3,
  };
  it('is green when connected, yellow with a countdown during a fresh outage, red once it lasts', () => {
    expect(linkStatus(connected, { last_success_at: now, disconnected_since: null }, 0, now)).toMatchObject({
      tone: 'connected',
      label: 'Connected',
    });
    expect(linkStatus(waiting, { last_success_at: hourAgo, disconnected_since: now - 5_000 }, 0, now)).toEqual({
      tone: 'reconnecting',
      label: 'Reconnecting in 4s',
      server: { index: 1, url: 'ws://b' },
    });
    expect(
      linkStatus(waiting, { last_success_at: hourAgo, disconnected_since: now - OFFLINE_AFTER_MS - 1 }, 0, now),
    ).toMatchObject({ tone: 'offline', label: 'Offline — retrying in 4s' });
    // Never connected since start: counted from the start.
    expect(
      linkStatus(
        { phase: 'connecting', server: { index: 0, url: 'ws://a' }, attempt: 9 },
        { last_success_at: null, disconnected_since: null },
        now - 2 * OFFLINE_AFTER_MS,
        now,
      ).tone,
    ).toBe('offline');
    expect(linkStatus({ phase: 'stopped' }, { last_success_at: now, disconnected_since: now }, 0, now)).toMatchObject({
      tone: 'offline',
      label: 'Stopped',
    });
  });

  it('dates an outage from the moment the link was lost, however long ago it was registered or started', () => {
    // Registered an hour ago, lost 5 s ago: a fresh outage, not an hour-long one.
    const stats = { last_success_at: hourAgo, disconnected_since: now - 5_000 };
    expect(downSince(waiting, stats, hourAgo - 1000)).toBe(now - 5_000);
    expect(
      linkStatus({ phase: 'connecting', server: { index: 0, url: 'ws://a' }, attempt: 1 }, stats, hourAgo - 1000, now),
    ).toMatchObject({ tone: 'reconnecting', label: 'Connecting…' });
    expect(downSince(connected, stats, 0)).toBeNull();
  });

  it('calls the hand-over between two agents (settings applied) reconnecting, and a first start starting', () => {
    expect(
      linkStatus({ phase: 'idle' }, { last_success_at: hourAgo, disconnected_since: now - 100 }, hourAgo, now),
    ).toEqual({ tone: 'reconnecting', label: 'Reconnecting…', server: null });
    expect(linkStatus({ phase: 'idle' }, { last_success_at: null, disconnected_since: null }, now - 100, now)).toEqual({
      tone: 'reconnecting',
      label: 'Starting…',
      server: null,
    });
  });
});
