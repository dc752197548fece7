import fs from 'node:fs';
import { envOverrides, flagOverrides, type ConfigOverride } from '../../agent/config/load-config.js';
import { defaultConfigPath, defaultDataDir } from '../../agent/config/paths.js';
import type { parseFlags } from '../args.js';

/** The flags every way of starting the agent takes (`farmlink agent`, `farmlink start`, the desktop app). */
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

/** `farmlink start`'s and the desktop app's: the agent's, plus the local hub's port and --headless. */
export const START_FLAG_OPTIONS = {
  ...CONFIG_FLAG_OPTIONS,
  'hub-port': { type: 'string' },
  headless: { type: 'boolean' },
} as const;

export type ConfigFlagValues = ReturnType<typeof parseFlags<typeof CONFIG_FLAG_OPTIONS>>['values'];

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
  return {
    file: fs.existsSync(defaultPath) ? defaultPath : undefined,
    source: defaultSource,
    defaultPath,
    defaultSource,
  };
}

export function dataDirFrom(values: ConfigFlagValues): string {
  return values['data-dir'] ?? defaultDataDir();
}
