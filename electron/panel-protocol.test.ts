import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PANEL_CSP,
  PANEL_ORIGIN,
  PANEL_SCHEME_PRIVILEGES,
  PANEL_URL,
  panelRequestHandler,
  resolvePanelFile,
  type PanelRefusal,
  type PanelRequest,
} from './panel-protocol.js';

/**
 * The app://panel/ protocol's path rules against a real directory: a built panel, a secret file next
 * to it, and symbolic links that lead out of it.
 */

let tmp: string;
let root: string;
const SECRET = 'not for the panel';

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-panel-protocol-')));
  root = path.join(tmp, 'renderer');
  fs.mkdirSync(path.join(root, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>FarmLink</title>');
  fs.writeFileSync(path.join(root, 'favicon.svg'), '<svg/>');
  fs.writeFileSync(path.join(root, 'assets', 'index-Bx9_k-2a.js'), 'export {};');
  fs.writeFileSync(path.join(root, 'assets', 'index-BhUcgrSe.css'), 'body{}');
  fs.writeFileSync(path.join(tmp, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(root, '.env'), SECRET);
  fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(root, 'assets', 'leak.js'));
  fs.symlinkSync(tmp, path.join(root, 'outside'));
  fs.symlinkSync(path.join(root, 'assets', 'index-Bx9_k-2a.js'), path.join(root, 'alias.js'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const at = (relative: string) => `${PANEL_ORIGIN}/${relative}`;

describe('resolvePanelFile', () => {
  it('serves the built panel: the document, its assets, with their content types', async () => {
    await expect(resolvePanelFile(root, `${PANEL_ORIGIN}/`)).resolves.toEqual({
      ok: true,
      file: path.join(root, 'index.html'),
      contentType: 'text/html; charset=utf-8',
    });
    await expect(resolvePanelFile(root, PANEL_URL)).resolves.toMatchObject({
      ok: true,
      file: path.join(root, 'index.html'),
    });
    await expect(resolvePanelFile(root, `${PANEL_URL}?x=1#token`)).resolves.toMatchObject({
      ok: true,
      file: path.join(root, 'index.html'),
    });
    await expect(resolvePanelFile(root, at('assets/index-Bx9_k-2a.js'))).resolves.toEqual({
      ok: true,
      file: path.join(root, 'assets', 'index-Bx9_k-2a.js'),
      contentType: 'text/javascript; charset=utf-8',
    });
    await expect(resolvePanelFile(root, at('assets/index-BhUcgrSe.css'))).resolves.toMatchObject({
      contentType: 'text/css; charset=utf-8',
    });
    await expect(resolvePanelFile(root, at('favicon.svg'))).resolves.toMatchObject({ contentType: 'image/svg+xml' });
    // Percent-encoding of ordinary characters is only another spelling.
    await expect(resolvePanelFile(root, at('%69ndex.html'))).resolves.toMatchObject({
      ok: true,
      file: path.join(root, 'index.html'),
    });
  });

  it('follows a symbolic link that stays inside the panel, to its real path', async () => {
    await expect(resolvePanelFile(root, at('alias.js'))).resolves.toMatchObject({
      ok: true,
      file: path.join(root, 'assets', 'index-Bx9_k-2a.js'),
    });
  });

  it.each([
    ['a parent segment', '../secret.txt'],
    ['a parent segment after a folder', 'assets/../../secret.txt'],
    ['an encoded parent segment', '%2e%2e/secret.txt'],
    ['an encoded parent segment, upper case', '%2E%2E/secret.txt'],
    ['an encoded slash', '..%2fsecret.txt'],
    ['encoded slashes throughout', 'assets%2f..%2f..%2fsecret.txt'],
    ['an encoded backslash', '..%5csecret.txt'],
    ['a backslash', '..\\secret.txt'],
    ['an absolute path (empty first segment)', '/etc/passwd'],
    ['an encoded absolute path', '%2fetc%2fpasswd'],
    ['a Windows drive', 'C:/Windows/win.ini'],
    ['an encoded Windows drive', 'C%3a%5cWindows%5cwin.ini'],
    ['a NUL byte', 'index.html%00.js'],
    ['a raw NUL byte', 'index.html\0.js'],
    ['a current-directory segment', './index.html'],
    ['an empty segment', 'assets//index-Bx9_k-2a.js'],
    ['a hidden file', '.env'],
    ['broken percent-encoding', 'index%E0%A4%A.html'],
    ['a lone percent sign', '%'],
  ])('refuses %s (%s) by its path alone', async (_name, relative) => {
    const answer = await resolvePanelFile(root, at(relative));
    expect(answer).toMatchObject({ ok: false, status: 400 });
  });

  it('refuses a symbolic link that leads out of the panel directory', async () => {
    await expect(resolvePanelFile(root, at('assets/leak.js'))).resolves.toEqual({
      ok: false,
      status: 404,
      reason: 'the path leads out of the panel directory',
    });
    await expect(resolvePanelFile(root, at('outside/secret.txt'))).resolves.toMatchObject({
      ok: false,
      reason: 'the path leads out of the panel directory',
    });
  });

  it('answers 404 for what is not there, and for a folder', async () => {
    await expect(resolvePanelFile(root, at('missing.js'))).resolves.toEqual({
      ok: false,
      status: 404,
      reason: 'no such file in the panel',
    });
    await expect(resolvePanelFile(root, at('assets'))).resolves.toEqual({
      ok: false,
      status: 404,
      reason: 'not a file',
    });
  });

  it.each([
    'file:///etc/passwd',
    'file:///opt/farmlink/resources/app.asar/dist/renderer/index.html',
    'https://panel/index.html',
    'app://panel.evil/index.html',
    'app://user@panel/index.html',
    'app://panel:80/index.html',
    'app://panel',
    'app:panel/index.html',
  ])('answers only URLs of the panel origin, not %s', async (url) => {
    await expect(resolvePanelFile(root, url)).resolves.toEqual({
      ok: false,
      status: 404,
      reason: 'not a URL of the panel origin',
    });
  });

  it('says so when the panel is not built', async () => {
    await expect(resolvePanelFile(path.join(tmp, 'nothing-here'), PANEL_URL)).resolves.toEqual({
      ok: false,
      status: 503,
      reason: 'the panel is not built',
    });
  });
});

describe('panelRequestHandler', () => {
  const handler = () => {
    const refused: Array<{ refusal: PanelRefusal; request: PanelRequest }> = [];
    return { refused, handle: panelRequestHandler(root, (refusal, request) => refused.push({ refusal, request })) };
  };

  it('answers a GET of a panel file with its bytes, its type and the Content-Security-Policy', async () => {
    const { refused, handle } = handler();
    const response = await handle({ url: PANEL_URL, method: 'GET' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toBe(PANEL_CSP);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await response.text()).toBe('<!doctype html><title>FarmLink</title>');
    const script = await handle({ url: at('assets/index-Bx9_k-2a.js'), method: 'GET' });
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toBe('export {};');
    expect(refused).toEqual([]);
  });

  it('refuses traversal, links out, other methods — with the CSP, no file content, and a report', async () => {
    const { refused, handle } = handler();
    const traversal = await handle({ url: at('%2e%2e/secret.txt'), method: 'GET' });
    expect(traversal.status).toBe(400);
    expect(traversal.headers.get('content-security-policy')).toBe(PANEL_CSP);
    expect(await traversal.text()).not.toContain(SECRET);
    const leak = await handle({ url: at('assets/leak.js'), method: 'GET' });
    expect(leak.status).toBe(404);
    expect(await leak.text()).not.toContain(SECRET);
    const post = await handle({ url: PANEL_URL, method: 'POST' });
    expect(post.status).toBe(405);
    expect(refused.map(({ refusal, request }) => [refusal.status, request.url])).toEqual([
      [400, at('%2e%2e/secret.txt')],
      [404, at('assets/leak.js')],
      [405, PANEL_URL],
    ]);
  });
});

describe('the panel origin', () => {
  it('is a standard, secure scheme with no further privileges', () => {
    // No bypassCSP, corsEnabled (cross-origin reads), supportFetchAPI, service workers or streaming.
    expect(PANEL_SCHEME_PRIVILEGES).toEqual({ standard: true, secure: true });
  });

  it('has a CSP that loads only the panel, connects nowhere and cannot be framed', () => {
    const directives = Object.fromEntries(
      PANEL_CSP.split('; ').map((directive) => directive.split(' ', 2) as [string, string]),
    );
    expect(directives).toMatchObject({
      'default-src': "'self'",
      'script-src': "'self'",
      'connect-src': "'none'",
      'object-src': "'none'",
      'frame-src': "'none'",
      'frame-ancestors': "'none'",
      'base-uri': "'none'",
    });
    expect(PANEL_CSP).not.toMatch(/unsafe|\*|https?:/);
  });
});
