import { describe, expect, it } from 'vitest';
import { applicationMenuTemplate } from './app-menu.js';
import { EXTERNAL_LINKS, isAllowedExternalLink } from './external-links.js';
import { isPanelDocument, mayNavigate, mayUsePermission, windowOpenDecision } from './navigation-policy.js';
import { PANEL_URL } from './panel-protocol.js';

describe('external links', () => {
  it('are none: the panel links nowhere, so the browser is never opened for it', () => {
    expect(EXTERNAL_LINKS).toEqual([]);
    for (const url of [
      'https://farmlink.example.com/',
      'https://github.com/',
      'http://127.0.0.1:7878/',
      'file:///etc/passwd',
    ]) {
      expect(isAllowedExternalLink(url), url).toBe(false);
    }
  });

  it('allow exactly the listed https URLs, and nothing that merely resembles them', () => {
    const allowlist = ['https://docs.example.com/farmlink/guide'];
    expect(isAllowedExternalLink('https://docs.example.com/farmlink/guide', allowlist)).toBe(true);
    // The same URL after normalisation (scheme and host case, default port).
    expect(isAllowedExternalLink('HTTPS://Docs.Example.com:443/farmlink/guide', allowlist)).toBe(true);
    for (const url of [
      'https://docs.example.com/farmlink/guide/../../elsewhere',
      'https://docs.example.com/farmlink/guide/more',
      'https://docs.example.com/farmlink/guide?next=https://evil.example',
      'https://docs.example.com/farmlink/guide#x',
      'https://docs.example.com.evil.example/farmlink/guide',
      'https://user:pass@docs.example.com/farmlink/guide',
      'http://docs.example.com/farmlink/guide',
      'javascript:alert(1)',
      'not a url',
      '',
    ]) {
      expect(isAllowedExternalLink(url, allowlist), url).toBe(false);
    }
  });

  it('refuse any scheme but https even when listed', () => {
    expect(isAllowedExternalLink('http://example.com/', ['http://example.com/'])).toBe(false);
    expect(isAllowedExternalLink('file:///etc/passwd', ['file:///etc/passwd'])).toBe(false);
  });
});

describe('navigation', () => {
  it('stays on the panel document', () => {
    expect(isPanelDocument(PANEL_URL)).toBe(true);
    expect(mayNavigate(PANEL_URL)).toBe(true);
    expect(mayNavigate(`${PANEL_URL}#settings`)).toBe(true);
    expect(mayNavigate(`${PANEL_URL}?reload=1`)).toBe(true);
  });

  it.each([
    'https://evil.example/',
    'http://127.0.0.1:7878/',
    'file:///opt/farmlink/resources/app.asar/dist/renderer/index.html',
    'app://panel/assets/index-Bx9_k-2a.js',
    'app://panel/',
    'app://panel.evil/index.html',
    'app://panel/index.html.evil',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'about:blank',
  ])('refuses %s', (url) => {
    expect(mayNavigate(url)).toBe(false);
  });

  it('never opens a new window: links are refused with a reason, or handed to the browser when listed', () => {
    expect(windowOpenDecision('https://evil.example/')).toEqual({
      openExternally: false,
      reason: expect.any(String) as string,
    });
    expect(windowOpenDecision(PANEL_URL)).toMatchObject({ openExternally: false });
    expect(windowOpenDecision('https://docs.example.com/a', ['https://docs.example.com/a'])).toEqual({
      openExternally: true,
    });
  });
});

describe('permissions', () => {
  it.each([
    'media',
    'notifications',
    'geolocation',
    'clipboard-read',
    'clipboard-sanitized-write',
    'fullscreen',
    'openExternal',
    'hid',
  ])('denies %s: the panel uses none', (permission) => {
    expect(mayUsePermission(permission)).toBe(false);
  });
});

describe('application menu', () => {
  const roles = (items: unknown): string[] =>
    Array.isArray(items)
      ? items.flatMap((item: { role?: string; submenu?: unknown }) => [
          ...(item.role ? [item.role] : []),
          ...roles(item.submenu),
        ])
      : [];

  it('keeps Electron’s default (with DevTools) in development', () => {
    expect(applicationMenuTemplate(false, 'linux')).toBeUndefined();
  });

  it.each(['linux', 'win32', 'darwin'] as const)(
    'has no DevTools or reload in a packaged build on %s, and keeps editing',
    (platform) => {
      const template = applicationMenuTemplate(true, platform);
      expect(template).toBeDefined();
      const present = roles(template);
      for (const role of ['toggleDevTools', 'reload', 'forceReload', 'viewMenu', 'windowMenu', 'help', 'defaultMenu']) {
        expect(present).not.toContain(role);
      }
      expect(present).toContain('editMenu');
    },
  );
});
