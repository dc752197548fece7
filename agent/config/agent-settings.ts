import os from 'node:os';
import path from 'node:path';
import type { AgentConfig, LogLevel, ProtocolModeSetting } from '../../protocol/config.js';
import { toAgentEndpoint } from '../../protocol/server-url.js';
import type { ConnectionTiming } from '../connection/connection.js';
import type { ServerBreakerSettings } from '../connection/server-breakers.js';
import { loadOrCreateAgentId } from './agent-id.js';

/** The configuration as the running agent uses it: endpoints resolved, times in ms, identity settled. */
export interface AgentSettings {
  /** WebSocket endpoints, primary first. */
  servers: string[];
  /** The URLs as configured, same order. */
  configuredServers: string[];
  timing: ConnectionTiming;
  identity: { id: string; name: string; token: string | undefined };
  log: { level: LogLevel; file: string | null; maxSizeMb: number; maxFiles: number };
  adb: { path: string; timeoutMs: number; trackDevices: boolean };
  protocol: { mode: ProtocolModeSetting; batchWindowMs: number; batchMaxMessages: number };
  outbox: { maxMessages: number; maxBytes: number; sync: 'flush' | 'os'; defaultTtlMs: number | undefined };
  /** Each server's circuit breaker: refusals within the window that open it, and the time to its probe. */
  breaker: ServerBreakerSettings;
  dataDir: string;
  configFile: string | undefined;
}

const ms = (seconds: number) => Math.round(seconds * 1000 * 1000) / 1000;

export function resolveAgentSettings(
  config: AgentConfig,
  options: { file: string | undefined; dataDir: string },
): AgentSettings {
  const configured = [config.server.url, ...config.server.fallback_urls];
  const c = config.connection;
  const baseDir = options.file ? path.dirname(path.resolve(options.file)) : process.cwd();
  let logFile: string | null;
  if (config.log.file === false) logFile = null;
  else if (config.log.file === undefined) logFile = path.join(options.dataDir, 'logs', 'agent.log');
  else logFile = path.resolve(baseDir, config.log.file);
  return {
    servers: configured.map(toAgentEndpoint),
    configuredServers: configured,
    timing: {
      connectTimeoutMs: ms(c.connect_timeout),
      registrationTimeoutMs: ms(c.registration_timeout),
      heartbeatIntervalMs: ms(c.heartbeat_interval),
      deadTimeoutMs: ms(c.dead_timeout),
      pingIntervalMs: ms(c.ping_interval),
      pingTimeoutMs: ms(c.ping_timeout),
      stableAfterMs: ms(c.stable_after),
      initialReconnectDelayMs: ms(c.initial_reconnect_delay),
      maxReconnectDelayMs: ms(c.max_reconnect_delay),
      reconnectJitter: c.reconnect_jitter,
      // Long enough for a healthy hub's close frame, short enough that shutdown never hangs on a dead one.
      closeTimeoutMs: Math.min(2000, ms(c.connect_timeout)),
    },
    identity: {
      id: config.agent.id ?? loadOrCreateAgentId(options.dataDir),
      name: config.agent.name ?? os.hostname(),
      token: config.agent.token,
    },
    log: { level: config.log.level, file: logFile, maxSizeMb: config.log.max_size_mb, maxFiles: config.log.max_files },
    adb: { path: config.adb.path, timeoutMs: ms(config.adb.timeout), trackDevices: config.adb.track_devices },
    protocol: {
      mode: config.protocol.mode,
      batchWindowMs: ms(config.protocol.batch_window),
      batchMaxMessages: config.protocol.batch_max_messages,
    },
    breaker: {
      failures: config.breaker.failures,
      windowMs: ms(config.breaker.window),
      recoveryMs: ms(config.breaker.recovery),
    },
    outbox: {
      maxMessages: config.outbox.max_messages,
      // Decimal megabytes, as the panel shows sizes: 64 reads "64 MB" there, not 67.
      maxBytes: Math.round(config.outbox.max_mb * 1_000_000),
      sync: config.outbox.sync,
      defaultTtlMs: config.outbox.default_ttl === undefined ? undefined : ms(config.outbox.default_ttl),
    },
    dataDir: options.dataDir,
    configFile: options.file,
  };
}
