import { z } from 'zod';
import {
  AgentSectionSchema,
  ConnectionSectionSchema,
  LOG_LEVELS,
  ProtocolModeSettingSchema,
  ServerSectionSchema,
  agentToken,
} from './config.js';
import { AgentIdSchema, PrioritySchema } from './messages.js';
import { TunnelSummarySchema } from './tunnel.js';
import {
  ConnectionEventSchema,
  ConnectionStateSchema,
  ConnectionStatsSchema,
  ServerStatsSchema,
} from './connection-state.js';

/**
 * The AgentHost API: what the panel (Electron renderer or a browser) can see and do. One schema,
 * like Mullvad's single IPC schema: the host side checks every call's input against it and the
 * renderer's client is typed from it, over either transport (Electron IPC or the headless
 * panel's WebSocket). Defined here once; nothing else declares these shapes.
 */

const EpochMs = z.number().nonnegative();

export const AGENT_MODES = ['legacy', 'enhanced'] as const;
export const AgentModeSchema = z.enum(AGENT_MODES);
export type AgentMode = z.infer<typeof AgentModeSchema>;

/** Where a server stands, for the panel's server list. */
export const SERVER_STATUSES = ['active', 'connecting', 'failed', 'ok', 'untried'] as const;
export const ServerStatusSchema = z.enum(SERVER_STATUSES);
export type ServerStatus = z.infer<typeof ServerStatusSchema>;

export const PanelServerSchema = ServerStatsSchema.extend({
  /** The URL as configured (the stats' `url` is the WebSocket endpoint dialled). */
  configured_url: z.string(),
  role: z.enum(['primary', 'fallback']),
  status: ServerStatusSchema,
});
export type PanelServer = z.infer<typeof PanelServerSchema>;

export const ThroughputSampleSchema = z.object({
  at: EpochMs,
  messages_sent: z.number().int().nonnegative(),
  messages_received: z.number().int().nonnegative(),
  bytes_sent: z.number().int().nonnegative(),
  bytes_received: z.number().int().nonnegative(),
});
export type ThroughputSample = z.infer<typeof ThroughputSampleSchema>;

export const LogLevelNameSchema = z.enum(LOG_LEVELS);
export const LogEntrySchema = z.object({
  /** Increasing, so a client can ask for what it has not seen. */
  seq: z.number().int().nonnegative(),
  time: EpochMs,
  level: LogLevelNameSchema,
  msg: z.string(),
  component: z.string().optional(),
});
export type LogEntry = z.infer<typeof LogEntrySchema>;

/**
 * What the Settings form edits: the servers, the connection timings, the agent's name and token.
 * Built from the config file's own section schemas, so the form and the file accept and reject
 * exactly the same values with the same messages.
 */
export const SettingsSchema = z.strictObject({
  server: ServerSectionSchema,
  connection: ConnectionSectionSchema,
  agent: AgentSectionSchema.pick({ name: true }).extend({
    /** A new token; omitted or empty keeps the current one (the current one is never sent out). */
    token: z.union([z.literal(''), agentToken()]).optional(),
  }),
});
export type SettingsInput = z.input<typeof SettingsSchema>;
export type Settings = z.output<typeof SettingsSchema>;

const CacheTierSchema = z.object({
  tier: z.enum(['memory', 'redis', 'disk']),
  hits: z.number().int().nonnegative(),
  misses: z.number().int().nonnegative(),
  /** Entries held; null where the tier cannot count them cheaply (Redis). */
  entries: z.number().int().nonnegative().nullable(),
  errors: z.number().int().nonnegative(),
});

/** The agent's cache (command results, the last server that worked): how well it is doing. */
export const CacheSummarySchema = z.object({
  /** Lookups answered by some tier / all lookups; null before the first lookup. */
  hit_ratio: z.number().min(0).max(1).nullable(),
  hits: z.number().int().nonnegative(),
  misses: z.number().int().nonnegative(),
  /** Loader runs (e.g. adb calls) and the callers that shared one instead of starting another. */
  loads: z.number().int().nonnegative(),
  single_flight_joins: z.number().int().nonnegative(),
  evictions: z.number().int().nonnegative(),
  memory_bytes: z.number().int().nonnegative(),
  tiers: z.array(CacheTierSchema),
  /**
   * At start-up: the live entries found on disk, how many of them were loaded into memory, and
   * how long it took. What was written to disk since shows in the disk tier's entries, not here.
   * Null without a disk tier.
   */
  warm_start: z
    .object({
      entries: z.number().int().nonnegative(),
      found: z.number().int().nonnegative(),
      ms: z.number().nonnegative(),
    })
    .nullable(),
});
export type CacheSummary = z.infer<typeof CacheSummarySchema>;

const Count = z.number().int().nonnegative();
const ByPriority = z.object({ high: Count, normal: Count, low: Count });

/**
 * The durable outbox: what waits to be delivered, what the hub has not acknowledged yet, and what
 * was given up (dropped when full, expired past its lifetime) — never silently.
 */
export const OutboxSummarySchema = z.object({
  /** error: the outbox cannot write (disk full, unwritable); new messages are refused, the connection stays up. */
  state: z.enum(['ok', 'error']),
  error: z.string().nullable(),
  /** Messages held (not yet acknowledged by a hub), and their bytes. */
  depth: Count,
  bytes: Count,
  max_messages: Count,
  max_bytes: Count,
  by_priority: ByPriority,
  /** Sent on the current connection and waiting for the hub's acknowledgement. */
  unacked: Count,
  /** The sequence number the next accepted message gets, and the last one a hub acknowledged. */
  next_seq: z.number().int().positive(),
  acked_seq: Count,
  oldest_accepted_at: EpochMs.nullable(),
  /** Since the agent started: accepted, delivered (acknowledged, or written in legacy mode), dropped, expired. */
  accepted: Count,
  delivered: Count,
  dropped: ByPriority,
  expired: Count,
  sync: z.enum(['flush', 'os']),
});
export type OutboxSummary = z.infer<typeof OutboxSummarySchema>;

/** One protocol mode's traffic since the agent started, for the panel's side-by-side figures. */
export const ModeFiguresSchema = z.object({
  frames_sent: Count,
  messages_sent: Count,
  bytes_sent: Count,
  frames_received: Count,
  messages_received: Count,
  bytes_received: Count,
  /** Time spent registered in this mode. */
  connected_ms: Count,
});
export type ModeFigures = z.infer<typeof ModeFiguresSchema>;

/** No traffic yet. */
export function emptyModeFigures(): ModeFigures {
  return {
    frames_sent: 0,
    messages_sent: 0,
    bytes_sent: 0,
    frames_received: 0,
    messages_received: 0,
    bytes_received: 0,
    connected_ms: 0,
  };
}

/** `a + sign × b`, field by field: totals over agents or settings changes, or the traffic of a window. */
export function addModeFigures(a: ModeFigures, b: ModeFigures, sign: 1 | -1 = 1): ModeFigures {
  const out = { ...a };
  for (const key of Object.keys(out) as Array<keyof ModeFigures>) out[key] += sign * b[key];
  return out;
}

/**
 * Which process runs the agent this panel shows, so the panel can say so: one agent runs per PC,
 * either headless (`farmlink agent`, a service) or inside the desktop app, and the desktop app
 * attaches to a headless one rather than starting a second.
 */
export const AgentProcessSchema = z.object({
  pid: z.number().int().positive(),
  runs_in: z.enum(['headless', 'desktop']),
  /** Set by the desktop app when it shows an agent another process runs. */
  attached: z.boolean(),
});
export type AgentProcess = z.infer<typeof AgentProcessSchema>;

/** What the panel and the tray say about the agent's process. */
export function agentProcessLabel(process: AgentProcess): string {
  if (process.attached) return `Attached to the agent running on this PC (pid ${process.pid})`;
  if (process.runs_in === 'desktop') return `This app runs the agent (pid ${process.pid})`;
  return `The agent runs headless on this PC (pid ${process.pid})`;
}

export const SnapshotSchema = z.object({
  /** The host's clock when the snapshot was taken; countdowns are computed against it. */
  now: EpochMs,
  /** When the host started, for how long the PC has been without a connection. */
  started_at: EpochMs,
  agent: z.object({ id: z.string(), name: z.string(), version: z.string() }),
  state: ConnectionStateSchema,
  servers: z.array(PanelServerSchema),
  stats: ConnectionStatsSchema,
  /** Cumulative counters sampled every few seconds over the last 15 minutes, for rates and the throughput graph. */
  throughput: z.array(ThroughputSampleSchema),
  quality: z.object({
    level: z.enum(['excellent', 'good', 'poor', 'disconnected']),
    median_rtt_ms: z.number().nullable(),
    loss: z.number(),
    samples: z.number().int(),
  }),
  mode: z.object({
    /** What the configuration asks for: auto, enhanced or legacy. */
    configured: ProtocolModeSettingSchema,
    /** The mode in use while connected; otherwise the mode the next connection will ask for first. */
    current: AgentModeSchema,
    /** True while `current` is what the connected hub agreed to. */
    negotiated: z.boolean(),
    available: z.array(AgentModeSchema),
    /** Why a mode is not available, for the toggle to say instead of pretending. */
    unavailable: z.record(z.string(), z.string()),
    /**
     * While connected: the batch window (enhanced; null in legacy) and heartbeat interval in use, and
     * why the hub last changed them (a hub under load widens both with `tune`). Null when not connected.
     */
    pace: z
      .object({
        batch_window_ms: z.number().nonnegative().nullable(),
        heartbeat_interval_ms: z.number().positive(),
        hub_reason: z.string().nullable(),
      })
      .nullable()
      .optional(),
  }),
  /** Traffic per protocol mode, side by side. */
  mode_figures: z.object({ legacy: ModeFiguresSchema, enhanced: ModeFiguresSchema }),
  /** Null when the agent runs without an outbox (it could not be opened: see `error` in the log). */
  outbox: OutboxSummarySchema.nullable(),
  /** Recent transitions with their reasons, oldest first. */
  events: z.array(ConnectionEventSchema),
  settings: z.object({
    values: SettingsSchema,
    has_token: z.boolean(),
    /** Where Save writes; null until one exists (it is then created at `default_file`). */
    file: z.string().nullable(),
    default_file: z.string(),
    /** Settings fixed by the environment or flags, which the file cannot change, and by what. */
    overridden: z.array(z.object({ path: z.string(), source: z.string() })),
  }),
  /** Set when the agent runs against the local hub `farmlink start` made because nothing was configured. */
  local_hub: z.object({ url: z.string() }).nullable(),
  /** Null when the agent runs without a cache. */
  cache: CacheSummarySchema.nullable(),
  agent_process: AgentProcessSchema,
  /** The tunnel: exposed services, the socket to the broker, open sessions. Absent from older agents. */
  tunnel: TunnelSummarySchema.optional(),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

const NoInput = z.object({}).strict();

/** Every method: its input and its output. */
export const AgentHostMethods = {
  getSnapshot: { input: NoInput, output: SnapshotSchema },
  reconnectNow: { input: NoInput, output: z.object({}) },
  setMode: {
    input: z.object({ mode: ProtocolModeSettingSchema }).strict(),
    output: z.object({ mode: ProtocolModeSettingSchema }),
  },
  /**
   * Hands events to the agent's outbox (`farmlink event`, local programs); answers once they are
   * durably accepted, with their sequence numbers, or an error (OUTBOX_FULL, OUTBOX_UNAVAILABLE).
   */
  sendEvents: {
    input: z
      .object({
        events: z
          .array(
            z
              .object({
                name: z.string().min(1).max(128),
                data: z.unknown().optional(),
                priority: PrioritySchema.default('normal'),
                /** Dropped unsent (and counted) if not delivered within this many milliseconds. */
                ttl_ms: z.number().int().positive().optional(),
              })
              .strict(),
          )
          .min(1)
          .max(10_000),
      })
      .strict(),
    output: z.object({ seqs: z.array(z.number().int().positive()), agent_id: AgentIdSchema }),
  },
  saveSettings: { input: z.object({ settings: z.unknown() }).strict(), output: z.object({ file: z.string() }) },
  tailLogs: {
    input: z
      .object({
        limit: z.number().int().min(1).max(2000).default(500),
        min_level: LogLevelNameSchema.default('info'),
        after_seq: z.number().int().nonnegative().optional(),
      })
      .strict(),
    output: z.array(LogEntrySchema),
  },
} as const;

/** Every event the host pushes: a coalesced snapshot, and batches of new log entries. */
export const AgentHostEvents = {
  snapshot: SnapshotSchema,
  logs: z.array(LogEntrySchema),
} as const;

export type AgentHostMethod = keyof typeof AgentHostMethods;
export type MethodInput<M extends AgentHostMethod> = z.input<(typeof AgentHostMethods)[M]['input']>;
export type MethodOutput<M extends AgentHostMethod> = z.output<(typeof AgentHostMethods)[M]['output']>;
export type AgentHostEvent = keyof typeof AgentHostEvents;
export type EventPayload<E extends AgentHostEvent> = z.output<(typeof AgentHostEvents)[E]>;

/** A problem with one field of a submitted form, for an inline message beside it. */
export const FieldProblemSchema = z.object({ path: z.string(), message: z.string() });
export type FieldProblem = z.infer<typeof FieldProblemSchema>;

/** Errors cross every transport as data, never as thrown exceptions. */
export const HostErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  problems: z.array(FieldProblemSchema).optional(),
});
export type HostError = z.infer<typeof HostErrorSchema>;

export const ResultEnvelopeSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({ ok: z.literal(false), error: HostErrorSchema }),
]);
export type ResultEnvelope<T = unknown> = { ok: true; value: T } | { ok: false; error: HostError };

/** The renderer's view of the host: every method callable, every event subscribable. */
export interface AgentHostClient {
  call<M extends AgentHostMethod>(method: M, input: MethodInput<M>): Promise<ResultEnvelope<MethodOutput<M>>>;
  on<E extends AgentHostEvent>(event: E, listener: (payload: EventPayload<E>) => void): () => void;
}

/**
 * The transport underneath a client: untyped calls and events. The Electron preload exposes
 * exactly this (as `window.farmlinkBridge`); the headless panel implements it over a WebSocket.
 */
export interface BridgeTransport {
  call(method: string, input: unknown): Promise<unknown>;
  subscribe(listener: (event: string, payload: unknown) => void): () => void;
}

export { IPC_CHANNELS } from './ipc-channels.js';
