import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * The Electron executable, if it is really on this machine. Never `require('electron')` to find
 * out: from Node that throws when the binary is missing, and newer Electron packages download it
 * instead, which must not happen in a test or on a machine without network.
 */
export function electronBinary(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('electron/package.json'));
    const relative = fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim();
    const binary = path.join(dir, 'dist', relative);
    return fs.existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/** Why the desktop app cannot start here, or undefined when it can. */
export function desktopUnavailableReason(env = process.env, platform = process.platform): string | undefined {
  if (env.FARMLINK_HEADLESS === '1') return 'FARMLINK_HEADLESS=1';
  if (platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY)
    return 'no display (DISPLAY and WAYLAND_DISPLAY are unset)';
  if (!electronBinary()) return 'the Electron binary is not installed (node_modules/electron has no dist/)';
  return undefined;
}
