import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../lib/errors.js';
import { consoleSink } from '../agent/log/console-sink.js';
import { createLogger, type ConsoleFormat } from '../agent/log/logger.js';
import { processSecrets } from '../agent/log/secrets.js';
import { LOG_LEVELS, type LogLevel } from '../protocol/config.js';
import { HubPrimary } from '../server/cluster/primary.js';
import { HubWorker, WORKER_ENV, workerHubId } from '../server/cluster/worker.js';
import { Hub } from '../server/hub.js';
import { defaultHubDataDir } from '../server/hub-data-dir.js';
import { HubOptionsSchema, type HubOptions, type HubOptionsInput } from '../server/hub-options.js';
import { assertStrongSecret } from '../server/secret-strength.js';
import { UsageError, numberFlag, parseFlags, secondsFlag } from './args.js';
import { ExitCode } from './exit-codes.js';
import { onShutdownSignal } from './signals.js';

/** More processes than this on one port is a deployment mistake, not a need: run more hubs. */
export const MAX_WORKERS = 64;

export const HUB_HELP = `Usage: farmlink hub [options]

Runs a hub: agents connect to ws://HOST:PORT/api/v1/pc/ws, where the hub grants enhanced mode
(batched frames, acknowledged delivery) to agents that offer it and serves the others in legacy
mode; ws://HOST:PORT/api/v1/pc/legacy/ws serves legacy mode only.
The signing secret comes from FARMLINK_HUB_SECRET: a random string of at least 32 characters
(\`openssl rand -base64 32\`); repetitive or low-variety secrets are refused. On a loopback host
with no secret set, one is generated for this run and its export line is printed on stderr (not
logged), since \`farmlink token\` needs it to mint tokens this hub accepts.

Options (times in seconds, fractions allowed):
  --host H                   address to listen on        [FARMLINK_HUB_HOST, default 127.0.0.1]
  --port P                   port (0 = any free one)     [FARMLINK_HUB_PORT, default 8080]
  --hub-id ID                name of this hub in logs and "registered" [default host:port]
  --max-payload BYTES        largest frame accepted, else close 1009 [65536]
  --max-connections N        authenticated connections beyond this are closed with 1013 [20000]
  --max-unauthenticated N    connections without a valid token yet, in total; beyond: HTTP 503 [1000]
  --max-unauthenticated-per-address N
                             the same per source address (IPv6: per /64); beyond: HTTP 429 [16]
  --headers-timeout S        an HTTP request head (or WebSocket upgrade) not complete in time → 408 [5]
  --request-timeout S        an HTTP request (head and body) not received in time → 408 [15]
  --rate N                   messages per second per connection, else close 4429 [20]
  --burst N                  messages allowed in a burst above the rate [100]
  --hello-timeout S          close 4408 when no hello within this [10]
  --ping-interval S          ping every connection this often; no pong by the next → dropped [20]
  --max-buffered BYTES       close 4508 when unsent data for one connection passes this [1048576]
  --drain-timeout S          on SIGTERM, wait this long for agents to leave [1800]
  --drain-progress-interval S  log drain progress this often [10]
  --broadcast-interval S     periodic status broadcast to agents, 0 = off [10]
  --command-timeout S        default wait for a command result via the admin API [30]
  --workers N|auto           hub processes sharing the port, 1–${MAX_WORKERS}; auto = one per core [1]
  --per-message-deflate      enable compression (off by default: it costs memory per connection)
  --no-enhanced              grant no agent enhanced mode: everyone is served in legacy mode
  --batch-window S           enhanced: longest a message waits to share a frame [0.05]
  --batch-max-messages N     enhanced: most messages in one frame, both ways [500]
  --batch-max-bytes BYTES    enhanced: largest frame, both ways; at most --max-payload [--max-payload]
  --load-busy-ms MS          event-loop delay p99 from which the hub is busy and slows enhanced agents down [50]
  --load-overload-ms MS      …and overloaded: slows them down further [200]
  --load-dwell-ms MS         a load level is left only after this long calm [30000]
  --no-adapt                 measure the load, but tell agents nothing
  --breaker-failures N       circuit breakers (event sink, each message handler) open after N failures… [10]
  --breaker-window-ms MS     …within this window, in milliseconds [60000]
  --breaker-recovery-ms MS   …and fail fast this long before one call probes again [120000]
  --redis-url URL            Redis shared by this farm's hubs (redis:// or rediss://)  [FARMLINK_REDIS_URL]
  --redis-cluster H:P,H:P    Redis Cluster nodes to start from, instead of --redis-url  [FARMLINK_REDIS_CLUSTER]
  --redis-prefix P           prefix of every key written to Redis [farmlink:]
  --registry-ttl S           a shared registry entry lapses this long after its hub last confirmed it [90]
  --tunnel-ping-interval-ms MS  tunnel sockets (/api/v1/tunnel) are pinged this often [5000]
  --tunnel-ping-timeout-ms MS   …and dropped after this without a pong: a farm gone is unavailable by then [10000]
  --tunnel-resume-window-ms MS  a tunnel session waits this long for a side that went away [30000]
  --tunnel-idle-timeout-ms MS   a tunnel session with no stream and no data for this long ends [300000]
  --tunnel-max-frame-bytes N    largest tunnel frame relayed [262144]
  --tunnel-max-buffered N       close a tunnel socket (4508) whose unsent data passes this [67108864]
  --tunnel-max-sessions-per-farm N    live tunnel sessions to one farm PC [1024]
  --tunnel-max-sessions-per-client N  live tunnel sessions of one client name [4096]
  --data-dir DIR             the hub's state: without Redis, agents' events go to an event log in DIR/events
                             [FARMLINK_HUB_DATA_DIR, default ${defaultHubDataDir()}]
  --log-level L              ${LOG_LEVELS.join('|')} [info]
  --log-format F             pretty|json [pretty on a terminal, json otherwise]
`;

const LOOPBACK = (host: string) =>
  host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';

export function logFormatFlag(value: string | undefined): ConsoleFormat {
  if (value === undefined) return process.stdout.isTTY ? 'pretty' : 'json';
  if (value !== 'pretty' && value !== 'json')
    throw new UsageError(`--log-format: expected pretty or json, got "${value}"`);
  return value;
}

export function logLevelFlag(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value as LogLevel;
}

/** --workers: a whole number from 1 to MAX_WORKERS, or "auto" (one per core the process may use). */
export function workersFlag(value: string | undefined, cores = os.availableParallelism()): number {
  if (value === undefined) return 1;
  if (value === 'auto') return Math.min(MAX_WORKERS, Math.max(1, cores));
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new ConfigError([
      `hub option --workers: expected a whole number from 1 to ${MAX_WORKERS}, or "auto" (one per core), got "${value}"`,
    ]);
  }
  return n;
}

/**
 * A load flag in milliseconds (fractions allowed: a test hub may set --load-busy-ms 0.001). A bad
 * value is a configuration error (exit 78) naming the flag, like every other bad hub option value.
 */
export function millisecondsFlag(
  name: string,
  value: string | undefined,
  range: 'more than 0' | '0 or more',
): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || (range === 'more than 0' ? n <= 0 : n < 0)) {
    throw new ConfigError([`hub option --${name}: expected a number of milliseconds, ${range}, got "${value}"`]);
  }
  return n;
}

/** A count or size flag: a whole number above 0, else a configuration error (exit 78) naming the flag. */
export function wholeNumberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new ConfigError([`hub option --${name}: expected a whole number above 0, got "${value}"`]);
  return n;
}

/** "host:port,host:port" → the cluster nodes to start from. */
export function clusterFlag(value: string | undefined): Array<{ host: string; port: number }> | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((part) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(part);
    if (!match) throw new UsageError(`--redis-cluster: expected host:port[,host:port…], got "${part}"`);
    const [, host = '', port] = match;
    return { host: host.replace(/^\[|\]$/g, ''), port: Number(port) };
  });
}

/**
 * The secret for a hub: FARMLINK_HUB_SECRET (judged by assertStrongSecret, as `farmlink token`
 * judges it), or on loopback a fresh one (said so by the caller).
 */
export function hubSecret(host: string, env = process.env): { secret: string; generated: boolean } {
  const fromEnv = env.FARMLINK_HUB_SECRET;
  if (fromEnv) {
    assertStrongSecret(fromEnv, 'FARMLINK_HUB_SECRET (environment)');
    return { secret: fromEnv, generated: false };
  }
  if (LOOPBACK(host)) return { secret: randomBytes(32).toString('base64url'), generated: true };
  throw new ConfigError([
    `FARMLINK_HUB_SECRET (environment): required when the hub listens on ${host} (not loopback): expected a ` +
      `random string of at least 32 characters, e.g. from \`openssl rand -base64 32\``,
  ]);
}

/** Where each hub option comes from on the command line, so a config error names what to fix. */
const FLAG_OF: Record<string, string> = {
  host: '--host / FARMLINK_HUB_HOST',
  port: '--port / FARMLINK_HUB_PORT',
  secret: 'FARMLINK_HUB_SECRET (environment)',
  max_payload_bytes: '--max-payload',
  rate_per_second: '--rate',
  rate_burst: '--burst',
  max_buffered_bytes: '--max-buffered',
  redis_url: '--redis-url / FARMLINK_REDIS_URL',
  redis_cluster: '--redis-cluster / FARMLINK_REDIS_CLUSTER',
  registry_ttl_ms: '--registry-ttl',
  enhanced: '--no-enhanced',
  adapt: '--no-adapt',
  load_busy_ms: '--load-busy-ms',
  load_overload_ms: '--load-overload-ms',
  load_dwell_ms: '--load-dwell-ms',
  breaker_failures: '--breaker-failures',
  breaker_window_ms: '--breaker-window-ms',
  breaker_recovery_ms: '--breaker-recovery-ms',
  batch_window_ms: '--batch-window',
  batch_max_messages: '--batch-max-messages',
  batch_max_bytes: '--batch-max-bytes',
  data_dir: '--data-dir / FARMLINK_HUB_DATA_DIR',
  tunnel_ping_interval_ms: '--tunnel-ping-interval-ms',
  tunnel_ping_timeout_ms: '--tunnel-ping-timeout-ms',
  tunnel_resume_window_ms: '--tunnel-resume-window-ms',
  tunnel_idle_timeout_ms: '--tunnel-idle-timeout-ms',
  tunnel_max_frame_bytes: '--tunnel-max-frame-bytes',
  tunnel_max_buffered_bytes: '--tunnel-max-buffered',
  tunnel_max_sessions_per_farm: '--tunnel-max-sessions-per-farm',
  tunnel_max_sessions_per_client: '--tunnel-max-sessions-per-client',
};

function sourceOf(key: string): string {
  return `hub option ${FLAG_OF[key] ?? `--${key.replace(/_ms$/, '').replace(/_/g, '-')}`}`;
}

export async function hubCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('hub', argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    'hub-id': { type: 'string' },
    'max-payload': { type: 'string' },
    'max-connections': { type: 'string' },
    'max-unauthenticated': { type: 'string' },
    'max-unauthenticated-per-address': { type: 'string' },
    'headers-timeout': { type: 'string' },
    'request-timeout': { type: 'string' },
    rate: { type: 'string' },
    burst: { type: 'string' },
    'hello-timeout': { type: 'string' },
    'ping-interval': { type: 'string' },
    'max-buffered': { type: 'string' },
    'drain-timeout': { type: 'string' },
    'drain-progress-interval': { type: 'string' },
    'broadcast-interval': { type: 'string' },
    'command-timeout': { type: 'string' },
    'per-message-deflate': { type: 'boolean' },
    'no-enhanced': { type: 'boolean' },
    'no-adapt': { type: 'boolean' },
    'load-busy-ms': { type: 'string' },
    'load-overload-ms': { type: 'string' },
    'load-dwell-ms': { type: 'string' },
    'breaker-failures': { type: 'string' },
    'breaker-window-ms': { type: 'string' },
    'breaker-recovery-ms': { type: 'string' },
    'batch-window': { type: 'string' },
    'batch-max-messages': { type: 'string' },
    'batch-max-bytes': { type: 'string' },
    'redis-url': { type: 'string' },
    'redis-cluster': { type: 'string' },
    'redis-prefix': { type: 'string' },
    'registry-ttl': { type: 'string' },
    'data-dir': { type: 'string' },
    'tunnel-ping-interval-ms': { type: 'string' },
    'tunnel-ping-timeout-ms': { type: 'string' },
    'tunnel-resume-window-ms': { type: 'string' },
    'tunnel-idle-timeout-ms': { type: 'string' },
    'tunnel-max-frame-bytes': { type: 'string' },
    'tunnel-max-buffered': { type: 'string' },
    'tunnel-max-sessions-per-farm': { type: 'string' },
    'tunnel-max-sessions-per-client': { type: 'string' },
    workers: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HUB_HELP);
    return ExitCode.OK;
  }
  const workers = workersFlag(values.workers);
  const host = values.host ?? process.env.FARMLINK_HUB_HOST ?? '127.0.0.1';
  const { secret, generated } = hubSecret(host);
  // Blanked in every log line; a generated one is shown once, on stderr past the logger (below).
  processSecrets.add(secret);
  const input: HubOptionsInput = {
    host,
    port: numberFlag('port', values.port ?? process.env.FARMLINK_HUB_PORT, { integer: true }),
    secret,
    hub_id: values['hub-id'],
    max_payload_bytes: numberFlag('max-payload', values['max-payload'], { integer: true, min: 1024 }),
    max_connections: numberFlag('max-connections', values['max-connections'], { integer: true, min: 1 }),
    max_unauthenticated: numberFlag('max-unauthenticated', values['max-unauthenticated'], { integer: true, min: 1 }),
    max_unauthenticated_per_address: numberFlag(
      'max-unauthenticated-per-address',
      values['max-unauthenticated-per-address'],
      { integer: true, min: 1 },
    ),
    headers_timeout_ms: secondsFlag('headers-timeout', values['headers-timeout']),
    request_timeout_ms: secondsFlag('request-timeout', values['request-timeout']),
    rate_per_second: numberFlag('rate', values.rate),
    rate_burst: numberFlag('burst', values.burst, { integer: true, min: 1 }),
    hello_timeout_ms: secondsFlag('hello-timeout', values['hello-timeout']),
    ping_interval_ms: secondsFlag('ping-interval', values['ping-interval']),
    max_buffered_bytes: numberFlag('max-buffered', values['max-buffered'], { integer: true, min: 1024 }),
    drain_timeout_ms: secondsFlag('drain-timeout', values['drain-timeout']),
    drain_progress_interval_ms: secondsFlag('drain-progress-interval', values['drain-progress-interval']),
    broadcast_interval_ms: secondsFlag('broadcast-interval', values['broadcast-interval']),
    command_timeout_ms: secondsFlag('command-timeout', values['command-timeout']),
    per_message_deflate: values['per-message-deflate'],
    enhanced: values['no-enhanced'] === true ? false : undefined,
    adapt: values['no-adapt'] === true ? false : undefined,
    load_busy_ms: millisecondsFlag('load-busy-ms', values['load-busy-ms'], 'more than 0'),
    load_overload_ms: millisecondsFlag('load-overload-ms', values['load-overload-ms'], 'more than 0'),
    load_dwell_ms: millisecondsFlag('load-dwell-ms', values['load-dwell-ms'], '0 or more'),
    breaker_failures: numberFlag('breaker-failures', values['breaker-failures'], { integer: true, min: 1 }),
    breaker_window_ms: numberFlag('breaker-window-ms', values['breaker-window-ms'], { integer: true, min: 1 }),
    breaker_recovery_ms: numberFlag('breaker-recovery-ms', values['breaker-recovery-ms'], { integer: true }),
    batch_window_ms: secondsFlag('batch-window', values['batch-window']),
    batch_max_messages: numberFlag('batch-max-messages', values['batch-max-messages'], { integer: true, min: 1 }),
    batch_max_bytes: numberFlag('batch-max-bytes', values['batch-max-bytes'], { integer: true, min: 256 }),
    redis_url: values['redis-url'] ?? (process.env.FARMLINK_REDIS_URL || undefined),
    redis_cluster: clusterFlag(values['redis-cluster'] ?? (process.env.FARMLINK_REDIS_CLUSTER || undefined)),
    redis_prefix: values['redis-prefix'],
    registry_ttl_ms: secondsFlag('registry-ttl', values['registry-ttl']),
    data_dir: values['data-dir'] === undefined ? undefined : path.resolve(values['data-dir']),
    tunnel_ping_interval_ms: millisecondsFlag(
      'tunnel-ping-interval-ms',
      values['tunnel-ping-interval-ms'],
      'more than 0',
    ),
    tunnel_ping_timeout_ms: millisecondsFlag('tunnel-ping-timeout-ms', values['tunnel-ping-timeout-ms'], 'more than 0'),
    tunnel_resume_window_ms: millisecondsFlag(
      'tunnel-resume-window-ms',
      values['tunnel-resume-window-ms'],
      'more than 0',
    ),
    tunnel_idle_timeout_ms: millisecondsFlag('tunnel-idle-timeout-ms', values['tunnel-idle-timeout-ms'], 'more than 0'),
    tunnel_max_frame_bytes: wholeNumberFlag('tunnel-max-frame-bytes', values['tunnel-max-frame-bytes']),
    tunnel_max_buffered_bytes: wholeNumberFlag('tunnel-max-buffered', values['tunnel-max-buffered']),
    tunnel_max_sessions_per_farm: wholeNumberFlag(
      'tunnel-max-sessions-per-farm',
      values['tunnel-max-sessions-per-farm'],
    ),
    tunnel_max_sessions_per_client: wholeNumberFlag(
      'tunnel-max-sessions-per-client',
      values['tunnel-max-sessions-per-client'],
    ),
  };
  if (input.redis_url && input.redis_cluster)
    throw new UsageError('--redis-url and --redis-cluster: give one or the other, not both');
  const parsed = HubOptionsSchema.safeParse(
    Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  );
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${sourceOf(String(i.path[0]))}: ${i.message}`));
  }
  const { logger, close: closeLog } = await createLogger({
    level: logLevelFlag(values['log-level']),
    console: logFormatFlag(values['log-format']),
    component: 'hub',
  });
  const workerIndex = Number(process.env[WORKER_ENV]);
  if (cluster.isWorker && Number.isInteger(workerIndex) && workerIndex > 0) {
    return runWorker(parsed.data, workerIndex, logger, closeLog);
  }
  if (workers > 1) return runPrimary(parsed.data, workers, { secret, generated }, logger, closeLog);

  const hub = new Hub(parsed.data, logger);
  const address = await hub.listen();
  if (generated) announceGeneratedSecret(logger, secret);
  // Scripts that start a hub on port 0 read this line to learn the port.
  logger.info({ event: 'listening', port: address.port, url: address.url }, `Ready: ${address.url}`);

  return new Promise<number>((resolve) => {
    onShutdownSignal(
      async (signal) => {
        logger.info(
          { signal },
          `${signal} received: draining (refusing new connections with 1001; send the signal again to stop at once)`,
        );
        await hub.drain(`hub received ${signal}`);
        await hub.close();
        await closeLog();
        resolve(ExitCode.OK);
      },
      (signal) => {
        logger.warn({ signal }, `${signal} received again: closing every connection now`);
        void hub.close().finally(() => resolve(ExitCode.FORCED));
      },
    );
  });
}

function announceGeneratedSecret(logger: Logger, secret: string): void {
  // The secret exists nowhere else: without this line no token for this hub could ever be
  // minted. It goes to the console only, never through the logger (log files and collectors).
  logger.warn(
    'FARMLINK_HUB_SECRET is not set: generated a secret for this run (local mode); the line to mint tokens for this hub is printed on stderr, not logged',
  );
  consoleSink(process.stderr).write(
    `To mint tokens for this hub with farmlink token, first run:\n  export FARMLINK_HUB_SECRET='${secret}'\n`,
  );
}

/** The hub's id when none is given: host name and port, as a single-process hub names itself. */
function baseHubId(options: HubOptions): string {
  return options.hub_id ?? `${os.hostname()}:${options.port}`;
}

/**
 * `--workers N` (N > 1): this process forks the workers, holds no agent itself, and on a signal
 * drains them all; a second signal closes every connection now.
 */
async function runPrimary(
  options: HubOptions,
  workers: number,
  { secret, generated }: { secret: string; generated: boolean },
  logger: Logger,
  closeLog: () => Promise<void>,
): Promise<number> {
  const primary = new HubPrimary({
    workers,
    hubId: baseHubId(options),
    drainTimeoutMs: options.drain_timeout_ms,
    // A generated secret exists only in this process: the workers must check tokens with the same one.
    env: { FARMLINK_HUB_SECRET: secret },
    logger,
  });
  return new Promise<number>((resolve, reject) => {
    let stopping = false;
    onShutdownSignal(
      async (signal) => {
        stopping = true;
        logger.info(
          { signal },
          `${signal} received: draining every worker (refusing new connections with 1001; send the signal again to stop at once)`,
        );
        await primary.shutdown(`hub received ${signal}`, false);
        await closeLog();
        resolve(ExitCode.OK);
      },
      (signal) => {
        logger.warn({ signal }, `${signal} received again: every worker closes every connection now`);
        void primary.shutdown(`hub received ${signal} again`, true).finally(() => resolve(ExitCode.FORCED));
      },
    );
    primary.start().then(
      (address) => {
        if (stopping) return;
        if (generated) announceGeneratedSecret(logger, secret);
        // Scripts that start a hub on port 0 read this line to learn the port.
        logger.info(
          { event: 'listening', port: address.port, url: address.url, workers },
          `Ready: ${address.url} (${workers} workers)`,
        );
      },
      (error: unknown) => {
        void closeLog().finally(() => reject(error instanceof Error ? error : new Error(String(error))));
      },
    );
  });
}

/** One of the primary's workers: it listens and serves until the primary tells it to stop. */
async function runWorker(
  options: HubOptions,
  index: number,
  logger: Logger,
  closeLog: () => Promise<void>,
): Promise<number> {
  const log = logger.child({ worker: `w${index}` });
  // Signals reach the workers too (Ctrl-C goes to the whole process group, systemd signals the
  // whole cgroup); only the primary acts on them, telling each worker what to do.
  const ignore = (signal: NodeJS.Signals) =>
    log.debug({ signal }, `${signal} received by a worker: the primary coordinates the shutdown`);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  const worker = new HubWorker({ ...options, hub_id: workerHubId(baseHubId(options), index) }, index, log);
  await worker.listen();
  const how = await worker.stopped;
  await closeLog();
  return how === 'forced' ? ExitCode.FORCED : ExitCode.OK;
}
