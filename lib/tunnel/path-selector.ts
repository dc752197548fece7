import type { Clock, TimerHandle } from '../clock.js';
import type { TunnelPathKind } from '../../protocol/tunnel.js';

export interface PathSelectorOptions {
  clock: Clock;
  /** Direct must answer pings this long before traffic moves to it. */
  directHoldMs: number;
  /** The hold doubles after each fallback from direct within `flapWindowMs` of the last, up to this. */
  maxHoldMs?: number;
  /** Fallbacks further apart than this start again from `directHoldMs`. */
  flapWindowMs?: number;
  /** The path in use changed (null: none is usable). */
  onChange: (change: PathChange) => void;
}

export interface PathChange {
  from: TunnelPathKind | null;
  to: TunnelPathKind | null;
  /** Traffic left the direct path because it died or went away (a recovery to record). */
  fallback: boolean;
  reason: string;
}

export const PATH_SELECTOR_DEFAULTS = { directHoldMs: 10_000, maxHoldMs: 160_000, flapWindowMs: 180_000 } as const;

/**
 * Which path a session sends on: direct once it has answered pings without a break for the hold, else the
 * relay; off direct at once when it dies or goes. Each fallback doubles the next hold (up to a cap) until
 * a few minutes pass without one, so a direct path that keeps flapping cannot make the session flap with
 * it: it stays on the relay, coming back to direct only after ever longer quiet stretches.
 *
 * It only decides; the session feeds it path events and acts on `onChange`.
 */
export class PathSelector {
  private readonly clock: Clock;
  private readonly baseHoldMs: number;
  private readonly maxHoldMs: number;
  private readonly flapWindowMs: number;
  private readonly onChange: (change: PathChange) => void;

  private relayUp = false;
  /** Direct attached and not declared dead. */
  private directAlive = false;
  /** When direct's current unbroken run of answers began (monotonic), undefined before its first answer. */
  private directSince: number | undefined;
  private holdMs: number;
  private lastFallbackAt: number | undefined;
  private holdTimer: TimerHandle | undefined;
  private chosen: TunnelPathKind | null = null;
  private disposed = false;

  constructor(options: PathSelectorOptions) {
    this.clock = options.clock;
    this.baseHoldMs = options.directHoldMs;
    this.maxHoldMs = Math.max(options.maxHoldMs ?? PATH_SELECTOR_DEFAULTS.maxHoldMs, options.directHoldMs);
    this.flapWindowMs = options.flapWindowMs ?? PATH_SELECTOR_DEFAULTS.flapWindowMs;
    this.onChange = options.onChange;
    this.holdMs = this.baseHoldMs;
  }

  /** The path to send on now. */
  get current(): TunnelPathKind | null {
    return this.chosen;
  }

  /**
   * The hold direct must serve before it is used next: doubled by each fallback, back to the base once no
   * fallback came for the flap window.
   */
  get currentHoldMs(): number {
    const quiet = this.lastFallbackAt === undefined || this.clock.monotonic() - this.lastFallbackAt > this.flapWindowMs;
    return quiet ? this.baseHoldMs : this.holdMs;
  }

  /** A relay path is attached and answering (true), or gone or dead (false). */
  setRelay(up: boolean, reason: string): void {
    this.relayUp = up;
    this.decide(reason);
  }

  /** A direct path was attached (or came back to life): the hold starts at its first answer. */
  directAttached(reason: string): void {
    this.directAlive = true;
    this.directSince = undefined;
    this.decide(reason);
  }

  /** Direct answered a ping. */
  directAnswered(): void {
    if (!this.directAlive || this.directSince !== undefined) return;
    this.directSince = this.clock.monotonic();
    this.decide('direct path answering');
  }

  /** Direct missed its ping deadline, or was detached: off it at once. */
  directLost(reason: string): void {
    if (!this.directAlive) return;
    this.directAlive = false;
    this.directSince = undefined;
    if (this.chosen === 'direct') {
      this.holdMs = Math.min(this.currentHoldMs * 2, this.maxHoldMs);
      this.lastFallbackAt = this.clock.monotonic();
    }
    this.decide(reason);
  }

  dispose(): void {
    this.disposed = true;
    this.clock.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private directHeld(): boolean {
    if (!this.directAlive || this.directSince === undefined) return false;
    return this.clock.monotonic() - this.directSince >= this.currentHoldMs;
  }

  private decide(reason: string): void {
    if (this.disposed) return;
    this.clock.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    let next: TunnelPathKind | null;
    // Once on direct it stays there while direct lives: the hold guards the move to it, not the stay.
    if (this.directAlive && (this.chosen === 'direct' || this.directHeld())) next = 'direct';
    else if (this.relayUp) next = 'relay';
    else if (this.directAlive)
      next = 'direct'; // no relay: direct unproven beats nothing
    else next = null;
    if (next !== 'direct' && this.directAlive && this.directSince !== undefined) {
      const hold = this.currentHoldMs;
      const due = this.directSince + hold - this.clock.monotonic();
      this.holdTimer = this.clock.setTimeout(
        () => {
          this.holdTimer = undefined;
          this.decide(`direct path answered for ${hold} ms`);
        },
        Math.max(0, due),
      );
    }
    if (next === this.chosen) return;
    const from = this.chosen;
    this.chosen = next;
    this.onChange({ from, to: next, fallback: from === 'direct' && next !== 'direct', reason });
  }
}
