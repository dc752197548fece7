import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Breaker, type BreakerState } from '../lib/circuit-breaker.js';
import type { Clock } from '../lib/clock.js';

export interface HubBreakerSettings {
  failures: number;
  windowMs: number;
  recoveryMs: number;
}

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/**
 * The hub's circuit breakers, one per thing that can keep failing: the event sink ("sink") and
 * each message handler ("handler:<type>"). Each is exported as farmlink_hub_breaker_state{breaker}
 * (0 closed, 1 half-open, 2 open) with its transitions counted, and every transition is logged
 * once, saying what opened, why, and when it will be probed.
 */
export class HubBreakers {
  private readonly breakers = new Map<string, Breaker>();
  private readonly transitions: Counter<'breaker' | 'to'>;
  /** States read from elsewhere (the shared registry's Redis breaker lives in its cache). */
  private readonly external = new Map<string, () => BreakerState>();

  constructor(
    private readonly settings: HubBreakerSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    const breakers = this.breakers;
    const external = this.external;
    new Gauge({
      name: 'farmlink_hub_breaker_state',
      help: 'Circuit breakers of the hub: 0 closed, 1 half-open, 2 open',
      labelNames: ['breaker'],
      registers: [registry],
      collect() {
        for (const [name, breaker] of breakers) this.labels(name).set(STATE_VALUE[breaker.state]);
        for (const [name, state] of external) this.labels(name).set(STATE_VALUE[state()]);
      },
    });
    this.transitions = new Counter({
      name: 'farmlink_hub_breaker_transitions_total',
      help: 'Circuit breaker state changes, by breaker and the state it went to',
      labelNames: ['breaker', 'to'],
      registers: [registry],
    });
  }

  /** The breaker of this name, made on first use. */
  get(name: string): Breaker {
    let breaker = this.breakers.get(name);
    if (!breaker) {
      breaker = new Breaker({ name, ...this.settings, clock: this.clock });
      this.watch(breaker);
      this.breakers.set(name, breaker);
    }
    return breaker;
  }

  /** The breaker around one message type's handler. */
  handler(type: string): Breaker {
    return this.get(`handler:${type}`);
  }

  /** Exports a breaker kept elsewhere under this name. */
  exportState(name: string, state: () => BreakerState): void {
    this.external.set(name, state);
  }

  private watch(breaker: Breaker): void {
    breaker.events.on('state', ({ from, to, reason }) => {
      this.transitions.labels(breaker.name, to).inc();
      const fields = { breaker: breaker.name, from, to, reason };
      if (to === 'open') {
        const probeAt = new Date(this.clock.now() + this.settings.recoveryMs).toISOString();
        const failures =
          from === 'half-open'
            ? 'its probe failed'
            : `${this.settings.failures} failures within ${this.settings.windowMs / 1000} s`;
        this.logger.warn(
          { ...fields, probe_at: probeAt },
          `Circuit breaker ${breaker.name} opened: ${failures} (last: ${reason ?? 'unknown'}); ` +
            `failing fast until ${probeAt}, then one call probes it`,
        );
      } else if (to === 'half-open') {
        this.logger.info(fields, `Circuit breaker ${breaker.name} half-open: the next call probes it`);
      } else {
        this.logger.info(fields, `Circuit breaker ${breaker.name} closed again: a call succeeded`);
      }
    });
  }
}
