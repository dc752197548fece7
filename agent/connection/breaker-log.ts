import type { Logger } from 'pino';
import { redactUrl } from '../../protocol/server-url.js';
import type { BreakerState } from '../../lib/circuit-breaker.js';
import type { Clock } from '../../lib/clock.js';
import { fmtMs } from './describe.js';
import type { NextAttempt } from './fallback-rotation.js';
import type { ServerBreakerSettings, ServerBreakers } from './server-breakers.js';

/**
 * The log lines of the per-server breakers: when one opens (and where the agent goes instead),
 * when every server is refusing (and when the first probe goes), each probe, and each recovery.
 */
export class BreakerLog {
  constructor(
    private readonly log: Logger,
    private readonly servers: readonly string[],
    private readonly breakers: ServerBreakers,
    private readonly settings: ServerBreakerSettings,
    private readonly clock: Clock,
  ) {}

  /** A refusal opened `index`'s breaker, from `from` (closed: the threshold; half-open: a refused probe). */
  opened(index: number, from: BreakerState, next: NextAttempt): void {
    const status = this.breakers.status(index);
    const why = status.reason ?? 'refused';
    const until = clockTime(status.retry_at ?? this.breakers.retryAt(index));
    const what =
      from === 'half-open'
        ? `still refuses this PC (${why}) after ${fmtMs(this.settings.recoveryMs)}`
        : `refused this PC ${this.settings.failures} times in ${fmtMs(this.settings.windowMs)} (${why})`;
    const then = next.allOpen ? 'no server left to try' : `next: ${this.describe(next.index)}`;
    this.log.warn(
      { server: index, url: this.url(index), breaker: 'open', reason: why, retry_at: status.retry_at },
      `${cap(this.describe(index))} ${what}: skipping it until ${until}; ${then}`,
    );
  }

  /** Every server's breaker is open: the agent waits for the first probe. */
  waitingForProbe(next: NextAttempt): void {
    const at = this.clock.now() + next.delayMs;
    this.log.warn(
      { server: next.index, delay_ms: Math.round(next.delayMs), breaker: 'open' },
      `Every server refuses this PC (all ${this.servers.length} breakers open): ` +
        `probing ${this.describe(next.index)} at ${clockTime(at)}, in ${fmtMs(next.delayMs)}`,
    );
  }

  /** Called before each dial: a dial to a half-open server is its probe. */
  dialling(index: number): void {
    if (this.breakers.state(index) !== 'half-open') return;
    const why = this.breakers.status(index).reason;
    this.log.info(
      { server: index, url: this.url(index), breaker: 'half-open' },
      `Probing ${this.describe(index)} again${why ? ` (it refused this PC: ${why})` : ''}`,
    );
  }

  /** `index` registered this PC; its breaker was `before`. */
  registered(index: number, before: BreakerState): void {
    if (before === 'closed') return;
    this.log.info(
      { server: index, url: this.url(index), breaker: 'closed' },
      `${cap(this.describe(index))} accepts this PC again: its breaker is closed`,
    );
  }

  private url(index: number): string {
    return redactUrl(this.servers[index] ?? '');
  }

  private describe(index: number): string {
    const which = index === 0 ? 'primary' : `fallback #${index}/${this.servers.length - 1}`;
    return `server #${index} (${which}, ${this.url(index)})`;
  }
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** HH:MM:SS in the PC's local time, for the person reading the log. */
export function clockTime(epochMs: number): string {
  return new Date(epochMs).toLocaleTimeString('en-GB', { hour12: false });
}
