import { TUNNEL_WS_PATH } from '../../protocol/tunnel.js';
import { AGENT_WS_PATH } from '../../protocol/version.js';

/**
 * The tunnel endpoint beside an agent endpoint (the agent's server list, primary first): the same
 * hub, the tunnel's path in place of the agent's, so a hub behind a path prefix keeps its prefix.
 */
export function tunnelEndpointFor(agentEndpoint: string): string {
  const url = new URL(agentEndpoint);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith(AGENT_WS_PATH)
    ? path.slice(0, -AGENT_WS_PATH.length) + TUNNEL_WS_PATH
    : // A ws(s) URL written with a path of its own: the hub is at its origin.
      TUNNEL_WS_PATH;
  url.search = '';
  url.hash = '';
  return url.toString();
}
