import { z } from 'zod';
import { MIN_SECRET_LENGTH } from './auth.js';

const ms = (what: string) => z.number({ error: `expected ${what} in milliseconds` }).nonnegative();

/**
 * Everything a hub can be told. Defaults follow seed 004 (30-minute drain, 10-second periodic
 * broadcast, 60 messages a minute as the baseline rate) with room for a legitimate burst.
 */
export const HubOptionsSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(8080),
  secret: z.string().min(MIN_SECRET_LENGTH, { error: `expected at least ${MIN_SECRET_LENGTH} characters` }),
  hub_id: z.string().min(1).max(128).optional(),
  /** Largest frame accepted; ws closes larger ones with 1009. Small by default (ws's own is 100 MiB). */
  max_payload_bytes: z.number().int().min(1024).default(64 * 1024),
  max_connections: z.number().int().positive().default(20_000),
  rate_per_second: z.number().positive().default(20),
  rate_burst: z.number().int().positive().default(100),
  hello_timeout_ms: ms('the hello timeout').default(10_000),
  /** The hub pings every connection this often and drops one that did not answer the previous ping. */
  ping_interval_ms: ms('the ping interval').default(20_000),
  /** A connection whose unsent data grows past this is a slow consumer and is closed. */
  max_buffered_bytes: z.number().int().min(1024).default(1024 * 1024),
  drain_timeout_ms: ms('the drain timeout').default(30 * 60_000),
  drain_progress_interval_ms: ms('the drain progress interval').default(10_000),
  /** Periodic hub → agents broadcast (seed 004); 0 turns it off. */
  broadcast_interval_ms: ms('the broadcast interval').default(10_000),
  /** Default wait for a command's result through the admin API. */
  command_timeout_ms: ms('the command timeout').default(30_000),
  per_message_deflate: z.boolean().default(false),
  /**
   * Redis shared by the hubs of one farm (a single node by URL, or a cluster by its seed nodes):
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
});

export type HubOptionsInput = z.input<typeof HubOptionsSchema>;
export type HubOptions = z.output<typeof HubOptionsSchema>;
