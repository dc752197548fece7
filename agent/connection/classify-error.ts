import type { Reason } from '../../protocol/connection-state.js';

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const NETWORK = new Set([
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ECONNABORTED',
  'EADDRNOTAVAIL',
]);

/** A socket-level error as a transition reason with a message that says what to check. */
export function classifySocketError(error: Error, url: string): Reason {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const host = safeHost(url);
  if (code === 'ECONNREFUSED') {
    return { code: 'connect_refused', message: `Connection refused by ${host} (nothing listening there?)` };
  }
  if (DNS.has(code)) {
    return { code: 'dns_failed', message: `Could not resolve ${host} (${code})` };
  }
  if (code === 'ETIMEDOUT') {
    return { code: 'connect_timeout', message: `Network timeout reaching ${host}` };
  }
  if (NETWORK.has(code)) {
    return { code: 'network_error', message: `Network error with ${host}: ${code}` };
  }
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return { code: 'tls_error', message: `TLS error with ${host}: ${error.message}` };
  }
  return { code: 'network_error', message: `${host}: ${error.message}${code ? ` (${code})` : ''}` };
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
