import type { AgentHostClient, BridgeTransport } from '../../protocol/agent-host.js';
import { createAgentHostClient } from '../../protocol/agent-host-client.js';
import { WsTransport, panelEndpoint, type LinkStatus } from './ws-transport.js';

declare global {
  interface Window {
    /** Exposed by the Electron preload through contextBridge; absent in a browser. */
    farmlinkBridge?: BridgeTransport;
  }
}

export type { LinkStatus };

const TOKEN_KEY = 'farmlink-panel-token';

/**
 * The AgentHost client for wherever the panel runs: Electron's preload bridge when present,
 * otherwise the headless agent's WebSocket with the token from the URL.
 */
export function createBridge(onStatus: (status: LinkStatus) => void): AgentHostClient {
  if (window.farmlinkBridge) {
    onStatus('open');
    return createAgentHostClient(window.farmlinkBridge);
  }
  const endpoint = panelEndpoint(window.location);
  const token = endpoint.token ?? sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    onStatus('unauthorized');
    return createAgentHostClient({
      call: () => Promise.reject(new Error('No panel token in the URL')),
      subscribe: () => () => {},
    });
  }
  // Keep the token out of the address bar (and of screenshots and history) once read; the tab
  // remembers it so a reload still works.
  sessionStorage.setItem(TOKEN_KEY, token);
  if (endpoint.token) history.replaceState(null, '', window.location.pathname);
  return createAgentHostClient(new WsTransport(endpoint.url, token, onStatus));
}
