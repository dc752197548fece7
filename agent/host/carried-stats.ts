import type { ConnectionStats, ErrorAt } from '../../protocol/connection-state.js';

/**
 * What the agents replaced by earlier settings changes accumulated. Applying settings is a
 * reconnect, not a new PC: the person at it expects the counters, the last message, the latency
 * history and the start of the current outage to carry on across it — all of them, so that no
 * figure says "since the apply" while its neighbour says "since the start".
 */
export type CarriedStats = Pick<
  ConnectionStats,
  | 'messages_sent'
  | 'messages_received'
  | 'bytes_sent'
  | 'bytes_received'
  | 'reconnect_count'
  | 'heartbeat_rtt'
  | 'heartbeat_lost'
  | 'last_message_at'
  | 'last_success_at'
  | 'disconnected_since'
  | 'last_error'
  | 'last_heartbeat_rtt_ms'
  | 'last_ping_rtt_ms'
>;

export const NOTHING_CARRIED: CarriedStats = {
  messages_sent: 0,
  messages_received: 0,
  bytes_sent: 0,
  bytes_received: 0,
  reconnect_count: 0,
  heartbeat_rtt: [],
  heartbeat_lost: [],
  last_message_at: null,
  last_success_at: null,
  disconnected_since: null,
  last_error: null,
  last_heartbeat_rtt_ms: null,
  last_ping_rtt_ms: null,
};

export interface CarryOptions {
  /** Heartbeat history older than this is dropped (the panel graphs 15 minutes). */
  historyCutoff: number;
  /**
   * Set when `current` is the agent being replaced: its registration and the next agent's are
   * one more reconnect — if it ever registered (a link that never came up is not re-made).
   */
  replacing?: boolean;
}

/** The current agent's stats with what earlier agents carried. Pure: the caller keeps the result to carry it on. */
export function withCarried(carried: CarriedStats, current: ConnectionStats, options: CarryOptions): ConnectionStats {
  const registeredOnce = current.last_success_at !== null;
  return {
    ...current,
    messages_sent: current.messages_sent + carried.messages_sent,
    messages_received: current.messages_received + carried.messages_received,
    bytes_sent: current.bytes_sent + carried.bytes_sent,
    bytes_received: current.bytes_received + carried.bytes_received,
    reconnect_count:
      current.reconnect_count +
      carried.reconnect_count +
      (options.replacing && (registeredOnce || current.reconnect_count > 0) ? 1 : 0),
    heartbeat_rtt: [...carried.heartbeat_rtt.filter((s) => s.at >= options.historyCutoff), ...current.heartbeat_rtt],
    heartbeat_lost: [...carried.heartbeat_lost.filter((at) => at >= options.historyCutoff), ...current.heartbeat_lost],
    last_message_at: latest(current.last_message_at, carried.last_message_at),
    last_success_at: current.last_success_at ?? carried.last_success_at,
    // Until the new agent registers, the outage that began before it (at the apply, or earlier) goes on.
    disconnected_since: registeredOnce ? current.disconnected_since : carried.disconnected_since,
    last_error: latestError(current.last_error, carried.last_error),
    last_heartbeat_rtt_ms: current.last_heartbeat_rtt_ms ?? carried.last_heartbeat_rtt_ms,
    last_ping_rtt_ms: current.last_ping_rtt_ms ?? carried.last_ping_rtt_ms,
  };
}

function latest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

function latestError(a: ErrorAt | null, b: ErrorAt | null): ErrorAt | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.at >= b.at ? a : b;
}
