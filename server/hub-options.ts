import { z } from 'zod';
import { FRAME_HEADER_BYTES, MAX_DATA_BYTES } from '../protocol/tunnel-frame.js';
import { defaultHubDataDir } from './hub-data-dir.js';
import { secretWeakness } from './secret-strength.js';

const ms = (what: string) => z.number({ error: `expected ${what} in milliseconds` }).nonnegative();

/**
 * Everything a hub can be told. Defaults: a 30-minute drain, a 10-second periodic broadcast, and
 * a per-connection message rate with room for a legitimate burst.
 */
export const HubOptionsSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(8080),
    secret: z.string().superRefine((secret, ctx) => {
      const weakness = secretWeakness(secret);
      if (weakness) ctx.addIssue({ code: 'custom', message: weakness });
    }),
    hub_id: z.string().min(1).max(128).optional(),
    /** Largest frame accepted; ws closes larger ones with 1009. Small by default (ws's own is 100 MiB). */
    max_payload_bytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
    /** Authenticated connections (a valid agent token at upgrade or in hello); beyond it, 1013. */
    max_connections: z.number().int().positive().default(20_000),
    /**
     * Connections with no valid token yet have a budget of their own, in total and per source
     * address, so that sockets that never authenticate cannot take the seats of agents that do.
     */
    max_unauthenticated: z.number().int().positive().default(1000),
    max_unauthenticated_per_address: z.number().int().positive().default(16),
    /** HTTP: the whole request head must arrive within this (slow-header attacks), else 408. */
    headers_timeout_ms: ms('the header timeout').min(100, { error: 'expected at least 100 ms (0.1 s)' }).default(5000),
    /** HTTP: the whole request, head and body, must arrive within this, else 408. */
    request_timeout_ms: ms('the request timeout')
      .min(100, { error: 'expected at least 100 ms (0.1 s)' })
      .default(15_000),
    rate_per_second: z.number().positive().default(20),
    rate_burst: z.number().int().positive().default(100),
    hello_timeout_ms: ms('the hello timeout').default(10_000),
    /** The hub pings every connection this often and drops one that did not answer the previous ping. */
    ping_interval_ms: ms('the ping interval').default(20_000),
    /** A connection whose unsent data grows past this is a slow consumer and is closed. */
    max_buffered_bytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
    drain_timeout_ms: ms('the drain timeout').default(30 * 60_000),
    drain_progress_interval_ms: ms('the drain progress interval').default(10_000),
    /** Periodic hub → agents status broadcast; 0 turns it off. */
    broadcast_interval_ms: ms('the broadcast interval').default(10_000),
    /** Default wait for a command's result through the admin API. */
    command_timeout_ms: ms('the command timeout').default(30_000),
    per_message_deflate: z.boolean().default(false),
    /**
     * Redis shared by the hubs of one farm (a single node by URL, or a cluster by the nodes to start from):
     * the agent registry is shared through it, so any hub can say where an agent is connected.
     * Optional: without it each hub knows only its own agents.
     */
    redis_url: z
      .string()
      .regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL' })
      .optional(),
    redis_cluster: z
      .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535) }))
      .min(1)
      .optional(),
    /** Prefix of every key this farm's hubs write to Redis, so several farms can share one Redis. */
    redis_prefix: z.string().min(1).max(64).default('farmlink:'),
    /** How long a shared-registry entry outlives its last confirmation (a hub that died leaves entries this long). */
    registry_ttl_ms: ms('the shared registry entry lifetime').min(1000).default(90_000),
    /** Circuit breakers around the event sink and each message handler: this many failures… */
    breaker_failures: z.number().int().min(1).default(10),
    /** …within this window open it… */
    breaker_window_ms: ms('the breaker window').min(1).default(60_000),
    /** …and it fails fast for this long before one call probes it. */
    breaker_recovery_ms: ms('the breaker recovery time').default(120_000),
    /** Grant enhanced mode (batch.v1) to agents that offer it on AGENT_WS_PATH; false: legacy for everyone. */
    enhanced: z.boolean().default(true),
    /** Enhanced: how long a hub → agent message waits for others to share its frame. */
    batch_window_ms: ms('the batch window').max(60_000).default(50),
    /** Enhanced: most messages in one frame, both ways. */
    batch_max_messages: z.number().int().min(1).max(10_000).default(500),
    /** Enhanced: largest batch frame, both ways; by default max_payload_bytes. */
    batch_max_bytes: z.number().int().min(256).optional(),
    /**
     * Adapting to load (server/load-monitor.ts): the hub samples its own event-loop delay and, when
     * busy or overloaded, tells enhanced agents to batch in a wider window and beat less often.
     * false (`--no-adapt`): the load is still measured and shown on /metrics, agents are told nothing.
     */
    adapt: z.boolean().default(true),
    /**
     * Event-loop delay p99 from which the hub is busy. 50 ms: the default batch window — a loop that
     * late already holds every message as long as batching would, so wider batches cost nothing.
     */
    load_busy_ms: z
      .number({ error: 'expected milliseconds' })
      .positive({ error: 'expected more than 0 ms' })
      .default(50),
    /** …and overloaded: 200 ms, where heartbeat and event acks are visibly late to every agent. */
    load_overload_ms: z
      .number({ error: 'expected milliseconds' })
      .positive({ error: 'expected more than 0 ms' })
      .default(200),
    /** A level is left only after the delay stayed under half its threshold this long (no flapping). */
    load_dwell_ms: ms('the load dwell time').default(30_000),
    /** How often the event loop is sampled; a level is entered after two such intervals over its threshold. */
    load_sample_ms: ms('the load sampling interval').min(50, { error: 'expected at least 50 ms' }).default(1000),
    /**
     * The tunnel broker (/api/v1/tunnel, server/tunnel/): each tunnel socket is pinged this often and
     * dropped after `tunnel_ping_timeout_ms` without a pong, so a farm that lost power is unavailable
     * within that deadline. Both ends get these in `welcome` and follow them.
     */
    tunnel_ping_interval_ms: ms('the tunnel ping interval').min(10, { error: 'expected at least 10 ms' }).default(5000),
    tunnel_ping_timeout_ms: ms('the tunnel ping deadline')
      .min(20, { error: 'expected at least 20 ms' })
      .default(10_000),
    /** How long a session waits for a side that went away before it ends (resume_window_expired). */
    tunnel_resume_window_ms: ms('the tunnel resume window')
      .min(10, { error: 'expected at least 10 ms' })
      .default(30_000),
    /** A session with no stream open and no stream frame relayed for this long ends (idle_timeout). */
    tunnel_idle_timeout_ms: ms('the tunnel idle limit').min(10, { error: 'expected at least 10 ms' }).default(300_000),
    /** Largest binary frame relayed (header included); ws closes a socket that sends a larger one with 1009. */
    tunnel_max_frame_bytes: z
      .number()
      .int()
      .min(FRAME_HEADER_BYTES + MAX_DATA_BYTES, {
        error: `expected at least ${FRAME_HEADER_BYTES + MAX_DATA_BYTES} bytes (a full DATA frame)`,
      })
      .max(16 * 1024 * 1024, { error: 'expected at most 16777216 bytes' })
      .default(256 * 1024),
    /**
     * A tunnel socket whose unsent data passes this is not reading: closed 4508 (its sessions resume
     * when it reconnects). Per-stream credit windows bound what a healthy peer can have in flight.
     */
    tunnel_max_buffered_bytes: z
      .number()
      .int()
      .min(1024 * 1024, { error: 'expected at least 1048576 bytes' })
      .default(64 * 1024 * 1024),
    /** Live sessions (any state) to one farm PC, and of one client name; beyond: open_failed limit_reached. */
    tunnel_max_sessions_per_farm: z.number().int().min(1).default(1024),
    tunnel_max_sessions_per_client: z.number().int().min(1).default(4096),
    /**
     * The hub's own state: without Redis, the event log (`<data_dir>/events`). Workers of one hub
     * share it. Untouched when Redis is configured.
     */
    data_dir: z
      .string()
      .min(1)
      .default(() => defaultHubDataDir()),
  })
  .superRefine((options, ctx) => {
    if (options.max_unauthenticated_per_address > options.max_unauthenticated) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_unauthenticated_per_address'],
        message: `expected at most max_unauthenticated (${options.max_unauthenticated}), got ${options.max_unauthenticated_per_address}`,
      });
    }
    if (options.batch_max_bytes !== undefined && options.batch_max_bytes > options.max_payload_bytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['batch_max_bytes'],
        message: `expected at most max_payload_bytes (${options.max_payload_bytes}), got ${options.batch_max_bytes}`,
      });
    }
    if (options.load_overload_ms <= options.load_busy_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['load_overload_ms'],
        message: `expected more than the busy threshold (${options.load_busy_ms} ms), got ${options.load_overload_ms} ms`,
      });
    }
    if (options.tunnel_ping_timeout_ms <= options.tunnel_ping_interval_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['tunnel_ping_timeout_ms'],
        message: `expected more than the tunnel ping interval (${options.tunnel_ping_interval_ms} ms), got ${options.tunnel_ping_timeout_ms} ms`,
      });
    }
    // Node refuses a header timeout longer than the request timeout (the head is part of the request).
    if (options.headers_timeout_ms > options.request_timeout_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['headers_timeout_ms'],
        message: `expected at most the request timeout (${options.request_timeout_ms} ms), got ${options.headers_timeout_ms} ms`,
      });
    }
  });

export type HubOptionsInput = z.input<typeof HubOptionsSchema>;
export type HubOptions = z.output<typeof HubOptionsSchema>;
