import { sameAgentEndpoint } from '../../protocol/server-url.js';

/**
 * The hub `farmlink start` runs inside its own process (for a PC with no hub configured, or one
 * whose server.url is that hub's address). Its secret never leaves the process: the agent gets
 * tokens from here, in memory, and none is ever written to the config file — no file token could
 * be valid for it anyway.
 */
export interface LocalHub {
  /** http://127.0.0.1:PORT */
  url: string;
  /** A token this hub accepts for that agent id. */
  tokenFor(agentId: string): Promise<string>;
}

/** True when a configured server URL reaches the local hub, in any spelling. */
export function isLocalHubUrl(configured: string, hub: LocalHub | undefined): hub is LocalHub {
  return hub !== undefined && sameAgentEndpoint(configured, hub.url);
}
