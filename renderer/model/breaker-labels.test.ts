import { describe, expect, it } from 'vitest';
import { breakerView } from './breaker-labels.js';
import { formatClock } from './format.js';

const NOW = 1_700_000_000_000;

describe('breakerView', () => {
  it('open: until when, and why, in words as well as colour', () => {
    const view = breakerView(
      {
        state: 'open',
        failures: 3,
        reason: '4401 UNAUTHORIZED "invalid token"',
        opened_at: NOW,
        retry_at: NOW + 120_000,
      },
      NOW + 30_000,
    );
    expect(view).toMatchObject({
      state: 'open',
      label: `Open until ${formatClock(NOW + 120_000)}`,
      tone: 'bad',
      detail: 'Refused this PC: 4401 UNAUTHORIZED "invalid token"',
    });
    expect(view.hint).toContain('tries it again in 1m 30s');
  });

  it('half-open is "Probing"; closed says how many refusals it counts', () => {
    expect(
      breakerView({ state: 'half-open', failures: 3, reason: 'HTTP 401', opened_at: NOW, retry_at: null }, NOW),
    ).toMatchObject({ label: 'Probing', tone: 'warn', detail: 'Refused this PC: HTTP 401' });
    const closed = { state: 'closed', reason: null, opened_at: null, retry_at: null } as const;
    expect(breakerView({ ...closed, failures: 0 }, NOW)).toMatchObject({ label: 'Closed', tone: 'good', detail: null });
    expect(breakerView({ ...closed, failures: 2 }, NOW)).toMatchObject({ tone: 'warn', detail: '2 refusals lately' });
    expect(breakerView({ ...closed, failures: 1 }, NOW).detail).toBe('1 refusal lately');
  });

  it('an agent without breakers: a dash, not a guess', () => {
    expect(breakerView(undefined, NOW)).toMatchObject({ state: 'unknown', label: '—' });
  });
});
