import { z } from 'zod';

/**
 * The agent's connection as the outside world sees it: its state machine, the transitions
 * with their reasons, and ConnectionStats (the connection's counters plus per-server detail). Timestamps are
 * epoch milliseconds; durations are milliseconds.
 */

const EpochMs = z.number().nonnegative();

export const CONNECTION_PHASES = [
  'idle',
  'connecting',
  'registering',
  'connected',
  'reconnecting',
  'stopping',
  'stopped',
] as const;
export const ConnectionPhaseSchema = z.enum(CONNECTION_PHASES);
export type ConnectionPhase = z.infer<typeof ConnectionPhaseSchema>;

export const ServerRefSchema = z.object({
  /** 0 is the primary, 1… the fallbacks in configured order. */
  index: z.number().int().nonnegative(),
  /** The WebSocket endpoint actually dialled. */
  url: z.string(),
});
export type ServerRef = z.infer<typeof ServerRefSchema>;

export const ConnectionStateSchema = z.discriminatedUnion('phase', [
  z.object({ phase: z.literal('idle') }),
  z.object({ phase: z.literal('connecting'), server: ServerRefSchema, attempt: z.number().int().positive() }),
  z.object({ phase: z.literal('registering'), server: ServerRefSchema }),
  z.object({
    phase: z.literal('connected'),
    server: ServerRefSchema,
    since: EpochMs,
    session_id: z.string(),
    hub_id: z.string(),
    /** The protocol mode agreed with this hub; absent from older agents. */
    mode: z.enum(['legacy', 'enhanced']).optional(),
  }),
  z.object({
    phase: z.literal('reconnecting'),
    next_server: ServerRefSchema,
    next_attempt_at: EpochMs,
    delay_ms: z.number().nonnegative(),
    /** How many backoff waits in a row, 1 for the first. */
    backoff_step: z.number().int().nonnegative(),
  }),
  z.object({ phase: z.literal('stopping') }),
  z.object({ phase: z.literal('stopped') }),
]);
export type ConnectionState = z.infer<typeof ConnectionStateSchema>;

/**
 * Stable machine-readable reasons for transitions and errors. The message beside them is for people.
 */
export const REASON_CODES = [
  'start',
  'socket_open',
  'registered',
  'connect_refused',
  'connect_timeout',
  'dns_failed',
  'network_error',
  'tls_error',
  'handshake_rejected',
  'registration_timeout',
  'closed_by_hub',
  'ping_timeout',
  'heartbeat_timeout',
  'drained',
  'backoff_elapsed',
  'reconnect_requested',
  'stop_requested',
  'settings_changed',
  'protocol_error',
  /** The attempt could not even be set up (e.g. the token cannot be sent in an HTTP header). */
  'dial_failed',
  /** The protocol mode was switched (panel, settings): a graceful reconnect to the same server in the other mode. */
  'mode_changed',
  /** protocol.mode is enhanced and this hub does not offer it: the agent moves on as from a failed server. */
  'mode_unavailable',
  /** The hub said the agent's token expired (then closed with 4440). */
  'token_expired',
] as const;
export const ReasonCodeSchema = z.enum(REASON_CODES);
export type ReasonCode = z.infer<typeof ReasonCodeSchema>;

export const ReasonSchema = z.object({
  code: ReasonCodeSchema,
  message: z.string(),
  /** The WebSocket close code, when the reason is a close. */
  close_code: z.number().int().optional(),
});
export type Reason = z.infer<typeof ReasonSchema>;

export const ConnectionEventSchema = z.object({
  at: EpochMs,
  from: ConnectionPhaseSchema,
  to: ConnectionStateSchema,
  reason: ReasonSchema,
});
export type ConnectionEvent = z.infer<typeof ConnectionEventSchema>;

export const ErrorAtSchema = ReasonSchema.extend({ at: EpochMs });
export type ErrorAt = z.infer<typeof ErrorAtSchema>;

/**
 * A server's circuit breaker: open after too many refusals of this PC within a window (a bad
 * token, a protocol error, an instant close), so the agent moves on through the fallback list
 * instead of dialling it at backoff speed; half-open when the recovery time has passed and the
 * next dial is a probe.
 */
export const BreakerStatusSchema = z.object({
  state: z.enum(['closed', 'open', 'half-open']),
  /** Refusals counted in the current window. */
  failures: z.number().int().nonnegative(),
  /** Why it opened (the last refusal), null while closed. */
  reason: z.string().nullable(),
  opened_at: EpochMs.nullable(),
  /** When the next probe may go, null unless open. */
  retry_at: EpochMs.nullable(),
});
export type BreakerStatus = z.infer<typeof BreakerStatusSchema>;

export const ServerStatsSchema = z.object({
  index: z.number().int().nonnegative(),
  url: z.string(),
  attempts: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
  /** Times this server got as far as `registered`. */
  registrations: z.number().int().nonnegative(),
  last_error: ErrorAtSchema.nullable(),
  last_success_at: EpochMs.nullable(),
  /** Absent from agents that have no breakers (older builds). */
  breaker: BreakerStatusSchema.optional(),
});
export type ServerStats = z.infer<typeof ServerStatsSchema>;

export const RttSampleSchema = z.object({ at: EpochMs, rtt_ms: z.number().nonnegative() });
export type RttSample = z.infer<typeof RttSampleSchema>;

export const ConnectionStatsSchema = z.object({
  // the connection's counters
  connected_at: EpochMs.nullable(),
  last_message_at: EpochMs.nullable(),
  reconnect_count: z.number().int().nonnegative(),
  messages_sent: z.number().int().nonnegative(),
  messages_received: z.number().int().nonnegative(),
  bytes_sent: z.number().int().nonnegative(),
  bytes_received: z.number().int().nonnegative(),
  // ours
  server: ServerRefSchema.nullable(),
  servers: z.array(ServerStatsSchema),
  last_error: ErrorAtSchema.nullable(),
  last_success_at: EpochMs.nullable(),
  /**
   * When the registered connection was last lost (the start of the current outage); null while
   * connected, and before the first registration (then the outage began when the agent started).
   */
  disconnected_since: EpochMs.nullable(),
  last_heartbeat_rtt_ms: z.number().nonnegative().nullable(),
  last_ping_rtt_ms: z.number().nonnegative().nullable(),
  /** Recent heartbeat round trips, oldest first (bounded by count and age). */
  heartbeat_rtt: z.array(RttSampleSchema),
  /** When recent heartbeats went unacked for a whole interval (same bounds). */
  heartbeat_lost: z.array(EpochMs),
});
export type ConnectionStats = z.infer<typeof ConnectionStatsSchema>;
