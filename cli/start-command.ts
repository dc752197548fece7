import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfigPath } from '../agent/config/paths.js';
import { createLogger } from '../agent/log/logger.js';
import { AGENT_HELP, CONFIG_FLAG_OPTIONS, configFileFrom, dataDirFrom, overridesFrom, runAgent } from './agent-command.js';
import { numberFlag, parseFlags } from './args.js';
import { desktopUnavailableReason, electronBinary } from './desktop.js';
import { ExitCode } from './exit-codes.js';
import { logFormatFlag } from './hub-command.js';
import { LOCAL_HUB_PORT, planAgentRun } from './local-mode.js';

export const START_HELP = `Usage: farmlink start [agent options] [--hub-port P] [--headless]

What \`npm start\` runs. Where a display and the Electron binary are present it opens the desktop
app (tray icon and panel window); otherwise it runs headless and prints the panel's URL to open
in a browser. With a configuration (--config, FARMLINK_CONFIG, the default file or --server-url)
the agent connects to the hubs it names; with none, a local hub is started on 127.0.0.1 in the
same process and the agent connects to it, so you can see FarmLink work before you have a hub.

  --hub-port P   port of the local hub [${LOCAL_HUB_PORT}; any free port if that one is taken]
  --headless     never open the desktop app (also FARMLINK_HEADLESS=1)

${AGENT_HELP.split('\n').slice(5).join('\n')}`;

export const START_FLAG_OPTIONS = { ...CONFIG_FLAG_OPTIONS, 'hub-port': { type: 'string' }, headless: { type: 'boolean' } } as const;

export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('start', argv, START_FLAG_OPTIONS);
  if (values.help) {
    process.stdout.write(START_HELP);
    return ExitCode.OK;
  }
  const unavailable = values.headless ? '--headless' : desktopUnavailableReason();
  if (!unavailable) return runDesktop(argv);

  const consoleFormat = logFormatFlag(values['log-format'] ?? 'pretty');
  const { logger: startLogger } = await createLogger({ level: 'info', console: consoleFormat, component: 'start' });
  startLogger.info(`Starting headless (${unavailable}): open the panel URL printed below in a browser`);
  const { logger: hubLogger, close: closeHubLog } = await createLogger({ level: 'info', console: consoleFormat, component: 'hub' });
  const { file, source, defaultSource } = configFileFrom(values);
  const plan = await planAgentRun({
    file,
    fileSource: source ?? defaultSource,
    overrides: overridesFrom(values),
    dataDir: dataDirFrom(values),
    hubPort: numberFlag('hub-port', values['hub-port'], { integer: true }),
    hubLogger,
    defaultConfigFile: defaultConfigPath(),
  });
  return runAgent({
    ...plan,
    dataDir: dataDirFrom(values),
    consoleFormat,
    localHub: plan.localHub,
    beforeExit: async () => {
      await plan.localHub?.stop();
      await closeHubLog();
    },
  });
}

/** Hands over to Electron: the same flags, its main process does the rest. */
function runDesktop(argv: string[]): Promise<number> {
  const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../electron/main.js');
  const child = spawn(electronBinary()!, [main, ...argv], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? ExitCode.FAILURE)));
}
