import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `systemctl` answered. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/**
 * Everything `farmlink service` asks of the machine, in one place so the tests can give it a
 * fake root directory and a recording `systemctl` (the real one needs systemd as PID 1).
 */
export interface ServiceHost {
  platform: NodeJS.Platform;
  /** Effective uid (0 = root). */
  uid: number;
  env: Record<string, string | undefined>;
  /** The account running this command. */
  currentUser: string;
  /** Where system units go [/etc/systemd/system]. */
  systemUnitDir: string;
  /** Whether systemd runs this machine (/run/systemd/system exists, as sd_booted() checks). */
  systemdRunning(): boolean;
  /** Whether `loginctl enable-linger` is on for `user` (/var/lib/systemd/linger/<user>). */
  lingering(user: string): boolean;
  lookupAccount(name: string): Promise<Account | undefined>;
  /** Gives a directory install created (as root) to the account the agent runs as. */
  chown(path: string, uid: number, gid: number): void;
  systemctl(args: readonly string[]): Promise<CommandResult>;
  /** The first `name` on the PATH this command runs with, or undefined. */
  which(name: string): string | undefined;
  nodePath: string;
  cliPath: string;
}

/** The real machine. */
export function realServiceHost(): ServiceHost {
  return {
    platform: process.platform,
    uid: process.getuid?.() ?? -1,
    env: process.env,
    currentUser: os.userInfo().username,
    systemUnitDir: '/etc/systemd/system',
    systemdRunning: () => fs.existsSync('/run/systemd/system'),
    lingering: (user) => fs.existsSync(path.join('/var/lib/systemd/linger', user)),
    lookupAccount,
    chown: (file, uid, gid) => fs.chownSync(file, uid, gid),
    systemctl: (args) => run('systemctl', args),
    which: (name) => which(name, process.env.PATH ?? ''),
    nodePath: fs.realpathSync(process.execPath),
    // dist/cli/service/service-host.js → dist/bin/farmlink.js
    cliPath: fs.realpathSync(fileURLToPath(new URL('../../bin/farmlink.js', import.meta.url))),
  };
}

function run(command: string, args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      const errno = error as (NodeJS.ErrnoException & { code?: unknown }) | null;
      // ENOENT: systemctl is not installed at all; report it like systemctl's own "not found" (127).
      if (errno?.code === 'ENOENT') {
        resolve({ code: 127, stdout: '', stderr: `${command}: not found on the PATH` });
        return;
      }
      resolve({ code: typeof errno?.code === 'number' ? errno.code : errno ? 1 : 0, stdout, stderr });
    });
  });
}

/** getent reads every account source (files, LDAP, …), not just /etc/passwd. */
async function lookupAccount(name: string): Promise<Account | undefined> {
  const { code, stdout } = await run('getent', ['passwd', name]);
  if (code !== 0) return undefined;
  const fields = stdout.trim().split(':');
  const [login, , uid, gid, , home] = fields;
  if (login === undefined || uid === undefined || gid === undefined || home === undefined) return undefined;
  return { name: login, uid: Number(uid), gid: Number(gid), home };
}

export function which(name: string, pathEnv: string): string | undefined {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here; the next PATH entry.
    }
  }
  return undefined;
}
