import type { ConnectionState, ConnectionStats } from './connection-state.js';

/** The three states of the tray icon and the panel's header colour. */
export type LinkTone = 'connected' | 'reconnecting' | 'offline';

/** Not connected for longer than this, the PC counts as offline (red), not merely reconnecting (yellow). */
export const OFFLINE_AFTER_MS = 60_000;

export interface LinkStatus {
  tone: LinkTone;
  /** "Connected", "Reconnecting in 4s", "Connecting…", "Offline — retrying in 40s", "Stopped". */
  label: string;
  /** The server in use or being tried, as configured, when there is one. */
  server: { index: number; url: string } | null;
}

/** What linkStatus and downSince read from ConnectionStats. */
export type LinkStats = Pick<ConnectionStats, 'disconnected_since' | 'last_success_at'>;

/**
 * When the current outage began: the moment the registered connection was lost, or the start if
 * the PC has not had a hub since. Null while connected. A registration long ago says nothing
 * about how long the link has been down.
 */
export function downSince(state: ConnectionState, stats: LinkStats, startedAt: number): number | null {
  if (state.phase === 'connected') return null;
  return stats.disconnected_since ?? startedAt;
}

/**
 * What the person at the PC is told at a glance, the same in the tray and in the panel:
 * green while registered; yellow while a recent loss is being repaired; red once it has lasted
 * OFFLINE_AFTER_MS, or when the agent is stopped.
 */
export function linkStatus(state: ConnectionState, stats: LinkStats, startedAt: number, now: number): LinkStatus {
  const longDown = now - (downSince(state, stats, startedAt) ?? now) > OFFLINE_AFTER_MS;
  switch (state.phase) {
    case 'connected':
      return { tone: 'connected', label: 'Connected', server: state.server };
    case 'connecting':
    case 'registering':
      return {
        tone: longDown ? 'offline' : 'reconnecting',
        label: longDown ? 'Offline — connecting…' : 'Connecting…',
        server: state.server,
      };
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((state.next_attempt_at - now) / 1000));
      return {
        tone: longDown ? 'offline' : 'reconnecting',
        label: longDown ? `Offline — retrying in ${seconds}s` : `Reconnecting in ${seconds}s`,
        server: state.next_server,
      };
    }
    case 'idle':
      // Idle after a link existed is a hand-over (new settings being applied), not a first start.
      return {
        tone: longDown ? 'offline' : 'reconnecting',
        label: stats.last_success_at === null ? 'Starting…' : 'Reconnecting…',
        server: null,
      };
    case 'stopping':
    case 'stopped':
      return { tone: 'offline', label: 'Stopped', server: null };
  }
}
