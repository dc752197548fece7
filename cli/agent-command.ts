import { defaultConfigPath, defaultDataDir } from '../agent/config/paths.js';
import { silentLogger } from '../agent/log/logger.js';
import { parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';
import { logFormatFlag } from './hub-command.js';
import { onShutdownSignal } from './signals.js';
import { AgentRunningError } from './startup/agent-lock.js';
import { CONFIG_FLAG_OPTIONS } from './startup/flags.js';
import type { HostedAgent } from './startup/host-agent.js';
import { startAgent } from './startup/start-agent.js';

export const AGENT_HELP = `Usage: farmlink agent [--config FILE] [options]

Runs the agent: connects to the configured hub and its fallbacks and stays connected until
SIGINT/SIGTERM. Without --config it reads FARMLINK_CONFIG or the default file
(${defaultConfigPath()}).

One agent runs per PC: if one already runs for the data dir (a service, another terminal, the
desktop app), this exits with code 75 and names it (pid, panel address) instead of starting a second.

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

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('agent', argv, CONFIG_FLAG_OPTIONS);
  if (values.help) {
    process.stdout.write(AGENT_HELP);
    return ExitCode.OK;
  }
  const consoleFormat = logFormatFlag(values['log-format'] ?? 'pretty');
  // `farmlink agent` never starts a local hub: its hub logger has nothing to say.
  const hubLogger = silentLogger();
  let agent: HostedAgent;
  try {
    agent = await startAgent(values, {
      runner: 'agent',
      runsIn: 'headless',
      servePanel: true,
      consoleFormat,
      localHubWhenUnconfigured: false,
      hubLogger,
    });
  } catch (error) {
    if (!(error instanceof AgentRunningError)) throw error;
    process.stderr.write(`farmlink agent: ${error.message} [${error.code}]\n`);
    return ExitCode.ALREADY_RUNNING;
  }
  return runUntilSignal(agent);
}

/**
 * Keeps a hosted agent running until SIGINT/SIGTERM, then stops it gracefully; resolves with the
 * exit code. A person at a terminal gets the panel's whole address once, outside the logs.
 */
export function runUntilSignal(agent: HostedAgent, beforeExit?: () => Promise<void>): Promise<number> {
  if (agent.panelUrl && process.stdout.isTTY) printOnce(`Open the panel: ${agent.panelUrl}\n`);
  return new Promise<number>((resolve) => {
    onShutdownSignal(
      async (signal) => {
        agent.logger.info({ signal }, `${signal} received: disconnecting gracefully (send it again to exit at once)`);
        await agent.stop();
        await beforeExit?.();
        resolve(ExitCode.OK);
      },
      (signal) => {
        agent.logger.warn({ signal }, `${signal} received again: exiting now`);
        resolve(ExitCode.FORCED);
      },
    );
  });
}

/** Straight to the terminal, past the loggers (and their files): for the panel's key, which no log may hold. */
function printOnce(text: string): void {
  try {
    process.stdout.write(text);
  } catch {
    // A terminal that is gone does not need the address.
  }
}
