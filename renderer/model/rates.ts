import type { ThroughputSample } from '../../protocol/agent-host.js';

export interface Rates {
  messagesInPerSec: number;
  messagesOutPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
}

export interface RatePoint extends Rates {
  at: number;
}

const ZERO: Rates = { messagesInPerSec: 0, messagesOutPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0 };

/** Per-second rates between consecutive counter samples; a counter that went down (a reset) gives no point. */
export function ratePoints(samples: readonly ThroughputSample[]): RatePoint[] {
  const points: RatePoint[] = [];
  let previous: ThroughputSample | undefined;
  for (const b of samples) {
    const a = previous;
    previous = b;
    if (a === undefined) continue;
    const seconds = (b.at - a.at) / 1000;
    if (seconds <= 0) continue;
    const d = (x: number, y: number) => (y - x) / seconds;
    const point = {
      at: b.at,
      messagesInPerSec: d(a.messages_received, b.messages_received),
      messagesOutPerSec: d(a.messages_sent, b.messages_sent),
      bytesInPerSec: d(a.bytes_received, b.bytes_received),
      bytesOutPerSec: d(a.bytes_sent, b.bytes_sent),
    };
    if (Object.values(point).every((v) => v >= 0)) points.push(point);
  }
  return points;
}

/** The latest rates: over the last sample interval. */
export function currentRates(samples: readonly ThroughputSample[]): Rates {
  const point = ratePoints(samples.slice(-2))[0];
  if (!point) return ZERO;
  const { at: _at, ...rates } = point;
  return rates;
}
