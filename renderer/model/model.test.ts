import { describe, expect, it } from 'vitest';
import type { ConnectionEvent } from '../../protocol/connection-state.js';
import { formatAgo, formatBytes, formatDuration, formatMs } from './format.js';
import { latencySummary, percentile } from './latency.js';
import { currentRates, ratePoints } from './rates.js';
import { timelineItems } from './timeline.js';

const sample = (at: number, n: number) => ({
  at,
  messages_sent: n,
  messages_received: 2 * n,
  bytes_sent: 100 * n,
  bytes_received: 300 * n,
});

describe('rates', () => {
  it('turns cumulative counters into per-second rates between samples', () => {
    expect(currentRates([sample(0, 0), sample(5000, 10)])).toEqual({
      messagesOutPerSec: 2,
      messagesInPerSec: 4,
      bytesOutPerSec: 200,
      bytesInPerSec: 600,
    });
    expect(currentRates([])).toEqual({
      messagesInPerSec: 0,
      messagesOutPerSec: 0,
      bytesInPerSec: 0,
      bytesOutPerSec: 0,
    });
  });

  it('skips a point where the counters went down (the agent was replaced) instead of drawing a negative rate', () => {
    expect(ratePoints([sample(0, 10), sample(5000, 3), sample(10_000, 8)]).map((p) => p.at)).toEqual([10_000]);
  });
});

describe('latency', () => {
  it('takes nearest-rank percentiles over the window only', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([], 50)).toBeNull();
    const samples = Array.from({ length: 100 }, (_, i) => ({ at: 1_000_000 + i, rtt_ms: i + 1 }));
    expect(latencySummary([{ at: 0, rtt_ms: 9999 }, ...samples], 1_000_100)).toEqual({
      p50: 50,
      p95: 95,
      samples: 100,
    });
  });
});

describe('timeline', () => {
  const ev = (
    at: number,
    from: ConnectionEvent['from'],
    to: ConnectionEvent['to'],
    code: ConnectionEvent['reason']['code'],
    message: string = code,
  ): ConnectionEvent => ({ at, from, to, reason: { code, message } });
  it('names switches, registrations and waits, newest first, with the reason as detail', () => {
    const items = timelineItems([
      ev(1, 'idle', { phase: 'connecting', server: { index: 0, url: 'a' }, attempt: 1 }, 'start'),
      ev(
        2,
        'registering',
        { phase: 'connected', server: { index: 0, url: 'a' }, since: 2, session_id: 's', hub_id: 'h' },
        'registered',
      ),
      ev(
        3,
        'connected',
        { phase: 'connecting', server: { index: 1, url: 'b' }, attempt: 1 },
        'ping_timeout',
        'No pong within 20s',
      ),
      ev(
        4,
        'connecting',
        {
          phase: 'reconnecting',
          next_server: { index: 0, url: 'a' },
          next_attempt_at: 9,
          delay_ms: 2000,
          backoff_step: 2,
        },
        'connect_refused',
      ),
    ]);
    expect(items.map((i) => i.title)).toEqual([
      'Waiting 2s before retrying (backoff #2)',
      'Switched to fallback #1',
      'Registered on the primary',
      'Connecting to the primary',
    ]);
    expect(items[1]).toMatchObject({ detail: 'No pong within 20s', tone: 'bad', code: 'ping_timeout' });
    expect(items.map((i) => i.code)).toEqual(['connect_refused', 'ping_timeout', 'registered', 'start']);
  });
});

describe('format', () => {
  it('reads as people write numbers', () => {
    expect([formatBytes(850), formatBytes(12_345), formatBytes(4_100_000)]).toEqual(['850 B', '12 KB', '4.1 MB']);
    expect([
      formatDuration(45_000),
      formatDuration(192_000),
      formatDuration(7_500_000),
      formatDuration(277_200_000),
    ]).toEqual(['45s', '3m 12s', '2h 5m', '3d 5h']);
    expect([formatMs(2.345), formatMs(123.4), formatMs(1400), formatMs(null)]).toEqual([
      '2.3 ms',
      '123 ms',
      '1.4 s',
      '—',
    ]);
    expect([formatAgo(null, 0), formatAgo(1000, 2000), formatAgo(0, 5000)]).toEqual(['never', 'just now', '5s ago']);
  });
});
