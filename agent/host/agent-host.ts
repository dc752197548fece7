import type { Logger } from 'pino';
import {
  SettingsSchema,
  type LogEntry,
  addModeFigures,
  emptyModeFigures,
  type Snapshot,
  type ThroughputSample,
} from '../../protocol/agent-host.js';
import type { AgentConfig, ProtocolModeSetting } from '../../protocol/config.js';
import type { Priority } from '../../protocol/messages.js';
import type { ConnectionEvent, ConnectionState, ConnectionStats } from '../../protocol/connection-state.js';
import { connectionQuality } from '../../protocol/quality.js';
import { Agent, type AgentDeps } from '../agent.js';
import { AgentCache, cacheSummary } from '../cache/agent-cache.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import { resolveAgentSettings, type AgentSettings } from '../config/agent-settings.js';
import { loadAgentConfig, type ConfigOverride } from '../config/load-config.js';
import { renderSettingsFile, writeFileAtomic } from '../config/settings-file.js';
import { ConfigError, errorInfo } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import { AGENT_VERSION } from '../../lib/version.js';
import { HostFailure, type AgentHostHandlers } from './call-router.js';
import { NOTHING_CARRIED, withCarried, type CarriedStats } from './carried-stats.js';
import type { LogBuffer } from './log-buffer.js';
import { dialLocalHub, isLocalHubUrl, type LocalHub } from './local-hub.js';
import { panelServers } from './server-status.js';
import type { OutboxStore } from '../outbox/outbox-store.js';
import { DeviceTracker } from '../devices/device-tracker.js';
import { watchNetwork, watchWake } from '../system/network-watch.js';
import type { TunnelSummary } from '../../protocol/tunnel.js';
import type { FarmTunnel } from '../tunnel/farm-tunnel.js';
import { offLink } from '../tunnel/farm-tunnel.js';
import { createFarmTunnel } from '../tunnel/farm-tunnel-factory.js';

/** Overrides from this source are `farmlink start`'s local hub; saving settings retires them. */
export const LOCAL_HUB_SOURCE = 'local hub';

const EVENT_HISTORY = 200;
const HISTORY_MS = 15 * 60_000;

export interface AgentHostOptions {
  config: AgentConfig;
  /** The config file in use, if any; Save writes here, or to `defaultConfigFile`. */
  configFile: string | undefined;
  defaultConfigFile: string;
  /** Environment and flag overrides, re-applied whenever the file is read again. */
  overrides: readonly ConfigOverride[];
  dataDir: string;
  logger: Logger;
  logs: LogBuffer;
  /**
   * The hub `farmlink start` runs in this process, if it does. While the primary server.url is its
   * address (in any spelling) the agent uses its token, given in memory — also after a save.
   */
  localHub?: LocalHub | undefined;
  clock?: Clock;
  /** Counter sampling period for rates and the throughput graph. */
  throughputIntervalMs?: number;
  agentDeps?: Omit<AgentDeps, 'logger' | 'cache'>;
  /** The agent's cache; opened in `dataDir/cache` unless given, or `false` for none. */
  cache?: AgentCache | false;
  /**
   * The durable outbox (opened by the start-up at `<data dir>/outbox`); it outlives agents replaced
   * by new settings. Absent: the agent runs without one, and `outboxProblem` says why.
   */
  outbox?: OutboxStore | undefined;
  outboxProblem?: string | undefined;
  /** What runs this host, for the panel to say [headless]. */
  runsIn?: 'headless' | 'desktop';
  /** This process's id [process.pid]. */
  pid?: number;
  /**
   * Where `sendEvents` (`farmlink event`, local programs) hands events: resolves with their
   * sequence numbers once they are durably accepted, or throws a FarmlinkError (OUTBOX_FULL,
   * OUTBOX_UNAVAILABLE) that the caller sees as it is. Without it, sendEvents answers OUTBOX_UNAVAILABLE.
   */
  events?: EventSender;
  /** Makes the farm end of the tunnel when `tunnel.services` is not empty [a real link to the server list]. */
  createTunnel?: (setup: Parameters<typeof createFarmTunnel>[0]) => FarmTunnel;
}

/** One event as a local program hands it in. */
export interface EventInput {
  name: string;
  data: unknown;
  priority: Priority;
  ttlMs?: number;
}

export interface EventSender {
  send(inputs: EventInput[]): Promise<number[]>;
}

export interface HostEvents extends Record<string, unknown> {
  /** Something in the snapshot changed (not coalesced: transports throttle). */
  changed: undefined;
  log: LogEntry;
}

/**
 * The agent as the panel sees it: one object with a snapshot, a stream of changes and the
 * commands (reconnect now, set mode, save settings, tail logs). The Electron main process and
 * the headless panel server both expose exactly this, through `handlers()`.
 */
export class AgentHost {
  readonly events: TypedEmitter<HostEvents>;
  private agent: Agent;
  private settings: AgentSettings;
  private config: AgentConfig;
  private configFile: string | undefined;
  private overrides: readonly ConfigOverride[];
  private onLocalHub: boolean;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly history: ConnectionEvent[] = [];
  private readonly throughput: ThroughputSample[] = [];
  private carry: CarriedStats = NOTHING_CARRIED;
  /** Traffic per mode of agents replaced by new settings. */
  private figuresCarry: Snapshot['mode_figures'] = { legacy: emptyModeFigures(), enhanced: emptyModeFigures() };
  /** Set while new settings replace the agent: the old one stopping is a hand-over, not a stop. */
  private applying = false;
  private unsubscribeAgent: () => void = () => {};
  private throughputTimer: NodeJS.Timeout | undefined;
  private started = false;
  private saving: Promise<unknown> = Promise.resolve();
  private stopWatchers: Array<() => void> = [];
  private readonly startedAt: number;
  private lastWakeAt = -Infinity;
  private readonly cache: AgentCache | undefined;
  /** Phones coming and going (adb track-devices), as `device` events through the outbox; the host's, like the outbox. */
  private readonly devices: DeviceTracker | undefined;
  /** The farm end of the tunnel; absent while `tunnel.services` is empty (nothing is reachable). */
  private readonly tunnel: FarmTunnel | undefined;

  constructor(private readonly options: AgentHostOptions) {
    this.clock = options.clock ?? systemClock;
    this.startedAt = this.clock.now();
    this.log = options.logger;
    this.events = new TypedEmitter((error, event) =>
      this.log.error({ err: error, event }, `A panel listener of "${event}" threw`),
    );
    this.config = options.config;
    this.configFile = options.configFile;
    this.overrides = options.overrides;
    this.onLocalHub = isLocalHubUrl(this.config.server.url, options.localHub);
    this.settings = resolveAgentSettings(this.config, { file: this.configFile, dataDir: options.dataDir });
    // The local hub's token is already in the config `farmlink start` hands over.
    if (this.onLocalHub && options.localHub) this.settings = dialLocalHub(this.settings, options.localHub);
    this.cache = options.cache === false ? undefined : (options.cache ?? AgentCache.open(options.dataDir, this.log));
    const created = this.createAgent(this.settings);
    this.agent = created.agent;
    this.unsubscribeAgent = created.unsubscribe;
    options.logs.onEntry((entry) => this.events.emit('log', entry));
    if (options.outbox && this.settings.adb.trackDevices) {
      this.devices = new DeviceTracker({
        adbPath: this.settings.adb.path,
        logger: this.log.child({ component: 'devices' }),
        clock: this.clock,
        emit: (name, data, { priority }) =>
          this.agent.emit([{ type: 'event', body: { name, data, timestamp: this.clock.now() }, priority }]),
      });
    }
    this.tunnel = this.createTunnel();
    const outbox = options.outbox;
    if (outbox) {
      const changed = () => this.events.emit('changed', undefined);
      this.stopWatchers.push(
        outbox.events.on('accepted', changed),
        outbox.events.on('dropped', changed),
        outbox.events.on('state', changed),
      );
    } else if (options.outboxProblem) {
      this.log.error(
        { problem: options.outboxProblem },
        `The agent runs without an outbox (${options.outboxProblem}): events cannot be accepted, command results are sent at most once`,
      );
    }
  }

  get currentAgent(): Agent {
    return this.agent;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.agent.start();
    this.throughputTimer = setInterval(() => this.sampleThroughput(), this.options.throughputIntervalMs ?? 5000);
    this.throughputTimer.unref();
    this.sampleThroughput();
    this.devices?.start();
    this.tunnel?.start();
    this.stopWatchers.push(
      watchNetwork(() => this.systemEvent('network')),
      watchWake((slept) => this.systemEvent('resume', `the clock jumped ${Math.round(slept / 1000)}s`)),
    );
  }

  /**
   * The OS says something happened to the machine's connectivity. After a wake the old socket is
   * almost surely dead: reconnect at once. After a network change it may have survived: check it.
   * Two reports of one wake (Electron's powerMonitor and the clock-jump detector) reconnect once.
   */
  systemEvent(kind: 'resume' | 'network', detail?: string): void {
    if (kind === 'resume') {
      const now = this.clock.now();
      if (now - this.lastWakeAt < 10_000) return;
      this.lastWakeAt = now;
      this.agent.reconnectNow(`Woke from sleep${detail ? ` (${detail})` : ''}`);
    } else {
      this.agent.connection.checkNow('Network changed');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.throughputTimer);
    for (const stop of this.stopWatchers) stop();
    await this.saving.catch(() => undefined);
    this.unsubscribeAgent();
    // Before the agent: clients hear their sessions end on purpose, not a farm that vanished.
    this.tunnel?.stop('the agent is stopping');
    await this.devices?.stop();
    await this.agent.stop();
    await this.cache?.close();
    await this.options.outbox?.close();
  }

  reconnectNow(message = 'Reconnect requested from the panel'): void {
    this.agent.reconnectNow(message);
  }

  /**
   * Switches the protocol mode live: when the connection speaks another mode it is ended gracefully
   * and the same server is dialled again in the new one; the statistics go on. Lasts until the
   * agent restarts or settings are saved (protocol.mode in the file is the lasting setting).
   */
  setMode(mode: ProtocolModeSetting): ProtocolModeSetting {
    const reconnecting = this.agent.connection.setMode(mode);
    this.log.info(
      { mode, reconnecting },
      `Protocol mode set to ${mode} from the panel${reconnecting ? ': reconnecting in that mode' : ''}`,
    );
    this.events.emit('changed', undefined);
    return mode;
  }

  /** Hands events to the outbox; resolves with their sequence numbers once they are durably accepted. */
  async sendEvents(
    events: ReadonlyArray<{ name: string; data?: unknown; priority: Priority; ttl_ms?: number | undefined }>,
  ): Promise<{ seqs: number[]; agent_id: string }> {
    const sender = this.options.events ?? this.outboxSender();
    if (!sender) {
      throw new HostFailure(
        'OUTBOX_UNAVAILABLE',
        `This agent runs without an outbox${this.options.outboxProblem ? ` (${this.options.outboxProblem})` : ''}; events cannot be accepted.`,
      );
    }
    const limit = this.agent.messageLimit();
    for (const [i, event] of events.entries()) {
      const bytes = Buffer.byteLength(JSON.stringify({ name: event.name, data: event.data ?? null }));
      if (bytes > limit) {
        throw new HostFailure(
          'EVENT_TOO_LARGE',
          `Event #${i + 1} (${event.name}) is ${bytes} bytes; the hub accepts messages of at most ${limit} bytes. Nothing was accepted.`,
        );
      }
    }
    const seqs = await sender.send(
      events.map((event) => ({
        name: event.name,
        // JSON has no undefined: an event handed in without data carries null.
        data: event.data ?? null,
        priority: event.priority,
        ...(event.ttl_ms !== undefined ? { ttlMs: event.ttl_ms } : {}),
      })),
    );
    return { seqs, agent_id: this.settings.identity.id };
  }

  /** Events into the outbox through the current agent (which numbers and stamps them). */
  private outboxSender(): EventSender | undefined {
    if (!this.options.outbox) return undefined;
    return {
      send: (inputs) =>
        this.agent.emit(
          inputs.map((input) => ({
            type: 'event' as const,
            body: { name: input.name, data: input.data, timestamp: this.clock.now() },
            priority: input.priority,
            ...(input.ttlMs !== undefined ? { ttlMs: input.ttlMs } : {}),
          })),
        ),
    };
  }

  tailLogs(input: { limit: number; min_level: LogEntry['level']; after_seq?: number | undefined }): LogEntry[] {
    return this.options.logs.tail({ limit: input.limit, minLevel: input.min_level, afterSeq: input.after_seq });
  }

  /**
   * Validates the form with the config file's own schemas, then the whole file as it would be
   * written (with the environment and flags on top), and only then writes it and applies it
   * without a restart: the running agent disconnects gracefully and one with the new settings
   * takes over, keeping the timeline, the counters and the latency history. Nothing is written
   * while anything is invalid, and a save that fails leaves the running agent as it was.
   */
  saveSettings(raw: unknown): Promise<{ file: string }> {
    const run = this.saving.catch(() => undefined).then(() => this.doSaveSettings(raw));
    this.saving = run;
    return run;
  }

  private async doSaveSettings(raw: unknown): Promise<{ file: string }> {
    const parsed = SettingsSchema.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((key) => ({ path: [...issue.path, key].join('.'), message: 'unknown key' }))
          : [{ path: issue.path.join('.'), message: issue.message }],
      );
      throw new HostFailure('INVALID_SETTINGS', 'Some settings are not valid; nothing was saved', problems);
    }
    const settingsIn = parsed.data;
    if (settingsIn.agent.token && this.config.agent.token_file !== undefined) {
      throw new HostFailure('INVALID_SETTINGS', 'Some settings are not valid; nothing was saved', [
        {
          path: 'agent.token',
          message: `this agent reads its token from agent.token_file (${this.config.agent.token_file}): put the new token in that file instead`,
        },
      ]);
    }
    const file = this.configFile ?? this.options.defaultConfigFile;
    const fixed = new Set(this.overrides.filter((o) => o.source !== LOCAL_HUB_SOURCE).map((o) => o.path.join('.')));
    const text = renderSettingsFile(file, settingsIn, { skip: fixed });
    // The saved file stands on its own: the local hub's zero-config overrides go.
    const overrides = this.overrides.filter((o) => o.source !== LOCAL_HUB_SOURCE);
    let config: AgentConfig;
    let settings: AgentSettings;
    try {
      config = loadAgentConfig({ file, text, overrides }).config;
      settings = resolveAgentSettings(config, { file, dataDir: this.options.dataDir });
    } catch (error) {
      if (error instanceof ConfigError)
        throw new HostFailure(
          'CONFIG_INVALID',
          `Nothing was saved: ${file} would not be valid as a whole: ${error.problems.join('; ')}`,
        );
      throw new HostFailure('CONFIG_INVALID', `Nothing was saved: ${errorInfo(error).message}`);
    }
    const localHub = this.options.localHub;
    const onLocalHub = isLocalHubUrl(config.server.url, localHub);
    if (onLocalHub) settings = dialLocalHub(settings, localHub, await localHub.tokenFor(settings.identity.id));
    // Built before anything changes: if this throws, the file and the running agent are untouched.
    const next = this.createAgent(settings);

    try {
      writeFileAtomic(file, text);
    } catch (error) {
      next.unsubscribe();
      throw new HostFailure(
        'CONFIG_UNWRITABLE',
        `Nothing was saved: cannot write ${file}: ${errorInfo(error).message}`,
      );
    }
    this.configFile = file;
    this.overrides = overrides;
    this.config = config;
    this.onLocalHub = onLocalHub;
    this.log.info({ file }, `Settings saved to ${file}; applying them now`);
    if (onLocalHub) {
      this.log.info(
        { hub: localHub.url },
        `server.url is the local hub this process runs (${localHub.url}): the agent uses its token, kept in memory and not written to ${file}`,
      );
    }
    await this.replaceAgent(next, settings);
    return { file };
  }

  snapshot(): Snapshot {
    // The old agent's "stopping" while new settings take over would read as a red "Stopped".
    const state: ConnectionState = this.applying ? { phase: 'idle' } : this.agent.state();
    const stats = this.statsWithCarry(this.agent.stats());
    return {
      now: this.clock.now(),
      started_at: this.startedAt,
      agent: { id: this.settings.identity.id, name: this.settings.identity.name, version: AGENT_VERSION },
      state,
      servers: panelServers(state, stats.servers, this.settings.configuredServers),
      stats,
      throughput: [...this.throughput],
      quality: connectionQuality(state, stats),
      mode: this.modeSummary(),
      mode_figures: this.modeFigures(),
      outbox: this.options.outbox?.summary(this.agent.delivery?.unacked ?? 0) ?? null,
      events: [...this.history],
      settings: {
        values: {
          server: { url: this.config.server.url, fallback_urls: [...this.config.server.fallback_urls] },
          connection: { ...this.config.connection },
          agent: { name: this.config.agent.name ?? this.settings.identity.name },
        },
        has_token: Boolean(this.settings.identity.token),
        file: this.configFile ?? null,
        default_file: this.options.defaultConfigFile,
        overridden: this.overrides
          .filter((o) => o.source !== LOCAL_HUB_SOURCE)
          .map((o) => ({ path: o.path.join('.'), source: o.source })),
      },
      local_hub: this.onLocalHub && this.options.localHub ? { url: this.options.localHub.url } : null,
      cache: this.cache ? cacheSummary(this.cache.metrics()) : null,
      agent_process: {
        pid: this.options.pid ?? process.pid,
        runs_in: this.options.runsIn ?? 'headless',
        attached: false,
      },
      tunnel: this.tunnelSummary(),
    };
  }

  /** The Tunnels card: the allowlist, the link, the sessions; `off` with no services exposed. */
  tunnelSummary(): TunnelSummary {
    return this.tunnel?.summary() ?? { services: [], link: offLink(), sessions: [], closed_total: 0 };
  }

  /** The AgentHost API, for either transport's call router. */
  handlers(): AgentHostHandlers {
    return {
      getSnapshot: () => this.snapshot(),
      reconnectNow: () => {
        this.reconnectNow();
        return {};
      },
      setMode: ({ mode }) => ({ mode: this.setMode(mode) }),
      sendEvents: (input) => this.sendEvents(input.events),
      saveSettings: ({ settings }) => this.saveSettings(settings),
      tailLogs: (input) => this.tailLogs(input),
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * Made once per host from the config it started with: saving settings in the panel changes
   * neither the services nor the tunnel's server list until the agent restarts.
   */
  private createTunnel(): FarmTunnel | undefined {
    const services = this.config.tunnel.services;
    const log = this.log.child({ component: 'tunnel' });
    if (Object.keys(services).length === 0) {
      log.info('Tunnel off: no services exposed (add tunnel.services to the config to expose one)');
      return undefined;
    }
    if (this.settings.identity.token === undefined) {
      log.warn('Tunnel: this agent has no token; the broker will refuse the tunnel socket until one is configured');
    }
    const tunnel = (this.options.createTunnel ?? createFarmTunnel)({
      settings: this.settings,
      services,
      addressCheckIntervalMs: Math.round(this.config.tunnel.address_check_interval * 1000),
      direct: this.config.tunnel.direct,
      clock: this.clock,
      logger: log,
    });
    tunnel.events.on('change', () => this.events.emit('changed', undefined));
    return tunnel;
  }

  private modeSummary(): Snapshot['mode'] {
    const info = this.agent.connection.getModeInfo();
    const unavailable: Record<string, string> = {};
    if (info.hubOffersEnhanced === false) {
      unavailable.enhanced = `Hub ${info.lastHubId ?? ''} does not offer enhanced mode; this agent speaks legacy with it (at most once).`;
    }
    const current =
      info.negotiated ?? (info.setting === 'legacy' || info.hubOffersEnhanced === false ? 'legacy' : 'enhanced');
    return {
      configured: info.setting,
      current,
      negotiated: info.negotiated !== null,
      available: info.hubOffersEnhanced === false ? ['legacy'] : ['legacy', 'enhanced'],
      unavailable,
      pace: info.pace,
    };
  }

  private modeFigures(): Snapshot['mode_figures'] {
    const now = this.agent.connection.getModeFigures();
    return {
      legacy: addModeFigures(this.figuresCarry.legacy, now.legacy),
      enhanced: addModeFigures(this.figuresCarry.enhanced, now.enhanced),
    };
  }

  private createAgent(settings: AgentSettings): { agent: Agent; unsubscribe: () => void } {
    const agent = new Agent(settings, {
      logger: this.log,
      ...this.options.agentDeps,
      ...(this.cache ? { cache: this.cache } : {}),
      ...(this.options.outbox ? { outbox: this.options.outbox } : {}),
    });
    const changed = () => this.events.emit('changed', undefined);
    const offs = [
      agent.connection.events.on('state', (event) => {
        this.history.push(event);
        if (this.history.length > EVENT_HISTORY) this.history.shift();
        changed();
      }),
      agent.connection.events.on('heartbeatRtt', changed),
      agent.connection.events.on('message', changed),
    ];
    return { agent, unsubscribe: () => offs.forEach((off) => off()) };
  }

  private async replaceAgent(next: { agent: Agent; unsubscribe: () => void }, settings: AgentSettings): Promise<void> {
    const old = this.agent;
    this.applying = true;
    try {
      await old.connection.stop('Applying new settings');
      this.unsubscribeAgent();
      this.carry = this.statsWithCarry(old.stats(), true);
      this.figuresCarry = this.modeFigures();
      this.settings = settings;
      this.agent = next.agent;
      this.unsubscribeAgent = next.unsubscribe;
    } finally {
      this.applying = false;
    }
    this.events.emit('changed', undefined);
    // New settings start at their primary: the last server of the old settings means nothing to them.
    if (this.started) this.agent.start({ resume: false });
  }

  /** The current agent's stats plus what earlier agents (before a settings change) accumulated. */
  private statsWithCarry(stats: ConnectionStats, replacing = false): ConnectionStats {
    return withCarried(this.carry, stats, { historyCutoff: this.clock.now() - HISTORY_MS, replacing });
  }

  private sampleThroughput(): void {
    const stats = this.statsWithCarry(this.agent.stats());
    const now = this.clock.now();
    this.throughput.push({
      at: now,
      messages_sent: stats.messages_sent,
      messages_received: stats.messages_received,
      bytes_sent: stats.bytes_sent,
      bytes_received: stats.bytes_received,
    });
    const keepFrom = this.throughput.findIndex((s) => s.at >= now - HISTORY_MS);
    this.throughput.splice(0, keepFrom === -1 ? this.throughput.length : keepFrom);
    this.events.emit('changed', undefined);
  }
}
