import { z } from 'zod';

/**
 * Legacy-mode wire messages (docs/protocol.md): one JSON object per WebSocket text frame.
 * Objects are not strict: a peer ignores fields it does not know, so either side can add
 * optional fields without breaking older builds.
 */

export const AGENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const AgentIdSchema = z.string().regex(AGENT_ID_PATTERN, {
  error: 'expected 1–128 characters: letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
});

const Percent = z.number().min(0).max(100);
const EpochMs = z.number().nonnegative();
const ShortText = z.string().max(256);
const Seq = z.number().int().positive();
const CapabilityList = z.array(z.string().min(1).max(64)).max(32);

/**
 * How urgently an outbox message goes out and what a full outbox gives up first: high is sent at
 * once (it flushes the batch it joins), normal and low wait for the batch window; when the outbox
 * is full the oldest message of the lowest priority goes first.
 */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export const PrioritySchema = z.enum(PRIORITIES);
export type Priority = z.infer<typeof PrioritySchema>;

export const ErrorInfoSchema = z.object({
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

// ---- agent → hub -------------------------------------------------------------------------

export const HelloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.number().int().positive(),
  agent_id: AgentIdSchema,
  name: z.string().min(1).max(128),
  /** The agent's JWT when it is not sent in the Authorization header. */
  token: z.string().min(1).max(4096).optional(),
  version: ShortText,
  hostname: ShortText.optional(),
  platform: ShortText.optional(),
  /** What the agent can speak beyond legacy (`Capability` in protocol/version.ts); absent: legacy only. */
  capabilities: CapabilityList.optional(),
});

export const HeartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  /** Echoed in the ack so the agent can match it; older agents may leave it out. */
  seq: z.number().int().nonnegative().optional(),
  cpu_usage: Percent,
  ram_usage: Percent,
  timestamp: EpochMs,
});

export const DisconnectSchema = z.object({
  type: z.literal('disconnect'),
  reason: ShortText,
});

/**
 * `seq` on a result or an event: its number in the agent's outbox, increasing per agent across
 * reconnects and restarts (gaps where the outbox dropped or expired messages). In enhanced mode
 * the hub keeps each (agent, seq) once; in legacy mode it is informative only.
 */
const ResultOkSchema = z.object({
  type: z.literal('result'),
  seq: Seq.optional(),
  id: z.string().min(1).max(128),
  ok: z.literal(true),
  data: z.unknown(),
});
const ResultErrorSchema = z.object({
  type: z.literal('result'),
  seq: Seq.optional(),
  id: z.string().min(1).max(128),
  ok: z.literal(false),
  error: ErrorInfoSchema,
});
export const ResultSchema = z.discriminatedUnion('ok', [ResultOkSchema, ResultErrorSchema]);

export const EventSchema = z.object({
  type: z.literal('event'),
  seq: Seq.optional(),
  name: z.string().min(1).max(128),
  data: z.unknown(),
  timestamp: EpochMs,
});

export const AgentMessageSchema = z.discriminatedUnion('type', [
  HelloSchema,
  HeartbeatSchema,
  DisconnectSchema,
  ResultSchema,
  EventSchema,
]);

/** Messages that may travel inside an agent's batch: everything but hello, which is never batched. */
export const BatchedAgentMessageSchema = z.discriminatedUnion('type', [
  HeartbeatSchema,
  DisconnectSchema,
  ResultSchema,
  EventSchema,
]);
export type BatchedAgentMessage = z.infer<typeof BatchedAgentMessageSchema>;

/** Enhanced mode, agent → hub: one frame, several messages, in order. */
export const AgentBatchSchema = z.object({
  type: z.literal('batch'),
  messages: z.array(BatchedAgentMessageSchema).min(1).max(10_000),
});
export type AgentBatch = z.infer<typeof AgentBatchSchema>;

export type Hello = z.infer<typeof HelloSchema>;
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
export type Disconnect = z.infer<typeof DisconnectSchema>;
export type Result = z.infer<typeof ResultSchema>;
export type AgentEvent = z.infer<typeof EventSchema>;
export type AgentMessage = z.infer<typeof AgentMessageSchema>;

// ---- hub → agent -------------------------------------------------------------------------

export const HubLimitsSchema = z.object({
  /** Largest frame the hub accepts, in bytes; larger ones are closed with 1009. */
  max_payload_bytes: z.number().int().positive(),
  /** Sustained messages per second allowed before 4429. */
  max_messages_per_second: z.number().positive(),
  /** Messages allowed in a burst above the sustained rate. */
  burst_messages: z.number().int().positive(),
});
export type HubLimits = z.infer<typeof HubLimitsSchema>;

/** How either side batches in enhanced mode; the hub announces it in `registered` and may change it (`tune`). */
export const BatchSettingsSchema = z.object({
  /** Longest a normal or low priority message waits for others to share its frame. */
  window_ms: z.number().int().min(0).max(60_000),
  /** Most messages in one frame. */
  max_messages: z.number().int().min(1).max(10_000),
  /** Largest frame, in bytes (never more than `limits.max_payload_bytes`). */
  max_bytes: z.number().int().min(256),
});
export type BatchSettings = z.infer<typeof BatchSettingsSchema>;

export const RegisteredSchema = z.object({
  type: z.literal('registered'),
  agent_id: AgentIdSchema,
  session_id: z.string().min(1).max(128),
  hub_id: z.string().min(1).max(128),
  server_time: EpochMs,
  limits: HubLimitsSchema,
  /** The subset of hello's capabilities the hub grants on this connection; absent or empty: legacy. */
  capabilities: CapabilityList.optional(),
  /**
   * Enhanced only: the highest `seq` of this agent the hub's event sink holds (0: none). The agent
   * forgets everything up to it and sends what follows, so a reconnect to any hub of the farm resumes.
   */
  acked_seq: z.number().int().nonnegative().optional(),
  /** Enhanced only: how to batch toward this hub. */
  batch: BatchSettingsSchema.optional(),
  /**
   * Enhanced, while the hub is under load: beat no more often than this (an agent whose own interval
   * is longer keeps it); absent: the agent's own interval. A later `tune` changes it.
   */
  heartbeat_interval_ms: z.number().int().positive().optional(),
});

export const HeartbeatAckSchema = z.object({
  type: z.literal('heartbeat_ack'),
  seq: z.number().int().nonnegative().optional(),
  /** The heartbeat's own timestamp, echoed. */
  timestamp: EpochMs,
  server_time: EpochMs,
});

export const CommandSchema = z.object({
  type: z.literal('command'),
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(128),
  args: z.record(z.string(), z.unknown()).default({}),
});

export const DrainingSchema = z.object({
  type: z.literal('draining'),
  reason: ShortText,
  /** When the hub will close the connections still open, epoch ms. */
  deadline: EpochMs.optional(),
});

export const BroadcastSchema = z.object({
  type: z.literal('broadcast'),
  server_time: EpochMs,
  data: z.record(z.string(), z.unknown()),
});

/** Enhanced: every outbox message up to `seq` is durably in the hub's sink (or was a duplicate of one that is). */
export const AckSchema = z.object({
  type: z.literal('ack'),
  seq: z.number().int().nonnegative(),
});

/**
 * Enhanced: the hub could not take the messages from `seq` on (its sink is failing, or its breaker
 * is open). Nothing from `seq` on was kept; the agent keeps them and sends them again after
 * `retry_after_ms`, on this connection or the next.
 */
export const NackSchema = z.object({
  type: z.literal('nack'),
  seq: Seq,
  error: ErrorInfoSchema,
  retry_after_ms: z.number().int().nonnegative(),
});

/** The hub is under load (or no longer is): batch and beat at this pace from now on. */
export const TuneSchema = z.object({
  type: z.literal('tune'),
  batch: BatchSettingsSchema.optional(),
  /**
   * Beat no more often than this (the agent keeps its own interval when that is longer); null:
   * back to the agent's own interval; absent: unchanged.
   */
  heartbeat_interval_ms: z.number().int().positive().nullable().optional(),
  reason: ShortText,
});

/** The token the agent registered with has expired; the hub closes with 4440 right after. */
export const TokenExpiredSchema = z.object({
  type: z.literal('token_expired'),
  expired_at: EpochMs,
  reason: ShortText,
});

const SingleHubMessageSchema = z.discriminatedUnion('type', [
  RegisteredSchema,
  HeartbeatAckSchema,
  CommandSchema,
  DrainingSchema,
  BroadcastSchema,
  AckSchema,
  NackSchema,
  TuneSchema,
  TokenExpiredSchema,
]);

/** Enhanced mode, hub → agent: one frame, several messages, in order. Batches do not nest. */
export const HubBatchSchema = z.object({
  type: z.literal('batch'),
  messages: z.array(SingleHubMessageSchema).min(1).max(10_000),
});
export type HubBatch = z.infer<typeof HubBatchSchema>;

/** What one hub message is; a `batch` frame carries several (the link unpacks them). */
export const HubMessageSchema = SingleHubMessageSchema;

export type Registered = z.infer<typeof RegisteredSchema>;
export type HeartbeatAck = z.infer<typeof HeartbeatAckSchema>;
export type Command = z.infer<typeof CommandSchema>;
export type Draining = z.infer<typeof DrainingSchema>;
export type Broadcast = z.infer<typeof BroadcastSchema>;
export type Ack = z.infer<typeof AckSchema>;
export type Nack = z.infer<typeof NackSchema>;
export type Tune = z.infer<typeof TuneSchema>;
export type TokenExpired = z.infer<typeof TokenExpiredSchema>;
export type HubMessage = z.infer<typeof HubMessageSchema>;
export type HubMessageType = HubMessage['type'];
export type AgentMessageType = AgentMessage['type'];

/** Short, single-line description of why a message failed its schema, for close reasons and logs. */
export function describeIssues(error: z.ZodError, max = 3): string {
  return error.issues
    .slice(0, max)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(message)'}: ${issue.message}`)
    .join('; ');
}
