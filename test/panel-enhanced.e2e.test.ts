import { chromiumForFile, cleanupsAfterEach } from './helpers/e2e-file.js';
import path from 'node:path';
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TypedEmitter } from '../lib/events.js';
import type { AgentHost, HostEvents } from '../agent/host/agent-host.js';
import { HostFailure, type AgentHostHandlers } from '../agent/host/call-router.js';
import { createLogger } from '../agent/log/logger.js';
import { PanelServer } from '../agent/panel/panel-server.js';
import type { Snapshot } from '../protocol/agent-host.js';
import type { ProtocolModeSetting } from '../protocol/config.js';
import { SAMPLE_STATES, fakeHandlers, sampleSnapshot } from '../protocol/fake-host.fixture.js';
import { ROOT } from './helpers/hub-process.js';

/**
 * What the panel shows for enhanced mode — the protocol mode card, the outbox card and the
 * enhanced/legacy figures — in Debian's Chromium, served by the agent's real headless panel server
 * (its token, its CSP, its WebSocket) over a fake host whose snapshots the test sets. Each state
 * is photographed into test-artifacts/panel-enhanced/ to be looked at.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'panel-enhanced');
const SERVER = { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' };

/** The host side of the panel server: snapshots set by the test, every setMode call recorded. */
class FakeHost {
  readonly events = new TypedEmitter<HostEvents>();
  readonly modeCalls: ProtocolModeSetting[] = [];
  refuseMode: HostFailure | null = null;

  constructor(private current: Snapshot) {}

  snapshot(): Snapshot {
    return this.current;
  }

  set(snapshot: Snapshot): void {
    this.current = snapshot;
    this.events.emit('changed', undefined);
  }

  handlers(): AgentHostHandlers {
    return fakeHandlers({
      getSnapshot: () => this.current,
      setMode: ({ mode }) => {
        this.modeCalls.push(mode);
        if (this.refuseMode) throw this.refuseMode;
        return { mode };
      },
    });
  }
}

const browser = chromiumForFile();
beforeAll(() => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

const cleanups = cleanupsAfterEach();

async function panelOver(
  snapshot: Snapshot,
  size = { width: 1280, height: 800 },
): Promise<{ host: FakeHost; page: Page }> {
  const host = new FakeHost(snapshot);
  const server = new PanelServer({
    host: '127.0.0.1',
    port: 0,
    allowRemote: false,
    fallbackToFreePort: false,
    token: 'panel-token-0123456789-abcdefghijklmnopq',
    rendererDir: path.join(ROOT, 'dist', 'renderer'),
    // The panel server reads only handlers(), events and snapshot() of the agent host.
    agentHost: host as unknown as AgentHost,
    logger: (await createLogger({ level: 'silent', console: 'off' })).logger,
  });
  const url = await server.listen();
  cleanups.push(() => server.close());

  const page = await browser().newPage({ viewport: size });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  cleanups.push(async () => {
    await page.close();
    // A CSP violation (the outbox bars' widths) or an uncaught error fails the test that caused it.
    expect(problems, 'browser console errors').toEqual([]);
  });
  await page.goto(url);
  await expect
    .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
    .toMatch(/connected|reconnecting/);
  return { host, page };
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
const text = async (page: Page, testId: string) => (await page.getByTestId(testId).first().textContent()) ?? '';
const pressed = (page: Page, setting: ProtocolModeSetting) =>
  page.getByTestId(`mode-${setting}`).getAttribute('aria-pressed');
/** Wider than the window means a horizontal scroll bar. (A string, so this Node-typed file need not know the DOM.) */
const pageWidth = (page: Page) => page.evaluate<number>('document.documentElement.scrollWidth');

function connected(session: string, hub: string, mode: Snapshot['mode']): Partial<Snapshot> {
  return {
    state: { phase: 'connected', server: SERVER, since: 950_000, session_id: session, hub_id: hub, mode: mode.current },
    mode,
  };
}

describe('the panel in enhanced mode (Chromium, headless panel server, fake host)', () => {
  it('the mode card switches: setMode gets the choice, the switch shows until the agent has re-registered', async () => {
    const { host, page } = await panelOver(SAMPLE_STATES.enhanced());
    const status = page.getByTestId('mode-status');
    await expect.poll(() => status.textContent(), { timeout: 10_000 }).toBe('Enhanced — agreed with hub-a');
    expect(await pressed(page, 'auto')).toBe('true');
    expect(await pressed(page, 'legacy')).toBe('false');
    await shot(page, '1-enhanced');

    await page.getByTestId('mode-legacy').click();
    await expect.poll(() => host.modeCalls).toEqual(['legacy']);
    await expect.poll(() => status.textContent()).toBe('Switching to legacy: reconnecting…');
    expect(await page.getByTestId('mode-auto').isDisabled()).toBe(true);

    // The agent takes the setting and leaves the enhanced connection: still switching.
    const legacyMode: Snapshot['mode'] = {
      configured: 'legacy',
      current: 'legacy',
      negotiated: false,
      available: ['legacy', 'enhanced'],
      unavailable: {},
    };
    host.set({ ...SAMPLE_STATES.enhanced(), state: { phase: 'registering', server: SERVER }, mode: legacyMode });
    await expect.poll(() => pressed(page, 'legacy')).toBe('true');
    expect(await status.textContent()).toBe('Switching to legacy: reconnecting…');
    await shot(page, '2-switching');

    // Registered again on a new session, in legacy mode: the switch is over.
    host.set({ ...SAMPLE_STATES.enhanced(), ...connected('s-2', 'hub-a', { ...legacyMode, negotiated: true }) });
    await expect.poll(() => status.textContent()).toBe('Legacy — agreed with hub-a');
    expect(await status.getAttribute('data-current')).toBe('legacy');
    expect(await page.getByTestId('mode-enhanced').isEnabled()).toBe(true);

    // And back to auto.
    await page.getByTestId('mode-auto').click();
    await expect.poll(() => host.modeCalls).toEqual(['legacy', 'auto']);
  });

  it('a refused switch is shown in the mode card, with its code', async () => {
    const { host, page } = await panelOver(SAMPLE_STATES.legacyOnlyHub());
    host.refuseMode = new HostFailure('MODE_UNAVAILABLE', 'Enhanced mode is not available in this build yet');
    await page.getByTestId('mode-enhanced').click();
    const refusal = page.getByTestId('mode-error');
    await expect.poll(() => refusal.isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await refusal.textContent()).toBe(
      'Not switched: Enhanced mode is not available in this build yet MODE_UNAVAILABLE',
    );
    expect(await refusal.getAttribute('role')).toBe('alert');
    expect(host.modeCalls).toEqual(['enhanced']);
    // The setting did not change, and the toggle is usable again.
    expect(await pressed(page, 'auto')).toBe('true');
    expect(await page.getByTestId('mode-enhanced').isEnabled()).toBe(true);
    await shot(page, '3-switch-refused');
  });

  it('a hub without enhanced mode: legacy in use, and why enhanced is not', async () => {
    const { page } = await panelOver(SAMPLE_STATES.legacyOnlyHub());
    await expect
      .poll(() => text(page, 'mode-status'), { timeout: 10_000 })
      .toBe('Legacy — agreed with hub-old; enhanced is not available');
    expect(await text(page, 'mode-unavailable-enhanced')).toBe(
      'Enhanced is not available. Hub hub-old does not offer enhanced mode; this agent speaks legacy with it (at most once).',
    );
    expect(await page.getByTestId('figures-head-legacy').textContent()).toBe('Legacy (in use)');
    expect(await text(page, 'outbox-sync')).toContain('a power cut can lose');
    await shot(page, '4-legacy-only-hub');
  });

  it('the outbox card: depth and bytes against their bounds, by priority, unacknowledged, delivered', async () => {
    const { page } = await panelOver(SAMPLE_STATES.enhanced());
    await expect
      .poll(() => text(page, 'outbox-depth'), { timeout: 10_000 })
      .toBe('Waiting120 of 100,000 messages (0.1% full)');
    expect(await text(page, 'outbox-bytes')).toBe('Size48 KB of 64 MB (0.1% full)');
    expect(await page.getByRole('meter', { name: 'Outbox waiting' }).getAttribute('aria-valuetext')).toBe(
      '120 of 100,000 messages, 0.1% full',
    );
    expect(await text(page, 'outbox-by-priority')).toBe('high 0 · normal 100 · low 20');
    expect(await text(page, 'outbox-unacked')).toBe('40');
    expect(await text(page, 'outbox-delivered')).toBe('5,000 of 5,120');
    expect(await text(page, 'outbox-acked-seq')).toBe('#5,000');
    expect(await page.getByTestId('outbox-given-up').getAttribute('data-count')).toBe('0');
    expect(await text(page, 'outbox-sync')).toContain('neither a killed agent nor a power cut loses it');
    expect(await page.getByTestId('outbox-error').count()).toBe(0);
    expect(await page.getByTestId('outbox-notice').count()).toBe(0);
  });

  it('drops per priority and expiries are shown prominently, in words', async () => {
    const { host, page } = await panelOver(SAMPLE_STATES.drops());
    const lost = page.getByTestId('outbox-given-up');
    await expect.poll(() => lost.getAttribute('data-count'), { timeout: 10_000 }).toBe('1260');
    expect(await lost.textContent()).toContain(
      '1,260 messages given up1,253 dropped because the outbox was full (3 normal, 1,250 low); 7 expired before delivery.',
    );
    expect(await text(page, 'outbox-dropped-low')).toBe('1,250');
    expect(await text(page, 'outbox-dropped-normal')).toBe('3');
    expect(await text(page, 'outbox-dropped-high')).toBe('0');
    expect(await text(page, 'outbox-expired')).toBe('7');
    expect(await page.getByTestId('outbox-depth').getAttribute('data-tone')).toBe('bad');
    expect(await text(page, 'outbox-depth')).toContain('(100% full)');
    // Not only in the card further down: a notice on top says so, and leads to the card.
    const notice = page.getByTestId('outbox-notice');
    expect(await notice.textContent()).toContain('The outbox has given up 1,260 messages since the agent started.');
    await shot(page, '5-drops');
    await notice.getByRole('button', { name: 'Show the outbox' }).click();
    await expect.poll(() => page.getByTestId('outbox-card').isVisible()).toBe(true);
    await expect
      .poll(() => page.evaluate<number>(`document.getElementById('outbox-title').getBoundingClientRect().top`))
      .toBeLessThan(800);
    // Dismissed, it stays away until more are given up.
    await notice.getByRole('button', { name: 'Dismiss this message' }).click();
    await expect.poll(() => notice.count()).toBe(0);
    const more = SAMPLE_STATES.drops();
    host.set({ ...more, outbox: more.outbox && { ...more.outbox, expired: 8 } });
    await expect.poll(() => lost.getAttribute('data-count')).toBe('1261');
    await expect.poll(() => notice.count()).toBe(1);
    expect(await notice.textContent()).toContain('given up 1,261 messages');
    await page.getByTestId('outbox-card').screenshot({ path: path.join(ARTIFACTS, '5b-drops-card.png') });
  });

  it('an outbox that cannot write: a banner that says the connection is up and new messages are refused', async () => {
    const { page } = await panelOver(SAMPLE_STATES.outboxError());
    const banner = page.getByTestId('outbox-error');
    await expect.poll(() => banner.isVisible(), { timeout: 10_000 }).toBe(true);
    const words = (await banner.textContent()) ?? '';
    expect(words).toContain('The outbox cannot store messages: new ones are refused.');
    expect(words).toContain('No space left on device (ENOSPC)');
    expect(words).toContain('The connection to the hub stays up');
    expect(await banner.getAttribute('role')).toBe('alert');
    // The link itself is fine, and the panel says so too.
    expect(await page.getByTestId('link-status').getAttribute('data-tone')).toBe('connected');
    // Said on top as well, where it is seen without scrolling.
    const notice = page.getByTestId('outbox-notice');
    expect(await notice.getAttribute('role')).toBe('alert');
    expect(await notice.textContent()).toContain('new events and command results are refused');
    await shot(page, '6-outbox-error');
  });

  it('an agent without an outbox says so and why it matters', async () => {
    const { page } = await panelOver(sampleSnapshot());
    await expect
      .poll(() => text(page, 'outbox-off'), { timeout: 10_000 })
      .toContain('This agent runs without an outbox');
    expect(await text(page, 'outbox-off')).toContain('is lost');
  });

  it('enhanced and legacy figures side by side: frames, messages, bytes, messages per frame, time connected', async () => {
    const { page } = await panelOver(SAMPLE_STATES.enhanced());
    await expect.poll(() => text(page, 'figures-frames-enhanced'), { timeout: 10_000 }).toBe('400 / 380');
    expect(await text(page, 'figures-frames-legacy')).toBe('1,200 / 1,100');
    expect(await text(page, 'figures-messages-enhanced')).toBe('12,000 / 900');
    expect(await text(page, 'figures-bytes-enhanced')).toBe('1.5 MB / 60 KB');
    expect(await text(page, 'figures-per-frame-enhanced')).toBe('30 / 2.4');
    expect(await text(page, 'figures-per-frame-legacy')).toBe('1.0 / 1.0');
    expect(await text(page, 'figures-connected-enhanced')).toBe('30m 0s');
    expect(await text(page, 'figures-connected-legacy')).toBe('10m 0s');
    expect(await page.getByTestId('figures-head-enhanced').textContent()).toBe('Enhanced (in use)');
    expect(await text(page, 'figures-saving')).toBe(
      "Enhanced mode carried 12,900 messages in 780 frames: 94% fewer frames than legacy's one per message.",
    );
    await page.getByTestId('mode-figures').screenshot({ path: path.join(ARTIFACTS, '7-figures.png') });
  });

  it.each(Object.entries(SAMPLE_STATES))(
    'state %s fits 1280×800 and a 480 px window without a horizontal scroll bar',
    async (name, state) => {
      const { page } = await panelOver(state());
      await expect.poll(() => page.getByTestId('outbox-card').isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await pageWidth(page), `${name} at 1280px`).toBeLessThanOrEqual(1280);
      await page.setViewportSize({ width: 480, height: 900 });
      await expect.poll(() => pageWidth(page), { message: `${name} at 480px` }).toBeLessThanOrEqual(480);
      await shot(page, `8-narrow-${name}`);
      await page.getByTestId('outbox-card').screenshot({ path: path.join(ARTIFACTS, `8-narrow-${name}-outbox.png`) });
    },
  );
});
