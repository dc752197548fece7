import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import { serviceCommand } from '../service-command.js';
import { ServiceError, install, planInstall, planUninstall, uninstall } from './agent-service.js';
import type { Account, CommandResult, ServiceHost } from './service-host.js';

let root: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-service-'));
  fs.mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
  fs.mkdirSync(path.join(root, 'home'));
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

interface Fake {
  host: ServiceHost;
  /** Every systemctl call, in order. */
  calls: string[][];
  chowned: string[];
}

/**
 * This machine as `farmlink service` sees it, with the file system under a temp root and a
 * systemctl that records its calls (the real one needs systemd as PID 1, which this machine lacks).
 */
function fakeHost(
  overrides: Partial<ServiceHost> = {},
  answer: (args: readonly string[]) => CommandResult = () => ok(''),
): Fake {
  const accounts: Record<string, Account> = {
    farm: { name: 'farm', uid: 1001, gid: 1002, home: path.join(root, 'home/farm') },
    ops: { name: 'ops', uid: 1003, gid: 1003, home: path.join(root, 'home/ops') },
    root: { name: 'root', uid: 0, gid: 0, home: path.join(root, 'root') },
  };
  const calls: string[][] = [];
  const chowned: string[] = [];
  const host: ServiceHost = {
    platform: 'linux',
    uid: 0,
    env: { SUDO_USER: 'farm' },
    currentUser: 'root',
    systemUnitDir: path.join(root, 'etc/systemd/system'),
    systemdRunning: () => true,
    lingering: () => false,
    lookupAccount: (name) => Promise.resolve(accounts[name]),
    chown: (file) => chowned.push(file),
    systemctl: (args) => {
      calls.push([...args]);
      return Promise.resolve(answer(args));
    },
    which: (name) => (name === 'adb' ? '/opt/platform-tools/adb' : undefined),
    nodePath: '/usr/bin/node',
    cliPath: '/opt/farmlink/dist/bin/farmlink.js',
    ...overrides,
  };
  return { host, calls, chowned };
}

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: '' });

function capture() {
  const io = { stdout: '', stderr: '', out: (t: string) => (io.stdout += t), err: (t: string) => (io.stderr += t) };
  return io;
}

const unitFile = () => path.join(root, 'etc/systemd/system/farmlink-agent.service');

describe('planInstall: who runs the agent, with which files', () => {
  it('under sudo: the account that ran sudo, with its own config and data dir', async () => {
    const plan = await planInstall({ scope: 'system' }, fakeHost().host);
    expect(plan.account.name).toBe('farm');
    expect(plan.configFile).toBe(path.join(root, 'home/farm/.config/farmlink/agent.yaml'));
    expect(plan.dataDir).toBe(path.join(root, 'home/farm/.local/state/farmlink'));
    expect(plan.unitPath).toBe(unitFile());
    expect(plan.unitText).toMatch(/^User=farm$/m);
    // adb's folder first, so the agent finds the adb this shell finds.
    expect(plan.unitText).toMatch(/^Environment=PATH=\/opt\/platform-tools:\/usr\/bin:\/usr\/local\/sbin:/m);
  });

  it('--user names another account; relative --config, --data-dir and --writable start at the cwd', async () => {
    const plan = await planInstall(
      {
        scope: 'system',
        user: 'ops',
        config: 'conf/agent.yaml',
        dataDir: 'data',
        writable: ['logs'],
        cwd: '/srv/farm',
      },
      fakeHost().host,
    );
    expect(plan.account.name).toBe('ops');
    expect(plan.configFile).toBe('/srv/farm/conf/agent.yaml');
    expect(plan.dataDir).toBe('/srv/farm/data');
    expect(plan.directories).toEqual(['/srv/farm/data', path.join(root, 'home/ops/.android'), '/srv/farm/logs']);
    const android = path.join(root, 'home/ops/.android');
    expect(plan.unitText).toContain(`\nReadWritePaths=/srv/farm/data /srv/farm/logs -/srv/farm/conf -${android}\n`);
  });

  it('as root without sudo and without --user: asks which account, rather than pick root', async () => {
    const { host } = fakeHost({ env: {} });
    await expect(planInstall({ scope: 'system' }, host)).rejects.toThrow(UsageError);
    await expect(planInstall({ scope: 'system' }, host)).rejects.toThrow(
      /Give --user NAME \(--user root if you really mean root\)/,
    );
    expect((await planInstall({ scope: 'system', user: 'root' }, host)).unitText).toMatch(/^User=root$/m);
  });

  it('an account that does not exist is named', async () => {
    await expect(planInstall({ scope: 'system', user: 'nobody-here' }, fakeHost().host)).rejects.toThrow(
      /--user: there is no account "nobody-here" on this machine/,
    );
  });

  it('not root: the account running the command, with its own FARMLINK_DATA_DIR and XDG places', async () => {
    const { host } = fakeHost({
      uid: 1001,
      currentUser: 'farm',
      env: { HOME: '/home/farm', XDG_CONFIG_HOME: '/cfg', FARMLINK_DATA_DIR: '/var/farmlink' },
    });
    const plan = await planInstall({ scope: 'system' }, host);
    expect(plan.account.name).toBe('farm');
    expect(plan.configFile).toBe('/cfg/farmlink/agent.yaml');
    expect(plan.dataDir).toBe('/var/farmlink');
  });

  it('warns when the config file is missing, adb is not on the PATH, or a user unit has no lingering', async () => {
    const home = path.join(root, 'home/farm');
    const { host } = fakeHost({ uid: 1001, currentUser: 'farm', env: { HOME: home }, which: () => undefined });
    const plan = await planInstall({ scope: 'user' }, host);
    expect(plan.warnings).toHaveLength(3);
    expect(plan.warnings[0]).toMatch(/agent\.yaml does not exist yet: until it does, the agent exits 78/);
    expect(plan.warnings[0]).toMatch(/systemd starts it again every 10 s/);
    expect(plan.warnings[1]).toMatch(/adb is not on this PATH: .*set adb\.path/);
    expect(plan.warnings[2]).toMatch(/lingering is off for farm: .*sudo loginctl enable-linger farm/);
  });

  it("a user unit lives in the account's ~/.config/systemd/user and is driven with systemctl --user", async () => {
    const home = path.join(root, 'home/farm');
    const { host } = fakeHost({ uid: 1001, currentUser: 'farm', env: { HOME: home } });
    const plan = await planInstall({ scope: 'user' }, host);
    expect(plan.unitPath).toBe(path.join(home, '.config/systemd/user/farmlink-agent.service'));
    expect(plan.commands).toEqual([
      ['--user', 'daemon-reload'],
      ['--user', 'enable', 'farmlink-agent.service'],
      ['--user', 'restart', 'farmlink-agent.service'],
    ]);
    expect(plan.unitText).not.toMatch(/^User=/m);
  });

  it('refuses a user unit under sudo, and --user with --user-unit', async () => {
    const underSudo = planInstall({ scope: 'user' }, fakeHost().host);
    await expect(underSudo).rejects.toThrow(/run it as that account, without sudo/);
    const { host } = fakeHost({ uid: 1001, currentUser: 'farm' });
    await expect(planInstall({ scope: 'user', user: 'ops' }, host)).rejects.toThrow(/--user NAME is for a system unit/);
  });

  it('not Linux: says what to do on Windows, exit 69', async () => {
    const error = await planInstall({ scope: 'system' }, fakeHost({ platform: 'win32' }).host).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).exitCode).toBe(ExitCode.UNAVAILABLE);
    expect((error as ServiceError).message).toMatch(
      /this is win32\. On Windows the FarmLink installer offers to start the agent at boot/,
    );
  });
});

describe('install and uninstall against a fake root', () => {
  it("creates the agent's directories for its account, writes the unit, reloads, enables and restarts", async () => {
    const fake = fakeHost();
    const plan = await planInstall({ scope: 'system' }, fake.host);
    await install(plan, fake.host);
    expect(fs.readFileSync(unitFile(), 'utf8')).toBe(plan.unitText);
    expect(fs.statSync(unitFile()).mode & 0o777).toBe(0o644);
    expect(fake.calls).toEqual([
      ['daemon-reload'],
      ['enable', 'farmlink-agent.service'],
      ['restart', 'farmlink-agent.service'],
    ]);
    // Every folder install made (not just the last) belongs to the agent's account, not to root.
    const home = path.join(root, 'home/farm');
    expect(fake.chowned).toEqual([
      home,
      path.join(home, '.local'),
      path.join(home, '.local/state'),
      path.join(home, '.local/state/farmlink'),
      path.join(home, '.android'),
    ]);
    expect(fs.statSync(path.join(home, '.local/state/farmlink')).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(path.dirname(unitFile()))).toEqual(['farmlink-agent.service']);
  });

  it('a second install replaces the unit and restarts the agent with it', async () => {
    const fake = fakeHost();
    await install(await planInstall({ scope: 'system' }, fake.host), fake.host);
    const again = await planInstall({ scope: 'system', dataDir: path.join(root, 'elsewhere') }, fake.host);
    await install(again, fake.host);
    expect(fs.readFileSync(unitFile(), 'utf8')).toContain(`--data-dir ${path.join(root, 'elsewhere')}`);
    expect(fake.calls.filter((args) => args[0] === 'restart')).toHaveLength(2);
  });

  it('not root: exit 77 with how, and nothing written', async () => {
    const fake = fakeHost({ uid: 1001, currentUser: 'farm' });
    const plan = await planInstall({ scope: 'system' }, fake.host);
    const error = await install(plan, fake.host).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SERVICE_NEEDS_ROOT', exitCode: ExitCode.NO_PERMISSION });
    expect((error as Error).message).toMatch(/needs root: run it with sudo .*or use --user-unit/);
    expect(fs.existsSync(unitFile())).toBe(false);
    expect(fake.calls).toEqual([]);
  });

  it('systemd not running: exit 69 pointing at --dry-run, and nothing written', async () => {
    const fake = fakeHost({ systemdRunning: () => false });
    const error = await install(await planInstall({ scope: 'system' }, fake.host), fake.host).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SYSTEMD_NOT_RUNNING', exitCode: ExitCode.UNAVAILABLE });
    expect((error as Error).message).toMatch(/systemd is not running on this machine .*Use --dry-run/);
    expect(fs.existsSync(unitFile())).toBe(false);
  });

  it('a failing systemctl is named with its own words, exit 1', async () => {
    const denied = { code: 1, stdout: '', stderr: 'Failed to enable unit: Access denied\n' };
    const fake = fakeHost({}, (args) => (args[0] === 'enable' ? denied : ok('')));
    const error = await install(await planInstall({ scope: 'system' }, fake.host), fake.host).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SYSTEMCTL_FAILED', exitCode: ExitCode.FAILURE });
    expect((error as Error).message).toMatch(
      /systemctl enable farmlink-agent\.service failed \(exit 1\): Failed to enable unit: Access denied\. The unit/,
    );
    expect(fake.calls).toHaveLength(2); // nothing after the failure
  });

  it('uninstall stops and disables, removes the unit, then reloads', async () => {
    const fake = fakeHost();
    await install(await planInstall({ scope: 'system' }, fake.host), fake.host);
    fake.calls.length = 0;
    const plan = planUninstall('system', fake.host);
    expect(plan.installed).toBe(true);
    await uninstall(plan, fake.host);
    expect(fs.existsSync(unitFile())).toBe(false);
    expect(fake.calls).toEqual([['disable', '--now', 'farmlink-agent.service'], ['daemon-reload']]);
    // The agent's own files stay.
    expect(fs.existsSync(path.join(root, 'home/farm/.local/state/farmlink'))).toBe(true);
  });
});

describe('serviceCommand', () => {
  it('install --dry-run prints the unit and the commands, touches nothing, needs no root or systemd', async () => {
    const home = path.join(root, 'home/farm');
    const fake = fakeHost({ uid: 1001, currentUser: 'farm', env: { HOME: home }, systemdRunning: () => false });
    const io = capture();
    expect(await serviceCommand(['install', '--dry-run'], fake.host, io)).toBe(ExitCode.OK);
    expect(io.stdout).toContain(`# write ${unitFile()} (mode 0644):\n`);
    expect(io.stdout).toMatch(/^\[Service\]$/m);
    expect(io.stdout).toMatch(/# and run:\nsystemctl daemon-reload\n/);
    expect(io.stdout).toMatch(/\nsystemctl enable farmlink-agent.service\nsystemctl restart farmlink-agent.service\n$/);
    expect(io.stderr).toMatch(/warning: .*agent\.yaml does not exist yet/);
    expect(fs.existsSync(unitFile())).toBe(false);
    expect(fs.readdirSync(path.join(root, 'home'))).toEqual([]);
    expect(fake.calls).toEqual([]);
  });

  it('install as a user: exit 77 with the message on stderr, no warnings for an install not done', async () => {
    const io = capture();
    const { host } = fakeHost({ uid: 1001, currentUser: 'farm', env: { HOME: path.join(root, 'home/farm') } });
    expect(await serviceCommand(['install'], host, io)).toBe(ExitCode.NO_PERMISSION);
    expect(io.stderr).toMatch(
      /^farmlink: farmlink service install: a system unit goes into .* which needs root.*\[SERVICE_NEEDS_ROOT\]\n$/,
    );
  });

  it('uninstall when nothing is installed says so and succeeds; --dry-run lists the steps', async () => {
    const fake = fakeHost();
    const io = capture();
    expect(await serviceCommand(['uninstall'], fake.host, io)).toBe(ExitCode.OK);
    expect(io.stdout).toBe(`farmlink-agent.service is not installed (no ${unitFile()}): nothing to remove.\n`);
    expect(fake.calls).toEqual([]);
    const dry = capture();
    expect(await serviceCommand(['uninstall', '--dry-run'], fake.host, dry)).toBe(ExitCode.OK);
    expect(dry.stdout).toContain('systemctl disable --now farmlink-agent.service\nrm ');
  });

  it('status: installed, enabled and active → 0; inactive → 3', async () => {
    fs.writeFileSync(unitFile(), '[Service]\n');
    const answers = (active: string) => (args: readonly string[]) =>
      args[0] === 'is-enabled'
        ? ok('enabled\n')
        : { code: active === 'active' ? 0 : 3, stdout: `${active}\n`, stderr: '' };
    const io = capture();
    expect(await serviceCommand(['status'], fakeHost({}, answers('active')).host, io)).toBe(ExitCode.OK);
    expect(io.stdout).toContain(`unit file: ${unitFile()} (installed)\n  enabled:   enabled\n  active:    active\n`);
    expect(io.stdout).toContain('journalctl -u farmlink-agent.service -f');
    const failed = capture();
    expect(await serviceCommand(['status'], fakeHost({}, answers('failed')).host, failed)).toBe(ExitCode.NOT_RUNNING);
    expect(failed.stdout).toContain('  active:    failed\n');
  });

  it('status without systemd: what it can tell (the file), and that it cannot tell the rest → 3', async () => {
    const fake = fakeHost({ systemdRunning: () => false });
    const io = capture();
    expect(await serviceCommand(['status'], fake.host, io)).toBe(ExitCode.NOT_RUNNING);
    expect(io.stdout).toContain('(not installed)');
    expect(io.stdout).toContain(
      'systemd:   not running on this machine (no /run/systemd/system): cannot say whether it is enabled or running',
    );
    expect(fake.calls).toEqual([]);
  });

  it('bad input: unknown subcommand or flag are usage errors; no subcommand prints help, exit 2', async () => {
    const { host } = fakeHost();
    await expect(serviceCommand(['restart'], host, capture())).rejects.toThrow(
      new UsageError('farmlink service: unknown subcommand "restart" (subcommands: install, uninstall, status)'),
    );
    await expect(serviceCommand(['status', '--dry-run'], host, capture())).rejects.toThrow(
      /farmlink service status: Unknown option '--dry-run'/,
    );
    const io = capture();
    expect(await serviceCommand([], host, io)).toBe(ExitCode.USAGE);
    expect(io.stdout).toMatch(/^Usage: farmlink service install\|uninstall\|status/);
  });
});
