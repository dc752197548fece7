import type { TunnelSessionInfo, TunnelSummary } from '../../protocol/tunnel.js';
import { formatBytes, formatClock, formatDuration, formatMs } from './format.js';

type Tone = 'good' | 'warn' | 'bad' | 'neutral';

export interface LinkView {
  tone: Tone;
  label: string;
  /** One sentence: what is happening and what comes next. */
  detail: string;
}

/** The tunnel socket to the broker, as the Tunnels card says it. */
export function tunnelLinkView(tunnel: TunnelSummary, now: number): LinkView {
  const { link } = tunnel;
  switch (link.state) {
    case 'off':
      return {
        tone: 'neutral',
        label: 'Off',
        detail:
          tunnel.services.length === 0
            ? 'No services exposed — add tunnel.services to the config (for example adb: "127.0.0.1:5037") and restart the agent.'
            : 'The tunnel is stopped.',
      };
    case 'connecting':
      return { tone: 'warn', label: 'Connecting', detail: `Connecting to ${link.broker_url ?? 'the broker'}…` };
    case 'connected':
      return {
        tone: 'good',
        label: 'Connected',
        detail:
          `Reachable through ${link.broker_url ?? 'the broker'}` +
          (link.observed_address ? `, which sees this PC at ${link.observed_address}.` : '.'),
      };
    case 'waiting': {
      const next =
        link.next_attempt_at === null
          ? ''
          : link.next_attempt_at <= now
            ? ' Trying again now.'
            : ` Next attempt in ${formatDuration(link.next_attempt_at - now)}.`;
      return {
        tone: 'bad',
        label: 'Waiting',
        detail: `No broker reachable${link.detail ? ` (${link.detail})` : ''}.${next}`,
      };
    }
  }
}

export const SESSION_STATE: Record<TunnelSessionInfo['state'], { label: string; tone: Tone; hint: string }> = {
  establishing: { label: 'Establishing', tone: 'warn', hint: 'Opened; waiting for the first path to answer' },
  active: { label: 'Active', tone: 'good', hint: 'Carrying traffic' },
  degraded: {
    label: 'Degraded',
    tone: 'warn',
    hint: 'A side is away: open connections wait for it up to the resume window, then the session ends',
  },
  closed: { label: 'Closed', tone: 'neutral', hint: 'Ended' },
};

export interface SessionRow {
  id: string;
  who: string;
  service: string;
  path: string;
  pathHint: string;
  rtt: string;
  bytesIn: string;
  bytesOut: string;
  streams: string;
  state: (typeof SESSION_STATE)[TunnelSessionInfo['state']];
  since: string;
  openedAt: string;
  lastRecovery: string | null;
}

/** One row per session: who → which service, by which path, and how it is doing. */
export function sessionRow(session: TunnelSessionInfo, now: number): SessionRow {
  const last = session.recoveries.at(-1);
  return {
    id: session.session_id,
    who: session.peer,
    service: session.service,
    path: session.path === null ? 'none' : session.path,
    pathHint:
      session.path === 'direct'
        ? 'A direct WebRTC path between the client and this PC'
        : session.path === 'relay'
          ? 'Through the broker in the hub'
          : 'No path at the moment',
    rtt: formatMs(session.rtt_ms),
    // From this PC's side: "in" came from the client, "out" went to it.
    bytesIn: formatBytes(session.bytes_in),
    bytesOut: formatBytes(session.bytes_out),
    streams: `${session.streams_open} open / ${session.streams_total}`,
    state: SESSION_STATE[session.state],
    since: formatDuration(now - session.created_at),
    openedAt: formatClock(session.created_at),
    lastRecovery: last
      ? `${last.kind.replaceAll('_', ' ')}: ${last.reason}${last.took_ms === null ? '' : ` (${formatMs(last.took_ms)})`}`
      : null,
  };
}

/** What the card says when no session is open. */
export function noSessionsText(tunnel: TunnelSummary): string {
  if (tunnel.services.length === 0) return 'Nothing can connect: no services are exposed.';
  const ended = tunnel.closed_total;
  return (
    'No one is connected. A client connects with: farmlink connect AGENT_ID SERVICE --hub URL --listen PORT' +
    (ended > 0 ? ` (${ended} session${ended === 1 ? '' : 's'} ended since the agent started).` : '.')
  );
}
