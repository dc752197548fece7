import { app } from 'electron';
import { isAutostartEnabled, setAutostart } from '../agent/desktop/autostart-linux.js';

/**
 * Start at login: Windows and macOS keep login items themselves; Linux desktops read
 * ~/.config/autostart/*.desktop (pointing at the AppImage when run from one).
 */
export function startAtLoginEnabled(): boolean {
  if (process.platform === 'linux') return isAutostartEnabled();
  return app.getLoginItemSettings().openAtLogin;
}

export function setStartAtLogin(enabled: boolean): void {
  if (process.platform === 'linux') setAutostart(enabled);
  else app.setLoginItemSettings({ openAtLogin: enabled, args: ['--hidden'] });
}
