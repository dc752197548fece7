import os from 'node:os';
import path from 'node:path';

type Env = Record<string, string | undefined>;

/**
 * Where a hub keeps its state (the event log when it has no Redis) when --data-dir is not given:
 * FARMLINK_HUB_DATA_DIR, else a directory of its own next to the agent's — %LOCALAPPDATA%\FarmLink Hub
 * on Windows, ~/Library/Application Support/FarmLink Hub on macOS, $XDG_STATE_HOME/farmlink-hub
 * (~/.local/state/farmlink-hub) elsewhere. Its own, so an agent and a hub on one PC never share one.
 */
export function defaultHubDataDir(env: Env = process.env, platform = process.platform): string {
  if (env.FARMLINK_HUB_DATA_DIR) return path.resolve(env.FARMLINK_HUB_DATA_DIR);
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), 'FarmLink Hub');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'FarmLink Hub');
  return path.join(env.XDG_STATE_HOME ?? path.join(home, '.local', 'state'), 'farmlink-hub');
}
