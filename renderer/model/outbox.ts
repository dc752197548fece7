import type { OutboxSummary } from '../../protocol/agent-host.js';
import { formatPercent } from './labels.js';

/** How full one bound is: a fraction for the bar (0–1, clamped), and words that say the same. */
export function fill(used: number, max: number): { fraction: number; percent: string } {
  const fraction = max > 0 ? Math.min(1, Math.max(0, used / max)) : 0;
  return { fraction, percent: formatPercent(fraction) };
}

/** A bar's tone: its colour always comes with the percentage in words. */
export function fillTone(fraction: number): 'good' | 'warn' | 'bad' {
  if (fraction >= 0.9) return 'bad';
  if (fraction >= 0.7) return 'warn';
  return 'good';
}

/** Messages given up since the agent started: dropped when full (per priority) and expired. */
export function givenUp(outbox: OutboxSummary): { total: number; dropped: number; text: string } {
  const { high, normal, low } = outbox.dropped;
  const dropped = high + normal + low;
  const total = dropped + outbox.expired;
  if (total === 0) return { total, dropped, text: 'None: every accepted message is delivered or still waiting.' };
  const parts: string[] = [];
  if (dropped > 0) {
    const byPriority = (
      [
        ['high', high],
        ['normal', normal],
        ['low', low],
      ] as const
    )
      .filter(([, n]) => n > 0)
      .map(([p, n]) => `${n.toLocaleString('en-US')} ${p}`)
      .join(', ');
    parts.push(`${dropped.toLocaleString('en-US')} dropped because the outbox was full (${byPriority})`);
  }
  if (outbox.expired > 0) parts.push(`${outbox.expired.toLocaleString('en-US')} expired before delivery`);
  return { total, dropped, text: `${parts.join('; ')}.` };
}

/** What a power cut can lose under the outbox's sync policy. */
export const SYNC_POLICY: Record<OutboxSummary['sync'], string> = {
  flush:
    'Sync: flush. A message counts as accepted once it is on disk: neither a killed agent nor a power cut loses it.',
  os:
    'Sync: os. A message counts as accepted once the operating system has it: a killed agent loses nothing, ' +
    'a power cut can lose the last moments of accepted messages.',
};
