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

const ResultOkSchema = z.object({
  type: z.literal('result'),
  id: z.string().min(1).max(128),
  ok: z.literal(true),
  data: z.unknown(),
});
const ResultErrorSchema = z.object({
  type: z.literal('result'),
  id: z.string().min(1).max(128),
  ok: z.literal(false),
  error: ErrorInfoSchema,
});
export const ResultSchema = z.discriminatedUnion('ok', [ResultOkSchema, ResultErrorSchema]);

export const EventSchema = z.object({
  type: z.literal('event'),
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

export const RegisteredSchema = z.object({
  type: z.literal('registered'),
  agent_id: AgentIdSchema,
  session_id: z.string().min(1).max(128),
  hub_id: z.string().min(1).max(128),
  server_time: EpochMs,
  limits: HubLimitsSchema,
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

export const HubMessageSchema = z.discriminatedUnion('type', [
  RegisteredSchema,
  HeartbeatAckSchema,
  CommandSchema,
  DrainingSchema,
  BroadcastSchema,
]);

export type Registered = z.infer<typeof RegisteredSchema>;
export type HeartbeatAck = z.infer<typeof HeartbeatAckSchema>;
export type Command = z.infer<typeof CommandSchema>;
export type Draining = z.infer<typeof DrainingSchema>;
export type Broadcast = z.infer<typeof BroadcastSchema>;
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
