import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../protocol/agent-host.js';
import { autostartCommand, desktopEntry, isAutostartEnabled, setAutostart } from './autostart-linux.js';
import { trayModel } from './tray-model.js';

function snapshot(state: Snapshot['state'], lastSuccess: number | null): Snapshot {
  return {
    now: 0,
    started_at: 0,
    agent: { id: 'pc-1', name: 'PC 1', version: '0.1.0' },
    state,
    servers: [
      {
        index: 0,
        url: 'wss://a/api/v1/pc/ws',
        configured_url: 'https://a',
        role: 'primary',
        status: 'failed',
        attempts: 3,
        failures: 3,
        registrations: 0,
        last_error: null,
        last_success_at: null,
      },
      {
        index: 1,
        url: 'wss://b/api/v1/pc/ws',
        configured_url: 'https://b',
        role: 'fallback',
        status: 'active',
        attempts: 1,
        failures: 0,
        registrations: 1,
        last_error: null,
        last_success_at: lastSuccess,
      },
    ],
    stats: {} as Snapshot['stats'],
    throughput: [],
    quality: { level: 'good', median_rtt_ms: 20, loss: 0, samples: 3 },
    mode: { configured: 'auto', current: 'legacy', negotiated: true, available: ['legacy'], unavailable: {} },
    mode_figures: {} as Snapshot['mode_figures'],
    outbox: null,
    events: [],
    settings: {} as Snapshot['settings'],
    local_hub: null,
    cache: null,
    agent_process: { pid: 4242, runs_in: 'desktop', attached: false },
  };
}

describe('trayModel', () => {
  it('shows the state in the icon and the tooltip, with the server in use', () => {
    const now = 1_000_000;
    const s = snapshot(
      { phase: 'connected', server: { index: 1, url: 'wss://b/api/v1/pc/ws' }, since: 0, session_id: 'x', hub_id: 'h' },
      now,
    );
    s.stats = { last_success_at: now, disconnected_since: null } as Snapshot['stats'];
    const model = trayModel(s, { startAtLogin: false, now });
    expect(model.icon).toBe('connected');
    expect(model.tooltip).toBe('FarmLink: Connected — fallback #1: https://b');
  });

  it('never puts a ticking countdown in the tray, which is only redrawn on changes', () => {
    const now = 1_000_000;
    const s = snapshot(
      {
        phase: 'reconnecting',
        next_server: { index: 0, url: 'wss://a/api/v1/pc/ws' },
        next_attempt_at: now + 5000,
        delay_ms: 5000,
        backoff_step: 2,
      },
      now - 10_000,
    );
    s.stats = { last_success_at: now - 3_600_000, disconnected_since: now - 10_000 } as Snapshot['stats'];
    const model = trayModel(s, { startAtLogin: true, now });
    expect(model.icon).toBe('reconnecting');
    expect(model.tooltip).toBe('FarmLink: Reconnecting… — primary: https://a');
    expect(model.menu[0]).toEqual({ kind: 'label', label: 'FarmLink — Reconnecting…' });
  });

  it('has the menu the issue asks for: open, reconnect, mode radio (enhanced marked unavailable), start at login, quit', () => {
    const model = trayModel(null, { startAtLogin: true, now: 0 });
    const actions = model.menu.flatMap((i) => ('action' in i ? [[i.kind, i.action]] : []));
    expect(actions).toEqual([
      ['action', 'open-panel'],
      ['action', 'reconnect-now'],
      ['radio', 'mode-legacy'],
      ['radio', 'mode-enhanced'],
      ['checkbox', 'toggle-start-at-login'],
      ['action', 'quit'],
    ]);
    expect(model.menu).toContainEqual({
      kind: 'radio',
      action: 'mode-enhanced',
      label: 'Enhanced mode (not available yet)',
      checked: false,
      enabled: false,
    });
    expect(model.menu).toContainEqual({
      kind: 'checkbox',
      action: 'toggle-start-at-login',
      label: 'Start at login',
      checked: true,
    });
  });

  it('says in the menu when the app shows an agent another process runs, which quitting leaves running', () => {
    const now = 1_000_000;
    const s = snapshot(
      { phase: 'connected', server: { index: 1, url: 'wss://b/api/v1/pc/ws' }, since: 0, session_id: 'x', hub_id: 'h' },
      now,
    );
    s.stats = { last_success_at: now, disconnected_since: null } as Snapshot['stats'];
    expect(trayModel(s, { startAtLogin: false, now }).menu.filter((item) => item.kind === 'label')).toHaveLength(1);
    s.agent_process = { pid: 77, runs_in: 'headless', attached: true };
    expect(trayModel(s, { startAtLogin: false, now }).menu[1]).toEqual({
      kind: 'label',
      label: 'Attached to the agent running on this PC (pid 77)',
    });
  });
});

describe('Linux autostart', () => {
  it('writes an XDG autostart entry pointing at the AppImage when run from one, and removes it', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-autostart-'));
    const env = { XDG_CONFIG_HOME: home, APPIMAGE: '/home/op/Apps/FarmLink 1.0.AppImage' };
    expect(isAutostartEnabled(env)).toBe(false);
    setAutostart(true, env, '/tmp/.mount_xyz/farmlink');
    const text = fs.readFileSync(path.join(home, 'autostart', 'farmlink.desktop'), 'utf8');
    expect(text).toContain('Exec="/home/op/Apps/FarmLink 1.0.AppImage" --hidden');
    expect(isAutostartEnabled(env)).toBe(true);
    setAutostart(false, env);
    expect(isAutostartEnabled(env)).toBe(false);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('uses the running executable otherwise', () => {
    expect(autostartCommand({}, '/opt/FarmLink/farmlink')).toBe('/opt/FarmLink/farmlink');
    expect(desktopEntry('/opt/FarmLink/farmlink')).toMatch(/^\[Desktop Entry\]\nType=Application\n/);
  });
});
