import { UsageError } from '../args.js';

/** The unit's name, the same for a system and a user unit. */
export const UNIT_NAME = 'farmlink-agent.service';

/**
 * How long systemd waits between a crash and the next start. With StartLimitIntervalSec=0 it
 * never stops trying: an unattended farm PC must get its agent back however long the outage.
 */
export const RESTART_SEC = 10;

/**
 * SIGTERM runs the agent's graceful path (panel closed, `disconnect` sent, the hub's close frame
 * awaited for at most 2 s, logs flushed); this is far beyond that, so only a hung agent is killed.
 */
export const STOP_TIMEOUT_SEC = 30;

/** The PATH systemd gives a service (systemd.exec, "Environment variables in spawned processes"). */
export const SYSTEMD_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface AgentUnitSpec {
  /** `system`: /etc/systemd/system, runs as `user`; `user`: the account's own service manager. */
  scope: 'system' | 'user';
  /** The account a system unit runs as (User=); a user unit always runs as its owner. */
  user?: string;
  /** Absolute path of the node binary: a service has no PATH of the user's shell to find it by. */
  nodePath: string;
  /** Absolute path of the built CLI (dist/bin/farmlink.js). */
  cliPath: string;
  configFile: string;
  dataDir: string;
  /** Directories the agent writes besides the data dir, made writable under ProtectSystem=strict. */
  writablePaths: readonly string[];
  /** The same, where a missing directory is no error (systemd's "-" prefix). */
  optionalWritablePaths: readonly string[];
  /** PATH for the agent, so `adb` (adb.path: adb) is found where the installing shell found it. */
  pathEnv: string;
  /** Who wrote the file, for its header. */
  version: string;
}

// Anything the escapes below do not cover (a newline ends the line) would reach systemd as something else.
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function checkPrintable(value: string, what: string): void {
  if (hasControl(value)) {
    throw new UsageError(`${what}: ${JSON.stringify(value)} holds a control character, which a unit file cannot carry`);
  }
}

/**
 * One word of a unit file value, as systemd's word splitting reads it back (systemd.syntax:
 * whitespace separates words, double quotes group them, backslash escapes inside quotes) with "%"
 * doubled so no specifier is expanded. ExecStart= also expands "$VAR", so its words double "$".
 */
function quoteWord(value: string, { dollar }: { dollar: boolean }): string {
  let text = value.replaceAll('%', '%%');
  if (dollar) text = text.replaceAll('$', '$$$$');
  if (text !== '' && !/[\s"'\\;]/.test(text)) return text;
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** One argument of ExecStart=, quoted so systemd passes exactly `value` to the process. */
export function quoteExecArg(value: string, what = 'argument'): string {
  checkPrintable(value, what);
  return quoteWord(value, { dollar: true });
}

/** One path of ReadWritePaths= (no "$" expansion there), with the "-" prefix inside the word. */
export function quotePathItem(value: string, { optional = false } = {}): string {
  checkPrintable(value, 'path');
  return quoteWord(`${optional ? '-' : ''}${value}`, { dollar: false });
}

/**
 * The agent's unit file. A pure function of its inputs; `farmlink service install` writes it,
 * `--dry-run` prints it, and test/service-unit-verify.test.ts runs `systemd-analyze verify` on it.
 */
export function renderAgentUnit(spec: AgentUnitSpec): string {
  const system = spec.scope === 'system';
  if (system && !spec.user) throw new UsageError('a system unit needs the account it runs as (--user NAME)');
  const exec = [
    quoteExecArg(spec.nodePath, 'node binary'),
    quoteExecArg(spec.cliPath, 'farmlink CLI'),
    'agent',
    '--config',
    quoteExecArg(spec.configFile, '--config'),
    '--data-dir',
    quoteExecArg(spec.dataDir, '--data-dir'),
  ].join(' ');
  const writable = [
    ...[spec.dataDir, ...spec.writablePaths].map((p) => quotePathItem(p)),
    ...spec.optionalWritablePaths.map((p) => quotePathItem(p, { optional: true })),
  ];
  checkPrintable(spec.pathEnv, 'PATH');
  const lines = [
    `# Written by \`farmlink service install\` (FarmLink ${spec.version}); \`farmlink service uninstall\` removes it.`,
    '# Local changes belong in a drop-in (systemctl edit farmlink-agent), which a reinstall keeps.',
    '[Unit]',
    'Description=FarmLink agent (keeps this farm PC connected to its hub)',
    // A user manager has no network-online.target of its own; there the agent's backoff covers a late network.
    ...(system ? ['Wants=network-online.target', 'After=network-online.target'] : []),
    // 0 = no start limit: systemd never gives up restarting it.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=exec',
    ...(system ? [`User=${spec.user ?? ''}`] : []),
    `ExecStart=${exec}`,
    `Environment=${quoteWord(`PATH=${spec.pathEnv}`, { dollar: false })}`,
    'Restart=always',
    `RestartSec=${RESTART_SEC}`,
    '# SIGTERM: the agent disconnects from its hub gracefully, then exits.',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${STOP_TIMEOUT_SEC}`,
    `# Logs: stdout goes to the journal (journalctl${system ? '' : ' --user'} -u ${UNIT_NAME});`,
    "# the agent's own rotating JSON log is <data dir>/logs/agent.N.log (highest N newest), unless the config's log.file says otherwise.",
    ...(system ? systemHardening(writable) : userHardening()),
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}

/**
 * What a farm PC's agent can do without: no new privileges, a read-only system but for its own
 * directories, private /tmp, no kernel tunables or modules. Left out on purpose, because adb
 * needs them: PrivateDevices=, DeviceAllow= and ProtectClock= (they hide /dev/bus/usb),
 * ProtectHome= (~/.android holds adb's keys, the data dir is in the home), PrivateNetwork=,
 * IPAddressDeny= and RestrictAddressFamilies= (the hub, the adb server on 127.0.0.1:5037, netlink
 * for USB hot-plug), MemoryDenyWriteExecute= (Node's JIT).
 */
function systemHardening(writable: string[]): string[] {
  return [
    '# Hardening that leaves adb working: /dev/bus/usb, ~/.android and the network stay reachable.',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${writable.join(' ')}`,
    'PrivateTmp=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
  ];
}

/**
 * A user manager can only apply the file-system protections through an unprivileged user
 * namespace, which many kernels turn off — the agent would then fail to start (status 226).
 */
function userHardening(): string[] {
  return ['# A user manager cannot apply ProtectSystem= and the like without user namespaces.', 'NoNewPrivileges=yes'];
}
