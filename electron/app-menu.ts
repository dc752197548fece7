import type { MenuItemConstructorOptions } from 'electron';

/**
 * The application menu. Electron's default menu carries View → Toggle Developer Tools, Reload and
 * Force Reload with their shortcuts (Ctrl+Shift+I, Ctrl+R, …); a packaged app gets a menu of its
 * own without them, keeping only editing (so copy and paste keep their shortcuts) and, on macOS,
 * the app menu. A development build keeps Electron's default: `undefined` means "leave it".
 */
export function applicationMenuTemplate(
  packaged: boolean,
  platform: NodeJS.Platform,
): MenuItemConstructorOptions[] | undefined {
  if (!packaged) return undefined;
  return [...(platform === 'darwin' ? [{ role: 'appMenu' } as const] : []), { role: 'editMenu' }];
}
