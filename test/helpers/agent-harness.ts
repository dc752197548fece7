import type { LookupFunction } from 'node:net';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import { Agent } from '../../agent/agent.js';
import type { AgentSettings } from '../../agent/config/agent-settings.js';
import type { ConnectionTiming } from '../../agent/connection/connection.js';
import { DEFAULT_SERVER_BREAKER, type ServerBreakerSettings } from '../../agent/connection/server-breakers.js';
import { SystemUsage } from '../../agent/system/system-usage.js';
import type { ConnectionEvent, ConnectionState } from '../../protocol/connection-state.js';
import { toAgentEndpoint } from '../../protocol/server-url.js';
import pino from 'pino';
import { TEST_SECRET } from './hub-process.js';
import { mintToken } from '../../server/auth.js';
import { waitUntil } from './wait.js';

/** Millisecond timings: every mechanism fires within a test's patience, with ratios like the defaults. */
export const FAST_TIMING: ConnectionTiming = {
  connectTimeoutMs: 1000,
  registrationTimeoutMs: 1000,
  heartbeatIntervalMs: 100,
  deadTimeoutMs: 600,
  pingIntervalMs: 100,
  pingTimeoutMs: 400,
  stableAfterMs: 1500,
  initialReconnectDelayMs: 50,
  maxReconnectDelayMs: 400,
  reconnectJitter: 0.2,
  closeTimeoutMs: 500,
};

const sharedUsage = new SystemUsage();

export interface HarnessOptions {
  servers: string[];
  id?: string;
  token?: string | null;
  timing?: Partial<ConnectionTiming>;
  /** Print the agent's logs (debugging a test). */
  verbose?: boolean;
  lookup?: LookupFunction;
  /** protocol.mode [auto]. */
  mode?: ProtocolModeSetting;
  /** The per-server breakers [the design's defaults]. */
  breaker?: ServerBreakerSettings;
}

/** An in-process agent against real hubs, with every transition recorded. */
export class AgentHarness {
  readonly agent: Agent;
  readonly events: ConnectionEvent[] = [];
  /** The agent's log lines (debug and up), so a test can wait for what the agent says it did. */
  readonly logs: { level: number; msg: string; [key: string]: unknown }[] = [];

  private constructor(settings: AgentSettings, verbose: boolean, lookup: LookupFunction | undefined) {
    const sink = {
      write: (line: string) => {
        this.logs.push(JSON.parse(line) as AgentHarness['logs'][number]);
        if (verbose) process.stdout.write(line);
      },
    };
    this.agent = new Agent(settings, {
      logger: pino({ level: 'debug' }, sink),
      usage: sharedUsage,
      ...(lookup ? { lookup } : {}),
    });
    this.agent.connection.events.on('state', (e) => this.events.push(e));
  }

  static async create(options: HarnessOptions): Promise<AgentHarness> {
    const id = options.id ?? `test-${Math.random().toString(36).slice(2, 10)}`;
    const token =
      options.token === null
        ? undefined
        : (options.token ?? (await mintToken(TEST_SECRET, { role: 'agent', agentId: id })));
    const settings: AgentSettings = {
      servers: options.servers.map(toAgentEndpoint),
      configuredServers: options.servers,
      timing: { ...FAST_TIMING, ...options.timing },
      identity: { id, name: `harness-${id}`, token },
      log: { level: 'silent', file: null, maxSizeMb: 1, maxFiles: 1 },
      adb: { path: 'adb', timeoutMs: 30_000, trackDevices: false }, // the first `adb devices` starts adb's server
      protocol: { mode: options.mode ?? 'auto', batchWindowMs: 50, batchMaxMessages: 500 },
      outbox: { maxMessages: 100_000, maxBytes: 64_000_000, sync: 'os', defaultTtlMs: undefined },
      breaker: options.breaker ?? DEFAULT_SERVER_BREAKER,
      dataDir: '/nonexistent',
      configFile: undefined,
    };
    return new AgentHarness(settings, options.verbose ?? false, options.lookup);
  }

  start(): this {
    this.agent.start();
    return this;
  }

  state(): ConnectionState {
    return this.agent.state();
  }

  /** Waits until the agent is registered on server `index`; returns the transition that got it there. */
  async registeredOn(index: number, timeoutMs = 10_000): Promise<ConnectionEvent> {
    const from = this.events.length;
    const current = this.state();
    if (current.phase === 'connected' && current.server.index === index) return this.events[this.events.length - 1]!;
    return waitUntil(
      `agent registered on server #${index} (now ${JSON.stringify(this.state())})`,
      () => this.events.slice(from).find((e) => e.to.phase === 'connected' && e.to.server.index === index),
      timeoutMs,
    );
  }

  /** Waits for a transition after `fromIndex` (default: from now) matching `predicate`. */
  async transition(
    what: string,
    predicate: (e: ConnectionEvent) => boolean,
    timeoutMs = 10_000,
    fromIndex = this.events.length,
  ): Promise<ConnectionEvent> {
    return waitUntil(`transition: ${what}`, () => this.events.slice(fromIndex).find(predicate), timeoutMs);
  }

  /** Waits for a log line after `fromIndex` (default: any so far) matching `predicate`. */
  async waitForLog(
    what: string,
    predicate: (line: AgentHarness['logs'][number]) => boolean,
    timeoutMs = 10_000,
    fromIndex = 0,
  ): Promise<AgentHarness['logs'][number]> {
    return waitUntil(`agent log: ${what}`, () => this.logs.slice(fromIndex).find(predicate), timeoutMs);
  }

  stop(): Promise<void> {
    return this.agent.stop();
  }
}
