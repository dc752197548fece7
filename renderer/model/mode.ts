import type { AgentMode, ModeFigures, Snapshot } from '../../protocol/agent-host.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import { formatDuration } from './format.js';
import type { Tone } from './labels.js';

export const MODE_LABEL: Record<AgentMode, string> = { enhanced: 'Enhanced', legacy: 'Legacy' };

export const MODE_SETTINGS: { setting: ProtocolModeSetting; label: string; what: string }[] = [
  { setting: 'auto', label: 'Auto', what: 'enhanced when the hub offers it, legacy otherwise.' },
  {
    setting: 'enhanced',
    label: 'Enhanced',
    what: 'batched frames, every message acknowledged by the hub and resent after a reconnect; only hubs that offer it.',
  },
  { setting: 'legacy', label: 'Legacy', what: 'one message per frame, sent at most once; every hub speaks it.' },
];

/** A switch asked for from the panel, until the agent is connected in the mode it asked for. */
export interface ModeSwitch {
  to: ProtocolModeSetting;
  /** The session when the switch was asked for: a new one means the agent has reconnected. */
  fromSession: string | null;
  fromSetting: ProtocolModeSetting;
}

export function startModeSwitch(to: ProtocolModeSetting, snapshot: Snapshot | null): ModeSwitch {
  const state = snapshot?.state;
  return {
    to,
    fromSession: state?.phase === 'connected' ? state.session_id : null,
    fromSetting: snapshot?.mode.configured ?? 'auto',
  };
}

/**
 * Whether a switch is over. The agent reconnects only when the connection's mode does not fit the
 * new setting, so a switch is over once the agent is registered on a new session, or is still
 * registered in a mode that already fits. Auto after legacy always reconnects (the legacy
 * connection never offered enhanced mode). While the agent has no connection there is nothing to
 * wait for once it has taken the setting.
 */
export function modeSwitchSettled(sw: ModeSwitch, snapshot: Snapshot): boolean {
  if (snapshot.mode.configured !== sw.to) return false;
  const { state } = snapshot;
  if (sw.fromSession === null) return true;
  if (state.phase !== 'connected') return false;
  if (state.session_id !== sw.fromSession) return true;
  if (sw.to === 'auto') return sw.fromSetting !== 'legacy';
  return snapshot.mode.current === sw.to;
}

/** The line under the toggle: the mode in use, and whether the hub agreed to it. */
export function modeStatus(snapshot: Pick<Snapshot, 'mode' | 'state'>): { text: string; tone: Tone } {
  const { mode, state } = snapshot;
  const label = MODE_LABEL[mode.current];
  if (state.phase !== 'connected') {
    return { text: `Not connected: the next connection asks for ${mode.current} mode first`, tone: 'neutral' };
  }
  if (!mode.negotiated) return { text: `${label}: not yet agreed with ${state.hub_id}`, tone: 'warn' };
  // Auto fell back to legacy: agreed, but not what auto asks for first; the line below says why.
  if (mode.current === 'legacy' && mode.configured === 'auto' && mode.unavailable.enhanced !== undefined) {
    return { text: `${label} — agreed with ${state.hub_id}; enhanced is not available`, tone: 'warn' };
  }
  return { text: `${label} — agreed with ${state.hub_id}`, tone: 'good' };
}

/** One protocol mode's figures as the side-by-side table shows them. */
export interface FigureRow {
  frames: { sent: number; received: number };
  messages: { sent: number; received: number };
  bytes: { sent: number; received: number };
  /** Messages per frame each way; null before the first frame. */
  perFrame: { sent: number | null; received: number | null };
  /** Bytes per message each way; null before the first message. */
  bytesPerMessage: { sent: number | null; received: number | null };
  connected: string;
  used: boolean;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

export function figureRow(f: ModeFigures): FigureRow {
  return {
    frames: { sent: f.frames_sent, received: f.frames_received },
    messages: { sent: f.messages_sent, received: f.messages_received },
    bytes: { sent: f.bytes_sent, received: f.bytes_received },
    perFrame: { sent: ratio(f.messages_sent, f.frames_sent), received: ratio(f.messages_received, f.frames_received) },
    bytesPerMessage: {
      sent: ratio(f.bytes_sent, f.messages_sent),
      received: ratio(f.bytes_received, f.messages_received),
    },
    connected: formatDuration(f.connected_ms),
    used: f.connected_ms > 0 || f.frames_sent + f.frames_received > 0,
  };
}

/**
 * What batching saved, in words: frames per message in enhanced mode against legacy's one frame
 * per message. Null until enhanced mode has carried messages.
 */
export function batchingSaving(figures: Snapshot['mode_figures']): string | null {
  const { enhanced } = figures;
  const messages = enhanced.messages_sent + enhanced.messages_received;
  const frames = enhanced.frames_sent + enhanced.frames_received;
  if (messages === 0 || frames === 0) return null;
  const saved = 1 - frames / messages;
  if (saved <= 0) return 'Enhanced mode has not shared a frame between messages yet (traffic has been sparse).';
  // Past 95 % a percentage hides the difference (99.6 % rounds to "100 % fewer"): say how many times fewer.
  const amount =
    saved >= 0.95
      ? `${Math.floor(messages / frames).toLocaleString('en-US')}× fewer`
      : `${Math.round(saved * 100)}% fewer`;
  return (
    `Enhanced mode carried ${messages.toLocaleString('en-US')} messages in ${frames.toLocaleString('en-US')} frames: ` +
    `${amount} frames than legacy's one per message.`
  );
}

/** "3.2", "12", "—". */
export function formatPerFrame(value: number | null): string {
  if (value === null) return '—';
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
}
