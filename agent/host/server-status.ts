import type { PanelServer, ServerStatus } from '../../protocol/agent-host.js';
import type { ConnectionState, ServerStats } from '../../protocol/connection-state.js';

/** What the panel's server list says about one server right now. */
export function serverStatus(state: ConnectionState, server: ServerStats): ServerStatus {
  if (state.phase === 'connected' && state.server.index === server.index) return 'active';
  if ((state.phase === 'connecting' || state.phase === 'registering') && state.server.index === server.index)
    return 'connecting';
  if (server.last_error && (server.last_success_at === null || server.last_error.at >= server.last_success_at))
    return 'failed';
  if (server.last_success_at !== null) return 'ok';
  return 'untried';
}

export function panelServers(
  state: ConnectionState,
  stats: readonly ServerStats[],
  configured: readonly string[],
): PanelServer[] {
  return stats.map((s) => ({
    ...s,
    configured_url: configured[s.index] ?? s.url,
    role: s.index === 0 ? 'primary' : 'fallback',
    status: serverStatus(state, s),
  }));
}
