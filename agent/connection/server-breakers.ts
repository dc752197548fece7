import { CONFIGURATION_CLOSE_CODES, CloseCode, UpgradeRefusal, closeCodeName } from '../../protocol/close-codes.js';
import type { BreakerStatus, Reason } from '../../protocol/connection-state.js';
import { redactUrl } from '../../protocol/server-url.js';
import { Breaker, type BreakerState } from '../../lib/circuit-breaker.js';
import type { Clock } from '../../lib/clock.js';

/** The agent's `breaker:` section, in ms. */
export interface ServerBreakerSettings {
  failures: number;
  windowMs: number;
  recoveryMs: number;
}

/** The `breaker:` section's defaults (protocol/config.ts says why they are not the hub's). */
export const DEFAULT_SERVER_BREAKER: ServerBreakerSettings = { failures: 3, windowMs: 600_000, recoveryMs: 120_000 };

/**
 * Closes before `registered` that say nothing about this PC: the hub is draining or restarting
 * (1001, 1012) or shedding load (1013). Backoff, not a breaker, is the answer to those.
 */
const NOT_ABOUT_THIS_PC: ReadonlySet<number> = new Set([CloseCode.GOING_AWAY, 1012, CloseCode.TRY_AGAIN_LATER]);

/** Upgrade refusals that are load shedding (they carry Retry-After), not a refusal of this PC. */
const LOAD_SHEDDING_STATUSES: ReadonlySet<number> = new Set([
  UpgradeRefusal.UNAUTHENTICATED_PER_ADDRESS,
  UpgradeRefusal.UNAUTHENTICATED_TOTAL,
]);

export interface EndedDial {
  reason: Reason;
  /** The attempt had got as far as `registered`. */
  registered: boolean;
  /** The HTTP status the upgrade was refused with, if it was. */
  httpStatus?: number | undefined;
  /** The reason text of the hub's close frame. */
  closeReason?: string | undefined;
}

/**
 * Did this server refuse this PC? Returns the short reason its breaker records, or null when the
 * end says nothing about this PC (network errors, timeouts, drains: what backoff is for).
 *
 * A refusal is a configuration close code (4401, 4403, 4426, 4422, 4440) at any time; an HTTP
 * answer to the upgrade other than load shedding; or an instant close: the hub closed the
 * connection before `registered` with a close frame (so not a network error).
 */
export function refusalOf(ended: EndedDial): string | null {
  const { reason } = ended;
  if (reason.code === 'handshake_rejected') {
    if (ended.httpStatus !== undefined && LOAD_SHEDDING_STATUSES.has(ended.httpStatus)) return null;
    return ended.httpStatus !== undefined ? `HTTP ${String(ended.httpStatus)}` : 'upgrade refused';
  }
  if (reason.code !== 'closed_by_hub' || reason.close_code === undefined) return null;
  const code = reason.close_code;
  const detail = `${String(code)} ${closeCodeName(code)}${ended.closeReason ? ` "${ended.closeReason}"` : ''}`;
  if (CONFIGURATION_CLOSE_CODES.has(code)) return detail;
  if (!ended.registered && !NOT_ABOUT_THIS_PC.has(code)) return `${detail} before registered`;
  return null;
}

/** How long until a server may be dialled: 0 now (closed, or half-open: the next dial is the probe). */
export interface ServerGate {
  msUntilRetry(index: number): number;
}

/**
 * One circuit breaker per configured server, so a server that keeps refusing this PC (a bad token,
 * an incompatible version, a hub that hangs up at once) is skipped instead of dialled at backoff
 * speed for ever, and probed again after the recovery time.
 */
export class ServerBreakers implements ServerGate {
  private readonly breakers: Breaker[];

  constructor(
    servers: readonly string[],
    settings: ServerBreakerSettings,
    private readonly clock: Clock,
  ) {
    this.breakers = servers.map(
      (url, index) =>
        new Breaker({
          name: `server #${String(index)} ${redactUrl(url)}`,
          failures: settings.failures,
          windowMs: settings.windowMs,
          recoveryMs: settings.recoveryMs,
          clock,
        }),
    );
  }

  /**
   * Counts a refusal. When it is the one that opened this server's breaker, returns the state it
   * was in (closed: the threshold was reached; half-open: the probe was refused); otherwise null.
   */
  refused(index: number, why: string): BreakerState | null {
    const breaker = this.at(index);
    const before = breaker.state;
    breaker.failure(why);
    return before !== 'open' && breaker.state === 'open' ? before : null;
  }

  /** The server registered this PC: its breaker closes. Returns the state it was in. */
  registered(index: number): BreakerState {
    const breaker = this.at(index);
    const before = breaker.state;
    breaker.success();
    return before;
  }

  state(index: number): BreakerState {
    return this.at(index).state;
  }

  msUntilRetry(index: number): number {
    return this.at(index).msUntilRetry();
  }

  /** Wall-clock epoch ms at which an open server is probed. */
  retryAt(index: number): number {
    return this.clock.now() + this.msUntilRetry(index);
  }

  status(index: number): BreakerStatus {
    return this.at(index).status();
  }

  private at(index: number): Breaker {
    const breaker = this.breakers[index];
    if (!breaker) throw new RangeError(`no server #${String(index)}`);
    return breaker;
  }
}
