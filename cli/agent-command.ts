import fs from 'node:fs';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent.js';
import { resolveAgentSettings, type AgentSettings } from '../agent/config/agent-settings.js';
import { envOverrides, flagOverrides, loadAgentConfig, type ConfigOverride } from '../agent/config/load-config.js';
import { defaultConfigPath, defaultDataDir } from '../agent/config/paths.js';
import { ConfigError } from '../agent/errors.js';
import { createLogger, type ConsoleFormat } from '../agent/log/logger.js';
import { parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';
import { logFormatFlag } from './hub-command.js';
import { onShutdownSignal } from './signals.js';

export const AGENT_HELP = `Usage: farmlink agent [--config FILE] [options]

Runs the agent: connects to the configured hub and its fallbacks and stays connected until
SIGINT/SIGTERM. Without --config it reads FARMLINK_CONFIG or the default file
(${defaultConfigPath()}).

Options (each overrides the file and the environment):
  --config FILE          the YAML configuration (see README → Configuration)
  --server-url URL       server.url                  [FARMLINK_SERVER_URL]
  --fallback-url URL     server.fallback_urls, repeat for several [FARMLINK_FALLBACK_URLS, comma-separated]
  --agent-id ID          agent.id                    [FARMLINK_AGENT_ID]
  --token JWT            agent.token                 [FARMLINK_AGENT_TOKEN]
  --name NAME            agent.name                  [FARMLINK_AGENT_NAME]
  --log-level L          log.level                   [FARMLINK_LOG_LEVEL]
  --log-file PATH        log.file                    [FARMLINK_LOG_FILE]
  --no-log-file          no log file
  --set KEY=VALUE        any key, e.g. --set connection.heartbeat_interval=15 (repeatable)
  --data-dir DIR         where the agent id and logs live [FARMLINK_DATA_DIR, default ${defaultDataDir()}]
  --log-format F         console lines: pretty|json [pretty]
`;

export const CONFIG_FLAG_OPTIONS = {
  config: { type: 'string' },
  'server-url': { type: 'string' },
  'fallback-url': { type: 'string', multiple: true },
  'agent-id': { type: 'string' },
  token: { type: 'string' },
  name: { type: 'string' },
  'log-level': { type: 'string' },
  'log-file': { type: 'string' },
  'no-log-file': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  'data-dir': { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type ConfigFlagValues = ReturnType<typeof parseFlags<typeof CONFIG_FLAG_OPTIONS>>['values'];

export function overridesFrom(values: ConfigFlagValues, env = process.env): ConfigOverride[] {
  return [
    ...envOverrides(env),
    ...flagOverrides({
      serverUrl: values['server-url'],
      fallbackUrls: values['fallback-url'],
      agentId: values['agent-id'],
      token: values.token,
      name: values.name,
      logLevel: values['log-level'],
      logFile: values['no-log-file'] ? false : values['log-file'],
      set: values.set,
    }),
  ];
}

/** The config file to read: --config (must exist), else the default path if it exists, else none. */
export function configFileFrom(values: ConfigFlagValues): { file: string | undefined; defaultPath: string } {
  const defaultPath = defaultConfigPath();
  if (values.config) return { file: values.config, defaultPath };
  return { file: fs.existsSync(defaultPath) ? defaultPath : undefined, defaultPath };
}

export function dataDirFrom(values: ConfigFlagValues): string {
  return values['data-dir'] ?? defaultDataDir();
}

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('agent', argv, CONFIG_FLAG_OPTIONS);
  if (values.help) {
    process.stdout.write(AGENT_HELP);
    return ExitCode.OK;
  }
  const overrides = overridesFrom(values);
  const { file, defaultPath } = configFileFrom(values);
  if (!file && !overrides.some((o) => o.path.join('.') === 'server.url')) {
    throw new ConfigError([
      `No configuration: no --config given and ${defaultPath} does not exist. Create it (README → Configuration), pass --config FILE, or set FARMLINK_SERVER_URL. To try FarmLink without a hub of your own, run \`farmlink start\`.`,
    ]);
  }
  const { config } = loadAgentConfig({ file, overrides });
  const settings = resolveAgentSettings(config, { file, dataDir: dataDirFrom(values) });
  return runAgent(settings, logFormatFlag(values['log-format'] ?? 'pretty'));
}

/** Runs an agent until a signal; resolves with the exit code. */
export async function runAgent(
  settings: AgentSettings,
  consoleFormat: ConsoleFormat,
  options: { onStarted?: (agent: Agent, logger: Logger) => void; beforeExit?: () => Promise<void> } = {},
): Promise<number> {
  const { logger, close: closeLog } = await createLogger({
    level: settings.log.level,
    console: consoleFormat,
    component: 'agent',
    file: settings.log.file ? { path: settings.log.file, maxSizeMb: settings.log.maxSizeMb, maxFiles: settings.log.maxFiles } : null,
  });
  if (settings.log.file) logger.debug({ file: settings.log.file }, `Logging to ${settings.log.file}`);
  const agent = new Agent(settings, { logger });
  keepRunningOnInternalErrors(logger, agent);
  agent.start();
  options.onStarted?.(agent, logger);

  return new Promise<number>((resolve) => {
    onShutdownSignal(
      async (signal) => {
        logger.info({ signal }, `${signal} received: disconnecting gracefully (send it again to exit at once)`);
        await agent.stop();
        await options.beforeExit?.();
        logger.info('Agent stopped');
        await closeLog();
        resolve(ExitCode.OK);
      },
      (signal) => {
        logger.warn({ signal }, `${signal} received again: exiting now`);
        resolve(ExitCode.FORCED);
      },
    );
  });
}

/**
 * Seed 000: the agent never stops except on SIGINT/SIGTERM. A bug that throws outside the
 * connection's own handling is logged and the connection is rebuilt from scratch, rather than
 * taking the farm PC offline until someone notices.
 */
function keepRunningOnInternalErrors(logger: Logger, agent: Agent): void {
  const recover = (kind: string) => (error: unknown) => {
    logger.error({ err: error }, `Internal error (${kind}); the agent keeps running and reconnects to reset its state`);
    try {
      agent.reconnectNow('Recovering from an internal error');
    } catch (again) {
      logger.error({ err: again }, 'Reconnect after an internal error failed; the next backoff step will retry');
    }
  };
  process.on('uncaughtException', recover('uncaught exception'));
  process.on('unhandledRejection', recover('unhandled rejection'));
}
