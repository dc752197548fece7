import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { resolveAgentSettings } from '../../agent/config/agent-settings.js';
import { loadAgentConfig, type ConfigOverride } from '../../agent/config/load-config.js';
import { LOCAL_HUB_SOURCE } from '../../agent/host/agent-host.js';
import type { LocalHub } from '../../agent/host/local-hub.js';
import type { AgentConfig } from '../../protocol/config.js';
import { sameAgentEndpoint } from '../../protocol/server-url.js';
import { mintToken } from '../../server/auth.js';
import { Hub } from '../../server/hub.js';
import { HubOptionsSchema } from '../../server/hub-options.js';

export const LOCAL_HUB_PORT = 8787;

export interface AgentRunPlan {
  config: AgentConfig;
  file: string | undefined;
  overrides: ConfigOverride[];
  /** The hub started in this process: because nothing was configured, or because server.url is its address. */
  localHub?: LocalHub & { stop: () => Promise<void> };
}

/**
 * What `farmlink start` and the desktop app run: the configured agent, or — when there is no
 * configuration at all — an agent connected to a hub started in this process on 127.0.0.1, so a
 * newcomer sees FarmLink work before they have a hub. The local hub's URL is an override marked
 * as the local hub's, which saving settings from the panel retires; its token is never an
 * override or a file value, only given to the agent in memory (see LocalHub).
 *
 * A configuration whose server.url is the local hub's address (the panel saved it, or someone
 * copied it from the log) gets the local hub started there too: without it nothing would listen,
 * and no token in the file could be valid for it.
 */
export async function planAgentRun(options: {
  file: string | undefined;
  /** Where `file`'s name came from, for an error about reading it ("--config", "FARMLINK_CONFIG (environment)"). */
  fileSource?: string | undefined;
  overrides: ConfigOverride[];
  dataDir: string;
  hubPort?: number | undefined;
  hubLogger: Logger;
  defaultConfigFile: string;
}): Promise<AgentRunPlan> {
  const { file, overrides } = options;
  const port = options.hubPort ?? LOCAL_HUB_PORT;
  if (file || overrides.some((o) => o.path.join('.') === 'server.url')) {
    const { config } = loadAgentConfig({ file, fileSource: options.fileSource, overrides });
    const address = `http://127.0.0.1:${port}`;
    if (port === 0 || !sameAgentEndpoint(config.server.url, address)) return { config, file, overrides };
    const where = sourceOfServerUrl(file, overrides);
    let hub: StartedHub;
    try {
      hub = await startLocalHub(port, options.hubLogger, { fallbackToFreePort: false, dataDir: options.dataDir });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      options.hubLogger.warn(
        { config: where, server_url: config.server.url },
        `server.url (${where}) is ${config.server.url}, the local hub's address, but another program listens ` +
          `on port ${port}, so no local hub was started there; ` +
          `the agent connects to that program as configured. If it refuses the agent (4401), stop it and run ` +
          `\`farmlink start\` again, or set server.url and agent.token to your own hub`,
      );
      return { config, file, overrides };
    }
    options.hubLogger.info(
      { config: where, hub: hub.url },
      `server.url (${where}) is the local hub's address: started the local hub at ${hub.url} and connected ` +
        `this agent to it with the hub's own token (kept in memory). ` +
        `To connect to your farm's hub instead, save its URL in the panel's Settings`,
    );
    return { config: await withLocalToken(config, hub, options.dataDir, file), file, overrides, localHub: hub };
  }
  const hub = await startLocalHub(port, options.hubLogger, { fallbackToFreePort: true, dataDir: options.dataDir });
  const all: ConfigOverride[] = [...overrides, { path: ['server', 'url'], value: hub.url, source: LOCAL_HUB_SOURCE }];
  const { config } = loadAgentConfig({ overrides: all });
  options.hubLogger.info(
    { config: options.defaultConfigFile, hub: hub.url },
    `No configuration found at ` +
      `${options.defaultConfigFile}${options.fileSource ? ` (from ${options.fileSource})` : ''}: started a ` +
      `local hub at ${hub.url} and connected this agent to it. ` +
      `To connect to your farm's hub instead, save your hub's URL in the panel's Settings, or create that ` +
      `file (README → Configuration). Metrics: ${hub.url}/metrics`,
  );
  return {
    config: await withLocalToken(config, hub, options.dataDir, undefined),
    file: undefined,
    overrides: all,
    localHub: hub,
  };
}

type StartedHub = LocalHub & { stop: () => Promise<void> };

/** The config with the local hub's token for this agent in place of any configured one. */
async function withLocalToken(
  config: AgentConfig,
  hub: LocalHub,
  dataDir: string,
  file: string | undefined,
): Promise<AgentConfig> {
  const agentId = resolveAgentSettings(config, { file, dataDir }).identity.id;
  const { token_file: _ignored, ...agent } = config.agent;
  return { ...config, agent: { ...agent, token: await hub.tokenFor(agentId) } };
}

function sourceOfServerUrl(file: string | undefined, overrides: readonly ConfigOverride[]): string {
  const override = [...overrides]
    .reverse()
    .find((o) => o.path.join('.') === 'server.url' || o.path.join('.') === 'server');
  return override?.source ?? file ?? 'configuration';
}

async function startLocalHub(
  port: number,
  logger: Logger,
  { fallbackToFreePort, dataDir }: { fallbackToFreePort: boolean; dataDir: string },
): Promise<StartedHub> {
  const secret = randomBytes(32).toString('base64url');
  // The local hub's event log lives with the agent that started it, not in a hub data dir of its own.
  const hubDir = path.join(dataDir, 'local-hub');
  const { hub, url } = fallbackToFreePort
    ? await listenWithFallbackPort(secret, port, logger, hubDir)
    : await listenOn(secret, port, logger, hubDir);
  return {
    url,
    tokenFor: (agentId) => mintToken(secret, { role: 'agent', agentId }),
    stop: async () => {
      await hub.drain('local hub stopping', 2000);
      await hub.close();
    },
  };
}

async function listenOn(
  secret: string,
  port: number,
  logger: Logger,
  dataDir: string,
): Promise<{ hub: Hub; url: string }> {
  const hub = makeHub(secret, port, logger, dataDir);
  try {
    return { hub, url: (await hub.listen()).url };
  } catch (error) {
    // Not listening (the port is taken): its event log is let go before another hub opens it.
    await hub.events.close();
    throw error;
  }
}

function makeHub(secret: string, port: number, logger: Logger, dataDir: string): Hub {
  return new Hub(
    HubOptionsSchema.parse({
      host: '127.0.0.1',
      port,
      secret,
      hub_id: 'local',
      drain_timeout_ms: 2000,
      data_dir: dataDir,
    }),
    logger,
  );
}

async function listenWithFallbackPort(
  secret: string,
  port: number,
  logger: Logger,
  dataDir: string,
): Promise<{ hub: Hub; url: string }> {
  try {
    return await listenOn(secret, port, logger, dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw error;
    logger.warn(`Port ${port} is in use: the local hub takes any free port instead`);
    return listenOn(secret, 0, logger, dataDir);
  }
}
