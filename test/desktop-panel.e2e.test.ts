import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeCall } from '../agent/host/call-router.js';
import { PANEL_CSP, PANEL_ORIGIN, panelRequestHandler } from '../electron/panel-protocol.js';
import { fakeHandlers } from '../protocol/fake-host.fixture.js';
import { ROOT } from './helpers/hub-process.js';
import { launchChromium } from './helpers/chromium.js';

/**
 * The desktop panel as the app serves it, as far as this machine allows (the Electron binary is
 * absent): Debian's Chromium loads the built panel through the app://panel/ handler — its path rules,
 * content types and Content-Security-Policy — and drives it through a bridge shaped like the
 * preload's, answered by the AgentHost call router over a fake host. Chromium alone cannot serve a
 * custom scheme, so the page lives at http://panel.test/ and every request is answered by the
 * handler as the same path under app://panel/; the CSP's 'self' means the page's own origin in both.
 */

const PAGE_ORIGIN = 'http://panel.test';
const rendererDir = path.join(ROOT, 'dist', 'renderer');

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser.close();
});

interface DesktopPage {
  page: Page;
  /** Paths the handler answered, with their status. */
  served: Array<[string, number]>;
  /** Requests to anywhere but the panel (aborted). */
  escaped: string[];
  /** Console errors and uncaught exceptions. */
  problems: string[];
}

async function openDesktopPanel(): Promise<DesktopPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const handle = panelRequestHandler(rendererDir, () => undefined);
  const served: Array<[string, number]> = [];
  const escaped: string[] = [];
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  await page.route('**/*', async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    if (url.origin !== PAGE_ORIGIN) {
      escaped.push(request.url());
      await route.abort();
      return;
    }
    const response = await handle({ url: `${PANEL_ORIGIN}${url.pathname}${url.search}`, method: request.method() });
    served.push([url.pathname, response.status]);
    await route.fulfill({
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: Buffer.from(await response.arrayBuffer()),
    });
  });
  // What electron/preload.ts exposes, with the main process's router behind it.
  const handlers = fakeHandlers();
  await page.exposeFunction('farmlinkMainProcess', (method: string, input: unknown) =>
    routeCall(handlers, method, input),
  );
  await page.addInitScript(`
    window.farmlinkBridge = Object.freeze({
      call: (method, input) => window.farmlinkMainProcess(method, input),
      subscribe: () => () => {},
    });
  `);
  return { page, served, escaped, problems };
}

describe('the desktop panel under the app://panel/ handler, in Chromium', () => {
  it('boots from the built renderer with the handler’s CSP, shows the agent, and loads every chunk', async () => {
    const { page, served, escaped, problems } = await openDesktopPanel();
    const document = await page.goto(`${PAGE_ORIGIN}/index.html`);
    expect(document?.headers()['content-security-policy']).toBe(PANEL_CSP);

    const status = page.getByTestId('link-status');
    await expect.poll(() => status.getAttribute('data-tone'), { timeout: 10_000 }).toBe('connected');

    // The lazily loaded chart chunks too: module scripts need the right content type and script-src.
    const chunks = fs.readdirSync(path.join(rendererDir, 'assets')).filter((name) => name.endsWith('.js'));
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) {
      const loaded = await page.evaluate(`import('./assets/${chunk}').then(() => 'loaded', (error) => String(error))`);
      expect(loaded, chunk).toBe('loaded');
    }

    expect(served.filter(([, code]) => code !== 200)).toEqual([]);
    expect(served.map(([pathname]) => pathname)).toEqual(expect.arrayContaining(['/index.html', '/favicon.svg']));
    expect(escaped).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('enforces the handler’s CSP, stricter than the page’s own: the panel can fetch nothing', async () => {
    const { page, problems } = await openDesktopPanel();
    await page.goto(`${PAGE_ORIGIN}/index.html`);
    await expect
      .poll(() => page.getByTestId('link-status').getAttribute('data-tone'), { timeout: 10_000 })
      .toBe('connected');
    // The page's meta policy alone (the headless mode's) allows connect-src 'self'; the header forbids it.
    const fetched = await page.evaluate(`fetch('/favicon.svg').then(() => 'fetched', () => 'blocked')`);
    expect(fetched).toBe('blocked');
    expect(problems.join('\n')).toMatch(/connect-src 'none'/);
    await page.close();
  });

  it('answers a path outside the panel with a refusal, never the file', async () => {
    const { page } = await openDesktopPanel();
    // Chromium itself folds %2e%2e into `..` and resolves it; the encoded slash reaches the handler.
    const answer = await page.goto(`${PAGE_ORIGIN}/assets%2f..%2f..%2fpackage.json`);
    expect(answer?.status()).toBe(400);
    expect(await page.textContent('body')).not.toContain('"name": "farmlink"');
    await page.close();
  });
});
