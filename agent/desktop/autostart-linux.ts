import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDirSync } from '../../lib/make-dir.js';

type Env = Record<string, string | undefined>;

export function autostartFile(env: Env = process.env): string {
  return path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'autostart', 'farmlink.desktop');
}

/**
 * What to start at login: the AppImage itself when running from one (its mount point changes on
 * every run, so process.execPath would be stale), else the executable running now.
 */
export function autostartCommand(env: Env = process.env, execPath = process.execPath): string {
  return env.APPIMAGE ?? execPath;
}

const quote = (s: string) => (/[\s"\\$`]/.test(s) ? `"${s.replace(/(["\\$`])/g, '\\$1')}"` : s);

/** The XDG autostart entry (freedesktop.org Desktop Entry Specification). `--hidden` starts it in the tray. */
export function desktopEntry(command: string): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=FarmLink',
    'Comment=Keeps this farm PC connected to its hub',
    `Exec=${quote(command)} --hidden`,
    'Icon=farmlink',
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

export function isAutostartEnabled(env: Env = process.env): boolean {
  return fs.existsSync(autostartFile(env));
}

export function setAutostart(enabled: boolean, env: Env = process.env, execPath = process.execPath): void {
  const file = autostartFile(env);
  if (!enabled) {
    fs.rmSync(file, { force: true });
    return;
  }
  makeDirSync(path.dirname(file));
  fs.writeFileSync(file, desktopEntry(autostartCommand(env, execPath)));
}
