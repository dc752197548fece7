import { execFile } from 'node:child_process';
import { FarmlinkError } from '../../lib/errors.js';
import type { CommandHandler } from './registry.js';

export interface AdbDevice {
  serial: string;
  /** device, offline, unauthorized, recovery, sideload, bootloader, … as adb reports it. */
  state: string;
  /** The key:value pairs of `-l` (product, model, device, transport_id, usb). */
  properties: Record<string, string>;
}

/**
 * Parses `adb devices -l`. Lines before "List of devices attached" (daemon start-up chatter)
 * and blank lines are skipped.
 */
export function parseAdbDevices(output: string): AdbDevice[] {
  const lines = output.split(/\r?\n/);
  const header = lines.findIndex((line) => line.startsWith('List of devices attached'));
  const devices: AdbDevice[] = [];
  for (const line of lines.slice(header + 1)) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('*')) continue;
    const [serial, state, ...rest] = trimmed.split(/\s+/);
    if (!serial || !state) continue;
    const properties: Record<string, string> = {};
    for (const token of rest) {
      const colon = token.indexOf(':');
      if (colon > 0) properties[token.slice(0, colon)] = token.slice(colon + 1);
    }
    devices.push({ serial, state, properties });
  }
  return devices;
}

/** `devices.list`: runs `adb devices -l` and answers ADB_NOT_FOUND when adb is not installed. */
export function devicesListCommand(adbPath: string): CommandHandler {
  return (_args, { signal }) =>
    new Promise((resolve, reject) => {
      execFile(
        adbPath,
        ['devices', '-l'],
        { signal, windowsHide: true, maxBuffer: 4 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code === 'ENOENT') {
              reject(
                new FarmlinkError(
                  'ADB_NOT_FOUND',
                  `adb is not installed or not at "${adbPath}" (set adb.path in the config, or add adb to PATH)`,
                ),
              );
            } else if (code === 'ABORT_ERR') {
              reject(new FarmlinkError('COMMAND_TIMEOUT', 'adb devices did not finish in time'));
            } else {
              reject(new FarmlinkError('ADB_FAILED', `adb devices failed: ${(stderr || error.message).trim()}`));
            }
            return;
          }
          const devices = parseAdbDevices(stdout);
          resolve({ count: devices.length, devices });
        },
      );
    });
}
