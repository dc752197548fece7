import type { BreakerStatus } from '../../protocol/connection-state.js';
import { formatClock, formatDuration } from './format.js';
import type { Tone } from './labels.js';

export interface BreakerView {
  state: BreakerStatus['state'] | 'unknown';
  /** The words on the badge: the state is never told by colour alone. */
  label: string;
  tone: Tone;
  /** One line under the badge: why, or what is counted. */
  detail: string | null;
  /** The tooltip: what the state means for the agent. */
  hint: string;
}

/** What the server list says about one server's circuit breaker. */
export function breakerView(breaker: BreakerStatus | undefined, now: number): BreakerView {
  if (!breaker) {
    return { state: 'unknown', label: '—', tone: 'neutral', detail: null, hint: 'This agent reports no breaker' };
  }
  switch (breaker.state) {
    case 'open': {
      const until = breaker.retry_at;
      return {
        state: 'open',
        label: until !== null ? `Open until ${formatClock(until)}` : 'Open',
        tone: 'bad',
        detail: `Refused this PC: ${breaker.reason ?? 'no reason given'}`,
        hint:
          'This server keeps refusing this PC, so the agent skips it and uses the other servers' +
          (until !== null ? `; it tries it again in ${formatDuration(Math.max(0, until - now))}` : ''),
      };
    }
    case 'half-open':
      return {
        state: 'half-open',
        label: 'Probing',
        tone: 'warn',
        detail: breaker.reason !== null ? `Refused this PC: ${breaker.reason}` : null,
        hint: 'Its wait is over: the next dial to this server is a probe; registering closes the breaker again',
      };
    case 'closed':
      return {
        state: 'closed',
        label: 'Closed',
        tone: breaker.failures > 0 ? 'warn' : 'good',
        detail: breaker.failures > 0 ? `${breaker.failures} refusal${breaker.failures === 1 ? '' : 's'} lately` : null,
        hint: 'Dialled in its turn; a server that keeps refusing this PC is skipped for a while',
      };
  }
}
