import { UsageError, parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';
import {
  ServiceError,
  assertCanChange,
  install,
  planInstall,
  planUninstall,
  serviceStatus,
  uninstall,
  type InstallPlan,
  type ServiceStatus,
  type UnitScope,
} from './service/agent-service.js';
import { realServiceHost, type ServiceHost } from './service/service-host.js';
import { UNIT_NAME } from './service/systemd-unit.js';

export const SERVICE_HELP = `Usage: farmlink service install|uninstall|status [options]

Runs the agent as a systemd service (Linux), for a farm PC without a desktop: started at boot,
restarted whenever it stops, stopped gracefully (SIGTERM) at shutdown. README → Running as a service.

  install     write ${UNIT_NAME}, enable it at boot and (re)start it
  uninstall   stop and disable it and remove the unit (the config and data dir stay)
  status      whether it is installed, enabled and running

Options:
  --user NAME     the account the agent runs as (system unit) [the one who ran sudo]
  --user-unit     a unit of your own account's service manager (~/.config/systemd/user) instead
                  of a system unit; runs without root, but starts at boot only with lingering on
                  (sudo loginctl enable-linger YOU)
  --config FILE   the agent's configuration [that account's ~/.config/farmlink/agent.yaml]   (install)
  --data-dir DIR  the agent's data dir [that account's ~/.local/state/farmlink]               (install)
  --writable DIR  another directory the agent writes, e.g. for a log.file elsewhere (repeatable; install)
  --dry-run       print the unit and the commands, change nothing (install, uninstall)

A system unit needs root (sudo). Exit codes: 0 done (status: running), 2 bad command line,
3 status: not installed or not running, 69 not Linux or systemd not running, 77 not root,
1 systemctl failed.
`;

export interface ServiceIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const STD_IO: ServiceIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

const SUBCOMMANDS = ['install', 'uninstall', 'status'] as const;

export async function serviceCommand(argv: string[], host?: ServiceHost, io: ServiceIo = STD_IO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(SERVICE_HELP);
    return sub === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(`farmlink service: unknown subcommand "${sub}" (subcommands: ${SUBCOMMANDS.join(', ')})`);
  }
  try {
    if (sub === 'install') return await installCommand(rest, host, io);
    if (sub === 'uninstall') return await uninstallCommand(rest, host, io);
    return await statusCommand(rest, host, io);
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    io.err(`farmlink: ${error.message} [${error.code}]\n`);
    return error.exitCode;
  }
}

const scopeOf = (userUnit: boolean | undefined): UnitScope => (userUnit ? 'user' : 'system');
const journal = (scope: UnitScope) => `journalctl${scope === 'user' ? ' --user' : ''} -u ${UNIT_NAME}`;
const systemctlLine = (args: readonly string[]) => `systemctl ${args.join(' ')}\n`;

async function installCommand(argv: string[], host: ServiceHost | undefined, io: ServiceIo): Promise<number> {
  const { values } = parseFlags('service install', argv, {
    user: { type: 'string' },
    'user-unit': { type: 'boolean' },
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    writable: { type: 'string', multiple: true },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(SERVICE_HELP);
    return ExitCode.OK;
  }
  const machine = host ?? realServiceHost();
  const plan = await planInstall(
    {
      scope: scopeOf(values['user-unit']),
      user: values.user,
      config: values.config,
      dataDir: values['data-dir'],
      writable: values.writable,
    },
    machine,
  );
  // Refusals first: a warning about the config is noise when nothing is going to be installed.
  if (!values['dry-run']) assertCanChange(plan.scope, machine, 'install');
  for (const warning of plan.warnings) io.err(`farmlink service install: warning: ${warning}\n`);
  if (values['dry-run']) {
    io.out(dryRunInstall(plan));
    return ExitCode.OK;
  }
  await install(plan, machine);
  io.out(
    `Installed ${plan.unitPath}: \`farmlink agent\` as ${plan.account.name}, config ${plan.configFile}, ` +
      `data dir ${plan.dataDir}. Enabled at boot and started.\n` +
      `  status: farmlink service status${plan.scope === 'user' ? ' --user-unit' : ''}\n` +
      `  logs:   ${journal(plan.scope)} -f, and ${plan.dataDir}/logs/agent.N.log (the highest N is the newest)\n`,
  );
  return ExitCode.OK;
}

function dryRunInstall(plan: InstallPlan): string {
  return [
    '# --dry-run: nothing is changed. farmlink service install would:\n',
    ...plan.directories.map((dir) => `# create ${dir} if missing (mode 0700, owner ${plan.account.name})\n`),
    `# write ${plan.unitPath} (mode 0644):\n`,
    plan.unitText,
    '# and run:\n',
    ...plan.commands.map(systemctlLine),
  ].join('');
}

async function uninstallCommand(argv: string[], host: ServiceHost | undefined, io: ServiceIo): Promise<number> {
  const { values } = parseFlags('service uninstall', argv, {
    'user-unit': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(SERVICE_HELP);
    return ExitCode.OK;
  }
  const machine = host ?? realServiceHost();
  const plan = planUninstall(scopeOf(values['user-unit']), machine);
  if (values['dry-run']) {
    io.out(
      [
        `# --dry-run: nothing is changed. farmlink service uninstall would run:\n`,
        ...plan.before.map(systemctlLine),
        `rm ${plan.unitPath}${plan.installed ? '' : '   # (not there now)'}\n`,
        ...plan.after.map(systemctlLine),
      ].join(''),
    );
    return ExitCode.OK;
  }
  if (!plan.installed) {
    io.out(`${UNIT_NAME} is not installed (no ${plan.unitPath}): nothing to remove.\n`);
    return ExitCode.OK;
  }
  await uninstall(plan, machine);
  io.out(`Stopped, disabled and removed ${plan.unitPath}. The agent's config and data dir are left as they were.\n`);
  return ExitCode.OK;
}

async function statusCommand(argv: string[], host: ServiceHost | undefined, io: ServiceIo): Promise<number> {
  const { values } = parseFlags('service status', argv, {
    'user-unit': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(SERVICE_HELP);
    return ExitCode.OK;
  }
  const status = await serviceStatus(scopeOf(values['user-unit']), host ?? realServiceHost());
  io.out(formatStatus(status));
  return status.active === 'active' ? ExitCode.OK : ExitCode.NOT_RUNNING;
}

export function formatStatus(status: ServiceStatus): string {
  const lines = [
    `${UNIT_NAME} (${status.scope === 'user' ? 'user unit' : 'system unit'})`,
    `  unit file: ${status.unitPath} (${status.installed ? 'installed' : 'not installed'})`,
  ];
  if (status.active === undefined) {
    lines.push(
      '  systemd:   not running on this machine (no /run/systemd/system): cannot say whether it is enabled or running',
    );
  } else {
    lines.push(`  enabled:   ${status.enabled ?? 'unknown'}`, `  active:    ${status.active}`);
  }
  if (status.lingering !== undefined) {
    const linger = status.lingering
      ? 'on (starts at boot)'
      : 'off (starts at login only; sudo loginctl enable-linger YOU)';
    lines.push(`  lingering: ${linger}`);
  }
  if (status.installed)
    lines.push(
      `  logs:      ${journal(status.scope)} -f, and the data dir's logs/agent.N.log (the highest N is the newest)`,
    );
  return `${lines.join('\n')}\n`;
}
