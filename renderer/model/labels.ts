import type { ServerStatus, Snapshot } from '../../protocol/agent-host.js';
import { downSince } from '../../protocol/link-status.js';
import { QUALITY_THRESHOLDS, type QualityLevel } from '../../protocol/quality.js';

/** Every coloured thing in the panel maps to one of these, and always comes with words. */
export type Tone = 'good' | 'warn' | 'bad' | 'neutral';

export const serverName = (index: number) => (index === 0 ? 'Primary' : `Fallback #${index}`);

export const SERVER_STATUS: Record<ServerStatus, { label: string; tone: Tone; hint: string }> = {
  active: { label: 'In use', tone: 'good', hint: 'Registered: the agent is connected through this server now' },
  connecting: { label: 'Connecting…', tone: 'warn', hint: 'The agent is trying this server now' },
  failed: { label: 'Failed', tone: 'bad', hint: 'The last attempt on this server failed' },
  ok: { label: 'Reachable', tone: 'neutral', hint: 'Worked last time it was used; not in use now' },
  untried: { label: 'Not tried', tone: 'neutral', hint: 'Not needed yet: the servers before it answered' },
};

export const QUALITY: Record<QualityLevel, { label: string; tone: Tone }> = {
  excellent: { label: 'Excellent', tone: 'good' },
  good: { label: 'Good', tone: 'good' },
  poor: { label: 'Poor', tone: 'warn' },
  disconnected: { label: 'Disconnected', tone: 'bad' },
};

/**
 * The quality as the panel shows it. Between the two connections of a mode switch asked for from
 * the panel the agent is briefly not registered: that is the switch the person just asked for,
 * not a lost link, so it is not shown as a red "Disconnected".
 */
export function qualityShown(
  level: QualityLevel,
  switchingMode: boolean,
): { label: string; tone: Tone; switching: boolean } {
  if (level === 'disconnected' && switchingMode) return { label: 'Switching mode…', tone: 'neutral', switching: true };
  return { ...QUALITY[level], switching: false };
}

export function formatPercent(fraction: number): string {
  const pct = fraction * 100;
  return `${pct > 0 && pct < 1 ? pct.toFixed(1) : Math.round(pct)}%`;
}

/** How the quality levels are judged, in words, from the same constants the agent uses. */
export function qualityRules(): string[] {
  const { window, excellent, good } = QUALITY_THRESHOLDS;
  return [
    `Judged on the last ${window} heartbeats: their median round trip and the share that got no answer.`,
    `Excellent: median ≤ ${excellent.maxMedianRttMs} ms and ${excellent.maxLoss === 0 ? 'none lost' : `≤ ${formatPercent(excellent.maxLoss)} lost`}.`,
    `Good: median ≤ ${good.maxMedianRttMs} ms and ≤ ${formatPercent(good.maxLoss)} lost.`,
    'Poor: slower or lossier than that.',
    'Disconnected: not registered with any hub.',
  ];
}

/**
 * The header's time figure: how long the link has been up, or how long it has been down (since
 * the connection was lost, or since the agent started if it never had one) — the same moment
 * the header's colour is judged from.
 */
export function linkDuration(
  snapshot: Pick<Snapshot, 'state' | 'stats' | 'started_at'>,
  now: number,
): { kind: 'up' | 'down'; ms: number; since: number } {
  const { state } = snapshot;
  if (state.phase === 'connected') return { kind: 'up', ms: Math.max(0, now - state.since), since: state.since };
  const since = downSince(state, snapshot.stats, snapshot.started_at) ?? now;
  return { kind: 'down', ms: Math.max(0, now - since), since };
}
