import type { Clock } from '../../lib/clock.js';
import { TunnelSession } from '../../lib/tunnel/tunnel-session.js';
import type { FarmSession, FarmSessionOptions } from './farm-ports.js';

/** Real sessions for the farm end: the client opens streams, this PC accepts them. */
export function farmSessionFactory(clock: Clock): (options: FarmSessionOptions) => FarmSession {
  return (options) => new TunnelSession({ role: 'farm', clock, ...options });
}
