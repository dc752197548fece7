import { describe, expect, it } from 'vitest';
import { SAMPLE_STATES, sampleSnapshot } from '../../protocol/fake-host.fixture.js';
import { batchingSaving, figureRow, formatPerFrame, modeStatus, modeSwitchSettled, startModeSwitch } from './mode.js';

const SERVER = { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' };

describe('protocol mode labels', () => {
  it('says the mode in use and the hub that agreed to it', () => {
    expect(modeStatus(SAMPLE_STATES.enhanced())).toEqual({ text: 'Enhanced — agreed with hub-a', tone: 'good' });
  });

  it('auto on a hub without enhanced mode: legacy agreed, as a warning', () => {
    expect(modeStatus(SAMPLE_STATES.legacyOnlyHub())).toEqual({
      text: 'Legacy — agreed with hub-old; enhanced is not available',
      tone: 'warn',
    });
  });

  it('legacy chosen in the settings is agreed, not a fallback', () => {
    const s = SAMPLE_STATES.legacyOnlyHub();
    expect(modeStatus({ ...s, mode: { ...s.mode, configured: 'legacy' } })).toEqual({
      text: 'Legacy — agreed with hub-old',
      tone: 'good',
    });
  });

  it('without a connection: the mode the next one asks for first', () => {
    const s = sampleSnapshot({ state: { phase: 'connecting', server: SERVER, attempt: 2 } });
    expect(modeStatus(s).text).toBe('Not connected: the next connection asks for legacy mode first');
  });

  it('connected but not agreed yet is a warning', () => {
    const s = SAMPLE_STATES.enhanced();
    expect(modeStatus({ ...s, mode: { ...s.mode, negotiated: false } })).toEqual({
      text: 'Enhanced: not yet agreed with hub-a',
      tone: 'warn',
    });
  });
});

describe('a mode switch from the panel', () => {
  const on = (session: string, current: 'legacy' | 'enhanced', configured: 'auto' | 'legacy' | 'enhanced') =>
    sampleSnapshot({
      state: { phase: 'connected', server: SERVER, since: 1, session_id: session, hub_id: 'hub' },
      mode: { configured, current, negotiated: true, available: ['legacy', 'enhanced'], unavailable: {} },
    });

  it('is over when the agent has registered on a new session with the new setting', () => {
    const sw = startModeSwitch('legacy', on('s-1', 'enhanced', 'auto'));
    expect(modeSwitchSettled(sw, on('s-1', 'enhanced', 'auto'))).toBe(false); // not taken yet
    expect(modeSwitchSettled(sw, on('s-1', 'enhanced', 'legacy'))).toBe(false); // taken, old connection
    expect(modeSwitchSettled(sw, sampleSnapshot({ state: { phase: 'registering', server: SERVER } }))).toBe(false);
    expect(modeSwitchSettled(sw, on('s-2', 'legacy', 'legacy'))).toBe(true);
  });

  it('needs no reconnect when the connection already fits the setting', () => {
    expect(
      modeSwitchSettled(startModeSwitch('auto', on('s-1', 'enhanced', 'enhanced')), on('s-1', 'enhanced', 'auto')),
    ).toBe(true);
    expect(
      modeSwitchSettled(startModeSwitch('enhanced', on('s-1', 'enhanced', 'auto')), on('s-1', 'enhanced', 'enhanced')),
    ).toBe(true);
  });

  it('auto after legacy waits for the reconnect that offers enhanced mode', () => {
    const sw = startModeSwitch('auto', on('s-1', 'legacy', 'legacy'));
    expect(modeSwitchSettled(sw, on('s-1', 'legacy', 'auto'))).toBe(false);
    expect(modeSwitchSettled(sw, on('s-2', 'enhanced', 'auto'))).toBe(true);
  });

  it('without a connection, is over once the agent has the setting', () => {
    const down = sampleSnapshot({ state: { phase: 'connecting', server: SERVER, attempt: 1 } });
    const sw = startModeSwitch('legacy', down);
    expect(modeSwitchSettled(sw, down)).toBe(false);
    expect(modeSwitchSettled(sw, { ...down, mode: { ...down.mode, configured: 'legacy' } })).toBe(true);
  });
});

describe('enhanced and legacy figures', () => {
  it('messages per frame and bytes per message each way, and the time connected', () => {
    const row = figureRow(SAMPLE_STATES.enhanced().mode_figures.enhanced);
    expect(row.perFrame).toEqual({ sent: 30, received: 900 / 380 });
    expect(row.bytesPerMessage.sent).toBe(125);
    expect(row.connected).toBe('30m 0s');
    expect(formatPerFrame(row.perFrame.received)).toBe('2.4');
    expect(formatPerFrame(row.perFrame.sent)).toBe('30');
  });

  it('nothing carried: dashes, not zeros or NaN', () => {
    const row = figureRow(sampleSnapshot().mode_figures.enhanced);
    expect(row.perFrame).toEqual({ sent: null, received: null });
    expect(formatPerFrame(row.perFrame.sent)).toBe('—');
    expect(row.used).toBe(false);
  });

  it('what batching saved, in words, only once enhanced mode has carried messages', () => {
    expect(batchingSaving(sampleSnapshot().mode_figures)).toBeNull();
    expect(batchingSaving(SAMPLE_STATES.enhanced().mode_figures)).toBe(
      "Enhanced mode carried 12,900 messages in 780 frames: 94% fewer frames than legacy's one per message.",
    );
    // 99.65 % would round to "100 % fewer": past 95 %, how many times fewer.
    const big = SAMPLE_STATES.enhanced().mode_figures;
    big.enhanced = {
      ...big.enhanced,
      messages_sent: 100_040,
      messages_received: 124,
      frames_sent: 228,
      frames_received: 123,
    };
    expect(batchingSaving(big)).toBe(
      "Enhanced mode carried 100,164 messages in 351 frames: 285× fewer frames than legacy's one per message.",
    );
  });
});
