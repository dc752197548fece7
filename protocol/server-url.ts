import { AGENT_WS_PATH } from './version.js';
import { TUNNEL_WS_PATH } from './tunnel.js';

const ACCEPTED = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** True when `raw` is a URL the agent can connect to (http, https, ws or wss, with a host). */
export function isServerUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return ACCEPTED.has(url.protocol) && url.hostname.length > 0;
  } catch {
    return false;
  }
}

/**
 * The WebSocket endpoint for a configured server URL.
 * ws(s):// URLs are used exactly as written. http(s):// URLs are base URLs: the scheme becomes
 * ws(s) and the agent path is appended to whatever base path they carry, so
 * "https://adb.example.com" → "wss://adb.example.com/api/v1/pc/ws" and
 * "https://example.com/farm/" → "wss://example.com/farm/api/v1/pc/ws" (for hubs behind a path prefix).
 */
export function toAgentEndpoint(raw: string): string {
  const url = new URL(raw);
  if (url.protocol === 'ws:' || url.protocol === 'wss:') return url.toString();
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`not an http(s) or ws(s) URL: ${raw}`);
  }
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = url.pathname.replace(/\/+$/, '') + AGENT_WS_PATH;
  url.search = '';
  url.hash = '';
  return url.toString();
}

/** URL with any userinfo and query removed, for logs and the panel (agent server URLs, the hub's Redis URL). */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    // Built by hand: assigning "…" to url.search would percent-encode it.
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?…' : ''}`;
  } catch {
    // Not echoed: what could not be parsed cannot be stripped of a password either.
    return '(unparseable URL)';
  }
}

/** Host names that reach the same loopback listener as 127.0.0.1. */
const IPV4_LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost']);

/**
 * True when two configured server URLs dial the same agent endpoint, however each is spelled:
 * "http://127.0.0.1:8787", "http://localhost:8787/" and "ws://127.0.0.1:8787/api/v1/pc/ws" are one.
 */
export function sameAgentEndpoint(a: string, b: string): boolean {
  if (!isServerUrl(a) || !isServerUrl(b)) return false;
  const [x, y] = [new URL(toAgentEndpoint(a)), new URL(toAgentEndpoint(b))];
  const host = (u: URL) => (IPV4_LOOPBACK_NAMES.has(u.hostname.toLowerCase()) ? '127.0.0.1' : u.hostname.toLowerCase());
  const pathOf = (u: URL) => u.pathname.replace(/\/+$/, '');
  return (
    x.protocol === y.protocol &&
    host(x) === host(y) &&
    x.port === y.port &&
    pathOf(x) === pathOf(y) &&
    x.search === y.search
  );
}

/**
 * The tunnel endpoint for a hub URL given to a tunnel end (`farmlink connect --hub`, the agent's
 * server list). http(s):// URLs are base URLs, as for the agent endpoint: "https://hub.example.com/farm"
 * → "wss://hub.example.com/farm/api/v1/tunnel". A ws(s):// URL is used as written when it names a path,
 * and gets the tunnel path when it names none ("ws://127.0.0.1:8787" → "ws://127.0.0.1:8787/api/v1/tunnel").
 */
export function toTunnelEndpoint(raw: string): string {
  const url = new URL(raw);
  if (url.protocol === 'ws:' || url.protocol === 'wss:') {
    if (url.pathname === '' || url.pathname === '/') url.pathname = TUNNEL_WS_PATH;
    return url.toString();
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`not an http(s) or ws(s) URL: ${raw}`);
  }
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = url.pathname.replace(/\/+$/, '') + TUNNEL_WS_PATH;
  url.search = '';
  url.hash = '';
  return url.toString();
}
