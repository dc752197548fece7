import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { CloseCode, closeCodeName } from '../../protocol/close-codes.js';
import type {
  ConnectionEvent,
  ConnectionPhase,
  ConnectionState,
  ConnectionStats,
  Reason,
  ServerRef,
} from '../../protocol/connection-state.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import type { AgentMessage, BatchSettings, HubLimits, HubMessage, Registered } from '../../protocol/messages.js';
import { redactUrl } from '../../protocol/server-url.js';
import { Capability, PROTOCOL_VERSION } from '../../protocol/version.js';
import type { Clock, Random, TimerHandle } from '../../lib/clock.js';
import { FarmlinkError } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import type { UsageSample } from '../system/system-usage.js';
import { Attempt } from './attempt.js';
import { Backoff } from '../../lib/backoff.js';
import { classifySocketError } from './classify-error.js';
import { closeAdvice, describeDialError, displayId, fmtMs } from './describe.js';
import { DrainHandover } from './drain-handover.js';
import { FallbackRotation, type NextAttempt } from './fallback-rotation.js';
import type { HubLinkFactory } from './hub-link.js';
import { BreakerLog } from './breaker-log.js';
import { DEFAULT_SERVER_BREAKER, refusalOf, ServerBreakers, type ServerBreakerSettings } from './server-breakers.js';
import { ModeFiguresTracker, type WireMode } from './mode-figures.js';
import { ConnectionStatsTracker } from './stats.js';
import { wsHubLinkFactory } from './ws-hub-link.js';

export { displayId, fmtMs } from './describe.js';

export interface ConnectionTiming {
  connectTimeoutMs: number;
  registrationTimeoutMs: number;
  heartbeatIntervalMs: number;
  deadTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  stableAfterMs: number;
  initialReconnectDelayMs: number;
  maxReconnectDelayMs: number;
  reconnectJitter: number;
  /** How long a graceful close may wait for the hub's close frame before the socket is cut. */
  closeTimeoutMs: number;
}

export interface AgentIdentity {
  id: string;
  name: string;
  token?: string | undefined;
  version: string;
  hostname: string;
  platform: string;
}

export interface AgentConnectionOptions {
  /** WebSocket endpoints: primary first, then the fallbacks in order. */
  servers: readonly string[];
  timing: ConnectionTiming;
  identity: AgentIdentity;
  clock: Clock;
  random: Random;
  logger: Logger;
  usage: () => UsageSample;
  /** Largest frame accepted from the hub. */
  maxIncomingBytes?: number;
  /** Source address to dial from (benchmarks spread thousands of agents over 127.0.0.x). */
  localAddress?: string;
  /**
   * Host name resolution, called on every dial (dns.lookup by default — Node keeps no DNS cache,
   * so a hub that moved to a new IP is found on the next attempt). Tests inject one to move a hub.
   */
  lookup?: LookupFunction;
  /** Which protocol to ask for (protocol.mode); `setMode` changes it live. Default auto. */
  mode?: ProtocolModeSetting;
  /** How to batch in enhanced mode when the hub does not say (protocol.batch_*). */
  batch?: { windowMs: number; maxMessages: number };
  /**
   * Opens the link to a hub for each attempt. By default a WebSocket link (with the three options
   * above) speaking the JSON protocol; tests give a fake one to drive the state machine.
   */
  link?: HubLinkFactory;
  /** Per-server circuit breakers (the `breaker:` section); the design's defaults when absent. */
  breaker?: ServerBreakerSettings;
}

export interface ConnectionEvents extends Record<string, unknown> {
  /** Every state transition, with its reason. */
  state: ConnectionEvent;
  /** Hub messages the connection does not consume itself (command, broadcast). */
  message: HubMessage;
  registered: { server: ServerRef; registered: Registered; mode: WireMode };
  heartbeatRtt: number;
  /** A frame went out on the current connection (delivery paces its backlog on these). */
  frameSent: { mode: WireMode; messages: number };
  /** Legacy: the hub read the frames that were on the way; frames held back may go (HubLink `caughtUp`). */
  caughtUp: undefined;
}

interface EndOptions {
  /** Send `disconnect`, close with 1000 and wait briefly for the hub's close (a graceful disconnect). */
  graceful: boolean;
  /** Do not consult the rotation: dial the primary now (reconnect requested). */
  restartAtPrimary?: boolean;
  /** Do not consult the rotation: dial this server again now (the mode was switched). */
  redial?: number;
}

/** What the agent knows about the protocol mode, for the panel. */
export interface ModeInfo {
  setting: ProtocolModeSetting;
  /** Agreed with the connected hub, or null when not connected. */
  negotiated: WireMode | null;
  /** Whether the last hub that registered this agent offered enhanced mode (null: none registered yet). */
  hubOffersEnhanced: boolean | null;
  /** The hub that last answered, for "hub-a does not offer enhanced mode". */
  lastHubId: string | null;
  /** While connected: the batch window (enhanced) and heartbeat interval in use, and why the hub changed them. */
  pace: { batch_window_ms: number | null; heartbeat_interval_ms: number; hub_reason: string | null } | null;
}

/**
 * The agent's link to a hub: dials the primary and the fallbacks in order (FallbackRotation), registers
 * (hello → registered), keeps the connection honest with heartbeats and pings, and after any
 * loss fails over or backs off — forever, until `stop()`.
 *
 * States: idle → connecting → registering → connected → (connecting | reconnecting) … → stopping → stopped.
 */
export class AgentConnection {
  readonly events: TypedEmitter<ConnectionEvents>;
  private readonly rotation: FallbackRotation;
  private readonly breakers: ServerBreakers;
  private readonly breakerLog: BreakerLog;
  private readonly stats: ConnectionStatsTracker;
  private readonly log: Logger;
  private state: ConnectionState = { phase: 'idle' };
  private attempt: Attempt | undefined;
  private readonly handover: DrainHandover;
  private readonly openLink: HubLinkFactory;
  private reconnectTimer: TimerHandle | undefined;
  private lastDialledIndex = -1;
  /** Dials since the last registration, for "attempt #N" in state and logs. */
  private attemptsSinceRegistered = 0;
  private readonly closing = new Set<Promise<void>>();
  private stopPromise: Promise<void> | undefined;
  private modeSetting: ProtocolModeSetting;
  private readonly figures: ModeFiguresTracker;
  private hubOffersEnhanced: boolean | null = null;
  private lastHubId: string | null = null;

  constructor(private readonly options: AgentConnectionOptions) {
    if (options.servers.length === 0) throw new FarmlinkError('NO_SERVERS', 'No server configured: set server.url');
    this.log = options.logger;
    this.events = new TypedEmitter((error, event) =>
      this.log.error({ err: error, event }, `A listener of the "${event}" event threw; the connection carries on`),
    );
    const backoff = new Backoff({
      initialMs: options.timing.initialReconnectDelayMs,
      maxMs: options.timing.maxReconnectDelayMs,
      jitter: options.timing.reconnectJitter,
      random: options.random,
    });
    const breaker = options.breaker ?? DEFAULT_SERVER_BREAKER;
    this.breakers = new ServerBreakers(options.servers, breaker, options.clock);
    this.breakerLog = new BreakerLog(this.log, options.servers, this.breakers, breaker, options.clock);
    this.rotation = new FallbackRotation(options.servers.length, backoff, this.breakers);
    this.stats = new ConnectionStatsTracker(options.servers, options.clock, { breakers: this.breakers });
    this.modeSetting = options.mode ?? 'auto';
    this.figures = new ModeFiguresTracker(options.clock);
    this.handover = new DrainHandover(options.clock);
    this.openLink =
      options.link ??
      wsHubLinkFactory({
        clock: options.clock,
        ...(options.maxIncomingBytes !== undefined ? { maxIncomingBytes: options.maxIncomingBytes } : {}),
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        ...(options.lookup ? { lookup: options.lookup } : {}),
        onListenerError: (error, event) =>
          this.log.error(
            { err: error, event },
            `Handling the link's "${event}" event threw; the connection carries on`,
          ),
      });
  }

  getState(): ConnectionState {
    return this.state;
  }

  getStats(): ConnectionStats {
    return this.stats.snapshot();
  }

  /** Traffic per protocol mode since this connection object was made. */
  getModeFigures(): ReturnType<ModeFiguresTracker['snapshot']> {
    return this.figures.snapshot();
  }

  getModeInfo(): ModeInfo {
    const attempt = this.attempt?.phase === 'connected' ? this.attempt : undefined;
    return {
      setting: this.modeSetting,
      negotiated: attempt ? attempt.mode : null,
      hubOffersEnhanced: this.hubOffersEnhanced,
      lastHubId: this.lastHubId,
      pace: attempt
        ? {
            batch_window_ms: attempt.link.batching?.window_ms ?? null,
            heartbeat_interval_ms: attempt.heartbeat?.interval ?? this.options.timing.heartbeatIntervalMs,
            hub_reason: attempt.tunedBecause ?? null,
          }
        : null,
    };
  }

  /**
   * Switches the protocol mode live. When the connection in use speaks another mode than the new
   * setting asks for, it is ended gracefully (`disconnect`, 1000) and the same server is dialled
   * again at once in the new mode; the statistics go on. Returns whether a reconnect was started.
   */
  setMode(setting: ProtocolModeSetting): boolean {
    const previous = this.modeSetting;
    this.modeSetting = setting;
    if (previous !== setting) this.log.info({ from: previous, to: setting }, `Protocol mode: ${previous} → ${setting}`);
    const attempt = this.attempt;
    if (!attempt || attempt.ended) return false;
    const wouldOffer = setting !== 'legacy';
    const mismatch =
      attempt.phase === 'connected'
        ? (setting === 'legacy' && attempt.mode === 'enhanced') ||
          (setting === 'enhanced' && attempt.mode === 'legacy') ||
          (setting === 'auto' && attempt.mode === 'legacy' && !attempt.offeredEnhanced)
        : attempt.offeredEnhanced !== wouldOffer;
    if (!mismatch) return false;
    const reason: Reason = {
      code: 'mode_changed',
      message: `Protocol mode set to ${setting}: reconnecting to ${this.describeServer(attempt.server.index)} in that mode`,
    };
    this.log.info(reason.message);
    this.endAttempt(attempt, reason, { graceful: attempt.phase === 'connected', redial: attempt.server.index });
    return true;
  }

  /** The limits of the hub the agent is registered with, if any. */
  getHubLimits(): HubLimits | undefined {
    return this.attempt?.phase === 'connected' ? this.attempt.link.limits : this.handover.attempt?.link.limits;
  }

  get servers(): readonly string[] {
    return this.options.servers;
  }

  /** Starts at the primary, or at `firstIndex` (the server that worked last time). */
  start(firstIndex = 0): void {
    if (this.state.phase !== 'idle') return;
    if (firstIndex !== 0) {
      this.rotation.startAt(firstIndex);
      this.dial(firstIndex, {
        code: 'start',
        message: `Agent started; dialing ${this.describeServer(firstIndex)} first, the server that worked last time`,
      });
      return;
    }
    this.dial(0, { code: 'start', message: 'Agent started' });
  }

  /**
   * Drop whatever is happening and dial the primary now — the tray's and panel's "Reconnect now",
   * and what to do after the OS wakes up or the network changes.
   */
  reconnectNow(message = 'Reconnect requested'): void {
    const reason: Reason = { code: 'reconnect_requested', message };
    switch (this.state.phase) {
      case 'idle':
        this.start();
        return;
      case 'stopping':
      case 'stopped':
        return;
      case 'reconnecting':
        this.releaseHandover(reason);
        this.options.clock.clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        this.dial(this.rotation.restartAtPrimary(), reason);
        return;
      default:
        this.releaseHandover(reason);
        if (this.attempt) {
          this.log.info(`${message}: reconnecting to the primary server now`);
          this.endAttempt(this.attempt, reason, {
            graceful: this.attempt.phase === 'connected',
            restartAtPrimary: true,
          });
        }
    }
  }

  /**
   * The network changed or the machine woke up: if waiting out a backoff, dial now; if connected,
   * ping at once so a link that did not survive is found within the ping timeout, not the next interval.
   */
  checkNow(message: string): void {
    if (this.state.phase === 'reconnecting') {
      const next = this.state.next_server.index;
      this.options.clock.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.log.info(`${message}: retrying now instead of waiting`);
      this.dial(next, { code: 'reconnect_requested', message });
    } else if (this.state.phase === 'connected') {
      this.log.info(`${message}: checking the connection`);
      this.attempt?.ping?.pingNow();
    }
  }

  /**
   * Send a message to the hub on the registered connection. Throws NOT_CONNECTED when there is
   * none (the caller decides what to do — nothing is dropped silently) and MESSAGE_TOO_LARGE when
   * the hub announced a smaller frame limit.
   */
  send(message: AgentMessage, options: { urgent?: boolean } = {}): void {
    const attempt = this.sendTarget();
    if (!attempt) throw new FarmlinkError('NOT_CONNECTED', `Cannot send ${message.type}: not connected to a hub`);
    this.sendOn(attempt, message, options);
  }

  /**
   * Where messages go now, if anywhere: the registered connection, or the draining hub held during a
   * handover. Its mode, queued messages and frame pacing, for delivery.
   */
  channel():
    | {
        mode: WireMode;
        pending: number;
        frameWaitMs: number;
        batch: BatchSettings | undefined;
        limits: HubLimits | undefined;
      }
    | undefined {
    const attempt = this.sendTarget();
    if (!attempt) return undefined;
    const { link } = attempt;
    return {
      mode: attempt.mode,
      pending: link.pending,
      frameWaitMs: link.frameWaitMs(),
      batch: link.batching,
      limits: link.limits,
    };
  }

  private sendTarget(): Attempt | undefined {
    const attempt = this.attempt?.phase === 'connected' ? this.attempt : this.handover.attempt;
    return attempt?.phase === 'connected' && attempt.link.isOpen ? attempt : undefined;
  }

  /** Graceful stop (docs/protocol.md): heartbeat off, `disconnect`, close 1000, then nothing more. */
  stop(message = 'Agent stopping'): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.stopPromise = this.doStop(message);
    return this.stopPromise;
  }

  private async doStop(message: string): Promise<void> {
    const reason: Reason = { code: 'stop_requested', message };
    this.options.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.transition({ phase: 'stopping' }, reason);
    this.releaseHandover(reason);
    if (this.attempt) this.endAttempt(this.attempt, reason, { graceful: this.attempt.phase === 'connected' });
    await Promise.all([...this.closing]);
    this.transition({ phase: 'stopped' }, reason);
  }

  // ---- dialling --------------------------------------------------------------------------

  private dial(index: number, reason: Reason): void {
    if (this.isStopping()) return;
    const { timing, clock } = this.options;
    const server = this.serverAt(index);
    const { url } = server;
    const total = this.options.servers.length;
    if (index !== this.lastDialledIndex && this.lastDialledIndex !== -1) {
      if (index > 0) {
        this.log.info({ server: index }, `Switching to fallback #${index}/${total - 1}`);
        this.log.info({ url: redactUrl(url) }, `Using fallback server: ${redactUrl(url)}`);
      } else {
        this.log.info({ url: redactUrl(url) }, `Returning to the primary server: ${redactUrl(url)}`);
      }
    }
    this.lastDialledIndex = index;
    this.breakerLog.dialling(index);
    this.attemptsSinceRegistered += 1;
    this.stats.attempt(index);
    this.transition({ phase: 'connecting', server, attempt: this.attemptsSinceRegistered }, reason);
    this.log.info({ url: redactUrl(url), attempt: this.attemptsSinceRegistered }, `Connecting to ${redactUrl(url)}...`);

    // Anything that throws while the attempt is set up (ws refuses a header value, a URL it cannot
    // parse…) ends this attempt like any other failure, so the agent backs off and dials again
    // instead of sitting in "connecting" with no socket and no timer.
    let attempt: Attempt | undefined;
    try {
      const { identity } = this.options;
      const token = identity.token ? { token: identity.token } : {};
      const link = this.openLink({ url, version: identity.version, ...token });
      const current = new Attempt(server, link);
      attempt = current;
      this.attempt = current;

      current.connectTimer = clock.setTimeout(() => {
        this.log.error({ url: redactUrl(url) }, `Connect timeout to ${redactUrl(url)}`);
        this.endAttempt(
          current,
          {
            code: 'connect_timeout',
            message: `No connection to ${redactUrl(url)} within ${fmtMs(timing.connectTimeoutMs)}`,
          },
          { graceful: false },
        );
      }, timing.connectTimeoutMs);

      link.events.on('open', () => this.onOpen(current));
      link.events.on('frame', ({ direction, messages, bytes }) => {
        // Counted also after the attempt ended: the `disconnect` flushed with the close went out.
        if (current.phase === 'connected' || current.ended) {
          this.figures.frame(current.countedMode, direction, messages, bytes);
        } else {
          current.handshakeFrames.push({ direction, messages, bytes });
        }
        if (direction === 'out') {
          this.stats.sentFrame(messages, bytes);
          if (this.isLive(current) && current.phase === 'connected') {
            this.events.emit('frameSent', { mode: current.mode, messages });
          }
        }
      });
      link.events.on('caughtUp', () => {
        if (this.isLive(current) && current.phase === 'connected') this.events.emit('caughtUp', undefined);
      });
      link.events.on('message', ({ message, bytes }) => this.onMessage(current, message, bytes));
      link.events.on('undecodable', ({ bytes, decoded }) => {
        if (!this.isLive(current)) return;
        this.stats.received(bytes);
        if (decoded.problem === 'binary') {
          this.log.warn({ bytes }, 'Ignoring a binary frame from the hub (the protocol is JSON text)');
        } else if (decoded.problem === 'not_json') {
          this.log.warn({ bytes }, 'Ignoring a frame from the hub that is not JSON');
        } else {
          // A newer hub may send types this build does not know; ignore them rather than disconnect.
          this.log.warn(
            { type: decoded.type, problem: decoded.detail },
            'Ignoring a hub message this agent does not understand',
          );
        }
      });
      link.events.on('error', (error) => {
        current.socketError ??= error;
      });
      link.events.on('rejected', ({ status }) => {
        current.httpStatus = status;
        const hint = status === 404 ? " (is this the hub's URL? the agent endpoint is /api/v1/pc/ws)" : '';
        this.endAttempt(
          current,
          {
            code: 'handshake_rejected',
            message: `${redactUrl(url)} answered HTTP ${status} instead of a WebSocket upgrade${hint}`,
          },
          { graceful: false },
        );
      });
      link.events.on('close', ({ code, reason }) => this.onClose(current, code, reason));
    } catch (error) {
      const reason: Reason = {
        code: 'dial_failed',
        message: `Could not start a connection to ${redactUrl(url)}: ${describeDialError(error)}`,
      };
      if (attempt) this.endAttempt(attempt, reason, { graceful: false });
      else this.failWithoutSocket(server, reason);
    }
  }

  /** An attempt that ended before it had a socket: counted, logged and backed off like any other. */
  private failWithoutSocket(server: ServerRef, reason: Reason): void {
    this.stats.failure(server.index, reason);
    this.log.error({ url: redactUrl(server.url), reason: reason.code }, reason.message);
    if (this.isStopping()) return;
    this.schedule(this.rotation.afterFailure(), reason);
  }

  private onOpen(attempt: Attempt): void {
    if (attempt.ended || attempt !== this.attempt) return;
    const { clock, timing, identity } = this.options;
    clock.clearTimeout(attempt.connectTimer);
    attempt.phase = 'registering';
    this.transition(
      { phase: 'registering', server: attempt.server },
      { code: 'socket_open', message: 'WebSocket open, sending hello' },
    );
    // Not "connected" yet: the hub may still refuse the token or the id. That is said on `registered`.
    this.log.info(
      { url: redactUrl(attempt.server.url) },
      `WebSocket open to ${redactUrl(attempt.server.url)}, registering`,
    );
    attempt.registrationTimer = clock.setTimeout(() => {
      this.endAttempt(
        attempt,
        {
          code: 'registration_timeout',
          message: `No "registered" from the hub within ${fmtMs(timing.registrationTimeoutMs)} of hello`,
        },
        { graceful: false },
      );
    }, timing.registrationTimeoutMs);
    attempt.offeredEnhanced = this.modeSetting !== 'legacy';
    this.sendOn(attempt, {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      agent_id: identity.id,
      name: identity.name,
      version: identity.version,
      hostname: identity.hostname,
      platform: identity.platform,
      ...(attempt.offeredEnhanced ? { capabilities: [Capability.BATCH_V1] } : {}),
    });
  }

  /** The attempt is current, or the draining hub held during a handover. */
  private isLive(attempt: Attempt): boolean {
    return !attempt.ended && (attempt === this.attempt || attempt === this.handover.attempt);
  }

  private onMessage(attempt: Attempt, message: HubMessage, bytes: number): void {
    if (!this.isLive(attempt)) return;
    this.stats.received(bytes);
    switch (message.type) {
      case 'registered':
        if (attempt.phase === 'registering') this.onRegistered(attempt, message);
        return;
      case 'heartbeat_ack':
        attempt.heartbeat?.handleAck(message);
        return;
      case 'draining':
        if (attempt !== this.handover.attempt) this.onDraining(attempt, message.reason);
        return;
      case 'tune':
        if (attempt.phase === 'connected')
          this.onTune(attempt, message.batch, message.heartbeat_interval_ms, message.reason);
        return;
      case 'token_expired':
        attempt.tokenExpired = message;
        this.log.error(
          { url: redactUrl(attempt.server.url), expired_at: new Date(message.expired_at).toISOString() },
          `The hub says this agent's token expired (${message.reason}); it will close the connection — ` +
            `a new token is needed (farmlink token --agent ${displayId(this.options.identity.id)})`,
        );
        return;
      default:
        if (attempt.phase === 'connected') this.events.emit('message', message);
    }
  }

  private onRegistered(attempt: Attempt, registered: Registered): void {
    const { clock, timing, identity } = this.options;
    clock.clearTimeout(attempt.registrationTimer);
    const granted = registered.capabilities?.includes(Capability.BATCH_V1) === true;
    this.lastHubId = registered.hub_id;
    if (attempt.offeredEnhanced) this.hubOffersEnhanced = granted;
    if (this.modeSetting === 'enhanced' && !granted) {
      attempt.phase = 'connected';
      this.stats.registered(attempt.server);
      this.endAttempt(
        attempt,
        {
          code: 'mode_unavailable',
          message:
            `Hub ${registered.hub_id} at ${redactUrl(attempt.server.url)} does not offer enhanced mode, and protocol.mode ` +
            `is enhanced: trying ${this.describeNext()} (set protocol.mode to auto to use legacy mode with such hubs)`,
        },
        { graceful: true },
      );
      return;
    }
    attempt.phase = 'connected';
    attempt.link.limits = registered.limits;
    if (granted && attempt.offeredEnhanced) {
      attempt.mode = 'enhanced';
      attempt.link.useBatches(this.batchSettings(registered.batch, registered.limits));
    }
    this.attemptsSinceRegistered = 0;
    this.breakerLog.registered(attempt.server.index, this.breakers.registered(attempt.server.index));
    this.stats.registered(attempt.server);
    this.figures.connectedIn(attempt.mode);
    this.countHandshake(attempt);
    attempt.stableTimer = clock.setTimeout(() => {
      this.rotation.markStable();
      this.log.debug({ server: attempt.server.index }, 'Connection stable: backoff reset');
    }, timing.stableAfterMs);
    attempt.monitor({
      clock,
      timing,
      usage: this.options.usage,
      // Urgent: a heartbeat waiting for a batch window would read as latency.
      sendHeartbeat: (hb) => this.sendOn(attempt, hb, { urgent: true }),
      onHeartbeatRtt: (rtt) => {
        this.stats.heartbeatRtt(rtt);
        this.events.emit('heartbeatRtt', rtt);
      },
      onHeartbeatLost: () => this.stats.heartbeatLost(),
      onHeartbeatDead: (silentFor) =>
        this.endAttempt(
          attempt,
          {
            code: 'heartbeat_timeout',
            message: `No heartbeat_ack for ${fmtMs(silentFor)} (dead timeout ${fmtMs(timing.deadTimeoutMs)})`,
          },
          { graceful: false },
        ),
      onPingRtt: (rtt) => this.stats.pingRtt(rtt),
      onPingTimeout: (waited) =>
        this.endAttempt(
          attempt,
          { code: 'ping_timeout', message: `No pong within ${fmtMs(waited)}` },
          { graceful: false },
        ),
    });
    // A hub under load asks for slower heartbeats from the start (enhanced only).
    if (registered.heartbeat_interval_ms !== undefined && attempt.mode === 'enhanced')
      attempt.heartbeat?.setInterval(this.heartbeatInterval(registered.heartbeat_interval_ms));
    this.transition(
      {
        phase: 'connected',
        server: attempt.server,
        since: clock.now(),
        session_id: registered.session_id,
        hub_id: registered.hub_id,
        mode: attempt.mode,
      },
      { code: 'registered', message: `Registered with hub ${registered.hub_id}` },
    );
    const fields = {
      agent_id: identity.id,
      session_id: registered.session_id,
      hub_id: registered.hub_id,
      server: attempt.server.index,
      mode: attempt.mode,
    };
    this.log.info(
      { ...fields, url: redactUrl(attempt.server.url) },
      `✓ Connected to server ${redactUrl(attempt.server.url)} (hub ${registered.hub_id})`,
    );
    this.log.info(fields, `✓ Registered as ${identity.name} (${displayId(identity.id)})`);
    this.log.info(fields, this.describeMode(attempt, registered));
    this.events.emit('registered', { server: attempt.server, registered, mode: attempt.mode });
    attempt.startMonitors();
    this.releaseHandover({ code: 'drained', message: `Moved to ${this.describeServer(attempt.server.index)}` }, true);
  }

  private describeMode(attempt: Attempt, registered: Registered): string {
    if (attempt.mode === 'enhanced') {
      const batch = attempt.link.batching;
      const pace = batch ? ` every ${batch.window_ms} ms, up to ${batch.max_messages} messages` : '';
      const slower =
        registered.heartbeat_interval_ms === undefined || attempt.heartbeat === undefined
          ? ''
          : `; the hub is under load: heartbeats every ${fmtMs(attempt.heartbeat.interval)}`;
      return `Protocol: enhanced (batched frames${pace}; resuming after seq ${registered.acked_seq ?? 0}${slower})`;
    }
    if (!attempt.offeredEnhanced) return 'Protocol: legacy (protocol.mode is legacy)';
    return `Protocol: legacy — hub ${registered.hub_id} does not offer enhanced mode (messages are sent at most once)`;
  }

  /** The hub's batch settings, or ours within its frame limit. */
  private batchSettings(offered: BatchSettings | undefined, limits: HubLimits): BatchSettings {
    const ours = this.options.batch ?? { windowMs: 50, maxMessages: 500 };
    const settings = offered ?? {
      window_ms: ours.windowMs,
      max_messages: ours.maxMessages,
      max_bytes: limits.max_payload_bytes,
    };
    return { ...settings, max_bytes: Math.min(settings.max_bytes, limits.max_payload_bytes) };
  }

  /**
   * The hub is under load (or no longer): batch at its pace, and beat no more often than it asks
   * (null: at our own interval again). The heartbeat's dead timeout stretches with the interval.
   */
  private onTune(
    attempt: Attempt,
    batch: BatchSettings | undefined,
    heartbeatMs: number | null | undefined,
    why: string,
  ): void {
    const limits = attempt.link.limits;
    if (batch && attempt.mode === 'enhanced' && limits) attempt.link.useBatches(this.batchSettings(batch, limits));
    const interval = heartbeatMs === undefined ? undefined : this.heartbeatInterval(heartbeatMs);
    if (interval !== undefined) attempt.heartbeat?.setInterval(interval);
    attempt.tunedBecause = why;
    this.log.info(
      { batch_window_ms: batch?.window_ms, heartbeat_interval_ms: interval, reason: why },
      `Hub asked for another pace (${why})${batch ? `: batch window ${batch.window_ms} ms` : ''}` +
        (interval !== undefined ? `, heartbeat every ${fmtMs(interval)}` : ''),
    );
  }

  /** The hub's heartbeat interval, never shorter than our own; null: our own. */
  private heartbeatInterval(hubMs: number | null): number {
    const own = this.options.timing.heartbeatIntervalMs;
    return hubMs === null ? own : Math.max(own, hubMs);
  }

  private onDraining(attempt: Attempt, hubReason: string): void {
    const next = this.describeNext();
    const reason: Reason = { code: 'drained', message: `Hub is draining: ${hubReason}` };
    if (attempt.phase !== 'connected' || this.options.servers.length === 1) {
      this.log.warn(
        { url: redactUrl(attempt.server.url), reason: hubReason },
        `Hub is draining (${hubReason}): reconnecting`,
      );
      this.endAttempt(attempt, reason, { graceful: attempt.phase === 'connected' });
      return;
    }
    this.log.warn(
      { url: redactUrl(attempt.server.url), reason: hubReason },
      `Hub is draining (${hubReason}): moving to ${next} now, staying on this hub until registered there`,
    );
    this.handover.hold(attempt);
    this.attempt = undefined;
    this.stats.failure(attempt.server.index, reason);
    this.schedule(this.rotation.afterFailure(), reason);
  }

  private onClose(attempt: Attempt, code: number, reasonText: string): void {
    if (!this.isLive(attempt)) return;
    attempt.closeReason = reasonText;
    let reason: Reason;
    if (attempt.socketError && attempt.phase === 'connecting') {
      reason = classifySocketError(attempt.socketError, attempt.server.url);
    } else if (code === 1006) {
      reason = attempt.socketError
        ? classifySocketError(attempt.socketError, attempt.server.url)
        : { code: 'network_error', message: 'Connection lost without a close frame (1006)' };
    } else {
      const name = closeCodeName(code);
      reason = {
        code: 'closed_by_hub',
        close_code: code,
        message: `Hub closed the connection: ${code} ${name}${reasonText ? ` "${reasonText}"` : ''}`,
      };
    }
    if (attempt.tokenExpired && code === CloseCode.TOKEN_EXPIRED) {
      reason = { ...reason, code: 'token_expired' };
    }
    // The one line that reports this close (endAttempt's) carries what to do about it.
    const advice = closeAdvice(code, this.options.identity.id);
    if (advice) reason = { ...reason, message: `${reason.message} — ${advice}` };
    this.endAttempt(attempt, reason, { graceful: false });
  }

  // ---- ending an attempt and choosing the next ---------------------------------------------

  private countHandshake(attempt: Attempt): void {
    for (const f of attempt.handshakeFrames.splice(0))
      this.figures.frame(attempt.countedMode, f.direction, f.messages, f.bytes);
  }

  private endAttempt(attempt: Attempt, reason: Reason, options: EndOptions): void {
    if (attempt.ended) return;
    if (attempt === this.handover.attempt) {
      // The draining hub closed on us (or went silent) before the successor registered.
      this.log.info({ url: redactUrl(attempt.server.url) }, `Draining hub connection ended: ${reason.message}`);
      this.releaseHandover(reason);
      return;
    }
    attempt.ended = true;
    this.countHandshake(attempt);
    attempt.quiet(this.options.clock);
    const wasConnected = attempt.phase === 'connected';
    this.closeLink(attempt, reason, options.graceful);
    if (wasConnected) {
      this.stats.disconnected();
      if (this.handover.attempt === undefined) this.figures.connectedIn(undefined);
    }
    if (reason.code !== 'stop_requested' && reason.code !== 'reconnect_requested' && reason.code !== 'mode_changed') {
      this.stats.failure(attempt.server.index, reason);
      if (wasConnected && reason.code !== 'drained') {
        this.log.warn(
          { url: redactUrl(attempt.server.url), reason: reason.code },
          `Connection lost: ${reason.message}`,
        );
      } else if (!wasConnected && reason.code !== 'connect_timeout') {
        this.log.error({ url: redactUrl(attempt.server.url), reason: reason.code }, reason.message);
      }
    }
    if (this.attempt === attempt) this.attempt = undefined;
    if (this.isStopping()) return;

    if (options.restartAtPrimary) {
      this.dial(this.rotation.restartAtPrimary(), reason);
      return;
    }
    if (options.redial !== undefined) {
      this.rotation.startAt(options.redial);
      this.dial(options.redial, reason);
      return;
    }
    // Refusals of this PC count on the server's breaker before the rotation picks the next server.
    const refusal = refusalOf({
      reason,
      registered: wasConnected,
      httpStatus: attempt.httpStatus,
      closeReason: attempt.closeReason,
    });
    const openedFrom = refusal !== null ? this.breakers.refused(attempt.server.index, refusal) : null;
    const next = this.rotation.afterFailure();
    if (openedFrom !== null) this.breakerLog.opened(attempt.server.index, openedFrom, next);
    this.schedule(next, reason);
  }

  private schedule(next: NextAttempt, reason: Reason): void {
    if (this.handover.shouldLetGo(next)) {
      this.releaseHandover({ code: 'drained', message: 'No other server answered; leaving the draining hub' });
    }
    if (next.delayMs === 0) {
      this.dial(next.index, reason);
      return;
    }
    const { clock } = this.options;
    const server = this.serverAt(next.index);
    const total = this.options.servers.length;
    this.transition(
      {
        phase: 'reconnecting',
        next_server: server,
        next_attempt_at: clock.now() + next.delayMs,
        delay_ms: next.delayMs,
        backoff_step: next.backoffStep,
      },
      reason,
    );
    if (next.allOpen) {
      this.breakerLog.waitingForProbe(next);
      this.armReconnect(next);
      return;
    }
    const skipped = next.skipped.length > 0 ? ` (${next.skipped.length} skipped: breaker open)` : '';
    const what = total === 1 ? 'Attempt failed' : `All ${total} servers failed${skipped}`;
    this.log.info(
      { delay_ms: Math.round(next.delayMs), backoff_step: next.backoffStep },
      `${what}: retrying ${this.retryTarget(next.index)}in ${fmtMs(next.delayMs)} (backoff #${next.backoffStep})`,
    );
    this.armReconnect(next);
  }

  private armReconnect(next: NextAttempt): void {
    this.reconnectTimer = this.options.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.dial(next.index, {
        code: 'backoff_elapsed',
        message: `Waited ${fmtMs(next.delayMs)} (backoff #${next.backoffStep})`,
      });
    }, next.delayMs);
  }

  /**
   * Ends an attempt's link: gracefully (`disconnect`, close 1000, a short wait for the hub's close,
   * tracked so `stop()` waits for it) when asked and still possible, otherwise cut at once.
   */
  private closeLink(attempt: Attempt, reason: Reason, graceful: boolean): void {
    const { link } = attempt;
    if (!graceful || !link.isOpen) {
      link.terminate();
      return;
    }
    const disconnectReason = reason.code === 'stop_requested' ? 'agent_shutdown' : reason.code;
    try {
      this.sendOn(attempt, { type: 'disconnect', reason: disconnectReason });
    } catch {
      // The socket is going anyway; the close below still tells the hub we meant it.
    }
    const closing = link.close(CloseCode.NORMAL, disconnectReason.slice(0, 120), this.options.timing.closeTimeoutMs);
    this.closing.add(closing);
    void closing.finally(() => this.closing.delete(closing));
  }

  private sendOn(attempt: Attempt, message: AgentMessage, options: { urgent?: boolean } = {}): void {
    attempt.link.send(message, options);
  }

  /** Leave the draining hub (if any) gracefully. `movedOn` when a successor is registered. */
  private releaseHandover(reason: Reason, movedOn = false): void {
    const old = this.handover.release();
    if (!old) return;
    if (!movedOn && this.attempt?.phase !== 'connected') this.stats.disconnected();
    this.closeLink(old, { ...reason, code: 'drained' }, true);
  }

  // ---- state ------------------------------------------------------------------------------

  private transition(to: ConnectionState, reason: Reason): void {
    const from: ConnectionPhase = this.state.phase;
    this.state = to;
    this.log.debug({ from, to: to.phase, reason: reason.code }, `State ${from} → ${to.phase}: ${reason.message}`);
    this.events.emit('state', { at: this.options.clock.now(), from, to, reason });
  }

  private isStopping(): boolean {
    return this.state.phase === 'stopping' || this.state.phase === 'stopped';
  }

  private serverAt(index: number): ServerRef {
    const url = this.options.servers[index];
    // The rotation only hands out indexes below servers.length; this guards the invariant.
    if (url === undefined) {
      throw new FarmlinkError('NO_SERVERS', `No server #${index} among ${this.options.servers.length}`);
    }
    return { index, url };
  }

  /** "" with one server, else which one the retry after the backoff dials (the primary unless its breaker is open). */
  private retryTarget(index: number): string {
    if (this.options.servers.length === 1) return '';
    return index === 0 ? 'the primary ' : `${this.describeServer(index)} `;
  }

  private describeNext(): string {
    return this.describeServer((this.rotation.current + 1) % this.options.servers.length);
  }

  private describeServer(index: number): string {
    return index === 0 ? 'the primary server' : `fallback #${index}/${this.options.servers.length - 1}`;
  }
}
