import { chromiumForFile, cleanupsAfterEach } from './helpers/e2e-file.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AgentHost, HostEvents } from '../agent/host/agent-host.js';
import type { AgentHostHandlers } from '../agent/host/call-router.js';
import { createLogger } from '../agent/log/logger.js';
import { PanelServer } from '../agent/panel/panel-server.js';
import { TypedEmitter } from '../lib/events.js';
import type { Snapshot } from '../protocol/agent-host.js';
import { SAMPLE_TUNNELS, fakeHandlers, sampleSnapshot } from '../protocol/fake-host.fixture.js';
import { ROOT } from './helpers/hub-process.js';

/**
 * The panel's Tunnels card in Debian's Chromium, served by the agent's real headless panel server
 * over a fake host whose snapshots the test sets; each state is photographed into
 * test-artifacts/panel-tunnels/ to be looked at.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'panel-tunnels');

class FakeHost {
  readonly events = new TypedEmitter<HostEvents>();
  constructor(private current: Snapshot) {}
  snapshot(): Snapshot {
    return this.current;
  }
  set(snapshot: Snapshot): void {
    this.current = snapshot;
    this.events.emit('changed', undefined);
  }
  handlers(): AgentHostHandlers {
    return fakeHandlers({ getSnapshot: () => this.current });
  }
}

const browser = chromiumForFile();
beforeAll(() => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

const cleanups = cleanupsAfterEach();

async function panelOver(snapshot: Snapshot): Promise<{ host: FakeHost; page: Page }> {
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
  const page = await browser().newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  cleanups.push(async () => {
    await page.close();
    expect(problems, 'browser console errors').toEqual([]);
  });
  await page.goto(url);
  // The overview has rendered once the server list has.
  await expect.poll(() => page.getByTestId('server-row').count(), { timeout: 10_000 }).toBe(1);
  return { host, page };
}

const text = async (page: Page, testId: string) => (await page.getByTestId(testId).first().textContent()) ?? '';
const shot = async (page: Page, name: string) => {
  await page.getByTestId('tunnels-card').scrollIntoViewIfNeeded();
  await page.getByTestId('tunnels-card').screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
};

describe('the Tunnels card', () => {
  it('says how to expose a service when none is, then shows the allowlist, the link and who is connected', async () => {
    const { host, page } = await panelOver(sampleSnapshot({ tunnel: SAMPLE_TUNNELS.off() }));
    expect(await page.getByTestId('tunnel-link').getAttribute('data-state')).toBe('off');
    expect(await text(page, 'tunnel-link-detail')).toContain('No services exposed — add tunnel.services to the config');
    expect(await text(page, 'tunnel-no-sessions')).toBe('Nothing can connect: no services are exposed.');
    await shot(page, 'off');

    host.set(sampleSnapshot({ tunnel: SAMPLE_TUNNELS.waiting() }));
    await expect.poll(() => page.getByTestId('tunnel-link').getAttribute('data-state')).toBe('waiting');
    expect(await text(page, 'tunnel-link-detail')).toContain(
      'No broker reachable (connect ECONNREFUSED 203.0.113.5:443)',
    );
    await shot(page, 'waiting');

    host.set(sampleSnapshot({ tunnel: SAMPLE_TUNNELS.idle() }));
    await expect.poll(() => page.getByTestId('tunnel-link').getAttribute('data-state')).toBe('connected');
    expect(await page.getByTestId('tunnel-service').allTextContents()).toEqual([
      'adb → 127.0.0.1:5037',
      'ssh → 127.0.0.1:22',
    ]);
    expect(await text(page, 'tunnel-no-sessions')).toContain('No one is connected');
    await shot(page, 'idle');

    host.set(sampleSnapshot({ tunnel: SAMPLE_TUNNELS.busy() }));
    await expect.poll(() => page.getByTestId('tunnel-session').count()).toBe(3);
    const rows = await page.getByTestId('tunnel-session').allInnerTexts();
    expect(rows[0]).toMatch(/alice → adb\s+relay\s+3\.4 ms\s+1\.3 MB \/ 48 MB\s+2 open \/ 17\s+Active/);
    expect(rows[1]).toMatch(/ci-runner-7 → adb\s+direct\s+0\.8 ms/);
    expect(rows[2]).toMatch(/bob → ssh\s+relay\s+—.*Degraded/s);
    expect(await page.getByTestId('tunnel-session').nth(2).getAttribute('data-state')).toBe('degraded');
    await shot(page, 'busy');
    await page.screenshot({ path: path.join(ARTIFACTS, 'overview-busy.png'), fullPage: true });
    // A narrow window scrolls the sessions table inside the card, never the page sideways.
    await page.setViewportSize({ width: 480, height: 900 });
    await expect
      .poll(() => page.evaluate<number>('document.documentElement.scrollWidth'), { message: 'page width at 480px' })
      .toBeLessThanOrEqual(480);
    await shot(page, 'busy-480');
  });

  it('is absent for an agent that does not report a tunnel, and appears when it does', async () => {
    const { host, page } = await panelOver(sampleSnapshot());
    expect(await page.getByTestId('tunnels-card').count()).toBe(0);
    host.set(sampleSnapshot({ tunnel: SAMPLE_TUNNELS.idle() }));
    await expect.poll(() => page.getByTestId('tunnels-card').count()).toBe(1);
  });
});
