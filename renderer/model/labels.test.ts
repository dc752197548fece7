import { describe, expect, it } from 'vitest';
import { QUALITY_THRESHOLDS } from '../../protocol/quality.js';
import { formatPercent, linkDuration, qualityRules, qualityShown, serverName } from './labels.js';

describe('labels', () => {
  it('names servers as the config file orders them', () => {
    expect([serverName(0), serverName(2)]).toEqual(['Primary', 'Fallback #2']);
  });

  it('states the quality thresholds from the agent’s own constants', () => {
    const rules = qualityRules().join('\n');
    expect(rules).toContain(`≤ ${QUALITY_THRESHOLDS.excellent.maxMedianRttMs} ms`);
    expect(rules).toContain(`≤ ${QUALITY_THRESHOLDS.good.maxMedianRttMs} ms`);
    expect(rules).toContain(`last ${QUALITY_THRESHOLDS.window} heartbeats`);
  });

  it('shows the gap of a mode switch asked for from the panel as the switch, not as a lost link', () => {
    expect(qualityShown('disconnected', false)).toEqual({ label: 'Disconnected', tone: 'bad', switching: false });
    expect(qualityShown('disconnected', true)).toEqual({ label: 'Switching mode…', tone: 'neutral', switching: true });
    // Registered again (or never unregistered): the quality itself, switch or not.
    expect(qualityShown('excellent', true)).toEqual({ label: 'Excellent', tone: 'good', switching: false });
  });

  it('formats shares as percentages', () => {
    expect([formatPercent(0), formatPercent(0.004), formatPercent(0.1), formatPercent(1)]).toEqual([
      '0%',
      '0.4%',
      '10%',
      '100%',
    ]);
  });

  it('counts up time from registration, and down time from the loss of the link or the start', () => {
    const stats = { last_success_at: null, disconnected_since: null } as never;
    const connected = {
      phase: 'connected',
      server: { index: 0, url: 'a' },
      since: 1000,
      session_id: 's',
      hub_id: 'h',
    } as const;
    const reconnecting = {
      phase: 'reconnecting',
      next_server: { index: 0, url: 'a' },
      next_attempt_at: 7000,
      delay_ms: 2000,
      backoff_step: 1,
    } as const;
    expect(linkDuration({ state: connected, stats, started_at: 0 }, 6000)).toEqual({
      kind: 'up',
      ms: 5000,
      since: 1000,
    });
    expect(linkDuration({ state: { phase: 'idle' }, stats, started_at: 0 }, 6000)).toEqual({
      kind: 'down',
      ms: 6000,
      since: 0,
    });
    // Registered at 1 s, lost at 4 s: down for 2 s at 6 s — not 5 s since the registration.
    expect(
      linkDuration(
        { state: reconnecting, stats: { last_success_at: 1000, disconnected_since: 4000 } as never, started_at: 0 },
        6000,
      ),
    ).toEqual({ kind: 'down', ms: 2000, since: 4000 });
  });
});
