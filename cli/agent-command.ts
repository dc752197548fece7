import fs from 'node:fs';
import path from 'node:path';
import { resolveAgentSettings } from '../agent/config/agent-settings.js';
import { envOverrides, flagOverrides, loadAgentConfig, type ConfigOverride } from '../agent/config/load-config.js';
import { defaultConfigPath, defaultDataDir } from '../agent/config/paths.js';
import { privateDataDir, tightenDataDir } from '../agent/config/private-files.js';
import { ConfigError } from '../lib/errors.js';
import { AgentHost } from '../agent/host/agent-host.js';
import { LogBuffer } from '../agent/host/log-buffer.js';
import type { LocalHub } from '../agent/host/local-hub.js';
import { createLogger, type ConsoleFormat } from '../agent/log/logger.js';
import { processSecrets } from '../agent/log/secrets.js';
import { PanelServer, isLoopbackHost } from '../agent/panel/panel-server.js';
import { loadOrCreatePanelToken } from '../agent/panel/panel-token.js';
import { findRendererDir } from '../agent/panel/static-files.js';
import { PanelSectionSchema, type AgentConfig } from '../protocol/config.js';
import { parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';
import { logFormatFlag } from './hub-command.js';
import { InternalErrorRecovery } from './internal-errors.js';
import { PANEL_ADDRESS_FILE } from './panel-url-command.js';
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
  --token-file PATH      agent.token_file: read the token from this file [FARMLINK_AGENT_TOKEN_FILE]
  --token JWT            agent.token                 [FARMLINK_AGENT_TOKEN]
                         (a command line is visible to every user of the machine, e.g. in ps:
                         prefer --token-file or the environment)
  --name NAME            agent.name                  [FARMLINK_AGENT_NAME]
  --log-level L          log.level                   [FARMLINK_LOG_LEVEL]
  --log-file PATH        log.file                    [FARMLINK_LOG_FILE]
  --no-log-file          no log file
  --set KEY=VALUE        any key, e.g. --set connection.heartbeat_interval=15 (repeatable)
  --data-dir DIR         where the agent id, logs and panel token live [FARMLINK_DATA_DIR, default ${defaultDataDir()}]
  --log-format F         console lines: pretty|json [pretty]
  --panel-port P         panel.port: the headless panel's port [FARMLINK_PANEL_PORT, default 7878]
  --panel-host H         panel.host [127.0.0.1]; anything but loopback needs --panel-allow-remote
  --panel-allow-remote   panel.allow_remote: serve the panel beyond loopback (token-protected)
  --no-panel             panel.enabled: false
`;

export const CONFIG_FLAG_OPTIONS = {
  config: { type: 'string' },
  'server-url': { type: 'string' },
  'fallback-url': { type: 'string', multiple: true },
  'agent-id': { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  name: { type: 'string' },
  'log-level': { type: 'string' },
  'log-file': { type: 'string' },
  'no-log-file': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  'data-dir': { type: 'string' },
  'log-format': { type: 'string' },
  'panel-port': { type: 'string' },
  'panel-host': { type: 'string' },
  'panel-allow-remote': { type: 'boolean' },
  'no-panel': { type: 'boolean' },
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
      tokenFile: values['token-file'],
      name: values.name,
      logLevel: values['log-level'],
      logFile: values['no-log-file'] ? false : values['log-file'],
      panelPort: values['panel-port'],
      panelHost: values['panel-host'],
      panel: values['no-panel'] ? false : undefined,
      panelAllowRemote: values['panel-allow-remote'],
      set: values.set,
    }),
  ];
}

/**
 * The config file to read: --config (must exist), else the default path if it exists, else none.
 * `source` and `defaultSource` say where a name came from, for errors about the file itself.
 */
export function configFileFrom(
  values: ConfigFlagValues,
  env = process.env,
): { file: string | undefined; source: string | undefined; defaultPath: string; defaultSource: string | undefined } {
  const defaultPath = defaultConfigPath(env);
  const defaultSource = env.FARMLINK_CONFIG ? 'FARMLINK_CONFIG (environment)' : undefined;
  if (values.config) return { file: values.config, source: '--config', defaultPath, defaultSource };
  return { file: fs.existsSync(defaultPath) ? defaultPath : undefined, source: defaultSource, defaultPath, defaultSource };
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
  const found = configFileFrom(values);
  const { defaultPath, defaultSource } = found;
  // A file named by FARMLINK_CONFIG was asked for: if it is missing, say so rather than run without it.
  const [file, source] = !found.file && defaultSource ? [defaultPath, defaultSource] : [found.file, found.source];
  if (!file && !overrides.some((o) => o.path.join('.') === 'server.url')) {
    throw new ConfigError([
      `No configuration: no --config given and ${defaultPath} does not exist. Create it (README → Configuration), pass --config FILE, or set FARMLINK_SERVER_URL. To try FarmLink without a hub of your own, run \`farmlink start\`.`,
    ]);
  }
  const { config } = loadAgentConfig({ file, fileSource: source, overrides });
  return runAgent({ config, file, overrides, dataDir: dataDirFrom(values), consoleFormat: logFormatFlag(values['log-format'] ?? 'pretty') });
}

export interface RunAgentInput {
  config: AgentConfig;
  file: string | undefined;
  overrides: ConfigOverride[];
  dataDir: string;
  consoleFormat: ConsoleFormat;
  /** Set when `farmlink start` runs a local hub in this process. */
  localHub?: LocalHub | undefined;
  beforeExit?: () => Promise<void>;
}

/** Runs the agent, its host and (unless turned off) the headless panel until a signal; resolves with the exit code. */
export async function runAgent(input: RunAgentInput): Promise<number> {
  const { config, dataDir } = input;
  const panelConfig = config.panel;
  if (panelConfig.enabled && !isLoopbackHost(panelConfig.host) && !panelConfig.allow_remote) {
    throw new ConfigError([
      `panel.host: ${panelConfig.host} is not a loopback address, so anyone on that network could open the panel; use 127.0.0.1, or set panel.allow_remote: true (--panel-allow-remote) if you mean it`,
    ]);
  }
  // What older versions left looser is tightened once everything is open (tightenDataDir below).
  privateDataDir(dataDir);
  processSecrets.add(config.agent.token);
  const logs = new LogBuffer();
  const { log } = resolveAgentSettings(config, { file: input.file, dataDir });
  const { logger, close: closeLog } = await createLogger({
    level: log.level,
    console: input.consoleFormat,
    component: 'agent',
    memory: logs,
    file: log.file ? { path: log.file, maxSizeMb: log.maxSizeMb, maxFiles: log.maxFiles } : null,
  });
  if (log.file) logger.debug({ file: log.file }, `Logging to ${log.file}`);
  const host = new AgentHost({
    config,
    configFile: input.file,
    defaultConfigFile: defaultConfigPath(),
    overrides: input.overrides,
    dataDir,
    logger,
    logs,
    localHub: input.localHub,
  });
  const recovery = new InternalErrorRecovery({ logger, reset: (reason) => host.reconnectNow(reason) });
  const uninstallRecovery = recovery.install();
  host.start();

  let panel: PanelServer | undefined;
  if (panelConfig.enabled) {
    const panelToken = loadOrCreatePanelToken(dataDir);
    processSecrets.add(panelToken);
    panel = new PanelServer({
      host: panelConfig.host,
      port: panelConfig.port,
      allowRemote: panelConfig.allow_remote,
      fallbackToFreePort: panelConfig.port === DEFAULT_PANEL_PORT,
      token: panelToken,
      rendererDir: findRendererDir(),
      agentHost: host,
      logger,
    });
    const url = await panel.listen();
    const address = url.replace(/#.*$/, '');
    const tokenFile = path.join(dataDir, 'panel-token');
    // The token is a key to this PC's settings: it never goes to a log (files, the panel's tail,
    // a pipe). Scripts read the `event: panel` line for the address and the token file for the
    // key; a person at a terminal gets the whole URL once, outside the logs.
    logger.info({ event: 'panel', url: address, token_file: tokenFile }, `Panel: ${address} (its key is in ${tokenFile}; \`farmlink panel-url\` prints the full address)`);
    if (process.stdout.isTTY) printOnce(`Open the panel: ${url}\n`);
    fs.writeFileSync(path.join(dataDir, PANEL_ADDRESS_FILE), `${address}\n`, { mode: 0o600 });
  }
  tightenDataDir(dataDir);

  return new Promise<number>((resolve) => {
    onShutdownSignal(
      async (signal) => {
        logger.info({ signal }, `${signal} received: disconnecting gracefully (send it again to exit at once)`);
        recovery.stop();
        await panel?.close();
        if (panel) fs.rmSync(path.join(dataDir, PANEL_ADDRESS_FILE), { force: true });
        await host.stop();
        await input.beforeExit?.();
        logger.info('Agent stopped');
        await closeLog();
        uninstallRecovery();
        resolve(ExitCode.OK);
      },
      (signal) => {
        logger.warn({ signal }, `${signal} received again: exiting now`);
        resolve(ExitCode.FORCED);
      },
    );
  });
}

const DEFAULT_PANEL_PORT = PanelSectionSchema.parse({}).port;

/** Straight to the terminal, past the loggers (and their files): for the panel's key, which no log may hold. */
function printOnce(text: string): void {
  try {
    process.stdout.write(text);
  } catch {
    // A terminal that is gone does not need the address.
  }
}
