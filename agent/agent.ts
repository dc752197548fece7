import type { LookupFunction } from 'node:net';
import os from 'node:os';
import type { Logger } from 'pino';
import type { ConnectionState, ConnectionStats } from '../protocol/connection-state.js';
import type { Broadcast, Command, Priority, Result } from '../protocol/messages.js';
import type { AgentCache } from './cache/agent-cache.js';
import { type Clock, type Random, systemClock, systemRandom } from '../lib/clock.js';
import { devicesListCommand } from './commands/adb-devices.js';
import { CommandRegistry, type CommandHandler } from './commands/registry.js';
import { systemInfoCommand } from './commands/system-info.js';
import type { AgentSettings } from './config/agent-settings.js';
import { AgentConnection } from './connection/connection.js';
import { Delivery } from './delivery/delivery.js';
import type { OutboxStore } from './outbox/outbox-store.js';
import { FarmlinkError, errorInfo } from '../lib/errors.js';
import { SystemUsage } from './system/system-usage.js';
import { AGENT_VERSION } from '../lib/version.js';

export interface AgentDeps {
  logger: Logger;
  clock?: Clock;
  random?: Random;
  /** Shared by many agents in one process (benchmarks), or one per agent. */
  usage?: SystemUsage;
  /** Name resolution for every dial (tests); dns.lookup by default. */
  lookup?: LookupFunction;
  /** Command results for a moment, and the last server that worked (so a restart dials it first). */
  cache?: AgentCache;
  /**
   * The durable outbox everything the agent emits goes through (it belongs to the host and outlives
   * an agent replaced by new settings). Without one, results go straight to the connection, at most once.
   */
  outbox?: OutboxStore;
}

/** What a producer hands the agent: an event or a result, how urgent, how long it may wait. */
export interface Emission {
  type: 'event' | 'result';
  body: Record<string, unknown>;
  priority: Priority;
  ttlMs?: number;
}

/** The hub's frame limit until one says otherwise (its default). */
const DEFAULT_HUB_PAYLOAD = 64 * 1024;
/** Room for the batch frame and the seq around a message. */
const BATCH_ROOM = 64;

/** How long a command's result is reused: long enough to absorb a burst, short enough to stay current. */
const COMMAND_CACHE_MS = { 'system.info': 1000, 'devices.list': 2000 } as const;

/**
 * One FarmLink agent: the resilient connection to the hub plus what the agent does with it
 * (answer commands, take broadcasts). Knows nothing of Electron or of any UI.
 */
export class Agent {
  readonly connection: AgentConnection;
  readonly commands: CommandRegistry;
  private readonly log: Logger;
  private lastBroadcast: Broadcast | undefined;
  private readonly cache: AgentCache | undefined;
  readonly outbox: OutboxStore | undefined;
  readonly delivery: Delivery | undefined;
  private starting = false;
  private stopped = false;

  constructor(
    readonly settings: AgentSettings,
    deps: AgentDeps,
  ) {
    this.log = deps.logger;
    const usage = deps.usage ?? new SystemUsage();
    this.connection = new AgentConnection({
      servers: settings.servers,
      timing: settings.timing,
      identity: {
        ...settings.identity,
        version: AGENT_VERSION,
        hostname: os.hostname(),
        platform: `${process.platform}-${process.arch}`,
      },
      clock: deps.clock ?? systemClock,
      random: deps.random ?? systemRandom,
      logger: deps.logger,
      usage: () => usage.sample(),
      ...(deps.lookup ? { lookup: deps.lookup } : {}),
      mode: settings.protocol.mode,
      breaker: settings.breaker,
      batch: { windowMs: settings.protocol.batchWindowMs, maxMessages: settings.protocol.batchMaxMessages },
    });
    this.outbox = deps.outbox;
    this.delivery = deps.outbox
      ? new Delivery({
          outbox: deps.outbox,
          connection: this.connection,
          clock: deps.clock ?? systemClock,
          logger: deps.logger,
        })
      : undefined;
    this.cache = deps.cache;
    const cached = (name: keyof typeof COMMAND_CACHE_MS, handler: CommandHandler): CommandHandler =>
      this.cache ? this.cache.command(name, COMMAND_CACHE_MS[name], handler) : handler;
    this.commands = new CommandRegistry(settings.adb.timeoutMs)
      .register('system.info', cached('system.info', systemInfoCommand(usage, AGENT_VERSION)))
      .register('devices.list', cached('devices.list', devicesListCommand(settings.adb.path)));
    this.connection.events.on('registered', ({ server, registered }) => {
      this.cache?.rememberServer({
        url: settings.servers[server.index] ?? server.url,
        hub_id: registered.hub_id,
        session_id: registered.session_id,
        registered_at: Date.now(),
      });
    });

    this.connection.events.on('message', (message) => {
      if (message.type === 'command') void this.runCommand(message);
      else if (message.type === 'broadcast') this.lastBroadcast = message;
    });
  }

  /**
   * Connects. With a cache, a process that starts dials the last server that worked first
   * (`resume`, the default); an agent that replaces another (new settings) starts at the primary.
   */
  start(options: { resume?: boolean } = {}): void {
    const { servers } = this.settings;
    this.log.info(
      { agent_id: this.settings.identity.id, servers: servers.length },
      `FarmLink agent ${AGENT_VERSION} starting as ${this.settings.identity.name} ` +
        `(${this.settings.identity.id}); ` +
        (servers.length === 1 ? 'one server, no fallbacks' : `primary and ${servers.length - 1} fallback(s)`),
    );
    this.delivery?.start();
    if (!this.cache || servers.length === 1 || options.resume === false) {
      this.connection.start();
      return;
    }
    if (this.starting) return;
    this.starting = true;
    void this.cache.lastServer(servers).then((last) => {
      if (this.stopped) return;
      if (last && last.index !== 0) {
        this.log.info(
          {
            server: last.index,
            hub_id: last.entry.hub_id,
            session_id: last.entry.session_id,
            since: new Date(last.entry.registered_at).toISOString(),
          },
          `Last run was registered with hub ${last.entry.hub_id} on server #${last.index}; dialing it first`,
        );
      }
      this.connection.start(last?.index ?? 0);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.connection.stop();
    this.delivery?.stop();
    await this.delivery?.settled();
  }

  /**
   * Hands messages to the outbox; resolves with their sequence numbers once they are durably
   * accepted. Throws OUTBOX_UNAVAILABLE without an outbox, and what the outbox throws (OUTBOX_FULL…).
   */
  emit(emissions: readonly Emission[]): Promise<number[]> {
    if (!this.outbox) {
      return Promise.reject(
        new FarmlinkError('OUTBOX_UNAVAILABLE', 'This agent runs without an outbox; nothing can be accepted'),
      );
    }
    return this.outbox.accept(emissions);
  }

  /** Largest message the hub (or, before any, the default hub) takes, less room for the batch around it. */
  messageLimit(): number {
    return (this.connection.getHubLimits()?.max_payload_bytes ?? DEFAULT_HUB_PAYLOAD) - BATCH_ROOM;
  }

  reconnectNow(message?: string): void {
    this.connection.reconnectNow(message);
  }

  state(): ConnectionState {
    return this.connection.getState();
  }

  stats(): ConnectionStats {
    return this.connection.getStats();
  }

  latestBroadcast(): Broadcast | undefined {
    return this.lastBroadcast;
  }

  private async runCommand(command: Command): Promise<void> {
    this.log.info({ command: command.name, id: command.id }, `Running command ${command.name} (${command.id})`);
    const outcome = await this.commands.run(command.name, command.args);
    const result = outcome.ok
      ? { type: 'result' as const, id: command.id, ok: true as const, data: outcome.data }
      : { type: 'result' as const, id: command.id, ok: false as const, error: outcome.error };
    if (!outcome.ok)
      this.log.warn(
        { command: command.name, id: command.id, error: outcome.error },
        `Command ${command.name} failed: ${outcome.error.message}`,
      );
    if (this.outbox) {
      await this.emitResult(command, result);
      return;
    }
    try {
      this.connection.send(result);
    } catch (error) {
      const info = errorInfo(error);
      if (info.code === 'MESSAGE_TOO_LARGE') {
        // Answer anyway, so the hub's caller learns why instead of timing out.
        this.trySend({
          type: 'result',
          id: command.id,
          ok: false,
          error: { code: 'RESULT_TOO_LARGE', message: info.message },
        });
      } else {
        this.log.warn(
          { command: command.name, id: command.id, code: info.code },
          `Result of ${command.name} not delivered: ${info.message}`,
        );
      }
    }
  }

  /** Through the outbox: a result survives a reconnect, and a restart, until the hub has it. */
  private async emitResult(command: Command, result: Result): Promise<void> {
    const { type: _type, ...body } = result;
    let answer: Record<string, unknown> = body;
    const bytes = Buffer.byteLength(JSON.stringify(result));
    if (bytes > this.messageLimit()) {
      // Answer anyway, so the hub's caller learns why instead of timing out.
      answer = {
        id: command.id,
        ok: false,
        error: {
          code: 'RESULT_TOO_LARGE',
          message: `result is ${bytes} bytes; the hub accepts at most ${this.messageLimit()}`,
        },
      };
    }
    try {
      await this.emit([{ type: 'result', body: answer, priority: 'high' }]);
    } catch (error) {
      const info = errorInfo(error);
      this.log.warn(
        { command: command.name, id: command.id, code: info.code },
        `Result of ${command.name} not accepted by the outbox: ${info.message}`,
      );
    }
  }

  private trySend(message: Parameters<AgentConnection['send']>[0]): void {
    try {
      this.connection.send(message);
    } catch (error) {
      this.log.warn({ type: message.type, error: errorInfo(error) }, `Could not send ${message.type}`);
    }
  }
}
