import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { createLogger } from '../agent/log/logger.js';
import { AGENT_HELP, runUntilSignal } from './agent-command.js';
import { parseFlags } from './args.js';
import { desktopUnavailableReason, electronBinary } from './desktop.js';
import { ExitCode } from './exit-codes.js';
import { logFormatFlag } from './hub-command.js';
import { AgentRunningError, runningAgent, type AgentLockInfo } from './startup/agent-lock.js';
import { START_FLAG_OPTIONS, dataDirFrom } from './startup/flags.js';
import type { HostedAgent } from './startup/host-agent.js';
import { LOCAL_HUB_PORT } from './startup/local-mode.js';
import { startAgent } from './startup/start-agent.js';

export const START_HELP = `Usage: farmlink start [agent options] [--hub-port P] [--headless]

What \`npm start\` runs. Where a display and the Electron binary are present it opens the desktop
app (tray icon and panel window); otherwise it runs headless and prints the panel's URL to open
in a browser. With a configuration (--config, FARMLINK_CONFIG, the default file or --server-url)
the agent connects to the hubs it names; with none, a local hub is started on 127.0.0.1 in the
same process and the agent connects to it, so you can see FarmLink work before you have a hub.

  --hub-port P   port of the local hub [${LOCAL_HUB_PORT}; any free port if that one is taken]
  --headless     never open the desktop app (also FARMLINK_HEADLESS=1)

If the agent already runs for the data dir, nothing new is started: headless, this says where it
runs (pid, panel) and exits 0; the desktop app attaches to it and shows it.

${AGENT_HELP.slice(AGENT_HELP.indexOf('\nOptions ('))}`;

export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('start', argv, START_FLAG_OPTIONS);
  if (values.help) {
    process.stdout.write(START_HELP);
    return ExitCode.OK;
  }
  const unavailable = values.headless ? '--headless' : desktopUnavailableReason();
  const binary = unavailable ? undefined : electronBinary();
  if (binary) return runDesktop(binary, argv);

  const consoleFormat = logFormatFlag(values['log-format'] ?? 'pretty');
  const { logger: startLogger } = await createLogger({ level: 'info', console: consoleFormat, component: 'start' });
  // `npm start` twice is someone looking for the agent they already started: point at it.
  const running = runningAgent(dataDirFrom(values));
  if (running) return alreadyRunning(startLogger, running, dataDirFrom(values));
  startLogger.info(`Starting headless (${unavailable}): open the panel URL printed below in a browser`);
  const { logger: hubLogger, close: closeHubLog } = await createLogger({
    level: 'info',
    console: consoleFormat,
    component: 'hub',
  });
  let agent: HostedAgent;
  try {
    agent = await startAgent(values, {
      runner: 'start',
      runsIn: 'headless',
      servePanel: true,
      consoleFormat,
      localHubWhenUnconfigured: true,
      hubLogger,
    });
  } catch (error) {
    await closeHubLog();
    // It started between the look above and the claim.
    if (error instanceof AgentRunningError) return alreadyRunning(startLogger, error.running, error.dataDir);
    throw error;
  }
  return runUntilSignal(agent, closeHubLog);
}

/**
 * `farmlink start` when the agent already runs for this data dir: nothing new is started, and
 * that is not a failure — the agent asked for runs. Says where (pid, panel) and exits 0.
 */
function alreadyRunning(logger: Logger, running: AgentLockInfo, dataDir: string): number {
  const panel = running.panel ? `its panel: ${running.panel}` : 'it serves no panel';
  logger.info(
    { event: 'already_running', pid: running.pid, panel: running.panel, data_dir: dataDir },
    `FarmLink already runs on this PC for ${dataDir} (pid ${running.pid}; ${panel}): nothing new was started, and the options given here do not change it. ` +
      'Stop that agent first to start it with other options',
  );
  if (running.panel && process.stdout.isTTY) {
    try {
      const token = fs.readFileSync(path.join(dataDir, 'panel-token'), 'utf8').trim();
      process.stdout.write(`Open the panel: ${running.panel.replace(/\/$/, '')}/#token=${token}\n`);
    } catch {
      // No key to read (another user's agent): `farmlink panel-url` says why.
    }
  }
  return ExitCode.OK;
}

/** Hands over to Electron: the same flags, its main process does the rest. */
function runDesktop(binary: string, argv: string[]): Promise<number> {
  const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../electron/main.js');
  const child = spawn(binary, [main, ...argv], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? ExitCode.FAILURE)));
}
