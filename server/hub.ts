import { untilOrTimeout } from './until-or-timeout.js';
import http, { type IncomingMessage } from 'node:http';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode, UpgradeRefusal } from '../protocol/close-codes.js';
import type { AgentEvent, BatchSettings, HubLimits, Result } from '../protocol/messages.js';
import { redactUrl } from '../protocol/server-url.js';
import { AGENT_LEGACY_WS_PATH, AGENT_WS_PATH } from '../protocol/version.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { AGENT_VERSION } from '../lib/version.js';
import { handleHttp } from './admin-api.js';
import { AgentSession, type SessionContext } from './agent-session.js';
import { MultiTierCache } from '../lib/cache/cache.js';
import { TokenVerifier, bearerToken, type TokenClaims } from './auth.js';
import { registerCacheMetrics } from './cache-prometheus.js';
import { CachedTokenVerifier, type Verifier } from './cached-token-verifier.js';
import { CommandDispatcher, type CommandOutcome } from './command-dispatcher.js';
import { ConnectionBudget, sourceKey, type BudgetRefusal } from './connection-budget.js';
import { drainConnections, type DrainResult } from './drain.js';
import { createEventSink } from './events/create-sink.js';
import type { EventSink } from './events/event-sink.js';
import { MeteredEventSink } from './events/metered-sink.js';
import { BreakerEventSink } from './events/breaker-sink.js';
import { HubBreakers } from './hub-breakers.js';
import { errorInfo } from '../lib/errors.js';
import type { HubOptions } from './hub-options.js';
import { LogThrottle } from './log-throttle.js';
import { LOAD_LEVEL_NAMES, LoadMonitor, eventLoopSampler, type LoadChange, type LoadSampler } from './load-monitor.js';
import { describePace, formatMs, maxHeartbeatMs, paceAt, type Pace } from './hub-pace.js';
import { HubMetrics, TunnelMetrics, type ModeFigures, type SessionMode } from './metrics.js';
import { TUNNEL_WS_PATH } from '../protocol/tunnel.js';
import { TunnelBroker, type TunnelFigures } from './tunnel/tunnel-broker.js';
import { SharedRegistry, type RegistryEntry } from './shared-registry.js';
import { SlicedSweep } from './sliced-sweep.js';

/** A load level is left once the event-loop delay stays under this share of its threshold (hysteresis). */
const LEAVE_RATIO = 0.5;
/** Node's default is 511; a fleet reconnecting at once overflowed it (kernel caps it at somaxconn). */
const LISTEN_BACKLOG = 4096;
/** Broadcasts yield to the event loop after this many sends, so heartbeats are not held up behind them. */
const BROADCAST_BATCH = 500;
/** Refused upgrades come in floods; their warnings are logged at most this often. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** A failing event sink fails every event: its warnings are logged at most this often. */
const SINK_FAILURE_LOG_INTERVAL_MS = 10_000;

export interface AgentSummary {
  agent_id: string;
  name: string;
  version: string;
  hostname: string | null;
  platform: string | null;
  address: string;
  session_id: string;
  connected_since: number;
  last_heartbeat_at: number | null;
  cpu_usage: number | null;
  ram_usage: number | null;
  messages_in: number;
  messages_out: number;
  /** legacy, or enhanced when batch.v1 was granted. */
  mode: SessionMode;
  /** Events received from this agent on this connection. */
  events_in: number;
  /** Enhanced: the highest seq acknowledged to it; null in legacy. */
  acked_seq: number | null;
}

/** What a hub is built with besides its options; tests pass their own. */
export interface HubDeps {
  clock?: Clock;
  /** Where events go; by default the Redis Stream with Redis, else the event log in the data dir. */
  events?: EventSink;
  /** What the load monitor reads; by default this process's event loop (tests feed synthetic delays). */
  loadSampler?: () => LoadSampler;
}

/** The JSON view of /metrics (Accept: application/json). */
export interface MetricsView {
  enhanced: ModeFigures;
  legacy: ModeFigures;
  hub: {
    hub_id: string;
    version: string;
    uptime_s: number;
    draining: boolean;
    agents_connected: number;
    connections_open: number;
    /** Every connection the hub closed or refused for an error, registered or not. */
    connection_errors: number;
    enhanced_granted: boolean;
    /** How enhanced agents batch right now: the configured settings, or wider under load. */
    batch: BatchSettings;
    /** This process's own load (each worker of a multi-process hub measures and adapts on its own). */
    load: LoadView;
  };
  /** Only with several worker processes (--workers N): each one's own part of the figures above. */
  workers?: WorkerMetrics[];
  /** The tunnel broker (/api/v1/tunnel) of this process. */
  tunnel?: TunnelFigures;
}

/** One worker of a multi-process hub in the JSON view of /metrics. */
export interface WorkerMetrics {
  /** "w1", "w2", … as in the `worker` label of farmlink_worker_* on the Prometheus side. */
  id: string;
  hub_id: string;
  pid: number;
  /** Since this worker process started (a restarted worker counts again from zero). */
  uptime_s: number;
  draining: boolean;
  agents_connected: number;
  connections_open: number;
  connection_errors: number;
  /** This worker's own load level: each worker adapts on its own. */
  load: LoadView;
  enhanced: ModeFigures;
  legacy: ModeFigures;
}

export interface LoadView {
  /** 0 normal, 1 busy, 2 overloaded. */
  level: number;
  name: string;
  event_loop_delay_p99_ms: number;
  /** false under --no-adapt: measured, but agents are not told. */
  adapt: boolean;
  /** The heartbeat interval asked of enhanced agents; null: their own. */
  heartbeat_interval_ms: number | null;
}

/**
 * The hub agents connect to: the agent WebSocket endpoint, the admin API, /health and /metrics,
 * and the graceful shutdown. With Redis configured, hubs share where each agent is connected
 * (SharedRegistry), so any of them can answer for an agent on another.
 *
 * Connections are counted in two budgets. One with a valid agent token (in the upgrade's
 * Authorization header, or once hello's token verifies) takes one of --max-connections seats;
 * one without takes an unauthenticated seat, limited per source address and in total, and is
 * refused at the upgrade (HTTP 429 / 503) when there is none — so sockets that never
 * authenticate cannot keep agents that do out.
 */
export class Hub {
  readonly id: string;
  readonly metrics: HubMetrics;
  readonly startedAt = Date.now();
  readonly verifier: Verifier;
  readonly clock: Clock;
  /** Verified tokens (memory only): reconnects and admin calls skip the signature check. */
  private readonly tokenCache: MultiTierCache;
  /** Agent → hub entries in Redis, when the hub has one. */
  private readonly registryCache: MultiTierCache | undefined;
  readonly shared: SharedRegistry | undefined;
  /** Where agents' events go: the Redis Stream with Redis, else the event log in the data dir. */
  readonly events: EventSink;
  readonly breakers: HubBreakers;
  /** The tunnel broker on /api/v1/tunnel (docs/tunnel.md). */
  readonly tunnel: TunnelBroker;
  private readonly log: Logger;
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<AgentSession>();
  /** Seats of the sessions without a valid agent token yet (each also in `sessions`). */
  private readonly unauthenticated: ConnectionBudget;
  private readonly refusalLog = new LogThrottle(REFUSAL_LOG_INTERVAL_MS);
  private readonly sinkFailureLog = new LogThrottle(SINK_FAILURE_LOG_INTERVAL_MS);
  private readonly registry = new Map<string, AgentSession>();
  private readonly dispatcher = new CommandDispatcher();
  private readonly context: SessionContext;
  private readonly emptyWaiters: Array<() => void> = [];
  private readonly pingSweep: SlicedSweep<AgentSession>;
  private broadcastTimer: NodeJS.Timeout | undefined;
  private drainPromise: Promise<DrainResult> | undefined;
  private closed = false;
  /** Samples the event loop once listening; its level decides `pace`. */
  private loadMonitor: LoadMonitor | undefined;
  private readonly loadSampler: () => LoadSampler;
  /** What enhanced agents are asked for right now (the configured settings unless the hub is under load). */
  private pace: Pace;
  /** Bumped on each level change, so a tune sweep still under way for an older level stops. */
  private tuneGeneration = 0;
  /** Told of every registration and departure (a worker of a multi-process hub reports them to its primary). */
  private registryObserver: RegistryObserver | undefined;

  constructor(
    readonly options: HubOptions,
    logger: Logger,
    deps: HubDeps = {},
  ) {
    this.log = logger;
    this.clock = deps.clock ?? systemClock;
    this.id = options.hub_id ?? `${os.hostname()}:${options.port}`;
    this.tokenCache = MultiTierCache.create({ name: 'tokens', memory: { maxEntries: 50_000 }, logger });
    this.verifier = new CachedTokenVerifier(new TokenVerifier(options.secret), this.tokenCache);
    if (options.redis_url || options.redis_cluster) {
      this.registryCache = MultiTierCache.create({
        name: 'registry',
        memory: { maxEntries: 100_000 },
        redis: {
          ...(options.redis_url !== undefined ? { url: options.redis_url } : {}),
          ...(options.redis_cluster !== undefined ? { cluster: options.redis_cluster } : {}),
          prefix: `${options.redis_prefix}registry:`,
        },
        logger,
      });
      this.shared = new SharedRegistry(this.registryCache, this.id, options.registry_ttl_ms, logger);
      const where = options.redis_url
        ? redactUrl(options.redis_url)
        : `cluster ${(options.redis_cluster ?? []).map((n) => `${n.host}:${n.port}`).join(',')}`;
      logger.info(
        { redis: where, prefix: options.redis_prefix },
        `Shared registry on Redis ${where} (keys under ${options.redis_prefix}registry:); the hub serves without it while Redis is down`,
      );
    }
    this.loadSampler = deps.loadSampler ?? eventLoopSampler;
    this.pace = paceAt(0, this.configuredBatch(), this.maxHeartbeatMs());
    this.unauthenticated = new ConnectionBudget(options.max_unauthenticated, options.max_unauthenticated_per_address);
    this.metrics = new HubMetrics({
      agentsConnected: () => this.registry.size,
      connectionsOpen: () => this.sessions.size,
      connectionsUnauthenticated: () => this.unauthenticated.size,
    });
    this.metrics.loadGauges(() => {
      const sample = this.loadMonitor?.lastSample;
      return {
        level: this.loadMonitor?.level ?? 0,
        delayP50Ms: sample?.delayP50Ms ?? 0,
        delayP99Ms: sample?.delayP99Ms ?? 0,
        utilization: sample?.utilization ?? 0,
      };
    });
    this.breakers = new HubBreakers(
      {
        failures: options.breaker_failures,
        windowMs: options.breaker_window_ms,
        recoveryMs: options.breaker_recovery_ms,
      },
      this.clock,
      logger,
      this.metrics.registry,
    );
    // The breaker outside the meter: a call it refuses never reached the sink, so is not a sink failure.
    this.events = new BreakerEventSink(
      new MeteredEventSink(deps.events ?? createEventSink(options, logger), this.metrics, this.clock),
      this.breakers.get('sink'),
    );
    const registryCache = this.registryCache;
    // The shared registry's Redis calls go through the breaker of its cache's Redis tier (tuned
    // for a cache: it skips Redis briefly and closes as soon as Redis is back); exported here too.
    if (registryCache)
      this.breakers.exportState('registry_redis', () => registryCache.metrics().tiers.redis?.breaker ?? 'closed');
    registerCacheMetrics(this.metrics.registry, () =>
      this.registryCache ? [this.tokenCache, this.registryCache] : [this.tokenCache],
    );
    this.tunnel = new TunnelBroker(
      {
        brokerId: this.id,
        timings: {
          ping_interval_ms: options.tunnel_ping_interval_ms,
          ping_timeout_ms: options.tunnel_ping_timeout_ms,
          resume_window_ms: options.tunnel_resume_window_ms,
          idle_timeout_ms: options.tunnel_idle_timeout_ms,
          max_frame_bytes: options.tunnel_max_frame_bytes,
        },
        helloTimeoutMs: options.hello_timeout_ms,
        maxBufferedBytes: options.tunnel_max_buffered_bytes,
        limits: {
          perFarm: options.tunnel_max_sessions_per_farm,
          perClient: options.tunnel_max_sessions_per_client,
        },
      },
      this.verifier,
      new TunnelMetrics(this.metrics.registry),
      logger,
      this.clock,
    );
    const limits: HubLimits = {
      max_payload_bytes: options.max_payload_bytes,
      max_messages_per_second: options.rate_per_second,
      burst_messages: options.rate_burst,
    };
    this.context = {
      hubId: this.id,
      logger,
      metrics: this.metrics,
      verifier: this.verifier,
      clock: this.clock,
      limits,
      enhanced: options.enhanced,
      events: this.events,
      batchSettings: () => this.batchSettings(),
      heartbeatIntervalMs: () => this.pace.heartbeatIntervalMs ?? undefined,
      handlerBreaker: (type) => this.breakers.handler(type),
      maxBufferedBytes: options.max_buffered_bytes,
      helloTimeoutMs: options.hello_timeout_ms,
      isDraining: () => this.draining,
      register: (session) => this.register(session),
      authenticated: (session) => this.onAuthenticated(session),
      closed: (session, code, reason) => this.onSessionClosed(session, code, reason),
      onResult: (session, result: Result) => {
        if (!this.dispatcher.resolve(session, result)) {
          this.log.warn(
            { agent_id: session.agent?.id, id: result.id },
            `Result ${result.id} from ${session.label} matches no waiting command (late or unknown)`,
          );
        }
      },
      onEvent: (session, event) => this.appendLegacyEvent(session, event),
      onHeartbeat: (session) => {
        const id = session.registeredAgent().id;
        if (this.shared?.dueForRefresh(id) && this.registry.get(id) === session)
          this.shared.refresh(sharedEntry(session));
      },
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.max_payload_bytes,
      perMessageDeflate: options.per_message_deflate,
    });
    this.pingSweep = new SlicedSweep(options.ping_interval_ms, (session) => this.pingOrDrop(session));
    this.server = http.createServer(
      {
        // Slow-header and slow-body requests (and upgrades) are cut with 408 after these. Node
        // checks for them only every connectionsCheckingInterval (30 s by default, which let a
        // trickled header live for over a minute); checking a few times per timeout keeps the
        // actual cut close to the configured one. Only requests still being received are checked.
        headersTimeout: options.headers_timeout_ms,
        requestTimeout: options.request_timeout_ms,
        connectionsCheckingInterval: checkingInterval(options.headers_timeout_ms),
        // Keep idle admin/health connections from holding a drain open for long.
        keepAliveTimeout: 5000,
      },
      (req, res) => void handleHttp(this, req, res),
    );
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  /** How enhanced sessions batch right now: the configured settings, with a wider window under load. */
  batchSettings(): BatchSettings {
    return this.pace.batch;
  }

  /** The batch settings as configured (--batch-window, --batch-max-messages, --batch-max-bytes). */
  configuredBatch(): BatchSettings {
    return {
      window_ms: Math.round(this.options.batch_window_ms),
      max_messages: this.options.batch_max_messages,
      max_bytes: this.options.batch_max_bytes ?? this.options.max_payload_bytes,
    };
  }

  /** /metrics as JSON: the figures of each mode side by side, and the hub's own. */
  metricsView(): MetricsView {
    const { enhanced, legacy, connection_errors } = this.metrics.json();
    return {
      enhanced,
      legacy,
      hub: {
        hub_id: this.id,
        version: AGENT_VERSION,
        uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
        draining: this.draining,
        agents_connected: this.registry.size,
        connections_open: this.sessions.size,
        connection_errors,
        enhanced_granted: this.options.enhanced,
        batch: this.batchSettings(),
        load: {
          level: this.loadLevel,
          name: LOAD_LEVEL_NAMES[this.loadLevel],
          event_loop_delay_p99_ms: round2(this.loadMonitor?.lastSample.delayP99Ms ?? 0),
          adapt: this.options.adapt,
          heartbeat_interval_ms: this.pace.heartbeatIntervalMs,
        },
      },
      tunnel: this.tunnel.figures,
    };
  }

  /** 0 normal, 1 busy, 2 overloaded (server/load-monitor.ts). */
  get loadLevel(): 0 | 1 | 2 {
    return this.loadMonitor?.level ?? 0;
  }

  get draining(): boolean {
    return this.drainPromise !== undefined;
  }

  get logger(): Logger {
    return this.log;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<{ host: string; port: number; url: string }> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen({ port: this.options.port, host: this.options.host, backlog: LISTEN_BACKLOG }, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        const port = typeof address === 'object' && address ? address.port : this.options.port;
        const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
        const url = `http://${host}:${port}`;
        this.startTimers();
        this.log.info(
          { hub_id: this.id, url, version: AGENT_VERSION },
          `Hub ${this.id} listening on ${url} (agents: ws://${host}:${port}${AGENT_WS_PATH}, legacy only: ` +
            `${AGENT_LEGACY_WS_PATH}, tunnel: ${TUNNEL_WS_PATH}; enhanced mode ${this.enhancedNote()})`,
        );
        resolve({ host: this.options.host, port, url });
      });
    });
  }

  agents(): AgentSummary[] {
    return [...this.registry.values()].map(summarize);
  }

  agent(id: string): AgentSummary | undefined {
    const session = this.registry.get(id);
    return session ? summarize(session) : undefined;
  }

  connectionCount(): number {
    return this.sessions.size;
  }

  /** Connections holding one of --max-connections seats: those with a verified agent token. */
  authenticatedCount(): number {
    return this.sessions.size - this.unauthenticated.size;
  }

  observeRegistry(observer: RegistryObserver): void {
    this.registryObserver = observer;
  }

  /**
   * Another process of this hub registered the agent anew: its connection here, if still this
   * session, is closed as replaced (as a newer connection to this process would replace it).
   */
  replaceFromElsewhere(agentId: string, sessionId: string, where: string): boolean {
    const session = this.registry.get(agentId);
    if (session?.sessionId !== sessionId) return false;
    session.closedBy = 'replaced';
    this.log.warn(
      { agent_id: agentId, old: session.address, new_hub: where },
      `Agent ${session.label} registered again on ${where}; closing its older connection from ${session.address}`,
    );
    session.close(CloseCode.REPLACED, `replaced by a newer connection on ${where}`);
    return true;
  }

  /** Where an agent is connected, when it is not here: from the registry shared through Redis. */
  async locate(agentId: string): Promise<RegistryEntry | undefined> {
    const entry = await this.shared?.lookup(agentId);
    return entry && entry.hub_id !== this.id ? entry : undefined;
  }

  /** Sends a command to a registered agent and waits for its result. */
  async command(
    agentId: string,
    name: string,
    args: Record<string, unknown>,
    timeoutMs = this.options.command_timeout_ms,
  ): Promise<CommandOutcome | { status: 'not_connected' }> {
    const session = this.registry.get(agentId);
    if (!session) {
      this.metrics.command('not_connected');
      return { status: 'not_connected' };
    }
    const outcome = await this.dispatcher.send(session, name, args, timeoutMs);
    this.metrics.command(outcome.status);
    if (outcome.status === 'result_too_deep') {
      this.log.warn(
        { agent_id: agentId, command: name },
        `Agent ${session.label} answered ${name} with a result nested too deeply to pass on; the caller is told RESULT_TOO_DEEP`,
      );
    }
    return outcome;
  }

  /**
   * Sends a broadcast to every registered agent (serialised once), in batches that yield to the
   * event loop; returns how many agents it is being sent to.
   */
  broadcast(data: Record<string, unknown>): number {
    const text = Buffer.from(JSON.stringify({ type: 'broadcast', server_time: Date.now(), data }));
    const targets = [...this.registry.values()];
    const sendFrom = (start: number) => {
      const end = Math.min(targets.length, start + BROADCAST_BATCH);
      for (const target of targets.slice(start, end)) target.sendRaw(text, 'broadcast');
      if (end < targets.length) setImmediate(sendFrom, end);
    };
    sendFrom(0);
    return targets.length;
  }

  /**
   * Graceful shutdown: refuse new connections with 1001, tell every agent, wait until
   * they have all left or the drain timeout passes, then close the rest. Idempotent.
   */
  drain(reason = 'hub shutting down', timeoutMs = this.options.drain_timeout_ms): Promise<DrainResult> {
    if (this.drainPromise) return this.drainPromise;
    this.metrics.draining.set(1);
    this.stopBroadcasts();
    // Tunnel ends resume on their next server at once: nothing of theirs is lost by closing them now.
    this.tunnel.drain(reason);
    this.drainPromise = drainConnections(
      {
        connectionCount: () => this.sessions.size,
        notifyDraining: (why, deadline) => {
          const text = Buffer.from(JSON.stringify({ type: 'draining', reason: why, deadline }));
          for (const session of this.sessions) {
            if (session.phase === 'registered') session.sendRaw(text, 'draining');
            // Not registered yet: nothing to move, just refuse as a new connection would be.
            else session.close(CloseCode.GOING_AWAY, 'hub is draining');
          }
        },
        closeAll: () => {
          for (const session of this.sessions) {
            session.closedBy = 'drain_timeout';
            session.close(CloseCode.GOING_AWAY, 'hub shutting down: drain timeout');
          }
        },
        whenEmpty: () => this.whenEmpty(),
      },
      { reason, timeoutMs, progressIntervalMs: this.options.drain_progress_interval_ms, logger: this.log },
    );
    return this.drainPromise;
  }

  /** Stops everything now: closes every connection with 1001 and the listener. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopBroadcasts();
    this.loadMonitor?.stop();
    this.tuneGeneration += 1;
    this.pingSweep.stop();
    for (const session of this.sessions) session.close(CloseCode.GOING_AWAY, 'hub shutting down');
    await Promise.all([untilOrTimeout(this.whenEmpty(), 1500), this.tunnel.close()]);
    for (const session of this.sessions) session.ws.terminate();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.wss.close();
    await Promise.all([this.tokenCache.close(), this.registryCache?.close(), this.events.close()]);
    this.log.info({ hub_id: this.id }, `Hub ${this.id} stopped`);
  }

  /**
   * Legacy: at most once. The event goes to the sink (with the agent's seq when it sent one, so a
   * replay is still dropped); when the sink fails it is lost, logged and counted — a legacy agent
   * has no acknowledgement to wait for. Logged per event at debug only: a farm sends thousands.
   */
  private appendLegacyEvent(session: AgentSession, event: AgentEvent): Promise<void> {
    const agentId = session.registeredAgent().id;
    const seq = event.seq ?? null;
    return this.events
      .append(agentId, [{ agent_id: agentId, seq, name: event.name, data: event.data, ts: event.timestamp }])
      .then(
        (outcome) =>
          this.log.debug(
            { agent_id: agentId, event: event.name, seq, sink: this.events.kind, duplicate: outcome.duplicates > 0 },
            outcome.duplicates > 0
              ? `Event ${event.name} from ${session.label} (seq ${seq}) is already in the ${this.events.kind} sink: skipped`
              : `Event ${event.name} from ${session.label} appended to the ${this.events.kind} sink`,
          ),
        (error: unknown) => {
          const logged = this.sinkFailureLog.take();
          if (!logged) return;
          const earlier = logged.suppressed > 0 ? ` (${logged.suppressed} more lost since the last such line)` : '';
          this.log.warn(
            { agent_id: agentId, event: event.name, seq, sink: this.events.kind, err: errorInfo(error, 'SINK_FAILED') },
            `Event ${event.name} from legacy agent ${session.label} is lost: the ${this.events.kind} event sink ` +
              `refused it (${errorInfo(error).message}); legacy delivery is at most once${earlier}`,
          );
        },
      );
  }

  // ---- connections ------------------------------------------------------------------------

  private enhancedNote(): string {
    if (!this.options.enhanced) return 'off (--no-enhanced)';
    return `granted to agents that offer it (${this.events.kind} event sink)`;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path === TUNNEL_WS_PATH) {
      this.tunnel.handleUpgrade(req, socket, head);
      return;
    }
    if (path !== AGENT_WS_PATH && path !== AGENT_LEGACY_WS_PATH) {
      this.metrics.error('wrong_path');
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nNo WebSocket endpoint at ${path}; ` +
          `agents connect to ${AGENT_WS_PATH} (or ${AGENT_LEGACY_WS_PATH} for legacy mode only), tunnel ends to ${TUNNEL_WS_PATH}\n`,
      );
      return;
    }
    const legacyOnly = path === AGENT_LEGACY_WS_PATH;
    socket.on('error', this.countSocketError);
    // Only what the session needs is taken from the request: a closure over `req` would keep
    // every upgrade request alive for the connection's life (seen in a heap snapshot).
    const address = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const source = sourceKey(req.socket.remoteAddress);
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      this.upgrade(req, socket, head, { address, source, token, authenticated: false, legacyOnly });
      return;
    }
    // The token decides which budget the connection takes a seat in. One that does not verify
    // is not refused here: the session reports why at hello (4401/4403), as for a token in hello.
    // Claims that verified go to the session, so hello does not check the same token again.
    void this.verifier.verify(token).then(
      (claims) => {
        if (socket.destroyed) return;
        const authenticated = claims.role === 'agent';
        this.upgrade(req, socket, head, { address, source, token, claims, authenticated, legacyOnly });
      },
      () => {
        if (socket.destroyed) return;
        this.upgrade(req, socket, head, { address, source, token, authenticated: false, legacyOnly });
      },
    );
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, peer: Peer): void {
    if (!peer.authenticated && !this.draining && !this.closed) {
      const refusal = this.unauthenticated.refusal(peer.source);
      if (refusal) {
        this.refuseUpgrade(socket, refusal, peer);
        return;
      }
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, peer));
  }

  /** An HTTP answer instead of the upgrade: no WebSocket, no session, nothing kept. */
  private refuseUpgrade(socket: Duplex, refusal: BudgetRefusal, peer: Peer): void {
    const perAddress = refusal === 'per_address';
    this.metrics.error(perAddress ? 'unauthenticated_per_address' : 'unauthenticated_total');
    const status = perAddress ? UpgradeRefusal.UNAUTHENTICATED_PER_ADDRESS : UpgradeRefusal.UNAUTHENTICATED_TOTAL;
    const why = perAddress
      ? `${peer.source} already holds ${this.unauthenticated.perSource} connections without a valid agent token (--max-unauthenticated-per-address)`
      : `the hub already holds ${this.unauthenticated.total} connections without a valid agent token (--max-unauthenticated)`;
    const logged = this.refusalLog.take();
    if (logged) {
      const earlier = logged.suppressed > 0 ? ` (${logged.suppressed} more refused since the last such line)` : '';
      this.log.warn(
        { address: peer.address, source: peer.source, status, suppressed: logged.suppressed },
        `Refusing the upgrade from ${peer.address} with HTTP ${status}: ${why}; agents sending a valid token ` +
          `in the Authorization header are not affected${earlier}`,
      );
    }
    const retryAfter = Math.max(1, Math.ceil(this.options.hello_timeout_ms / 1000));
    const text = perAddress ? 'Too Many Requests' : 'Service Unavailable';
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nRetry-After: ${retryAfter}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n` +
        `Refused: ${why}. Connect with Authorization: Bearer <agent token>, or retry later.\n`,
    );
  }

  private readonly countSocketError = (): void => {
    this.metrics.error('socket_error');
  };

  private onConnection(ws: WebSocket, peer: Peer): void {
    const { address } = peer;
    // Refusals are accepted and closed with a code, so the agent learns why rather than guessing.
    if (this.draining || this.closed) {
      this.metrics.error('refused_draining');
      ws.close(CloseCode.GOING_AWAY, 'hub is draining');
      return;
    }
    if (peer.authenticated) {
      const refusal = this.capacityRefusal(1);
      if (refusal) {
        this.metrics.error('at_capacity');
        this.log.warn({ address, limit: this.options.max_connections }, `Refusing ${address}: ${refusal}`);
        ws.close(CloseCode.TRY_AGAIN_LATER, refusal);
        return;
      }
    } else if (this.unauthenticated.acquire(peer.source)) {
      // Checked at the upgrade a moment ago; only a change in ws's synchronous upgrade could get here.
      this.metrics.error('unauthenticated_total');
      ws.close(CloseCode.TRY_AGAIN_LATER, 'too many connections without a valid agent token; retry later');
      return;
    }
    this.metrics.connectionsTotal.inc();
    const session = new AgentSession(ws, address, peer.token, this.context, peer.legacyOnly, peer.claims);
    if (!peer.authenticated) session.unauthenticatedSource = peer.source;
    this.sessions.add(session);
    this.pingSweep.add(session);
  }

  /** Why one connection more than `adding` beyond the authenticated ones would be refused (undefined: room). */
  private capacityRefusal(adding: number): string | undefined {
    if (this.authenticatedCount() + adding <= this.options.max_connections) return undefined;
    return `hub at capacity (${this.options.max_connections} connections)`;
  }

  /**
   * hello's token verified for a session that had no valid token at the upgrade: it leaves the
   * unauthenticated budget for a --max-connections seat. Returns the refusal when there is none.
   */
  private onAuthenticated(session: AgentSession): string | undefined {
    const source = session.unauthenticatedSource;
    if (source === undefined) return undefined;
    const refusal = this.capacityRefusal(1);
    if (refusal) return refusal;
    session.unauthenticatedSource = undefined;
    this.unauthenticated.release(source);
    return undefined;
  }

  private logGracefulDisconnect(session: AgentSession, disconnectReason: string, code?: number): void {
    this.metrics.disconnect('graceful');
    this.log.info(
      {
        agent_id: session.registeredAgent().id,
        kind: 'graceful',
        ...(code === undefined ? {} : { close_code: code }),
        reason: disconnectReason,
      },
      `Agent ${session.label} disconnected gracefully (${disconnectReason})`,
    );
  }

  private register(session: AgentSession): void {
    const agent = session.registeredAgent();
    const previous = this.registry.get(agent.id);
    if (previous && previous !== session && previous.disconnectReason !== undefined) {
      // The older connection already said goodbye (a reconnect sends `disconnect`, then dials
      // again at once): its close may still be in flight. It left gracefully, not replaced.
      this.logGracefulDisconnect(previous, previous.disconnectReason);
      previous.close(CloseCode.NORMAL, 'disconnected; a newer connection of this agent took over');
    } else if (previous && previous !== session) {
      previous.closedBy = 'replaced';
      this.log.warn(
        { agent_id: agent.id, old: previous.address, new: session.address },
        `Agent ${session.label} connected again from ${session.address}; closing its older connection from ${previous.address}`,
      );
      previous.close(CloseCode.REPLACED, `replaced by a newer connection from ${session.address}`);
    }
    this.registry.set(agent.id, session);
    this.metrics.registrations.inc();
    this.registryObserver?.registered(agent.id, session.sessionId);
    this.shared
      ?.announce(sharedEntry(session))
      .catch((error: unknown) =>
        this.log.warn({ err: error, agent_id: agent.id }, 'Shared registry: announcing the agent failed'),
      );
    this.log.info(
      { agent_id: agent.id, name: agent.name, address: session.address, session: session.sessionId },
      `✓ Agent ${session.label} registered from ${session.address}`,
    );
  }

  private onSessionClosed(session: AgentSession, code: number, reason: string): void {
    this.sessions.delete(session);
    if (session.unauthenticatedSource !== undefined) {
      this.unauthenticated.release(session.unauthenticatedSource);
      session.unauthenticatedSource = undefined;
    }
    this.pingSweep.delete(session);
    this.dispatcher.sessionClosed(session);
    if (session.agent && this.registry.get(session.agent.id) === session) {
      this.registry.delete(session.agent.id);
      this.registryObserver?.unregistered(session.agent.id, session.sessionId);
      this.shared
        ?.withdraw(session.agent.id, session.sessionId)
        .catch((error: unknown) =>
          this.log.warn(
            { err: error, agent_id: session.agent?.id },
            'Shared registry: withdrawing the agent failed; its entry lapses after the registry TTL',
          ),
        );
      if (session.closedBy === undefined && session.disconnectReason !== undefined) {
        this.logGracefulDisconnect(session, session.disconnectReason, code);
      } else {
        const kind = session.closedBy ?? 'closed';
        this.metrics.disconnect(kind);
        this.log.info(
          { agent_id: session.agent.id, kind, close_code: code, reason },
          `Agent ${session.label} disconnected ${kind}, close code ${code}${reason ? ` "${reason}"` : ''}`,
        );
      }
    } else if (session.agent && session.closedBy === 'replaced') {
      this.metrics.disconnect('replaced');
    }
    if (this.sessions.size === 0) {
      for (const wake of this.emptyWaiters.splice(0)) wake();
    }
  }

  private whenEmpty(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Each connection is pinged once per ping interval; one that has not answered the previous ping is dropped. */
  private pingOrDrop(session: AgentSession): void {
    if (session.ping()) return;
    this.metrics.error('ping_timeout');
    this.log.warn(
      { agent_id: session.agent?.id, address: session.address },
      `${session.label} did not answer a ping within ${this.options.ping_interval_ms} ms: dropping it`,
    );
    session.closedBy = 'error';
    session.ws.terminate();
  }

  private startTimers(): void {
    this.pingSweep.start();
    this.tunnel.start();
    this.loadMonitor = new LoadMonitor(
      {
        busyMs: this.options.load_busy_ms,
        overloadMs: this.options.load_overload_ms,
        dwellMs: this.options.load_dwell_ms,
        sampleIntervalMs: this.options.load_sample_ms,
        enterSamples: 2,
        leaveRatio: LEAVE_RATIO,
      },
      this.loadSampler(),
      this.clock,
      (change) => this.onLoadChange(change),
    );
    this.loadMonitor.start();
    if (this.options.broadcast_interval_ms > 0) {
      this.broadcastTimer = setInterval(() => {
        this.broadcast({ kind: 'status', hub_id: this.id, agents_connected: this.registry.size, draining: false });
      }, this.options.broadcast_interval_ms);
      this.broadcastTimer.unref();
    }
  }

  // ---- load ---------------------------------------------------------------------------------

  private maxHeartbeatMs(): number {
    return maxHeartbeatMs(
      this.options.redis_url || this.options.redis_cluster ? this.options.registry_ttl_ms : undefined,
    );
  }

  /**
   * The load level changed: every enhanced agent is told the new pace (legacy has no `tune`; those
   * agents go on as they are), and agents registering from now on get it in `registered`.
   */
  private onLoadChange(change: LoadChange): void {
    this.metrics.loadChanged(change.to);
    const why = this.describeLoad(change);
    const name = LOAD_LEVEL_NAMES[change.to];
    const title = change.to === 0 ? 'Hub load back to normal' : `Hub ${name}`;
    const level = change.to === 0 ? 'info' : 'warn';
    const fields = {
      load_level: change.to,
      from_level: change.from,
      event_loop_delay_p99_ms: round2(change.sample.delayP99Ms),
      event_loop_utilization: round2(change.sample.utilization),
    };
    if (!this.options.adapt) {
      this.log[level](fields, `${title} (${why}): telling agents nothing (--no-adapt)`);
      return;
    }
    this.pace = paceAt(change.to, this.configuredBatch(), this.maxHeartbeatMs());
    const reason = `hub ${change.to === 0 ? 'load back to normal' : name}: ${why}`;
    const told = this.draining ? 0 : this.sendTune(reason);
    this.log[level](
      {
        ...fields,
        batch_window_ms: this.pace.batch.window_ms,
        heartbeat_interval_ms: this.pace.heartbeatIntervalMs,
        agents_told: told,
      },
      `${title} (${why}): telling ${told.toLocaleString('en-US')} enhanced agent${told === 1 ? '' : 's'} to ` +
        describePace(this.pace) +
        (change.to === 0 ? '' : '; legacy agents are not told (legacy has no tune)'),
    );
  }

  private describeLoad(change: LoadChange): string {
    const p99 = formatMs(change.sample.delayP99Ms);
    const threshold = change.to === 2 || change.from === 2 ? this.options.load_overload_ms : this.options.load_busy_ms;
    if (change.to > change.from) return `event-loop delay p99 ${p99} ≥ ${formatMs(threshold)}`;
    return (
      `event-loop delay p99 ${p99}, under ${formatMs(threshold * LEAVE_RATIO)} for ` +
      formatMs(this.options.load_dwell_ms)
    );
  }

  /**
   * Sends the current pace as a `tune` to every enhanced session, serialised once and in slices
   * that yield to the event loop (as broadcasts do): a hub already under load must not block for
   * thousands of sends at once. Each session's own outgoing batches take the new window first.
   * Returns how many sessions it is being sent to.
   */
  private sendTune(reason: string): number {
    const generation = ++this.tuneGeneration;
    const pace = this.pace;
    const text = JSON.stringify({
      type: 'tune',
      batch: pace.batch,
      heartbeat_interval_ms: pace.heartbeatIntervalMs,
      reason: reason.slice(0, 256),
    });
    const targets = [...this.registry.values()].filter((session) => session.mode === 'enhanced');
    const sendFrom = (start: number) => {
      if (generation !== this.tuneGeneration) return; // a newer level's sweep covers everyone
      const end = Math.min(targets.length, start + BROADCAST_BATCH);
      for (const target of targets.slice(start, end)) {
        if (target.phase !== 'registered') continue;
        target.retune(pace.batch);
        target.sendRaw(text, 'tune');
        this.metrics.tuneSent();
      }
      if (end < targets.length) setImmediate(sendFrom, end);
    };
    sendFrom(0);
    return targets.length;
  }

  private stopBroadcasts(): void {
    clearInterval(this.broadcastTimer);
    this.broadcastTimer = undefined;
  }
}

export interface RegistryObserver {
  registered(agentId: string, sessionId: string): void;
  unregistered(agentId: string, sessionId: string): void;
}

/** What onUpgrade learned about a connection before it exists. */
interface Peer {
  address: string;
  /** What the unauthenticated budget counts it under (sourceKey). */
  source: string;
  token: string | undefined;
  /** What the header's token verified as, when it did. */
  claims?: TokenClaims;
  /** The Authorization header carried a valid agent token. */
  authenticated: boolean;
  /** Upgraded on AGENT_LEGACY_WS_PATH. */
  legacyOnly: boolean;
}

/**
 * How often Node looks for requests past their header/request timeout: a few times per header
 * timeout, so a cut comes close to the configured time, never more often than every 50 ms.
 */
export function checkingInterval(headersTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(headersTimeoutMs / 4)));
}

function sharedEntry(session: AgentSession): Omit<RegistryEntry, 'hub_id' | 'seen_at'> {
  const agent = session.registeredAgent();
  return {
    agent_id: agent.id,
    name: agent.name,
    session_id: session.sessionId,
    address: session.address,
    connected_since: session.connectedAt,
  };
}

function summarize(session: AgentSession): AgentSummary {
  const agent = session.registeredAgent();
  return {
    agent_id: agent.id,
    name: agent.name,
    version: agent.version,
    hostname: agent.hostname,
    platform: agent.platform,
    address: session.address,
    session_id: session.sessionId,
    connected_since: session.connectedAt,
    last_heartbeat_at: session.lastHeartbeatAt,
    cpu_usage: session.cpuUsage,
    ram_usage: session.ramUsage,
    messages_in: session.messagesIn,
    messages_out: session.messagesOut,
    mode: session.mode ?? 'legacy',
    events_in: session.eventsIn,
    acked_seq: session.ackedSeq,
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
