import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { quoteExecArg, quotePathItem, renderAgentUnit, type AgentUnitSpec } from './systemd-unit.js';

const spec: AgentUnitSpec = {
  scope: 'system',
  user: 'farm',
  nodePath: '/usr/bin/node',
  cliPath: '/opt/farmlink/dist/bin/farmlink.js',
  configFile: '/home/farm/.config/farmlink/agent.yaml',
  dataDir: '/home/farm/.local/state/farmlink',
  writablePaths: [],
  optionalWritablePaths: ['/home/farm/.config/farmlink', '/home/farm/.android'],
  pathEnv: '/usr/bin:/bin',
  version: '1.2.3',
};

/** The value of the one `key=` line of the unit (fails the test if there are none or several). */
function value(unit: string, key: string): string {
  const lines = unit.split('\n').filter((line) => line.startsWith(`${key}=`));
  expect(lines, key).toHaveLength(1);
  return lines[0]!.slice(key.length + 1);
}

describe('quoteExecArg', () => {
  it('leaves plain words alone and double-quotes words with spaces, quotes, backslashes or semicolons', () => {
    expect(quoteExecArg('/usr/bin/node')).toBe('/usr/bin/node');
    expect(quoteExecArg('/srv/farm link/agent.yaml')).toBe('"/srv/farm link/agent.yaml"');
    expect(quoteExecArg('/srv/a"b')).toBe('"/srv/a\\"b"');
    expect(quoteExecArg("/srv/it's")).toBe('"/srv/it\'s"');
    expect(quoteExecArg('/srv/a\\b')).toBe('"/srv/a\\\\b"');
    expect(quoteExecArg(';')).toBe('";"');
    expect(quoteExecArg('')).toBe('""');
  });

  it('doubles % (specifiers) and $ (ExecStart= expands variables)', () => {
    expect(quoteExecArg('/srv/100%/$HOME')).toBe('/srv/100%%/$$HOME');
    expect(quoteExecArg('/srv/50% off')).toBe('"/srv/50%% off"');
  });

  it('refuses control characters, naming what held one', () => {
    expect(() => quoteExecArg('/srv/a\nb', '--data-dir')).toThrow(UsageError);
    expect(() => quoteExecArg('/srv/a\nb', '--data-dir')).toThrow(
      /--data-dir: "\/srv\/a\\nb" holds a control character/,
    );
  });
});

describe('quotePathItem', () => {
  it('puts the optional "-" inside the quoted word and leaves $ alone (no expansion in ReadWritePaths=)', () => {
    expect(quotePathItem('/home/farm/.android', { optional: true })).toBe('-/home/farm/.android');
    expect(quotePathItem('/home/a b/.android', { optional: true })).toBe('"-/home/a b/.android"');
    expect(quotePathItem('/srv/$x%')).toBe('/srv/$x%%');
  });
});

describe('renderAgentUnit', () => {
  it('runs `farmlink agent` with absolute node, CLI, config and data dir, as the given user', () => {
    const unit = renderAgentUnit(spec);
    expect(value(unit, 'User')).toBe('farm');
    expect(value(unit, 'ExecStart')).toBe(
      '/usr/bin/node /opt/farmlink/dist/bin/farmlink.js agent --config /home/farm/.config/farmlink/agent.yaml ' +
        '--data-dir /home/farm/.local/state/farmlink',
    );
    expect(value(unit, 'Environment')).toBe('PATH=/usr/bin:/bin');
    expect(unit).toContain('FarmLink 1.2.3');
  });

  it('restarts forever: Restart=always, a pause, and no start limit', () => {
    const unit = renderAgentUnit(spec);
    expect(value(unit, 'Restart')).toBe('always');
    expect(value(unit, 'RestartSec')).toBe('10');
    expect(value(unit, 'StartLimitIntervalSec')).toBe('0');
  });

  it('stops with SIGTERM and waits long enough for the graceful disconnect', () => {
    const unit = renderAgentUnit(spec);
    expect(value(unit, 'KillSignal')).toBe('SIGTERM');
    expect(Number(value(unit, 'TimeoutStopSec'))).toBeGreaterThanOrEqual(10);
  });

  it('waits for the network and starts at boot (system unit)', () => {
    const unit = renderAgentUnit(spec);
    expect(value(unit, 'Wants')).toBe('network-online.target');
    expect(value(unit, 'After')).toBe('network-online.target');
    expect(value(unit, 'WantedBy')).toBe('multi-user.target');
  });

  it('hardens without hiding what adb needs: /dev stays, home stays readable, only its own dirs writable', () => {
    const unit = renderAgentUnit(spec);
    expect(value(unit, 'NoNewPrivileges')).toBe('yes');
    expect(value(unit, 'ProtectSystem')).toBe('strict');
    expect(value(unit, 'ReadWritePaths')).toBe(
      '/home/farm/.local/state/farmlink -/home/farm/.config/farmlink -/home/farm/.android',
    );
    const devices = ['PrivateDevices', 'DeviceAllow', 'ProtectClock'];
    const homeAndNetwork = ['ProtectHome', 'PrivateNetwork', 'RestrictAddressFamilies'];
    for (const key of [...devices, ...homeAndNetwork, 'MemoryDenyWriteExecute']) {
      expect(unit, key).not.toMatch(new RegExp(`^${key}=`, 'm'));
    }
  });

  it('quotes every path with spaces so systemd reads it back whole', () => {
    const unit = renderAgentUnit({
      ...spec,
      nodePath: '/opt/node 20/bin/node',
      cliPath: '/opt/farm link/dist/bin/farmlink.js',
      configFile: '/srv/farm link/agent.yaml',
      dataDir: '/srv/farm link/data',
      writablePaths: ['/var/log/farm link'],
      optionalWritablePaths: ['/srv/farm link'],
      pathEnv: '/opt/platform tools:/usr/bin',
    });
    expect(value(unit, 'ExecStart')).toBe(
      '"/opt/node 20/bin/node" "/opt/farm link/dist/bin/farmlink.js" agent ' +
        '--config "/srv/farm link/agent.yaml" --data-dir "/srv/farm link/data"',
    );
    expect(value(unit, 'ReadWritePaths')).toBe('"/srv/farm link/data" "/var/log/farm link" "-/srv/farm link"');
    expect(value(unit, 'Environment')).toBe('"PATH=/opt/platform tools:/usr/bin"');
  });

  it('a user unit: no User=, no network-online.target, started with the user manager, light hardening', () => {
    const { user: _user, ...noUser } = spec;
    const unit = renderAgentUnit({ ...noUser, scope: 'user' });
    expect(unit).not.toMatch(/^User=/m);
    expect(unit).not.toMatch(/network-online/);
    expect(value(unit, 'WantedBy')).toBe('default.target');
    expect(value(unit, 'NoNewPrivileges')).toBe('yes');
    expect(unit).not.toMatch(/^ProtectSystem=/m);
    expect(value(unit, 'Restart')).toBe('always');
  });

  it('a system unit without a user is refused', () => {
    const { user: _user, ...noUser } = spec;
    expect(() => renderAgentUnit(noUser)).toThrow(/--user NAME/);
  });
});
