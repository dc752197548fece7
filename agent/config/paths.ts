import os from 'node:os';
import path from 'node:path';

type Env = Record<string, string | undefined>;

/**
 * Where FarmLink keeps its state (agent id, logs): FARMLINK_DATA_DIR, else the platform's
 * per-user place — %LOCALAPPDATA%\FarmLink on Windows, ~/Library/Application Support/FarmLink on
 * macOS, $XDG_STATE_HOME/farmlink (~/.local/state/farmlink) elsewhere.
 */
export function defaultDataDir(env: Env = process.env, platform = process.platform): string {
  if (env.FARMLINK_DATA_DIR) return path.resolve(env.FARMLINK_DATA_DIR);
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), 'FarmLink');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'FarmLink');
  return path.join(env.XDG_STATE_HOME ?? path.join(home, '.local', 'state'), 'farmlink');
}

/**
 * The config file used when none is named: FARMLINK_CONFIG, else %APPDATA%\FarmLink\agent.yaml
 * on Windows, ~/Library/Application Support/FarmLink/agent.yaml on macOS,
 * $XDG_CONFIG_HOME/farmlink/agent.yaml (~/.config/farmlink/agent.yaml) elsewhere.
 */
export function defaultConfigPath(env: Env = process.env, platform = process.platform): string {
  if (env.FARMLINK_CONFIG) return path.resolve(env.FARMLINK_CONFIG);
  const home = os.homedir();
  if (platform === 'win32')
    return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'FarmLink', 'agent.yaml');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'FarmLink', 'agent.yaml');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'farmlink', 'agent.yaml');
}
