import { describe, expect, it } from 'vitest';
import type { ConnectionStats } from '../../protocol/connection-state.js';
import { NOTHING_CARRIED, withCarried } from './carried-stats.js';

const stats = (over: Partial<ConnectionStats> = {}): ConnectionStats => ({
  connected_at: null,
  last_message_at: null,
  reconnect_count: 0,
  messages_sent: 0,
  messages_received: 0,
  bytes_sent: 0,
  bytes_received: 0,
  server: null,
  servers: [],
  last_error: null,
  last_success_at: null,
  disconnected_since: null,
  last_heartbeat_rtt_ms: null,
  last_ping_rtt_ms: null,
  heartbeat_rtt: [],
  heartbeat_lost: [],
  ...over,
});

describe('withCarried (settings applied: a reconnect, not a new PC)', () => {
  // The old agent: registered at 1 000, last message at 9 000, stopped for the apply at 10 000.
  const old = stats({
    last_success_at: 1000,
    disconnected_since: 10_000,
    last_message_at: 9000,
    messages_received: 40,
    messages_sent: 30,
    bytes_received: 4000,
    bytes_sent: 3000,
    last_heartbeat_rtt_ms: 3,
    heartbeat_rtt: [{ at: 9000, rtt_ms: 3 }],
    last_error: { code: 'stop_requested', message: 'x', at: 10_000 },
  });
  const carried = withCarried(NOTHING_CARRIED, old, { historyCutoff: 0, replacing: true });

  it('keeps the outage dated from the apply, the last message and every counter while the new agent has not registered', () => {
    const fresh = stats({
      messages_sent: 1,
      bytes_sent: 10,
      last_error: { code: 'connect_refused', message: 'refused', at: 10_500 },
    });
    expect(withCarried(carried, fresh, { historyCutoff: 0 })).toMatchObject({
      disconnected_since: 10_000,
      last_success_at: 1000,
      last_message_at: 9000,
      messages_received: 40,
      messages_sent: 31,
      bytes_sent: 3010,
      last_heartbeat_rtt_ms: 3,
      heartbeat_rtt: [{ at: 9000, rtt_ms: 3 }],
      last_error: { code: 'connect_refused', at: 10_500 },
      reconnect_count: 1,
    });
  });

  it("takes the new agent's own figures once it has them", () => {
    const registered = stats({
      connected_at: 11_000,
      last_success_at: 11_000,
      last_message_at: 11_200,
      messages_received: 2,
      last_heartbeat_rtt_ms: 5,
    });
    expect(withCarried(carried, registered, { historyCutoff: 0 })).toMatchObject({
      disconnected_since: null,
      connected_at: 11_000,
      last_success_at: 11_000,
      last_message_at: 11_200,
      messages_received: 42,
      last_heartbeat_rtt_ms: 5,
    });
  });

  it('goes on dating an outage that began before the apply, and from the start when there never was a link', () => {
    const alreadyDown = withCarried(NOTHING_CARRIED, stats({ last_success_at: 1000, disconnected_since: 5000 }), {
      historyCutoff: 0,
      replacing: true,
    });
    expect(withCarried(alreadyDown, stats(), { historyCutoff: 0 }).disconnected_since).toBe(5000);
    const neverUp = withCarried(NOTHING_CARRIED, stats({ messages_sent: 3 }), { historyCutoff: 0, replacing: true });
    expect(withCarried(neverUp, stats(), { historyCutoff: 0 })).toMatchObject({
      disconnected_since: null,
      last_success_at: null,
      reconnect_count: 0,
      messages_sent: 3,
    });
  });

  it('drops carried heartbeat history older than the window', () => {
    expect(withCarried(carried, stats({ heartbeat_lost: [20_000] }), { historyCutoff: 9500 })).toMatchObject({
      heartbeat_rtt: [],
      heartbeat_lost: [20_000],
    });
  });
});
