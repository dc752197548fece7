import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { CONFIGURATION_CLOSE_CODES, CloseCode, closeCodeName } from '../../protocol/close-codes.js';
import type {
  ConnectionEvent,
  ConnectionPhase,
  ConnectionState,
  ConnectionStats,
  Reason,
  ServerRef,
} from '../../protocol/connection-state.js';
import type { AgentMessage, HubLimits, HubMessage, Registered } from '../../protocol/messages.js';
import { HubMessageSchema, describeIssues } from '../../protocol/messages.js';
import { redactUrl } from '../../protocol/server-url.js';
import { PROTOCOL_VERSION } from '../../protocol/version.js';
import type { Clock, Random, TimerHandle } from '../../lib/clock.js';
import { FarmlinkError } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import type { UsageSample } from '../system/system-usage.js';
import { Backoff } from './backoff.js';
import { classifySocketError } from './classify-error.js';
import { FallbackRotation, type NextAttempt } from './fallback-rotation.js';
import { HeartbeatMonitor } from './heartbeat.js';
import { PingMonitor } from './ping-monitor.js';
import { ConnectionStatsTracker } from './stats.js';

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
}

export interface ConnectionEvents extends Record<string, unknown> {
  /** Every state transition, with its reason. */
  state: ConnectionEvent;
  /** Hub messages the connection does not consume itself (command, broadcast). */
  message: HubMessage;
  registered: { server: ServerRef; registered: Registered };
  heartbeatRtt: number;
}

type AttemptPhase = 'connecting' | 'registering' | 'connected';

/** One dial of one server, from socket creation to its end. Callbacks of a finished attempt are ignored. */
interface Attempt {
  readonly server: ServerRef;
  readonly ws: WebSocket;
  phase: AttemptPhase;
  ended: boolean;
  /** An error seen on the socket; the close that follows reports it. */
  socketError?: Error;
  connectTimer?: TimerHandle;
  registrationTimer?: TimerHandle;
  stableTimer?: TimerHandle;
  heartbeat?: HeartbeatMonitor;
  ping?: PingMonitor;
  /** What this hub said it accepts, from its `registered`. */
  limits?: HubLimits;
}

interface EndOptions {
  /** Send `disconnect`, close with 1000 and wait briefly for the hub's close (a graceful disconnect). */
  graceful: boolean;
  /** Do not consult the rotation: dial the primary now (reconnect requested). */
  restartAtPrimary?: boolean;
}

const DEFAULT_MAX_INCOMING = 1024 * 1024;

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
  private readonly stats: ConnectionStatsTracker;
  private readonly log: Logger;
  private state: ConnectionState = { phase: 'idle' };
  private attempt: Attempt | undefined;
  /**
   * A connection to a draining hub, kept while the next server is dialled (make before break):
   * the draining hub still serves, so the agent leaves it only once registered elsewhere — or
   * when there is nowhere else to go right now (see releaseHandover).
   */
  private handoverFrom: Attempt | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private lastDialledIndex = -1;
  /** Dials since the last registration, for "attempt #N" in state and logs. */
  private attemptsSinceRegistered = 0;
  private readonly closing = new Set<Promise<void>>();
  private stopPromise: Promise<void> | undefined;

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
    this.rotation = new FallbackRotation(options.servers.length, backoff);
    this.stats = new ConnectionStatsTracker(options.servers, options.clock);
  }

  getState(): ConnectionState {
    return this.state;
  }

  getStats(): ConnectionStats {
    return this.stats.snapshot();
  }

  /** The limits of the hub the agent is registered with, if any. */
  getHubLimits(): HubLimits | undefined {
    return this.attempt?.phase === 'connected' ? this.attempt.limits : this.handoverFrom?.limits;
  }

  get servers(): readonly string[] {
    return this.options.servers;
  }

  /** Starts at the primary, or at `firstIndex` (the server that worked last time). */
  start(firstIndex = 0): void {
    if (this.state.phase !== 'idle') return;
    if (firstIndex !== 0) {
      this.rotation.startAt(firstIndex);
      this.dial(firstIndex, { code: 'start', message: `Agent started; dialing ${this.describeServer(firstIndex)} first, the server that worked last time` });
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
        this.rotation.restartAtPrimary();
        this.dial(0, reason);
        return;
      default:
        this.releaseHandover(reason);
        if (this.attempt) {
          this.log.info(`${message}: reconnecting to the primary server now`);
          this.endAttempt(this.attempt, reason, { graceful: this.attempt.phase === 'connected', restartAtPrimary: true });
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
  send(message: AgentMessage): void {
    const attempt = this.attempt?.phase === 'connected' ? this.attempt : this.handoverFrom;
    if (!attempt || attempt.phase !== 'connected' || attempt.ws.readyState !== WebSocket.OPEN) {
      throw new FarmlinkError('NOT_CONNECTED', `Cannot send ${message.type}: not connected to a hub`);
    }
    this.sendOn(attempt, message);
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
    const url = this.options.servers[index]!;
    const server: ServerRef = { index, url };
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
    this.attemptsSinceRegistered += 1;
    this.stats.attempt(index);
    this.transition({ phase: 'connecting', server, attempt: this.attemptsSinceRegistered }, reason);
    this.log.info({ url: redactUrl(url), attempt: this.attemptsSinceRegistered }, `Connecting to ${redactUrl(url)}...`);

    const headers: Record<string, string> = { 'user-agent': `farmlink-agent/${this.options.identity.version}` };
    if (this.options.identity.token) headers.authorization = `Bearer ${this.options.identity.token}`;
    let attempt: Attempt | undefined;
    // Anything that throws while the attempt is set up (ws refuses a header value, a URL it cannot
    // parse…) ends this attempt like any other failure, so the agent backs off and dials again
    // instead of sitting in "connecting" with no socket and no timer.
    try {
      // A fresh socket per attempt, and with it a fresh name resolution.
      const ws = new WebSocket(url, {
        headers,
        perMessageDeflate: false,
        maxPayload: this.options.maxIncomingBytes ?? DEFAULT_MAX_INCOMING,
        followRedirects: false,
        ...(this.options.localAddress ? { localAddress: this.options.localAddress } : {}),
        ...(this.options.lookup ? { lookup: this.options.lookup } : {}),
      });
      const current: Attempt = { server, ws, phase: 'connecting', ended: false };
      attempt = current;
      this.attempt = current;

      current.connectTimer = clock.setTimeout(() => {
        this.log.error({ url: redactUrl(url) }, `Connect timeout to ${redactUrl(url)}`);
        this.endAttempt(current, {
          code: 'connect_timeout',
          message: `No connection to ${redactUrl(url)} within ${fmtMs(timing.connectTimeoutMs)}`,
        }, { graceful: false });
      }, timing.connectTimeoutMs);

      ws.on('open', () => this.onOpen(current));
      ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(current, data, isBinary));
      ws.on('pong', () => current.ping?.handlePong());
      ws.on('error', (error: Error) => {
        current.socketError ??= error;
      });
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        const hint = status === 404 ? ' (is this the hub\'s URL? the agent endpoint is /api/v1/pc/ws)' : '';
        this.endAttempt(current, {
          code: 'handshake_rejected',
          message: `${redactUrl(url)} answered HTTP ${status} instead of a WebSocket upgrade${hint}`,
        }, { graceful: false });
      });
      ws.on('close', (code: number, reasonBuf: Buffer) => this.onClose(current, code, reasonBuf.toString()));
    } catch (error) {
      const reason: Reason = { code: 'dial_failed', message: `Could not start a connection to ${redactUrl(url)}: ${describeDialError(error)}` };
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
    this.transition({ phase: 'registering', server: attempt.server }, { code: 'socket_open', message: 'WebSocket open, sending hello' });
    // Not "connected" yet: the hub may still refuse the token or the id. That is said on `registered`.
    this.log.info({ url: redactUrl(attempt.server.url) }, `WebSocket open to ${redactUrl(attempt.server.url)}, registering`);
    attempt.registrationTimer = clock.setTimeout(() => {
      this.endAttempt(attempt, {
        code: 'registration_timeout',
        message: `No "registered" from the hub within ${fmtMs(timing.registrationTimeoutMs)} of hello`,
      }, { graceful: false });
    }, timing.registrationTimeoutMs);
    this.sendOn(attempt, {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      agent_id: identity.id,
      name: identity.name,
      version: identity.version,
      hostname: identity.hostname,
      platform: identity.platform,
    });
  }

  private onMessage(attempt: Attempt, data: Buffer, isBinary: boolean): void {
    if (attempt.ended || (attempt !== this.attempt && attempt !== this.handoverFrom)) return;
    this.stats.received(data.length);
    if (isBinary) {
      this.log.warn({ bytes: data.length }, 'Ignoring a binary frame from the hub (the protocol is JSON text)');
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      this.log.warn({ bytes: data.length }, 'Ignoring a frame from the hub that is not JSON');
      return;
    }
    const parsed = HubMessageSchema.safeParse(json);
    if (!parsed.success) {
      // A newer hub may send types this build does not know; ignore them rather than disconnect.
      const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
      this.log.warn({ type, problem: describeIssues(parsed.error) }, `Ignoring a hub message this agent does not understand`);
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'registered':
        if (attempt.phase === 'registering') this.onRegistered(attempt, message);
        return;
      case 'heartbeat_ack':
        attempt.heartbeat?.handleAck(message);
        return;
      case 'draining':
        if (attempt !== this.handoverFrom) this.onDraining(attempt, message.reason);
        return;
      default:
        if (attempt.phase === 'connected') this.events.emit('message', message);
    }
  }

  private onRegistered(attempt: Attempt, registered: Registered): void {
    const { clock, timing, identity } = this.options;
    clock.clearTimeout(attempt.registrationTimer);
    attempt.phase = 'connected';
    attempt.limits = registered.limits;
    this.attemptsSinceRegistered = 0;
    this.stats.registered(attempt.server);
    attempt.stableTimer = clock.setTimeout(() => {
      this.rotation.markStable();
      this.log.debug({ server: attempt.server.index }, 'Connection stable: backoff reset');
    }, timing.stableAfterMs);
    attempt.heartbeat = new HeartbeatMonitor({
      intervalMs: timing.heartbeatIntervalMs,
      deadTimeoutMs: timing.deadTimeoutMs,
      clock,
      sample: this.options.usage,
      send: (hb) => this.sendOn(attempt, hb),
      onRtt: (rtt) => {
        this.stats.heartbeatRtt(rtt);
        this.events.emit('heartbeatRtt', rtt);
      },
      onLost: () => this.stats.heartbeatLost(),
      onDead: (silentFor) =>
        this.endAttempt(attempt, {
          code: 'heartbeat_timeout',
          message: `No heartbeat_ack for ${fmtMs(silentFor)} (dead timeout ${fmtMs(timing.deadTimeoutMs)})`,
        }, { graceful: false }),
    });
    attempt.ping = new PingMonitor({
      intervalMs: timing.pingIntervalMs,
      timeoutMs: timing.pingTimeoutMs,
      clock,
      ping: () => {
        try {
          attempt.ws.ping();
        } catch {
          // The socket is closing; its close event ends the attempt.
        }
      },
      onRtt: (rtt) => this.stats.pingRtt(rtt),
      onTimeout: (waited) =>
        this.endAttempt(attempt, { code: 'ping_timeout', message: `No pong within ${fmtMs(waited)}` }, { graceful: false }),
    });
    this.transition(
      { phase: 'connected', server: attempt.server, since: clock.now(), session_id: registered.session_id, hub_id: registered.hub_id },
      { code: 'registered', message: `Registered with hub ${registered.hub_id}` },
    );
    const fields = { agent_id: identity.id, session_id: registered.session_id, hub_id: registered.hub_id, server: attempt.server.index };
    this.log.info({ ...fields, url: redactUrl(attempt.server.url) }, `✓ Connected to server ${redactUrl(attempt.server.url)} (hub ${registered.hub_id})`);
    this.log.info(fields, `✓ Registered as ${identity.name} (${displayId(identity.id)})`);
    this.events.emit('registered', { server: attempt.server, registered });
    attempt.heartbeat.start();
    attempt.ping.start();
    this.releaseHandover({ code: 'drained', message: `Moved to ${this.describeServer(attempt.server.index)}` }, true);
  }

  private onDraining(attempt: Attempt, hubReason: string): void {
    const next = this.describeNext();
    const reason: Reason = { code: 'drained', message: `Hub is draining: ${hubReason}` };
    if (attempt.phase !== 'connected' || this.options.servers.length === 1) {
      this.log.warn({ url: redactUrl(attempt.server.url), reason: hubReason }, `Hub is draining (${hubReason}): reconnecting`);
      this.endAttempt(attempt, reason, { graceful: attempt.phase === 'connected' });
      return;
    }
    this.log.warn(
      { url: redactUrl(attempt.server.url), reason: hubReason },
      `Hub is draining (${hubReason}): moving to ${next} now, staying on this hub until registered there`,
    );
    clearTimerFields(this.options.clock, attempt);
    this.handoverFrom = attempt;
    this.attempt = undefined;
    this.stats.failure(attempt.server.index, reason);
    this.schedule(this.rotation.afterFailure(), reason);
  }

  private onClose(attempt: Attempt, code: number, reasonText: string): void {
    if (attempt.ended || (attempt !== this.attempt && attempt !== this.handoverFrom)) return;
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
    // The one line that reports this close (endAttempt's) carries what to do about it.
    const advice = closeAdvice(code, this.options.identity.id);
    if (advice) reason = { ...reason, message: `${reason.message} — ${advice}` };
    this.endAttempt(attempt, reason, { graceful: false });
  }

  // ---- ending an attempt and choosing the next ---------------------------------------------

  private endAttempt(attempt: Attempt, reason: Reason, options: EndOptions): void {
    if (attempt.ended) return;
    if (attempt === this.handoverFrom) {
      // The draining hub closed on us (or went silent) before the successor registered.
      this.log.info({ url: redactUrl(attempt.server.url) }, `Draining hub connection ended: ${reason.message}`);
      this.releaseHandover(reason);
      return;
    }
    attempt.ended = true;
    clearTimerFields(this.options.clock, attempt);
    attempt.heartbeat?.stop();
    attempt.ping?.stop();
    const wasConnected = attempt.phase === 'connected';

    if (options.graceful && attempt.ws.readyState === WebSocket.OPEN) {
      const closing = this.closeGracefully(attempt, reason);
      this.closing.add(closing);
      void closing.finally(() => this.closing.delete(closing));
    } else {
      attempt.ws.terminate();
    }
    if (wasConnected) this.stats.disconnected();
    if (reason.code !== 'stop_requested' && reason.code !== 'reconnect_requested') {
      this.stats.failure(attempt.server.index, reason);
      if (wasConnected && reason.code !== 'drained') {
        this.log.warn({ url: redactUrl(attempt.server.url), reason: reason.code }, `Connection lost: ${reason.message}`);
      } else if (!wasConnected && reason.code !== 'connect_timeout') {
        this.log.error({ url: redactUrl(attempt.server.url), reason: reason.code }, reason.message);
      }
    }
    if (this.attempt === attempt) this.attempt = undefined;
    if (this.isStopping()) return;

    if (options.restartAtPrimary) {
      this.rotation.restartAtPrimary();
      this.dial(0, reason);
      return;
    }
    this.schedule(this.rotation.afterFailure(), reason);
  }

  private schedule(next: NextAttempt, reason: Reason): void {
    const handover = this.handoverFrom;
    if (handover && (next.delayMs > 0 || next.index === handover.server.index)) {
      // Nowhere else answered in this round: free the draining hub so it can finish its
      // shutdown (and be replaced on the same address) instead of waiting out its drain timeout.
      this.releaseHandover({ code: 'drained', message: 'No other server answered; leaving the draining hub' });
    }
    if (next.delayMs === 0) {
      this.dial(next.index, reason);
      return;
    }
    const { clock } = this.options;
    const server: ServerRef = { index: next.index, url: this.options.servers[next.index]! };
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
    const what = total === 1 ? 'Attempt failed' : `All ${total} servers failed`;
    this.log.info(
      { delay_ms: Math.round(next.delayMs), backoff_step: next.backoffStep },
      `${what}: retrying ${total === 1 ? '' : 'the primary '}in ${fmtMs(next.delayMs)} (backoff #${next.backoffStep})`,
    );
    this.reconnectTimer = clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.dial(next.index, { code: 'backoff_elapsed', message: `Waited ${fmtMs(next.delayMs)} (backoff #${next.backoffStep})` });
    }, next.delayMs);
  }

  private closeGracefully(attempt: Attempt, reason: Reason): Promise<void> {
    const { ws } = attempt;
    const disconnectReason = reason.code === 'stop_requested' ? 'agent_shutdown' : reason.code;
    try {
      this.sendOn(attempt, { type: 'disconnect', reason: disconnectReason });
    } catch {
      // The socket is going anyway; the close below still tells the hub we meant it.
    }
    return new Promise<void>((resolve) => {
      const timer = this.options.clock.setTimeout(() => {
        ws.terminate();
        resolve();
      }, this.options.timing.closeTimeoutMs);
      ws.once('close', () => {
        this.options.clock.clearTimeout(timer);
        resolve();
      });
      ws.close(CloseCode.NORMAL, disconnectReason.slice(0, 120));
    });
  }

  private sendOn(attempt: Attempt, message: AgentMessage): void {
    const text = JSON.stringify(message);
    const bytes = Buffer.byteLength(text);
    const limit = attempt.limits?.max_payload_bytes;
    if (limit !== undefined && bytes > limit) {
      throw new FarmlinkError('MESSAGE_TOO_LARGE', `${message.type} is ${bytes} bytes; the hub accepts at most ${limit}`);
    }
    attempt.ws.send(text);
    this.stats.sent(bytes);
  }

  /** Leave the draining hub (if any) gracefully. `movedOn` when a successor is registered. */
  private releaseHandover(reason: Reason, movedOn = false): void {
    const old = this.handoverFrom;
    if (!old) return;
    this.handoverFrom = undefined;
    old.ended = true;
    clearTimerFields(this.options.clock, old);
    old.heartbeat?.stop();
    old.ping?.stop();
    if (!movedOn && this.attempt?.phase !== 'connected') this.stats.disconnected();
    if (old.ws.readyState === WebSocket.OPEN) {
      const closing = this.closeGracefully(old, { ...reason, code: 'drained' });
      this.closing.add(closing);
      void closing.finally(() => this.closing.delete(closing));
    } else {
      old.ws.terminate();
    }
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

  private describeNext(): string {
    return this.describeServer((this.rotation.current + 1) % this.options.servers.length);
  }

  private describeServer(index: number): string {
    return index === 0 ? 'the primary server' : `fallback #${index}/${this.options.servers.length - 1}`;
  }
}

function clearTimerFields(clock: Clock, attempt: Attempt): void {
  clock.clearTimeout(attempt.connectTimer);
  clock.clearTimeout(attempt.registrationTimer);
  clock.clearTimeout(attempt.stableTimer);
}

/** What a person can do about a close that retrying alone will not fix. */
function closeAdvice(code: number, agentId: string): string | undefined {
  if (code === CloseCode.UNAUTHORIZED) {
    return 'this will not change until the token is fixed: set agent.token (or agent.token_file) to one from `farmlink token --agent ID` signed with this hub\'s secret; retrying with backoff meanwhile';
  }
  if (code === CloseCode.FORBIDDEN) {
    return `this will not change until the token or agent id is fixed: the token must be an agent token minted for "${agentId}"; retrying with backoff meanwhile`;
  }
  if (CONFIGURATION_CLOSE_CODES.has(code)) {
    return 'this will not change until the agent and the hub run compatible versions; retrying with backoff meanwhile';
  }
  if (code === CloseCode.REPLACED) return `another agent registered with the same id "${agentId}"; do two PCs share one agent id?`;
  return undefined;
}

/** The agent id whole, or — when it is too long for a log line — its start and end around "…". */
export function displayId(id: string): string {
  return id.length <= 20 ? id : `${id.slice(0, 8)}…${id.slice(-4)}`;
}

function describeDialError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ERR_INVALID_CHAR' && /authorization/i.test(error.message)) {
    return 'the token has a character an HTTP header cannot carry (a line break, a space, "…"?); check agent.token';
  }
  return code ? `${error.message} (${code})` : error.message;
}

/** "1.5s", "250ms", "2m 5s" — for log lines people read. */
export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m ${s}s` : `${m}m`;
}
