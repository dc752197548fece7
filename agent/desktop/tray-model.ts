import { agentProcessLabel, type AgentMode, type Snapshot } from '../../protocol/agent-host.js';
import { linkStatus, type LinkTone } from '../../protocol/link-status.js';

export type TrayAction =
  'open-panel' | 'reconnect-now' | 'mode-legacy' | 'mode-enhanced' | 'toggle-start-at-login' | 'quit';

export type TrayMenuItem =
  | { kind: 'label'; label: string }
  | { kind: 'separator' }
  | { kind: 'action'; action: TrayAction; label: string; enabled: boolean }
  | { kind: 'radio'; action: TrayAction; label: string; checked: boolean; enabled: boolean }
  | { kind: 'checkbox'; action: TrayAction; label: string; checked: boolean };

export interface TrayModel {
  icon: LinkTone;
  tooltip: string;
  menu: TrayMenuItem[];
}

const MODE_LABEL: Record<AgentMode, string> = { legacy: 'Legacy mode', enhanced: 'Enhanced mode' };

/**
 * The tray icon, tooltip and menu for a snapshot — plain data, so the Electron side only renders
 * it and this stays testable. The words come from the same linkStatus() the panel's header uses.
 */
export function trayModel(snapshot: Snapshot | null, options: { startAtLogin: boolean; now: number }): TrayModel {
  if (!snapshot) {
    return { icon: 'reconnecting', tooltip: 'FarmLink — starting…', menu: baseMenu(null, options.startAtLogin) };
  }
  const status = linkStatus(snapshot.state, snapshot.stats, snapshot.started_at, options.now);
  // The tray is redrawn on changes, not every second: a countdown there would go stale.
  const label = status.label.replace(/ in \d+s$/, '…');
  const server = status.server ? snapshot.servers[status.server.index] : undefined;
  const where = server
    ? ` — ${server.role === 'primary' ? 'primary' : `fallback #${server.index}`}: ${server.configured_url}`
    : '';
  // Tooltips are short on Windows (127 characters): the status first, the server after.
  const tooltip = `FarmLink: ${label}${where}`.slice(0, 127);
  return { icon: status.tone, tooltip, menu: baseMenu(snapshot, options.startAtLogin, label) };
}

function baseMenu(snapshot: Snapshot | null, startAtLogin: boolean, statusLabel = 'Starting…'): TrayMenuItem[] {
  const modes = snapshot?.mode;
  const current = modes?.current ?? 'legacy';
  const modeItem = (mode: AgentMode): TrayMenuItem => {
    const available = modes ? modes.available.includes(mode) : mode === 'legacy';
    return {
      kind: 'radio',
      action: mode === 'legacy' ? 'mode-legacy' : 'mode-enhanced',
      label: available ? MODE_LABEL[mode] : `${MODE_LABEL[mode]} (not available yet)`,
      checked: current === mode,
      enabled: available,
    };
  };
  return [
    { kind: 'label', label: `FarmLink — ${statusLabel}` },
    // The app shows an agent another process runs: say so, since quitting the app leaves it running.
    ...(snapshot?.agent_process.attached
      ? [{ kind: 'label' as const, label: agentProcessLabel(snapshot.agent_process) }]
      : []),
    { kind: 'separator' },
    { kind: 'action', action: 'open-panel', label: 'Open panel', enabled: true },
    { kind: 'action', action: 'reconnect-now', label: 'Reconnect now', enabled: snapshot !== null },
    { kind: 'separator' },
    modeItem('legacy'),
    modeItem('enhanced'),
    { kind: 'separator' },
    { kind: 'checkbox', action: 'toggle-start-at-login', label: 'Start at login', checked: startAtLogin },
    { kind: 'separator' },
    { kind: 'action', action: 'quit', label: 'Quit FarmLink', enabled: true },
  ];
}
