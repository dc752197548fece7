import { randomBytes } from 'node:crypto';
import { resolveAgentSettings } from '../agent/config/agent-settings.js';
import { loadAgentConfig } from '../agent/config/load-config.js';
import { createLogger } from '../agent/log/logger.js';
import { mintToken } from '../server/auth.js';
import { Hub } from '../server/hub.js';
import { HubOptionsSchema } from '../server/hub-options.js';
import { AGENT_HELP, CONFIG_FLAG_OPTIONS, configFileFrom, dataDirFrom, overridesFrom, runAgent } from './agent-command.js';
import { numberFlag, parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';
import { logFormatFlag } from './hub-command.js';

export const START_HELP = `Usage: farmlink start [agent options] [--hub-port P]

What \`npm start\` runs. With a configuration (--config, FARMLINK_CONFIG, the default file or
--server-url) it is \`farmlink agent\`. With none, it starts a local hub on 127.0.0.1 in the
same process and connects the agent to it, so you can see FarmLink work before you have a hub.

  --hub-port P   port of the local hub [8787; any free port if that one is taken]

${AGENT_HELP.split('\n').slice(5).join('\n')}`;

const LOCAL_HUB_PORT = 8787;

export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('start', argv, { ...CONFIG_FLAG_OPTIONS, 'hub-port': { type: 'string' } });
  if (values.help) {
    process.stdout.write(START_HELP);
    return ExitCode.OK;
  }
  const consoleFormat = logFormatFlag(values['log-format'] ?? 'pretty');
  const overrides = overridesFrom(values);
  const { file, defaultPath } = configFileFrom(values);
  const dataDir = dataDirFrom(values);
  if (file || overrides.some((o) => o.path.join('.') === 'server.url')) {
    const { config } = loadAgentConfig({ file, overrides });
    return runAgent(resolveAgentSettings(config, { file, dataDir }), consoleFormat);
  }

  // Local mode: a hub in this process, a secret that lives as long as it does.
  const secret = randomBytes(32).toString('base64url');
  const { logger: hubLogger, close: closeHubLog } = await createLogger({ level: 'info', console: consoleFormat, component: 'hub' });
  const requestedPort = numberFlag('hub-port', values['hub-port'], { integer: true }) ?? LOCAL_HUB_PORT;
  const local = await listenWithFallbackPort(secret, requestedPort, hubLogger);
  const { config } = loadAgentConfig({
    overrides: [...overrides, { path: ['server', 'url'], value: local.url, source: 'local hub' }],
  });
  const settings = resolveAgentSettings(config, { file: undefined, dataDir });
  settings.identity.token = await mintToken(secret, { role: 'agent', agentId: settings.identity.id });
  hubLogger.info(
    { config: defaultPath, hub: local.url },
    `No configuration found at ${defaultPath}: started a local hub at ${local.url} and connected this agent to it. ` +
      `To connect to your farm's hub instead, create that file (README → Configuration). Metrics: ${local.url}/metrics`,
  );
  return runAgent(settings, consoleFormat, {
    beforeExit: async () => {
      await local.hub.drain('local hub stopping', 2000);
      await local.hub.close();
      await closeHubLog();
    },
  });
}

async function listenWithFallbackPort(secret: string, port: number, logger: Awaited<ReturnType<typeof createLogger>>['logger']): Promise<{ hub: Hub; url: string }> {
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
