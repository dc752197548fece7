import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAgentUnit, type AgentUnitSpec } from '../cli/service/systemd-unit.js';
import { FARMLINK_BIN } from './helpers/hub-process.js';
import { isolatedEnv, runCli } from './helpers/cli-process.js';

/**
 * `farmlink service` end to end through the built CLI (--dry-run and bad input: nothing here may
 * touch the machine's systemd), and the unit it writes checked by systemd's own parser,
 * `systemd-analyze verify` (Debian's systemd package; it needs no running systemd). The install
 * itself, against a fake root and a recording systemctl, is cli/service/agent-service.test.ts.
 */

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-service-cli-'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The unit between "# write … (mode 0644):" and "# and run:" of `install --dry-run`. */
function unitOf(stdout: string): string {
  const match = /\(mode 0644\):\n([\s\S]*?)# and run:\n/.exec(stdout);
  if (!match?.[1]) throw new Error(`no unit in the dry-run output: ${stdout}`);
  return match[1];
}

interface Verdict {
  code: number | null;
  /** systemd-analyze's lines about our unit (it may also mention other units of this machine). */
  complaints: string[];
}

/** Runs `systemd-analyze verify` on the unit, saved under the name `install` gives it. */
function verify(unitText: string, { user = false } = {}): Verdict {
  const dir = fs.mkdtempSync(path.join(tmp, 'verify-'));
  const file = path.join(dir, 'farmlink-agent.service');
  fs.writeFileSync(file, unitText);
  // A user manager's verify wants a runtime dir; one of its own, so no real session is read.
  const runtime = fs.mkdtempSync(path.join(tmp, 'runtime-'));
  fs.chmodSync(runtime, 0o700);
  const result = spawnSync('systemd-analyze', [...(user ? ['--user'] : []), 'verify', file], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_COLOR: '0' },
  });
  if (result.error) {
    throw new Error(
      `systemd-analyze could not run (${result.error.message}): it is in Debian's systemd package, ` +
        'which .ci/run installs ' +
        '(the package only: nothing here runs systemd as init)',
    );
  }
  const complaints = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes('farmlink-agent'));
  return { code: result.status, complaints };
}

describe('farmlink service (built CLI)', () => {
  it('install --dry-run prints a unit with absolute, quoted paths and the systemctl commands, exit 0', async () => {
    const { env } = isolatedEnv(tmp);
    const config = path.join(tmp, 'farm link', 'agent.yaml');
    const dataDir = path.join(tmp, 'farm link', 'data 100%');
    const args = ['service', 'install', '--dry-run', '--user', 'root', '--config', config, '--data-dir', dataDir];
    const run = await runCli(args, env);
    expect(run.code).toBe(0);
    const unit = unitOf(run.stdout);
    expect(unit).toMatch(/^User=root$/m);
    expect(unit).toContain(
      `ExecStart=${fs.realpathSync(process.execPath)} ${fs.realpathSync(FARMLINK_BIN)} agent ` +
        `--config "${config}" --data-dir "${dataDir.replace('%', '%%')}"\n`,
    );
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^StartLimitIntervalSec=0$/m);
    expect(run.stdout).toMatch(/# and run:\nsystemctl daemon-reload\n/);
    expect(run.stdout).toMatch(/\nsystemctl enable farmlink-agent\.service\n/);
    expect(run.stdout).toMatch(/\nsystemctl restart farmlink-agent\.service\n$/);
    expect(run.stderr).toContain(`farmlink service install: warning: ${config} does not exist yet`);
    // Nothing was created: not the data dir, not its parent.
    expect(fs.existsSync(path.join(tmp, 'farm link'))).toBe(false);
  });

  it('the dry-run unit passes systemd-analyze verify', async () => {
    const { env } = isolatedEnv(tmp);
    const run = await runCli(
      ['service', 'install', '--dry-run', '--user', 'root'].concat([
        '--config',
        path.join(tmp, 'a b', 'agent.yaml'),
        '--data-dir',
        path.join(tmp, 'a b', 'data'),
      ]),
      env,
    );
    expect(run.code).toBe(0);
    expect(verify(unitOf(run.stdout))).toEqual({ code: 0, complaints: [] });
  });

  it('uninstall --dry-run lists the steps, exit 0', async () => {
    const run = await runCli(['service', 'uninstall', '--dry-run'], isolatedEnv(tmp).env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'systemctl disable --now farmlink-agent.service\nrm /etc/systemd/system/farmlink-agent.service',
    );
  });

  it('bad input: usage (exit 2) for no or an unknown subcommand, an unknown flag, a bad account or path', async () => {
    const { env } = isolatedEnv(tmp);
    const none = await runCli(['service'], env);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/^Usage: farmlink service install\|uninstall\|status/);
    const cases: [string[], RegExp][] = [
      [['service', 'restart'], /unknown subcommand "restart" \(subcommands: install, uninstall, status\)/],
      [['service', 'install', '--port', '1'], /farmlink service install: Unknown option '--port'/],
      [
        ['service', 'install', '--dry-run', '--user', 'no-such-account-here'],
        /--user: there is no account "no-such-account-here" on this machine/,
      ],
      [
        ['service', 'install', '--dry-run', '--user', 'root', '--data-dir', '/srv/a\nb'],
        /--data-dir: "\/srv\/a\\nb" holds a control character/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(args, env);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.stderr).toContain('Run "farmlink --help" for usage.');
    }
  });

  it('farmlink --help lists it', async () => {
    const run = await runCli(['--help'], isolatedEnv(tmp).env);
    expect(run.stdout).toMatch(/^ {2}service {2}install\|uninstall\|status: run the agent as a systemd service/m);
  });
});

describe('systemd-analyze verify on the rendered unit', () => {
  const spec = (dir: string): AgentUnitSpec => ({
    scope: 'system',
    user: 'root',
    nodePath: path.join(dir, 'node 20', 'node'),
    cliPath: path.join(dir, 'farm link', 'farmlink.js'),
    configFile: path.join(dir, 'farm link', 'agent.yaml'),
    dataDir: path.join(dir, 'farm link', 'data'),
    writablePaths: [path.join(dir, 'log s')],
    optionalWritablePaths: [path.join(dir, 'farm link'), path.join(dir, '.android')],
    pathEnv: `${path.join(dir, 'platform tools')}:/usr/bin:/bin`,
    version: '0.0.0',
  });

  /** A node binary (a link to this one) at a path with a space, for ExecStart='s first word. */
  function nodeWithSpace(): string {
    const dir = fs.mkdtempSync(path.join(tmp, 'unit-'));
    fs.mkdirSync(path.join(dir, 'node 20'));
    fs.symlinkSync(process.execPath, path.join(dir, 'node 20', 'node'));
    return dir;
  }

  it('a system unit with spaces in every path: systemd reads it without a complaint', () => {
    expect(verify(renderAgentUnit(spec(nodeWithSpace())))).toEqual({ code: 0, complaints: [] });
  });

  it('a user unit: the same', () => {
    const { user: _user, ...rest } = spec(nodeWithSpace());
    expect(verify(renderAgentUnit({ ...rest, scope: 'user' }), { user: true })).toEqual({ code: 0, complaints: [] });
  });

  it('and the check has teeth: the same unit without its quotes is refused', () => {
    const unit = renderAgentUnit(spec(nodeWithSpace()));
    const unquoted = unit.replace(/^(ExecStart|ReadWritePaths)=.*$/gm, (line) => line.replaceAll('"', ''));
    const verdict = verify(unquoted);
    expect(verdict.code).not.toBe(0);
    expect(verdict.complaints.join('\n')).toMatch(/is not executable/);
    expect(verdict.complaints.join('\n')).toMatch(/ReadWritePaths= path is not absolute/);
  });
});
