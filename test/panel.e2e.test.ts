import { chromiumForFile, cleanupsAfterEach } from './helpers/e2e-file.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { panelUrlFrom, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { ROOT, startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The panel end to end: Debian's Chromium (driven by playwright-core) against `farmlink agent`
 * serving its headless panel, with real hubs killed and started under it. Every state the issue
 * names is photographed into test-artifacts/panel/ to be looked at.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'panel');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-e2e-'));

const browser = chromiumForFile();
beforeAll(() => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const cleanups = cleanupsAfterEach();

async function hub(port?: number): Promise<HubProcess> {
  const h = await startHub(port ? { port } : {});
  cleanups.push(() => h.kill());
  return h;
}

/** `farmlink agent` on a config file of its own, with its panel on a free port; resolves with the panel URL. */
async function agentWithPanel(
  config: string,
  extraArgs: string[] = [],
): Promise<{ cli: CliProcess; url: string; file: string }> {
  const dir = fs.mkdtempSync(path.join(tmp, 'agent-'));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, config);
  const cli = spawnCli(
    [
      'agent',
      '--config',
      file,
      '--data-dir',
      dir,
      '--panel-port',
      '0',
      '--no-log-file',
      '--log-format',
      'json',
      ...extraArgs,
    ],
    { HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'xdg') },
  );
  cleanups.push(async () => {
    cli.kill('SIGKILL');
    await cli.exited;
  });
  await cli.waitForOutput(/"event":"panel"/);
  const url = panelUrlFrom(cli.stdout);
  return { cli, url, file };
}

async function open(url: string, size = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser().newPage({ viewport: size });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  cleanups.push(async () => {
    await page.close();
    // A CSP violation or an uncaught error in the panel fails the test that caused it.
    expect(problems, 'browser console errors').toEqual([]);
  });
  await page.goto(url);
  return page;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
const text = async (page: Page, testId: string) => (await page.getByTestId(testId).first().textContent()) ?? '';
const numberIn = (s: string) => Number(s.replace(/[^\d.]/g, ''));
/** "45s", "1m 5s" (the header's durations) in seconds. */
const seconds = (s: string) => Number(/(\d+)m/.exec(s)?.[1] ?? 0) * 60 + Number(/(\d+)s/.exec(s)?.[1] ?? 0);

/** The timeline as laid out: rows hidden by an inner scroll box, and rows not wholly inside the list. */
const timelineLayout = (page: Page) =>
  page.evaluate<{ items: number; hiddenByScroll: number; cut: number }>(`(() => {
    const list = document.querySelector('[data-testid="timeline"]');
    const box = list.getBoundingClientRect();
    const items = [...list.querySelectorAll('[data-testid="timeline-item"]')];
    const cut = items.filter((item) => { const r = item.getBoundingClientRect(); return r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5; });
    return { items: items.length, hiddenByScroll: list.scrollHeight - list.clientHeight, cut: cut.length };
  })()`);

const FAST = `connection:
  heartbeat_interval: 0.5
  dead_timeout: 2
  ping_interval: 0.5
  ping_timeout: 1
  connect_timeout: 2
  initial_reconnect_delay: 3
  max_reconnect_delay: 6
`;

describe('the panel in Chromium (headless mode)', () => {
  it('shows connected with live numbers, then reconnecting with a countdown when the primary dies, then the fallback as active', async () => {
    const primary = await hub();
    const fallbackPort = await freePort();
    const token = await primary.agentToken('pc-e2e');
    const { cli, url } = await agentWithPanel(
      `server:\n  url: "${primary.url}"\n  fallback_urls: ["http://127.0.0.1:${fallbackPort}"]\nagent:\n  ` +
        `id: pc-e2e\n  name: Rack 3 PC\n  token: "${token}"\n${FAST}`,
    );
    const page = await open(url);
    // Which process runs the agent the panel shows (one agent per PC).
    await expect
      .poll(() => text(page, 'agent-process'), { timeout: 10_000 })
      .toBe(`The agent runs headless on this PC (pid ${String(cli.proc.pid)})`);

    const status = page.getByTestId('link-status');
    await expect.poll(() => status.getAttribute('data-tone'), { timeout: 10_000 }).toBe('connected');
    expect(await status.textContent()).toContain('Connected');
    expect(await text(page, 'active-server')).toContain(primary.url);
    expect(await page.getByTestId('server-row').count()).toBe(2);
    expect(await page.getByTestId('server-row').nth(0).getAttribute('data-status')).toBe('active');
    // Live: the counters move without a reload.
    const first = numberIn(await text(page, 'stat-messages-received'));
    await expect
      .poll(async () => numberIn(await text(page, 'stat-messages-received')), { timeout: 10_000 })
      .toBeGreaterThan(first);
    await expect.poll(async () => text(page, 'latency-p50'), { timeout: 10_000 }).toMatch(/\d/);
    await expect.poll(() => page.getByTestId('quality').getAttribute('data-level')).toMatch(/excellent|good/);
    expect(await page.getByTestId('latency-chart').count()).toBe(1);
    expect(await page.getByTestId('throughput-chart').count()).toBe(1);
    // The cache card: memory in front of the disk tier in the agent's data directory, and the
    // registration just recorded there (the last server that worked) counted as a memory entry.
    expect(await page.getByTestId('cache-tier-disk').count()).toBe(1);
    await expect
      .poll(
        async () => numberIn((await page.getByTestId('cache-tier-memory').locator('td').nth(2).textContent()) ?? ''),
        { timeout: 10_000 },
      )
      .toBeGreaterThanOrEqual(1);
    // The start-up found an empty disk (a first start); the server registered with since is on disk now.
    expect(await text(page, 'cache-warm-start')).toBe('disk was empty');
    await expect
      .poll(
        async () => numberIn((await page.getByTestId('cache-tier-disk').locator('td').nth(2).textContent()) ?? ''),
        { timeout: 10_000 },
      )
      .toBe(1);
    await shot(page, '1-connected');

    // The primary dies; the fallback is down too: the agent waits out its backoff, counting down.
    await primary.kill();
    await expect.poll(() => status.getAttribute('data-tone'), { timeout: 10_000 }).toBe('reconnecting');
    await expect.poll(async () => status.textContent(), { timeout: 10_000 }).toMatch(/Reconnecting in \d+s/);
    // The countdown goes down by itself (polled: under load a render, or a new backoff, may come between two reads).
    const countdown = async () =>
      Number(/Reconnecting in (\d+)s/.exec((await status.textContent()) ?? '')?.[1] ?? Infinity);
    const countdown1 = await countdown();
    if (countdown1 > 1) await expect.poll(countdown, { timeout: 15_000 }).toBeLessThan(countdown1);
    await shot(page, '2-reconnecting');

    // The fallback comes up: it becomes the active server.
    await hub(fallbackPort);
    await expect.poll(() => status.getAttribute('data-tone'), { timeout: 20_000 }).toBe('connected');
    expect(await text(page, 'active-server')).toContain(`127.0.0.1:${fallbackPort}`);
    await expect.poll(() => page.getByTestId('server-row').nth(1).getAttribute('data-status')).toBe('active');
    expect(await page.getByTestId('server-row').nth(0).getAttribute('data-status')).toBe('failed');
    await shot(page, '3-fallback-active');
  });

  it('"Reconnect now" produces a reconnect visible in the timeline; the logs tail shows it too', async () => {
    const h = await hub();
    const { url } = await agentWithPanel(
      `server:\n  url: "${h.url}"\nagent:\n  id: pc-reconnect\n  token: "${await h.agentToken('pc-reconnect')}"\n${FAST}`,
    );
    const page = await open(url);
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    const before = await page.locator('[data-testid="timeline-item"][data-reason="reconnect_requested"]').count();
    await page.getByTestId('reconnect-now').click();
    await expect
      .poll(() => page.locator('[data-testid="timeline-item"][data-reason="reconnect_requested"]').count(), {
        timeout: 10_000,
      })
      .toBeGreaterThan(before);
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    await h.waitForLog(
      'the old session left gracefully',
      (l) => l.agent_id === 'pc-reconnect' && l.kind === 'graceful' && l.reason === 'reconnect_requested',
    );
    await shot(page, '4-timeline-after-reconnect');

    await page.getByTestId('tab-logs').click();
    await expect
      .poll(async () => (await page.getByTestId('log-line').allTextContents()).join('\n'), { timeout: 10_000 })
      .toContain('Reconnect requested from the panel');
    await shot(page, '5-logs');
    await page.getByTestId('log-level').selectOption('warn');
    await expect
      .poll(async () => (await page.getByTestId('log-line').allTextContents()).join('\n'))
      .not.toContain('✓ Connected to server');
    await shot(page, '5b-logs-warnings-only');
  });

  it('Settings: an invalid URL is an inline error and saves nothing; a valid change is saved and applied live', async () => {
    const [a, b] = [await hub(), await hub()];
    const token = await a.agentToken('pc-settings');
    const original = `# Rack 3\nserver:\n  url: "${a.url}"\nagent:\n  id: pc-settings\n  token: "${token}"\n${FAST}`;
    const { url, file } = await agentWithPanel(original);
    const page = await open(url);
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    await page.getByTestId('tab-settings').click();
    const urlField = page.getByTestId('settings-server-url');
    await expect.poll(() => urlField.inputValue()).toBe(a.url);

    await urlField.fill('adb.example.com');
    await expect.poll(() => page.getByTestId('error-server.url').isVisible()).toBe(true);
    expect(await text(page, 'error-server.url')).toMatch(/http:\/\/, https:\/\/, ws:\/\/ or wss:\/\//);
    expect(await page.getByTestId('settings-save').isDisabled()).toBe(true);
    await shot(page, '6-settings-invalid');
    expect(fs.readFileSync(file, 'utf8')).toBe(original);

    // Valid: B becomes the primary, A its fallback.
    await urlField.fill(b.url);
    await page.getByTestId('settings-add-fallback').click();
    await page.getByTestId('settings-fallback-0').fill(a.url);
    await expect.poll(() => page.getByTestId('error-server.url').count()).toBe(0);
    await page.getByTestId('settings-save').click();
    await expect.poll(() => page.getByTestId('settings-saved').isVisible(), { timeout: 10_000 }).toBe(true);
    await b.waitForLog(
      'the agent registered on the new primary',
      (l) => l.agent_id === 'pc-settings' && typeof l.msg === 'string' && l.msg.includes('registered'),
    );
    await page.getByTestId('tab-overview').click();
    await expect.poll(async () => text(page, 'active-server'), { timeout: 10_000 }).toContain(b.url);
    await expect.poll(() => page.getByTestId('link-status').getAttribute('data-tone')).toBe('connected');
    const saved = fs.readFileSync(file, 'utf8');
    expect(saved).toContain('# Rack 3');
    expect(saved).toContain(b.url);
    await shot(page, '7-settings-applied');
  });

  it('after Save and apply the header says Reconnecting, down since the apply, and keeps the last message and the counters', async () => {
    const a = await hub();
    const nextPort = await freePort();
    const { url } = await agentWithPanel(
      `server:\n  url: "${a.url}"\nagent:\n  id: pc-apply\n  token: "${await a.agentToken('pc-apply')}"\n${FAST}`,
    );
    const page = await open(url);
    const status = page.getByTestId('link-status');
    await expect.poll(() => status.getAttribute('data-tone'), { timeout: 10_000 }).toBe('connected');
    // Up long enough that a count from the agent's start cannot pass for one from the apply.
    await expect.poll(async () => seconds(await text(page, 'uptime')), { timeout: 20_000 }).toBeGreaterThanOrEqual(6);
    const receivedBefore = numberIn(await text(page, 'stat-messages-received'));

    // The new primary is not up yet: the agent leaves A and cannot reach it.
    await page.getByTestId('tab-settings').click();
    await page.getByTestId('settings-server-url').fill(`http://127.0.0.1:${nextPort}`);
    await expect.poll(() => page.getByTestId('settings-save').isDisabled()).toBe(false);
    const clickedAt = Date.now();
    await page.getByTestId('settings-save').click();
    await expect.poll(() => page.getByTestId('settings-saved').isVisible(), { timeout: 10_000 }).toBe(true);
    await page.getByTestId('tab-overview').click();
    await expect.poll(async () => text(page, 'active-server'), { timeout: 10_000 }).toContain(`127.0.0.1:${nextPort}`);
    await expect
      .poll(async () => status.textContent(), { timeout: 10_000 })
      .toMatch(/Reconnecting in \d+s|Connecting…/);
    expect(await status.getAttribute('data-tone')).toBe('reconnecting');
    expect(await page.getByTestId('uptime').getAttribute('data-kind')).toBe('down');
    expect(seconds(await text(page, 'uptime'))).toBeLessThanOrEqual(Math.ceil((Date.now() - clickedAt) / 1000));
    expect(await text(page, 'stat-last-message')).not.toBe('never');
    expect(numberIn(await text(page, 'stat-messages-received'))).toBeGreaterThanOrEqual(receivedBefore);
    await shot(page, '7b-after-apply-reconnecting');

    // The new primary comes up: connected, and up since that registration.
    await hub(nextPort);
    await expect.poll(() => status.getAttribute('data-tone'), { timeout: 20_000 }).toBe('connected');
    const registeredBy = Date.now();
    expect(await page.getByTestId('uptime').getAttribute('data-kind')).toBe('up');
    expect(seconds(await text(page, 'uptime'))).toBeLessThanOrEqual(Math.ceil((registeredBy - clickedAt) / 1000));
  });

  it("a hub that refuses this PC's token gets a banner saying so and what to do; one that refuses only some servers, other words", async () => {
    // A hub run with another secret refuses a token signed with the test secret (4401).
    const refusing = await startHub({ secret: 'another-hub-secret-0123456789-abcdefgh' });
    cleanups.push(() => refusing.kill());
    const accepting = await hub();
    const token = await accepting.agentToken('pc-refused');

    const alone = await agentWithPanel(
      `server:\n  url: "${refusing.url}"\nagent:\n  id: pc-refused\n  token: "${token}"\n${FAST}`,
    );
    const page = await open(alone.url);
    const banner = page.getByTestId('refusal-notice');
    await expect.poll(() => banner.isVisible(), { timeout: 10_000 }).toBe(true);
    const words = (await banner.textContent()) ?? '';
    expect(words).toContain("The hub refuses this PC's token");
    expect(words).toContain('4401 UNAUTHORIZED');
    expect(words).toContain(refusing.url);
    expect(words).toContain('farmlink token --agent pc-refused');
    expect(words).toContain('Settings → This agent → Replace token');
    expect(await page.getByTestId('refusal').first().getAttribute('data-close-code')).toBe('4401');
    await shot(page, '10-hub-refuses-token');

    // The refusing hub first, an accepting fallback after it: connected, and warned about the primary.
    const some = await agentWithPanel(
      `server:\n  url: "${refusing.url}"\n  fallback_urls: ["${accepting.url}"]\nagent:\n  id: pc-refused\n  token: "${token}"\n${FAST}`,
    );
    const page2 = await open(some.url);
    await expect
      .poll(() => page2.getByTestId('link-status').getAttribute('data-tone'), { timeout: 15_000 })
      .toBe('connected');
    await expect
      .poll(async () => (await page2.getByTestId('refusal-notice').textContent()) ?? '', { timeout: 10_000 })
      .toContain("Primary refuses this PC's token: the agent uses the others");
    await shot(page2, '11-primary-refuses-token');
  });

  it("each server's breaker: open until when and why for a primary that refuses this PC, closed for the fallback", async () => {
    const refusing = await startHub({ secret: 'another-hub-secret-0123456789-abcdefgh' });
    cleanups.push(() => refusing.kill());
    const accepting = await hub();
    const token = await accepting.agentToken('pc-breaker');
    const { url } = await agentWithPanel(
      `server:\n  url: "${refusing.url}"\n  fallback_urls: ["${accepting.url}"]\nagent:\n  id: pc-breaker\n  ` +
        `token: "${token}"\nbreaker:\n  failures: 1\n  window: 60\n  recovery: 120\n${FAST}`,
    );
    const page = await open(url);
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 15_000 })
      .toBe('connected');
    const primary = page.getByTestId('server-breaker').nth(0);
    const fallback = page.getByTestId('server-breaker').nth(1);
    await expect.poll(() => primary.getAttribute('data-state'), { timeout: 10_000 }).toBe('open');
    const words = (await primary.textContent()) ?? '';
    expect(words).toMatch(/^Open until \d\d:\d\d:\d\d/);
    expect(words).toContain('Refused this PC: 4401 UNAUTHORIZED');
    expect(await primary.locator('.badge').getAttribute('title')).toMatch(/skips it .* tries it again in \d+m/);
    expect(await fallback.getAttribute('data-state')).toBe('closed');
    expect(await fallback.textContent()).toBe('Closed');
    await page.getByTestId('server-row').nth(0).scrollIntoViewIfNeeded();
    await page.locator('.card-servers').screenshot({ path: path.join(ARTIFACTS, '13-server-breakers.png') });
    await shot(page, '13-server-breakers-page');
  });

  it('the timeline shows whole rows at every usual window size, and all of them on request', async () => {
    const h = await hub();
    const { url } = await agentWithPanel(
      `server:\n  url: "${h.url}"\nagent:\n  id: pc-timeline\n  token: "${await h.agentToken('pc-timeline')}"\n${FAST}`,
    );
    const page = await open(url);
    const registrations = () =>
      h.logs.filter((l) => l.agent_id === 'pc-timeline' && typeof l.msg === 'string' && l.msg.includes('registered'))
        .length;
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    // Enough transitions (two rows per reconnect) for more rows than the first page shows.
    for (let i = 0; i < 7; i += 1) {
      await expect.poll(() => page.getByTestId('reconnect-now').isEnabled(), { timeout: 10_000 }).toBe(true);
      await page.getByTestId('reconnect-now').click();
      await expect.poll(registrations, { timeout: 10_000 }).toBeGreaterThanOrEqual(i + 2);
    }
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    for (const size of [
      { width: 1280, height: 800 },
      { width: 1024, height: 700 },
      { width: 800, height: 600 },
    ]) {
      await page.setViewportSize(size);
      await page.getByTestId('timeline').scrollIntoViewIfNeeded();
      const layout = await timelineLayout(page);
      expect(layout, `timeline at ${size.width}×${size.height}`).toMatchObject({ hiddenByScroll: 0, cut: 0 });
      expect(layout.items).toBeGreaterThan(0);
      await page
        .locator('.card-timeline')
        .screenshot({ path: path.join(ARTIFACTS, `12-timeline-${size.width}x${size.height}.png`) });
    }
    await page.getByTestId('timeline-more').click();
    await expect.poll(async () => (await timelineLayout(page)).items).toBeGreaterThanOrEqual(16);
    expect(await timelineLayout(page)).toMatchObject({ hiddenByScroll: 0, cut: 0 });
  });

  it('is readable at 1024×700 too', async () => {
    const h = await hub();
    const { url } = await agentWithPanel(
      `server:\n  url: "${h.url}"\nagent:\n  id: pc-small\n  token: "${await h.agentToken('pc-small')}"\n${FAST}`,
    );
    const page = await open(url, { width: 1024, height: 700 });
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    await expect.poll(async () => text(page, 'latency-p50'), { timeout: 10_000 }).toMatch(/\d/);
    // Nothing wider than the window: no horizontal scrolling.
    // (A string, so this Node-typed file need not know the DOM.)
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1024);
    await shot(page, '8-small-window');
  });

  it('without a token the panel says how to get in, and the API stays closed', async () => {
    const h = await hub();
    const { url } = await agentWithPanel(
      `server:\n  url: "${h.url}"\nagent:\n  id: pc-notoken\n  token: "${await h.agentToken('pc-notoken')}"\n`,
    );
    const page = await open(url.replace(/#token=.*/, ''));
    await expect.poll(async () => (await page.textContent('body')) ?? '').toMatch(/panel token/i);
    await shot(page, '9-no-token');
  });

  it('farmlink start with nothing configured: a local hub, and the panel says so', async () => {
    const home = fs.mkdtempSync(path.join(tmp, 'home-'));
    const cli = spawnCli(
      [
        'start',
        '--headless',
        '--hub-port',
        '0',
        '--panel-port',
        '0',
        '--no-log-file',
        '--log-format',
        'json',
        '--data-dir',
        home,
      ],
      { HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') },
    );
    cleanups.push(async () => {
      cli.kill('SIGKILL');
      await cli.exited;
    });
    await cli.waitForOutput(/"event":"panel"/);
    const url = panelUrlFrom(cli.stdout);
    const page = await open(url);
    await expect.poll(() => page.getByTestId('local-hub-notice').isVisible(), { timeout: 10_000 }).toBe(true);
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    await shot(page, '0-local-hub');
    await waitUntil('the agent still running', () => cli.proc.exitCode === null);
  });
});
