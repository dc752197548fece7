import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { resolveAgentSettings } from '../agent/config/agent-settings.js';
import { loadAgentConfig, type ConfigOverride } from '../agent/config/load-config.js';
import { LOCAL_HUB_SOURCE } from '../agent/host/agent-host.js';
import type { AgentConfig } from '../protocol/config.js';
import { mintToken } from '../server/auth.js';
import { Hub } from '../server/hub.js';
import { HubOptionsSchema } from '../server/hub-options.js';

export const LOCAL_HUB_PORT = 8787;

export interface AgentRunPlan {
  config: AgentConfig;
  file: string | undefined;
  overrides: ConfigOverride[];
  /** The in-process hub made because nothing was configured. */
  localHub?: { url: string; stop: () => Promise<void> };
}

/**
 * What `farmlink start` and the desktop app run: the configured agent, or — when there is no
 * configuration at all — an agent connected to a hub started in this process on 127.0.0.1, so a
 * newcomer sees FarmLink work before they have a hub. The local hub's URL and token are
 * overrides marked as the local hub's, which saving real settings from the panel retires.
 */
export async function planAgentRun(options: {
  file: string | undefined;
  overrides: ConfigOverride[];
  dataDir: string;
  hubPort?: number | undefined;
  hubLogger: Logger;
  defaultConfigFile: string;
}): Promise<AgentRunPlan> {
  const { file, overrides } = options;
  if (file || overrides.some((o) => o.path.join('.') === 'server.url')) {
    return { config: loadAgentConfig({ file, overrides }).config, file, overrides };
  }
  const secret = randomBytes(32).toString('base64url');
  const hub = await listenWithFallbackPort(secret, options.hubPort ?? LOCAL_HUB_PORT, options.hubLogger);
  const withHub: ConfigOverride[] = [...overrides, { path: ['server', 'url'], value: hub.url, source: LOCAL_HUB_SOURCE }];
  const { config: draft } = loadAgentConfig({ overrides: withHub });
  const agentId = resolveAgentSettings(draft, { file: undefined, dataDir: options.dataDir }).identity.id;
  const token = await mintToken(secret, { role: 'agent', agentId });
  const all: ConfigOverride[] = [...withHub, { path: ['agent', 'token'], value: token, source: LOCAL_HUB_SOURCE }];
  options.hubLogger.info(
    { config: options.defaultConfigFile, hub: hub.url },
    `No configuration found at ${options.defaultConfigFile}: started a local hub at ${hub.url} and connected this agent to it. ` +
      `To connect to your farm's hub instead, save your hub's URL in the panel's Settings, or create that file (README → Configuration). Metrics: ${hub.url}/metrics`,
  );
  return {
    config: loadAgentConfig({ overrides: all }).config,
    file: undefined,
    overrides: all,
    localHub: {
      url: hub.url,
      stop: async () => {
        await hub.hub.drain('local hub stopping', 2000);
        await hub.hub.close();
      },
    },
  };
}

async function listenWithFallbackPort(secret: string, port: number, logger: Logger): Promise<{ hub: Hub; url: string }> {
  const make = (p: number) => new Hub(HubOptionsSchema.parse({ host: '127.0.0.1', port: p, secret, hub_id: 'local', drain_timeout_ms: 2000 }), logger);
  try {
    const hub = make(port);
    return { hub, url: (await hub.listen()).url };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw error;
    logger.warn(`Port ${port} is in use: the local hub takes any free port instead`);
    const hub = make(0);
    return { hub, url: (await hub.listen()).url };
  }
}
