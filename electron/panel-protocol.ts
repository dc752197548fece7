import fs from 'node:fs/promises';
import path from 'node:path';
import type { CustomScheme } from 'electron';
import { contentType } from '../agent/panel/static-files.js';

/**
 * The desktop panel's own origin, app://panel/, and the rule for what it serves: files of the built
 * renderer directory and nothing else. A `file://` page would have every local file as its 'self'
 * (and, with the GrantFileProtocolExtraPrivileges fuse, fetch over file://); this origin holds only
 * the panel. Kept free of Electron at run time so the path rules are tested in plain Node.
 */

export const PANEL_SCHEME = 'app';
export const PANEL_ORIGIN = `${PANEL_SCHEME}://panel`;
/** The panel's document: the only page the window may show, and the only frame that may call the agent. */
export const PANEL_URL = `${PANEL_ORIGIN}/index.html`;

/**
 * `standard` gives the scheme real origins (relative URLs, 'self' in the CSP) and `secure` makes it a
 * secure context. Nothing more: no CSP bypass, no cross-origin reads (corsEnabled), no fetch API, no
 * service workers — the panel talks to the agent over IPC only.
 */
export const PANEL_SCHEME_PRIVILEGES = { standard: true, secure: true } as const satisfies CustomScheme['privileges'];

/**
 * Sent with every answer. Stricter than the page's own meta policy, which the headless mode shares:
 * in the app the panel connects nowhere (IPC is not a fetch), frames and embeds nothing.
 */
export const PANEL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'none'",
  "object-src 'none'",
  "frame-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export type PanelFile =
  { ok: true; file: string; contentType: string } | { ok: false; status: 400 | 404 | 405 | 503; reason: string };

/**
 * One path segment as vite writes them (`index.html`, `assets/index-Bx9_k-2a.js`): letters, digits,
 * `_`, `-` and inner dots. This leaves out, whatever the URL parser did before us: `.` and `..`
 * (and every hidden file), separators of either kind (an encoded `%2f` or `%5c` decodes into one),
 * drive letters (`C:`), NUL and anything percent-encoded that is not one of these characters.
 */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

const refuse = (status: 400 | 404 | 503, reason: string): PanelFile => ({ ok: false, status, reason });

/**
 * The file under `rootDir` that `url` names, or why there is none. Only `app://panel/…` URLs are
 * answered; `/` is the document. The answer is a real path inside the real `rootDir` or a refusal:
 * a symbolic link that leads out of it is refused like a `..`.
 */
export async function resolvePanelFile(rootDir: string, url: string): Promise<PanelFile> {
  const prefix = `${PANEL_ORIGIN}/`;
  if (!url.startsWith(prefix)) return refuse(404, 'not a URL of the panel origin');
  const rawPath = url.slice(prefix.length).split(/[?#]/, 1)[0] ?? '';
  const segments: string[] = [];
  for (const raw of rawPath === '' ? ['index.html'] : rawPath.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return refuse(400, 'the path is not valid percent-encoding');
    }
    if (!SEGMENT.test(segment)) return refuse(400, 'the path has a segment the panel never uses');
    segments.push(segment);
  }

  let root: string;
  try {
    root = await fs.realpath(rootDir);
  } catch {
    return refuse(503, 'the panel is not built');
  }
  let file: string;
  try {
    file = await fs.realpath(path.join(root, ...segments));
  } catch {
    return refuse(404, 'no such file in the panel');
  }
  if (!file.startsWith(root + path.sep)) return refuse(404, 'the path leads out of the panel directory');
  const stats = await fs.stat(file).catch(() => undefined);
  if (!stats?.isFile()) return refuse(404, 'not a file');
  return { ok: true, file, contentType: contentType(file) };
}

export interface PanelRequest {
  url: string;
  method: string;
}

export type PanelRefusal = Extract<PanelFile, { ok: false }>;

/**
 * The handler `protocol.handle` is given: every answer carries the CSP and nosniff; anything but a
 * GET of a panel file gets a plain-text refusal, reported to `onRefused` (the shell logs it).
 */
export function panelRequestHandler(
  rootDir: string,
  onRefused: (refusal: PanelRefusal, request: PanelRequest) => void,
): (request: PanelRequest) => Promise<Response> {
  const headers = (type: string) => ({
    'content-type': type,
    'content-security-policy': PANEL_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  });
  return async (request) => {
    const found: PanelFile =
      request.method === 'GET'
        ? await resolvePanelFile(rootDir, request.url)
        : { ok: false, status: 405, reason: 'only GET is answered' };
    if (!found.ok) {
      onRefused(found, request);
      return new Response(`${found.reason}\n`, { status: found.status, headers: headers('text/plain; charset=utf-8') });
    }
    return new Response(await fs.readFile(found.file), { status: 200, headers: headers(found.contentType) });
  };
}
