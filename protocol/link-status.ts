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

/**
 * What the person at the PC is told at a glance, the same in the tray and in the panel:
 * green while registered; yellow while a recent loss is being repaired; red once it has lasted
 * OFFLINE_AFTER_MS, or when the agent is stopped.
 */
export function linkStatus(state: ConnectionState, stats: Pick<ConnectionStats, 'last_success_at'>, startedAt: number, now: number): LinkStatus {
  const downSince = stats.last_success_at ?? startedAt;
  const longDown = now - downSince > OFFLINE_AFTER_MS;
  switch (state.phase) {
    case 'connected':
      return { tone: 'connected', label: 'Connected', server: state.server };
    case 'connecting':
    case 'registering':
      return { tone: longDown ? 'offline' : 'reconnecting', label: longDown ? 'Offline — connecting…' : 'Connecting…', server: state.server };
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((state.next_attempt_at - now) / 1000));
      return {
        tone: longDown ? 'offline' : 'reconnecting',
        label: longDown ? `Offline — retrying in ${seconds}s` : `Reconnecting in ${seconds}s`,
        server: state.next_server,
      };
    }
    case 'idle':
      return { tone: 'reconnecting', label: 'Starting…', server: null };
    case 'stopping':
    case 'stopped':
      return { tone: 'offline', label: 'Stopped', server: null };
  }
}
