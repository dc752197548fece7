import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../lib/clock.js';
import { ConnectionStatsTracker } from './stats.js';

describe('ConnectionStatsTracker', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_704_300_000_123 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps the connection's counters and counts reconnects as registrations after the first", () => {
    const stats = new ConnectionStatsTracker(['ws://a', 'ws://b'], systemClock);
    stats.attempt(0);
    stats.registered({ index: 0, url: 'ws://a' });
    stats.sent(100);
    stats.sent(50);
    vi.advanceTimersByTime(45_333);
    stats.received(200);
    const s = stats.snapshot();
    expect(s).toMatchObject({
      connected_at: 1_704_300_000_123,
      last_message_at: 1_704_300_045_456,
      reconnect_count: 0,
      messages_sent: 2,
      messages_received: 1,
      bytes_sent: 150,
      bytes_received: 200,
      server: { index: 0, url: 'ws://a' },
    });
    stats.disconnected();
    stats.attempt(1);
    stats.registered({ index: 1, url: 'ws://b' });
    expect(stats.snapshot().reconnect_count).toBe(1);
  });

  it('records per-server attempts, failures, registrations, last error and last success', () => {
    const stats = new ConnectionStatsTracker(['ws://a', 'ws://b'], systemClock);
    stats.attempt(0);
    stats.failure(0, { code: 'connect_refused', message: 'refused' });
    stats.attempt(1);
    stats.registered({ index: 1, url: 'ws://b' });
    const s = stats.snapshot();
    expect(s.servers[0]).toMatchObject({
      attempts: 1,
      failures: 1,
      registrations: 0,
      last_error: { code: 'connect_refused' },
      last_success_at: null,
    });
    expect(s.servers[1]).toMatchObject({
      attempts: 1,
      failures: 0,
      registrations: 1,
      last_error: null,
      last_success_at: 1_704_300_000_123,
    });
    expect(s.last_error).toMatchObject({ code: 'connect_refused', at: 1_704_300_000_123 });
  });

  it('dates the outage from the loss of the registered connection, not from the registration nor from failed dials', () => {
    const stats = new ConnectionStatsTracker(['ws://a', 'ws://b'], systemClock);
    expect(stats.snapshot().disconnected_since).toBeNull(); // never connected: the caller counts from the start
    stats.attempt(0);
    stats.registered({ index: 0, url: 'ws://a' });
    vi.advanceTimersByTime(3_600_000);
    stats.disconnected();
    const lostAt = 1_704_300_000_123 + 3_600_000;
    expect(stats.snapshot()).toMatchObject({
      disconnected_since: lostAt,
      last_success_at: 1_704_300_000_123,
      connected_at: null,
    });
    vi.advanceTimersByTime(5_000);
    stats.attempt(1);
    stats.failure(1, { code: 'connect_refused', message: 'refused' });
    stats.disconnected(); // a dial that never registered does not move the outage's start
    expect(stats.snapshot().disconnected_since).toBe(lostAt);
    stats.registered({ index: 1, url: 'ws://b' });
    expect(stats.snapshot().disconnected_since).toBeNull();
  });

  it('keeps heartbeat round trips for the window only, and at most the sample cap', () => {
    const stats = new ConnectionStatsTracker(['ws://a'], systemClock, { rttWindowMs: 1000, rttMaxSamples: 3 });
    for (let i = 0; i < 5; i += 1) {
      stats.heartbeatRtt(i);
      vi.advanceTimersByTime(100);
    }
    expect(stats.snapshot().heartbeat_rtt.map((r) => r.rtt_ms)).toEqual([2, 3, 4]);
    vi.advanceTimersByTime(1000);
    stats.heartbeatRtt(9);
    expect(stats.snapshot().heartbeat_rtt.map((r) => r.rtt_ms)).toEqual([9]);
    expect(stats.snapshot().last_heartbeat_rtt_ms).toBe(9);
  });

  it('hands out copies: a snapshot does not change afterwards', () => {
    const stats = new ConnectionStatsTracker(['ws://a'], systemClock);
    const before = stats.snapshot();
    stats.failure(0, { code: 'ping_timeout', message: 'x' });
    expect(before.servers[0]!.failures).toBe(0);
  });
});
