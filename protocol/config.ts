import { z } from 'zod';
import { AGENT_ID_PATTERN } from './messages.js';
import { isServerUrl } from './server-url.js';
import { SERVICE_NAME_PATTERN } from './tunnel.js';

/**
 * The agent's YAML configuration file (README.md → Configuration lists every key). Times are in seconds and
 * may be fractional, so tests can run with millisecond timings. The same schema validates the
 * panel's Settings form, so an error there reads exactly like an error in the file.
 */

const seconds = (what: string) =>
  z
    .number({ error: `expected ${what} as a number of seconds (fractions allowed)` })
    .positive({ error: `expected ${what} greater than 0 seconds` })
    .max(86_400 * 365, { error: `expected ${what} of at most one year` });

const serverUrl = z
  .string({
    error: (issue) =>
      issue.input === undefined
        ? 'required: the hub to connect to, such as "https://hub.example.com"'
        : 'expected a URL string such as "https://hub.example.com"',
  })
  .refine(isServerUrl, { error: 'expected an http://, https://, ws:// or wss:// URL with a host name' });

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const ServerSectionSchema = z.strictObject(
  {
    url: serverUrl,
    fallback_urls: z.array(serverUrl, { error: 'expected a list of URLs' }).max(32).default([]),
  },
  {
    error: (issue) =>
      issue.input === undefined
        ? 'required: a "server:" section with at least "url:" (the hub to connect to)'
        : 'expected a mapping with "url:" and optionally "fallback_urls:"',
  },
);

export const ConnectionSectionSchema = z
  .strictObject({
    heartbeat_interval: seconds('the heartbeat interval').default(30),
    connect_timeout: seconds('the connect timeout').default(30),
    max_reconnect_delay: seconds('the largest reconnect delay').default(60),
    initial_reconnect_delay: seconds('the first reconnect delay').default(1),
    /** ± fraction of each backoff delay that is randomised, so a fleet does not reconnect in step. */
    reconnect_jitter: z.number({ error: 'expected a fraction between 0 and 1' }).min(0).max(1).default(0.2),
    /** hello → registered must complete within this. */
    registration_timeout: seconds('the registration timeout').default(15),
    ping_interval: seconds('the WebSocket ping interval').default(20),
    ping_timeout: seconds('the WebSocket ping timeout').default(20),
    /** No heartbeat_ack for this long → the connection is dead. */
    dead_timeout: seconds('the dead-connection timeout').default(90),
    /** A connection that has lasted this long is stable: the backoff starts again from the first delay. */
    stable_after: seconds('the stable-connection time').default(60),
  })
  .superRefine((c, ctx) => {
    if (c.initial_reconnect_delay > c.max_reconnect_delay) {
      ctx.addIssue({
        code: 'custom',
        path: ['initial_reconnect_delay'],
        message: `expected at most max_reconnect_delay (${c.max_reconnect_delay}), got ${c.initial_reconnect_delay}`,
      });
    }
    if (c.dead_timeout <= c.heartbeat_interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['dead_timeout'],
        message: `expected more than heartbeat_interval (${c.heartbeat_interval}) so one late ack is not fatal, got ${c.dead_timeout}`,
      });
    }
  });

/** Three base64url segments joined by dots: the compact form every JWT has. */
const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * What is wrong with a token, or undefined when it has a JWT's form. The agent sends the token in
 * an HTTP header, where a line break or a "…" cannot go, so such a token is refused here with what
 * was expected rather than failing every connection attempt.
 */
export function agentTokenProblem(token: string): string | undefined {
  if (JWT_PATTERN.test(token)) return undefined;
  const expected =
    'expected a JWT as `farmlink token --agent ID` prints it: three base64url segments (letters, digits, "-" and "_") joined by dots, on one line';
  let found: string;
  if (token.length === 0) found = 'got an empty string';
  else if (/[\r\n]/.test(token))
    found =
      'it contains a line break (a YAML block scalar such as "|" or ">" adds one: put the token in quotes on one line)';
  else if (/\s/.test(token)) found = 'it contains a space or a tab';
  else if (token.includes('…')) found = 'it contains "…": paste the whole token, not a shortened one';
  else if (token.split('.').length !== 3) found = `it has ${token.split('.').length} dot-separated segments`;
  else found = 'it contains a character that is not base64url';
  return `${expected}; ${found}`;
}

/** An agent token, checked for a JWT's form (not its signature: only the hub can check that). */
export function agentToken() {
  return z.string({ error: 'expected a string (a JWT from `farmlink token --agent ID`)' }).superRefine((token, ctx) => {
    const problem = agentTokenProblem(token);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

export const AgentSectionSchema = z.strictObject({
  id: z
    .string({ error: 'expected a string' })
    .regex(AGENT_ID_PATTERN, { error: 'expected 1–128 letters, digits, "_", ".", ":" or "-"' })
    .optional(),
  name: z.string({ error: 'expected a string' }).min(1).max(128).optional(),
  token: agentToken().optional(),
  /** A file holding the token (trimmed), so it is never on a command line; relative to the config file. */
  token_file: z
    .string({ error: 'expected the path of a file that holds the token' })
    .min(1, { error: 'expected the path of a file that holds the token' })
    .optional(),
});

export const LogSectionSchema = z.strictObject({
  level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  /** Path of the rotating log file; relative paths are relative to the config file. `false` turns it off. */
  file: z.union([z.string().min(1), z.literal(false)], { error: 'expected a file path or false' }).optional(),
  max_size_mb: z.number({ error: 'expected a size in MB' }).positive().max(10_000).default(10),
  max_files: z.number({ error: 'expected a whole number of files' }).int().min(1).max(1000).default(5),
});

export const AdbSectionSchema = z.strictObject({
  path: z.string({ error: 'expected the path of the adb executable' }).min(1).default('adb'),
  timeout: seconds('the adb command timeout').default(15),
  /** Follow `adb track-devices` and send a `device` event (through the outbox) when a phone comes, goes or changes state. */
  track_devices: z.boolean({ error: 'expected true or false' }).default(true),
});

export const PROTOCOL_MODES = ['auto', 'enhanced', 'legacy'] as const;
export const ProtocolModeSettingSchema = z.enum(PROTOCOL_MODES, {
  error: `expected one of ${PROTOCOL_MODES.join(', ')}`,
});
export type ProtocolModeSetting = z.infer<typeof ProtocolModeSettingSchema>;

/**
 * Which protocol the agent speaks. auto: enhanced when the hub offers it, legacy otherwise;
 * enhanced: only hubs that offer it (others are skipped like a failed server, and the log says
 * why); legacy: one JSON message per frame, at most once, with any hub.
 */
export const ProtocolSectionSchema = z.strictObject({
  mode: ProtocolModeSettingSchema.default('auto'),
  /** Enhanced: how long a normal or low priority message may wait for others to share its frame. */
  batch_window: seconds('the batch window')
    .max(60, { error: 'expected a batch window of at most 60 seconds' })
    .default(0.05),
  /** Enhanced: most messages in one frame. */
  batch_max_messages: z.number({ error: 'expected a whole number of messages' }).int().min(1).max(10_000).default(500),
});

/**
 * The durable outbox every message the agent emits goes through (events, command results). On disk,
 * so an agent that is killed loses nothing it had accepted; bounded by count and bytes.
 */
export const OutboxSectionSchema = z.strictObject({
  max_messages: z
    .number({ error: 'expected a whole number of messages' })
    .int()
    .min(10)
    .max(10_000_000)
    .default(100_000),
  max_mb: z.number({ error: 'expected a size in MB' }).positive().max(100_000).default(64),
  /**
   * flush: each accept waits until the outbox is on disk (survives a power cut); os: until the
   * operating system has it (survives the agent being killed, not a power cut; much faster).
   */
  sync: z.enum(['flush', 'os'], { error: 'expected flush or os' }).default('flush'),
  /** Messages older than this are dropped unsent (counted and logged); absent: they wait as long as it takes. */
  default_ttl: seconds('the default message lifetime').optional(),
});

/**
 * Per-server circuit breakers: a server that keeps refusing this PC (bad token, protocol error,
 * instant close) is skipped after `failures` refusals within `window`, and tried again after `recovery`.
 * Not the hub's 10 in 60 s: the agent's backoff (1 s doubling to 60 s) dials a refusing server at
 * most 6 times a minute, so 10 in 60 s would never open; 3 within 10 minutes opens on the third.
 */
export const BreakerSectionSchema = z.strictObject({
  failures: z.number({ error: 'expected a whole number of failures' }).int().min(1).max(1000).default(3),
  window: seconds('the failure window').default(600),
  recovery: seconds('the recovery time').default(120),
});

export const PanelSectionSchema = z.strictObject({
  /** Serve the panel to a browser (the headless mode); the desktop app shows it in its own window. */
  enabled: z.boolean({ error: 'expected true or false' }).default(true),
  host: z.string({ error: 'expected a host address such as 127.0.0.1' }).min(1).default('127.0.0.1'),
  port: z.number({ error: 'expected a port number' }).int().min(0).max(65_535).default(7878),
  /** Binding anywhere but loopback exposes the panel to the network; refused unless this is true. */
  allow_remote: z.boolean({ error: 'expected true or false' }).default(false),
});

/** "host:port" of a TCP service on (or near) the farm PC; IPv6 hosts in brackets. */
const serviceTarget = z
  .string({ error: 'expected "host:port", such as "127.0.0.1:5037"' })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})$/, {
    error: 'expected "host:port", such as "127.0.0.1:5037"',
  })
  .refine(
    (target) => {
      const port = Number(target.slice(target.lastIndexOf(':') + 1));
      return port >= 1 && port <= 65_535;
    },
    { error: 'expected a port from 1 to 65535' },
  );

/**
 * The tunnel (docs/tunnel.md): remote clients with a client token reach the services named here,
 * and nothing else on this PC. Empty (the default): the PC is reachable through no tunnel.
 */
export const TunnelSectionSchema = z.strictObject({
  /** Name → "host:port". Names are what a client asks for (`farmlink connect pc-017 adb`). */
  services: z
    .record(
      z.string().regex(SERVICE_NAME_PATTERN, {
        error: 'expected a service name of 1–64 letters, digits, "_", "." or "-"',
      }),
      serviceTarget,
      {
        // The record's own error would otherwise also replace the key's (a bad name read as a bad map).
        error: (issue) =>
          issue.code === 'invalid_key'
            ? 'expected a service name of 1–64 letters, digits, "_", "." or "-", starting with a letter or digit'
            : 'expected a map of service names to "host:port", such as { adb: "127.0.0.1:5037" }',
      },
    )
    .default({}),
  /** Try a direct (WebRTC) path beside the relay; false keeps every session on the relay. */
  direct: z.boolean({ error: 'expected true or false' }).default(true),
  /** How often the PC compares its network addresses, to notice a new address at once. */
  address_check_interval: seconds('the address check interval').default(2),
});

export const AgentConfigSchema = z.strictObject({
  server: ServerSectionSchema,
  connection: ConnectionSectionSchema.prefault({}),
  agent: AgentSectionSchema.prefault({}),
  log: LogSectionSchema.prefault({}),
  adb: AdbSectionSchema.prefault({}),
  panel: PanelSectionSchema.prefault({}),
  protocol: ProtocolSectionSchema.prefault({}),
  outbox: OutboxSectionSchema.prefault({}),
  breaker: BreakerSectionSchema.prefault({}),
  tunnel: TunnelSectionSchema.prefault({}),
});

/** The file as written (optional keys optional). */
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
/** The file after validation, defaults filled in. */
export type AgentConfig = z.output<typeof AgentConfigSchema>;
