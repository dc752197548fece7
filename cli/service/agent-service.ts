import fs from 'node:fs';
import path from 'node:path';
import { FarmlinkError } from '../../lib/errors.js';
import { AGENT_VERSION } from '../../lib/version.js';
import { UsageError } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { Account, ServiceHost } from './service-host.js';
import { RESTART_SEC, SYSTEMD_DEFAULT_PATH, UNIT_NAME, renderAgentUnit } from './systemd-unit.js';
import { makeDirSync } from '../../lib/make-dir.js';

export type UnitScope = 'system' | 'user';

/** A refusal with the exit code it ends the command with (the README lists them). */
export class ServiceError extends FarmlinkError {
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode: number) {
    super(code, message);
    this.name = 'ServiceError';
    this.exitCode = exitCode;
  }
}

export interface InstallOptions {
  scope: UnitScope;
  /** --user NAME: the account a system unit runs as. */
  user?: string | undefined;
  config?: string | undefined;
  dataDir?: string | undefined;
  /** --writable DIR: more directories the agent writes (a log.file elsewhere, say). */
  writable?: readonly string[] | undefined;
  /** Where relative --config/--data-dir/--writable paths start [process.cwd()]. */
  cwd?: string;
}

export interface InstallPlan {
  scope: UnitScope;
  account: Account;
  unitPath: string;
  unitText: string;
  configFile: string;
  dataDir: string;
  /** Created before the unit starts: ReadWritePaths= needs them to exist. */
  directories: string[];
  /** systemctl argument lists, in order. */
  commands: string[][];
  /** Said on stderr: things that will go wrong unless the operator acts. */
  warnings: string[];
}

/** Refuses what cannot work on this machine: not Linux (with the Windows and macOS answers). */
export function assertLinux(host: ServiceHost): void {
  if (host.platform === 'linux') return;
  const advice =
    host.platform === 'win32'
      ? 'On Windows the FarmLink installer offers to start the agent at boot (a scheduled task running it headless): ' +
        'run the installer again and tick it, or see README → Running as a service.'
      : 'Run `farmlink agent` under your own supervisor (launchd on macOS): see README → Running as a service.';
  throw new ServiceError(
    'SERVICE_UNSUPPORTED_PLATFORM',
    `farmlink service: systemd units are for Linux, and this is ${host.platform}. ${advice}`,
    ExitCode.UNAVAILABLE,
  );
}

function systemctlArgs(scope: UnitScope, ...args: string[]): string[] {
  return scope === 'user' ? ['--user', ...args] : args;
}

export function unitPathFor(scope: UnitScope, host: ServiceHost, home: string): string {
  if (scope === 'system') return path.join(host.systemUnitDir, UNIT_NAME);
  return path.join(host.env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'systemd', 'user', UNIT_NAME);
}

/**
 * The account the agent runs as: `--user`, else the one who ran sudo, else whoever runs this.
 * Root is only chosen by name, since an agent as root can do anything a hub asks of adb's host.
 */
async function resolveAccount(options: InstallOptions, host: ServiceHost): Promise<Account> {
  if (options.scope === 'user') {
    if (options.user !== undefined) {
      throw new UsageError('farmlink service: --user NAME is for a system unit; a --user-unit runs as its owner');
    }
    if (host.uid === 0) {
      throw new UsageError(
        "farmlink service: --user-unit goes into your own account's service manager: " +
          'run it as that account, without sudo ' +
          '(for an agent that runs as root, use a system unit: sudo farmlink service install --user root)',
      );
    }
  }
  const name = options.user ?? (host.uid === 0 ? host.env.SUDO_USER : host.currentUser);
  if (!name) {
    throw new UsageError(
      'farmlink service install: which account runs the agent? Give --user NAME (--user root if you really mean root)',
    );
  }
  const account = await host.lookupAccount(name);
  if (!account) {
    throw new UsageError(`--user: there is no account "${name}" on this machine (getent passwd ${name} finds nothing)`);
  }
  return account;
}

/** Works out everything `install` would do, touching nothing: what --dry-run prints and install carries out. */
export async function planInstall(options: InstallOptions, host: ServiceHost): Promise<InstallPlan> {
  assertLinux(host);
  const account = await resolveAccount(options, host);
  const cwd = options.cwd ?? process.cwd();
  // Where `farmlink agent` run by that account looks by default (agent/config/paths.ts on Linux):
  // this command's FARMLINK_* and XDG_* settings count when it is that account's own.
  const env = account.name === host.currentUser ? host.env : {};
  const home = env.HOME ?? account.home;
  const dataDir = options.dataDir
    ? path.resolve(cwd, options.dataDir)
    : env.FARMLINK_DATA_DIR
      ? path.resolve(cwd, env.FARMLINK_DATA_DIR)
      : path.join(env.XDG_STATE_HOME ?? path.join(home, '.local', 'state'), 'farmlink');
  const configFile = options.config
    ? path.resolve(cwd, options.config)
    : env.FARMLINK_CONFIG
      ? path.resolve(cwd, env.FARMLINK_CONFIG)
      : path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'farmlink', 'agent.yaml');
  const writable = (options.writable ?? []).map((dir) => path.resolve(cwd, dir));
  const androidDir = path.join(home, '.android');
  const adb = host.which('adb');
  const adbDirs = adb ? [path.dirname(adb)] : [];
  const pathDirs = [...adbDirs, path.dirname(host.nodePath), ...SYSTEMD_DEFAULT_PATH.split(':')];
  const pathEnv = [...new Set(pathDirs)].join(':');
  const unitText = renderAgentUnit({
    scope: options.scope,
    user: account.name,
    nodePath: host.nodePath,
    cliPath: host.cliPath,
    configFile,
    dataDir,
    writablePaths: writable,
    // The panel's settings form rewrites the config file (temp file + rename in its folder).
    optionalWritablePaths: [path.dirname(configFile), androidDir],
    pathEnv,
    version: AGENT_VERSION,
  });
  const warnings: string[] = [];
  if (!fs.existsSync(configFile)) {
    warnings.push(
      `${configFile} does not exist yet: until it does, the agent exits 78 and systemd starts it again ` +
        `every ${RESTART_SEC} s (README → Configuration)`,
    );
  }
  if (!adb) {
    warnings.push(
      `adb is not on this PATH: the agent will look for it on ${pathEnv}; ` +
        `set adb.path in ${configFile} if it lives elsewhere`,
    );
  }
  if (options.scope === 'user' && !host.lingering(account.name)) {
    warnings.push(
      `lingering is off for ${account.name}: the agent starts at your login and stops at your logout. ` +
        `To start it at boot with nobody logged in: sudo loginctl enable-linger ${account.name}`,
    );
  }
  return {
    scope: options.scope,
    account,
    unitPath: unitPathFor(options.scope, host, home),
    unitText,
    configFile,
    dataDir,
    directories: [dataDir, androidDir, ...writable],
    commands: [
      systemctlArgs(options.scope, 'daemon-reload'),
      systemctlArgs(options.scope, 'enable', UNIT_NAME),
      // restart, not start: a reinstall with new paths must replace the agent that runs.
      systemctlArgs(options.scope, 'restart', UNIT_NAME),
    ],
    warnings,
  };
}

/** What a system unit needs before anything is touched: root, and systemd running. */
export function assertCanChange(scope: UnitScope, host: ServiceHost, verb: string): void {
  if (scope === 'system' && host.uid !== 0) {
    throw new ServiceError(
      'SERVICE_NEEDS_ROOT',
      `farmlink service ${verb}: a system unit goes into ${host.systemUnitDir}, which needs root: run it with sudo ` +
        `(sudo farmlink service ${verb} …), or use --user-unit for your own account's service manager`,
      ExitCode.NO_PERMISSION,
    );
  }
  assertSystemd(host, verb);
}

function assertSystemd(host: ServiceHost, verb: string): void {
  if (host.systemdRunning()) return;
  throw new ServiceError(
    'SYSTEMD_NOT_RUNNING',
    `farmlink service ${verb}: systemd is not running on this machine ` +
      '(no /run/systemd/system: a container, or another init). ' +
      'Use --dry-run to see the unit, or run `farmlink agent` under the supervisor this machine has.',
    ExitCode.UNAVAILABLE,
  );
}

/** Creates `dir` and any missing parents, owned by `account` (install runs as root, the agent as that account). */
function makeAccountDir(dir: string, account: Account, host: ServiceHost): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    fs.mkdirSync(d, { mode: 0o700 });
    if (host.uid === 0) host.chown(d, account.uid, account.gid);
  }
}

async function runAll(commands: readonly string[][], host: ServiceHost, what: string): Promise<void> {
  for (const args of commands) {
    const result = await host.systemctl(args);
    if (result.code !== 0) {
      throw new ServiceError(
        'SYSTEMCTL_FAILED',
        `systemctl ${args.join(' ')} failed (exit ${result.code}): ` +
          `${result.stderr.trim() || result.stdout.trim()}. ${what}`,
        ExitCode.FAILURE,
      );
    }
  }
}

/** Writes the unit, creates the agent's directories, reloads systemd and enables and (re)starts the agent. */
export async function install(plan: InstallPlan, host: ServiceHost): Promise<void> {
  assertCanChange(plan.scope, host, 'install');
  for (const dir of plan.directories) makeAccountDir(dir, plan.account, host);
  if (plan.scope === 'user') makeDirSync(path.dirname(plan.unitPath));
  // Temp file and rename: systemd never reads half a unit.
  const temp = `${plan.unitPath}.tmp-${process.pid}`;
  fs.writeFileSync(temp, plan.unitText, { mode: 0o644 });
  fs.renameSync(temp, plan.unitPath);
  const journal = plan.scope === 'user' ? `journalctl --user -u ${UNIT_NAME}` : `journalctl -u ${UNIT_NAME}`;
  const next = `The unit file is at ${plan.unitPath}; see ${journal}, then run the install again.`;
  await runAll(plan.commands, host, next);
}

export interface UninstallPlan {
  scope: UnitScope;
  unitPath: string;
  installed: boolean;
  /** Before the file goes: stop and disable. */
  before: string[][];
  /** After: forget it. */
  after: string[][];
}

export function planUninstall(scope: UnitScope, host: ServiceHost): UninstallPlan {
  assertLinux(host);
  if (scope === 'user' && host.uid === 0) {
    throw new UsageError(
      'farmlink service uninstall --user-unit: run it as the account that installed it, without sudo',
    );
  }
  const unitPath = unitPathFor(scope, host, host.env.HOME ?? '');
  return {
    scope,
    unitPath,
    installed: fs.existsSync(unitPath),
    before: [systemctlArgs(scope, 'disable', '--now', UNIT_NAME)],
    after: [systemctlArgs(scope, 'daemon-reload')],
  };
}

/** Stops, disables and removes the unit; the data dir and config stay (they are the agent's, not the service's). */
export async function uninstall(plan: UninstallPlan, host: ServiceHost): Promise<void> {
  assertCanChange(plan.scope, host, 'uninstall');
  const what = `The unit file is still at ${plan.unitPath}.`;
  await runAll(plan.before, host, what);
  fs.rmSync(plan.unitPath, { force: true });
  await runAll(plan.after, host, 'The unit file is removed.');
}

export interface ServiceStatus {
  scope: UnitScope;
  unitPath: string;
  installed: boolean;
  /** undefined when systemd does not run here. */
  enabled?: string;
  active?: string;
  lingering?: boolean;
}

export async function serviceStatus(scope: UnitScope, host: ServiceHost): Promise<ServiceStatus> {
  assertLinux(host);
  const unitPath = unitPathFor(scope, host, host.env.HOME ?? '');
  const status: ServiceStatus = {
    scope,
    unitPath,
    installed: fs.existsSync(unitPath),
    ...(scope === 'user' ? { lingering: host.lingering(host.currentUser) } : {}),
  };
  if (!host.systemdRunning()) return status;
  // is-enabled/is-active answer with a word on stdout and a non-zero code for anything but yes.
  const enabled = await host.systemctl(systemctlArgs(scope, 'is-enabled', UNIT_NAME));
  const active = await host.systemctl(systemctlArgs(scope, 'is-active', UNIT_NAME));
  return { ...status, enabled: enabled.stdout.trim() || 'unknown', active: active.stdout.trim() || 'unknown' };
}
