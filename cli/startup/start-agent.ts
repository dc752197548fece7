import type { Logger } from 'pino';
import { loadAgentConfig } from '../../agent/config/load-config.js';
import { defaultConfigPath } from '../../agent/config/paths.js';
import { privateDataDir } from '../../agent/config/private-files.js';
import type { EventSender } from '../../agent/host/agent-host.js';
import type { LogBuffer } from '../../agent/host/log-buffer.js';
import type { ConsoleFormat } from '../../agent/log/logger.js';
import { ConfigError } from '../../lib/errors.js';
import { numberFlag } from '../args.js';
import { AgentLock, type AgentLockInfo } from './agent-lock.js';
import { configFileFrom, dataDirFrom, overridesFrom, type ConfigFlagValues } from './flags.js';
import { hostAgent, type HostedAgent } from './host-agent.js';
import { planAgentRun, type AgentRunPlan } from './local-mode.js';

export interface StartFlagValues extends ConfigFlagValues {
  'hub-port'?: string | undefined;
}

/**
 * Flags, environment and config file → what to run. `farmlink agent` needs a configuration;
 * `farmlink start` and the desktop app start a local hub when there is none (planAgentRun).
 */
export async function planFromFlags(
  values: StartFlagValues,
  options: { localHubWhenUnconfigured: boolean; hubLogger: Logger; env?: NodeJS.ProcessEnv },
): Promise<AgentRunPlan> {
  const env = options.env ?? process.env;
  const overrides = overridesFrom(values, env);
  const found = configFileFrom(values, env);
  const { defaultPath, defaultSource } = found;
  if (options.localHubWhenUnconfigured) {
    return planAgentRun({
      file: found.file,
      fileSource: found.source ?? defaultSource,
      overrides,
      dataDir: dataDirFrom(values),
      hubPort: numberFlag('hub-port', values['hub-port'], { integer: true }),
      hubLogger: options.hubLogger,
      defaultConfigFile: defaultConfigPath(env),
    });
  }
  // A file named by FARMLINK_CONFIG was asked for: if it is missing, say so rather than run without it.
  const [file, source] = !found.file && defaultSource ? [defaultPath, defaultSource] : [found.file, found.source];
  if (!file && !overrides.some((o) => o.path.join('.') === 'server.url')) {
    throw new ConfigError([
      `No configuration: no --config given and ${defaultPath} does not exist. Create it (README → ` +
        `Configuration), pass --config FILE, or set FARMLINK_SERVER_URL. To try FarmLink without a hub of ` +
        `your own, run \`farmlink start\`.`,
    ]);
  }
  const { config } = loadAgentConfig({ file, fileSource: source, overrides });
  return { config, file, overrides };
}

export interface StartAgentOptions {
  runner: AgentLockInfo['runner'];
  runsIn: 'headless' | 'desktop';
  servePanel: boolean;
  consoleFormat: ConsoleFormat;
  localHubWhenUnconfigured: boolean;
  /** For the local hub's lines. */
  hubLogger: Logger;
  logs?: LogBuffer;
  /** Where FARMLINK_* settings and the default config path come from [process.env]. */
  env?: NodeJS.ProcessEnv;
  /** Where `sendEvents` hands events (AgentHostOptions.events). */
  events?: EventSender;
}

/**
 * The one start-up path: claim the data dir (AgentRunningError if an agent runs from it), plan
 * (config, overrides, a local hub if needed), then host the agent. Nothing is started — no local
 * hub, no panel, no connection to a hub — before the claim, so a refused second start leaves the
 * running agent alone.
 */
export async function startAgent(values: StartFlagValues, options: StartAgentOptions): Promise<HostedAgent> {
  const dataDir = dataDirFrom(values);
  try {
    privateDataDir(dataDir);
  } catch (error) {
    const source = values['data-dir'] !== undefined ? '--data-dir' : 'the data dir (FARMLINK_DATA_DIR, or the default)';
    throw new ConfigError([
      `${source}: expected a directory this user can create and write (${dataDir}), got: ${(error as Error).message}`,
    ]);
  }
  const lock = AgentLock.claim(dataDir, options.runner);
  try {
    const plan = await planFromFlags(values, {
      localHubWhenUnconfigured: options.localHubWhenUnconfigured,
      hubLogger: options.hubLogger,
      ...(options.env ? { env: options.env } : {}),
    });
    try {
      return await hostAgent({
        ...plan,
        dataDir,
        lock,
        consoleFormat: options.consoleFormat,
        runsIn: options.runsIn,
        servePanel: options.servePanel,
        ...(options.logs ? { logs: options.logs } : {}),
        ...(options.events ? { events: options.events } : {}),
      });
    } catch (error) {
      await plan.localHub?.stop();
      throw error;
    }
  } catch (error) {
    lock.release();
    throw error;
  }
}
