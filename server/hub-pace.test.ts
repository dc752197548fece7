import { describe, expect, it } from 'vitest';
import { describePace, maxHeartbeatMs, paceAt } from './hub-pace.js';

const CONFIGURED = { window_ms: 50, max_messages: 500, max_bytes: 65_536 };

describe('paceAt', () => {
  it('normal: the configured batch settings and the agents’ own heartbeat', () => {
    expect(paceAt(0, CONFIGURED, 120_000)).toEqual({ level: 0, batch: CONFIGURED, heartbeatIntervalMs: null });
  });

  it('busy ×2 and overloaded ×4 the configured window; heartbeats every 60 s and 120 s', () => {
    expect(paceAt(1, CONFIGURED, 120_000)).toEqual({
      level: 1,
      batch: { ...CONFIGURED, window_ms: 100 },
      heartbeatIntervalMs: 60_000,
    });
    expect(paceAt(2, CONFIGURED, 120_000)).toEqual({
      level: 2,
      batch: { ...CONFIGURED, window_ms: 200 },
      heartbeatIntervalMs: 120_000,
    });
  });

  it('widens a window of 0 too, stops at a second, and never narrows a longer configured one', () => {
    expect(paceAt(1, { ...CONFIGURED, window_ms: 0 }, 120_000).batch.window_ms).toBe(50);
    expect(paceAt(2, { ...CONFIGURED, window_ms: 400 }, 120_000).batch.window_ms).toBe(1000);
    expect(paceAt(2, { ...CONFIGURED, window_ms: 5000 }, 120_000).batch.window_ms).toBe(5000);
  });

  it('never asks for a heartbeat interval past the bound (a shared registry entry must not lapse)', () => {
    expect(maxHeartbeatMs(undefined)).toBe(120_000);
    expect(maxHeartbeatMs(90_000)).toBe(45_000);
    expect(paceAt(1, CONFIGURED, maxHeartbeatMs(90_000)).heartbeatIntervalMs).toBe(45_000);
    expect(paceAt(2, CONFIGURED, maxHeartbeatMs(90_000)).heartbeatIntervalMs).toBe(45_000);
  });

  it('says the pace in words for the log line', () => {
    expect(describePace(paceAt(1, CONFIGURED, 120_000))).toBe('batch every 100 ms and beat every 60 s');
    expect(describePace(paceAt(0, CONFIGURED, 120_000))).toBe('batch every 50 ms and beat at their own interval again');
  });
});
