import { sameAgentEndpoint, toAgentEndpoint } from '../../protocol/server-url.js';
import type { AgentSettings } from '../config/agent-settings.js';

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

/**
 * Settings whose primary server is the local hub, made to reach it: its exact endpoint (a
 * "localhost" spelling might resolve to ::1, where it does not listen) and, when given, its token.
 */
export function dialLocalHub(settings: AgentSettings, hub: LocalHub, token?: string): AgentSettings {
  return {
    ...settings,
    servers: [toAgentEndpoint(hub.url), ...settings.servers.slice(1)],
    identity: token === undefined ? settings.identity : { ...settings.identity, token },
  };
}
