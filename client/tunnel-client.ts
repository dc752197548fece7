import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { systemClock, systemRandom, type Clock, type Random, type TimerHandle } from '../lib/clock.js';
import { FarmlinkError } from '../lib/errors.js';
import { TypedEmitter } from '../lib/events.js';
import { AGENT_VERSION } from '../lib/version.js';
import { BrokerLink, type LinkDownKind } from '../lib/tunnel/broker-link.js';
import { StreamResetError } from '../lib/tunnel/stream-reset-error.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import type { TunnelStream } from '../lib/tunnel/tunnel-stream.js';
import {
  TUNNEL_PROTOCOL_VERSION,
  type BrokerTimings,
  type BrokerToClient,
  type SessionEndCode,
  type TunnelPathKind,
  type TunnelSessionInfo,
} from '../protocol/tunnel.js';
import { StreamResetCode } from '../protocol/tunnel-frame.js';
import { ClientDirect } from './client-direct.js';

export interface TunnelClientOptions {
  /** Hub URLs, primary first (http(s) bases or ws(s) tunnel endpoints). */
  hubs: readonly string[];
  /** A client token (`farmlink token --client NAME --agents …`). */
  token: string;
  agentId: string;
  service: string;
  /**
   * Stable for this tunnel across restarts of this program: opening again with it replaces the old
   * session at once. Default: derived from this host's name, the farm, the service and the listen address.
   */
  clientKey?: string;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Connections waiting for a session at once; more are closed at once (default 256). */
  maxPendingConnections?: number;
  /** A connection that has no stream by then is closed (default 30 s). */
  connectTimeoutMs?: number;
  /** Per-stream receive window (default the session's, 1 MiB). */
  windowBytes?: number;
  /** Backoff between rounds over the hubs (default 0.5 s doubling to 10 s). */
  backoff?: { initialMs: number; maxMs: number; jitter?: number };
  /**
   * Try a direct WebRTC path to the farm beside the relay (default true); traffic moves to it once it
   * has answered for a while, and back to the relay when it stops answering. False: relay only.
   */
  direct?: boolean;
}

/** Why the client stopped for good: a session end code, or `stopped` (close() was called). */
export type TunnelClientEndCode = SessionEndCode | 'stopped';

export interface TunnelClientEvents extends Record<string, unknown> {
  /** The local listener is bound. */
  listening: { host: string; port: number };
  /**
   * A session is up (first, new or resumed) or its path changed; the event's name is the path that carries
   * it now. `directLost`: the session was on the direct path, which stopped (why).
   */
  relay: { sessionId: string; rttMs: number | null; directLost?: string };
  direct: { sessionId: string; rttMs: number | null };
  /** The farm is away (or not connected yet): connections wait, the listener stays up. */
  farm_unavailable: { reason: string };
  /** Back after an interruption (the hub or the farm was away): `newSession` when the farm had restarted. */
  resumed: { sessionId: string; path: TunnelPathKind; tookMs: number; newSession: boolean; rttMs: number | null };
  /**
   * The hub ended the session (idle limit, the farm stopped or restarted, resume window passed); the
   * listener stays. After idle_timeout the next connection opens a new one; otherwise one opens at once.
   */
  session_ended: { sessionId: string; code: SessionEndCode; reason: string };
  /**
   * The farm reconnected from another address, or said its addresses changed (`peer_state moved`): any
   * direct path is stale; the relay carries on. `address` is the farm's address as the hub sees it now.
   */
  farm_moved: { sessionId: string; address: string | null; reason: string };
  /** The tunnel socket to the hub dropped; the client reconnects through the hub list. */
  link_down: { reason: string; kind: LinkDownKind };
  /** Another program opened this tunnel with the same client key: this one gives way and stops. */
  session_replaced: { reason: string };
  /** The hub refused the token at the upgrade (HTTP 401/403); the client keeps trying, its owner may stop. */
  hub_refused: { status: number; reason: string };
  /** A connection was closed without being carried (waited too long, too many waiting, refused by the farm). */
  connection_refused: { reason: string };
  /** Once: the client stopped (close(), or a refusal that retrying cannot fix). */
  closed: { code: TunnelClientEndCode; reason: string };
}

/** The farm refused the tunnel for a reason retrying cannot fix (not authorised, unknown service). */
export class TunnelRefusedError extends FarmlinkError {
  constructor(
    readonly endCode: SessionEndCode | 'stopped',
    message: string,
  ) {
    super('TUNNEL_REFUSED', message);
    this.name = 'TunnelRefusedError';
  }
}

/** Open failures after which asking again is pointless: the client stops. */
const FATAL: ReadonlySet<SessionEndCode> = new Set(['not_authorized', 'unknown_service', 'protocol_error']);

interface Waiter {
  resolve: (stream: TunnelStream) => void;
  reject: (error: Error) => void;
  timer: TimerHandle;
}

const DEFAULTS = { maxPending: 256, connectTimeoutMs: 30_000, reopenDelayMs: 1000 };

/**
 * The remote end of the tunnel (docs/tunnel.md) as an API: one session to one service on one farm PC,
 * kept up through the hub's tunnel socket whatever happens to the hub, the network or the farm, and
 * streams on it — one per `openStream()`, or one per connection to a local listener.
 *
 * Session lifecycle: open on the first connection of the link; after a reconnect of the link, resume
 * (waiting for the farm); when the farm restarted (`peer_restarted`, or a resume answered
 * `unknown_session`), a new session at once. Connections that arrive while no session is up wait,
 * bounded in number and time, and go through as soon as one is.
 */
export class TunnelClient {
  readonly events: TypedEmitter<TunnelClientEvents>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly link: BrokerLink<'client'>;
  private readonly bootId = randomBytes(16).toString('hex');
  private clientKey: string | undefined;
  private session: TunnelSession | undefined;
  /** The session's route on the current socket, once `opened` (or `peer_state up`) said it. */
  private route: number | undefined;
  private farmUp = false;
  private requestId = 0;
  /** The request in flight, so a late answer to an older one is ignored. */
  private pendingRequest: number | undefined;
  private reopenTimer: TimerHandle | undefined;
  private readonly waiters: Waiter[] = [];
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private started = false;
  private ended: { code: TunnelClientEndCode; reason: string } | undefined;
  /** Since when the tunnel has been interrupted (hub or farm away), for "back after …". */
  private downSince: number | undefined;
  private lostSession = false;
  private lastPath: TunnelPathKind | null = null;
  private firstOpenDone = false;
  private readonly maxPending: number;
  private readonly connectTimeoutMs: number;
  private readonly direct: ClientDirect;
  /** What the hub was last told of the session's path and streams (session_report). */
  private reported = '';

  constructor(private readonly options: TunnelClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({
      agent_id: options.agentId,
      service: options.service,
    });
    this.maxPending = options.maxPendingConnections ?? DEFAULTS.maxPending;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.events = new TypedEmitter((error, event) => {
      this.log.error({ err: error, event }, 'a tunnel client listener threw; the client carries on');
    });
    this.clientKey = options.clientKey;
    this.link = new BrokerLink({
      role: 'client',
      servers: options.hubs,
      token: options.token,
      hello: () => ({
        type: 'client_hello',
        protocol: TUNNEL_PROTOCOL_VERSION,
        boot_id: this.bootId,
        version: AGENT_VERSION,
      }),
      clock: this.clock,
      random: options.random ?? systemRandom,
      logger: this.log,
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    this.link.events.on('connected', () => {
      this.requestOpen();
    });
    this.link.events.on('disconnected', ({ reason, kind }) => {
      this.onLinkDown(reason, kind);
    });
    this.link.events.on('dialFailed', ({ reason, status }) => {
      // A refused token will not be accepted on the next try either, but the hub's secret may be
      // rotated back: keep trying, and say so loudly once per failure.
      if (status === 401 || status === 403) {
        this.log.error({ status, reason }, 'the hub refused this client token');
        this.events.emit('hub_refused', { status, reason });
      }
    });
    this.link.events.on('message', (message) => {
      this.onMessage(message);
    });
    this.direct = new ClientDirect({
      enabled: options.direct ?? true,
      clock: this.clock,
      random: options.random ?? systemRandom,
      logger: this.log,
      signal: (sessionId, payload) => {
        this.link.send({ type: 'signal', session_id: sessionId, payload });
      },
    });
  }

  /** The session's diagnostics, or null while there is none. */
  info(): TunnelSessionInfo | null {
    return this.session?.info() ?? null;
  }

  /** The broker's timings while connected. */
  get timings(): BrokerTimings | undefined {
    return this.link.timings;
  }

  /** The address the local listener is bound to, once it is. */
  get address(): net.AddressInfo | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : undefined;
  }

  /** Connects to the hub and opens the session (listen() and openStream() call it). */
  start(): void {
    if (this.started || this.ended) return;
    this.started = true;
    this.clientKey ??= deriveClientKey(this.options.agentId, this.options.service, 'api');
    this.link.start();
  }

  /**
   * A stream to the service, once a session is up and the farm has reached the service (OPEN_OK).
   * Rejects with the farm's reason (StreamResetError CONNECT_FAILED), after `connectTimeoutMs`
   * without a session, when too many are waiting, or when the client is closed.
   */
  openStream(): Promise<TunnelStream> {
    if (this.ended) return Promise.reject(new TunnelRefusedError(this.ended.code, this.ended.reason));
    this.start();
    return new Promise<TunnelStream>((resolve, reject) => {
      if (this.waiters.length >= this.maxPending) {
        reject(new FarmlinkError('TUNNEL_BUSY', `${this.maxPending} connections already wait for the farm`));
        return;
      }
      const waiter: Waiter = {
        resolve,
        reject,
        timer: this.clock.setTimeout(() => {
          this.dropWaiter(waiter);
          reject(
            new FarmlinkError(
              'TUNNEL_CONNECT_TIMEOUT',
              `no session to ${this.options.agentId}/${this.options.service} within ${this.connectTimeoutMs} ms`,
            ),
          );
        }, this.connectTimeoutMs),
      };
      this.waiters.push(waiter);
      // No session and none asked for (it ended idle): this connection is what opens the next one.
      if (!this.session && this.pendingRequest === undefined && this.reopenTimer === undefined) this.requestOpen();
      this.flushWaiters();
    });
  }

  /**
   * Serves a local TCP port: every connection becomes a stream. Resolves once bound; rejects with the
   * listen error (EADDRINUSE …). The listener stays up whatever happens to the session.
   */
  async listen(options: { host?: string; port: number }): Promise<net.AddressInfo> {
    if (this.server) throw new FarmlinkError('TUNNEL_ALREADY_LISTENING', 'this client already listens');
    const host = options.host ?? '127.0.0.1';
    // Half-open: a client that shuts down its sending side (FIN) still gets the service's answer.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      this.onConnection(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => {
      this.log.error({ err: error }, 'local listener error');
    });
    this.server = server;
    const address = server.address() as net.AddressInfo;
    this.clientKey ??= deriveClientKey(this.options.agentId, this.options.service, `${host}:${options.port}`);
    this.log.info({ host: address.address, port: address.port }, 'listening');
    this.events.emit('listening', { host: address.address, port: address.port });
    this.start();
    return address;
  }

  /** Ends the session (session_close to the hub), the listener and every stream; idempotent. */
  async close(reason = 'closed by the client'): Promise<void> {
    if (this.session && this.link.isConnected) {
      this.link.send({ type: 'session_close', session_id: this.session.id, reason });
    }
    this.end('stopped', reason);
    await new Promise<void>((resolve) => {
      if (!this.server) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
    });
  }

  // ---- the session -----------------------------------------------------------------------------

  private requestOpen(): void {
    if (this.ended || !this.link.isConnected) return;
    this.clock.clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const requestId = ++this.requestId;
    this.pendingRequest = requestId;
    const resume = this.session?.id;
    // The very first open asks not to wait, so that a farm that is not there is said at once; every
    // later one waits for the farm (up to the resume window) instead of asking again and again.
    const wait = this.firstOpenDone || resume !== undefined;
    this.link.send({
      type: 'open',
      request_id: requestId,
      agent_id: this.options.agentId,
      service: this.options.service,
      client_key: this.clientKey ?? deriveClientKey(this.options.agentId, this.options.service, 'api'),
      ...(resume !== undefined ? { resume } : {}),
      wait,
    });
    this.log.info(
      { request_id: requestId, resume: resume ?? null, wait },
      resume ? 'resuming session' : 'opening session',
    );
  }

  private onMessage(message: BrokerToClient): void {
    switch (message.type) {
      case 'opened':
        if (message.request_id !== this.pendingRequest) return;
        this.pendingRequest = undefined;
        this.firstOpenDone = true;
        this.onOpened(message.session_id, message.route, message.resumed);
        return;
      case 'open_failed':
        if (message.request_id !== this.pendingRequest) return;
        this.pendingRequest = undefined;
        this.firstOpenDone = true;
        this.onOpenFailed(message.code, message.reason);
        return;
      case 'peer_state':
        if (message.session_id !== this.session?.id) return;
        this.onPeerState(message.state, message.reason, message.route, message.address);
        return;
      case 'session_closed':
        if (message.session_id !== this.session?.id) return;
        this.onSessionClosed(message.code, message.reason);
        return;
      case 'signal':
        this.direct.receive(message.session_id, message.payload);
        return;
      default:
        return;
    }
  }

  private onOpened(sessionId: string, route: number, resumed: boolean): void {
    const current = this.session;
    let newSession = false;
    if (!resumed || current?.id !== sessionId) {
      if (current) this.dropSession('a new session replaced it');
      this.session = this.newSession(sessionId);
      newSession = current !== undefined || this.lostSession;
      this.lostSession = false;
    }
    this.route = route;
    this.farmUp = true;
    this.attachRelay();
    this.reported = '';
    // The client offers: after any open or resume (the farm dropped its side when we were away).
    if (this.session) this.direct.start(this.session);
    this.log.info({ session_id: sessionId, route, resumed }, resumed ? 'session resumed' : 'session opened');
    this.reportUp(newSession);
    this.flushWaiters();
  }

  private onOpenFailed(code: SessionEndCode, reason: string): void {
    this.log.warn({ code, reason }, 'the hub did not open the session');
    if (FATAL.has(code)) {
      this.end(code, reason);
      return;
    }
    if (code === 'unknown_session' || code === 'resume_window_expired' || code === 'peer_restarted') {
      // The farm no longer holds our session: a new one at once.
      if (this.session) this.dropSession(`the farm no longer holds the session: ${reason}`);
      this.requestOpen();
      return;
    }
    if (code === 'replaced') {
      this.replaced(reason);
      return;
    }
    this.markFarmDown(`${code}: ${reason}`);
    // The farm is not there (or a limit): ask again shortly, waiting for it this time.
    this.reopenTimer = this.clock.setTimeout(() => {
      this.requestOpen();
    }, DEFAULTS.reopenDelayMs);
  }

  private onPeerState(
    state: 'up' | 'down' | 'moved',
    reason: string,
    route: number | undefined,
    address: string | undefined,
  ): void {
    if (state === 'down') {
      this.session?.recordRecovery({ kind: 'peer_restart', reason, took_ms: null });
      this.markFarmDown(reason);
      this.direct.stop(`the farm went away (${reason})`);
      return;
    }
    if (route !== undefined) this.route = route;
    if (state === 'moved') {
      this.log.info(
        { reason, address: address ?? null },
        'the farm moved; the relay carries on, the direct path starts over',
      );
      this.direct.peerMoved(`the farm moved (${reason})`);
      const session = this.session;
      if (session) this.events.emit('farm_moved', { sessionId: session.id, address: address ?? null, reason });
      return;
    }
    this.farmUp = true;
    // The farm attached again: RESUME on the relay so both sides replay what the other lacks.
    this.attachRelay(true);
    if (this.session) this.direct.start(this.session);
    this.reportUp(false);
    this.flushWaiters();
  }

  private onSessionClosed(code: SessionEndCode, reason: string): void {
    this.log.info({ code, reason }, 'session closed by the hub');
    if (code === 'replaced') {
      this.replaced(reason);
      return;
    }
    const sessionId = this.session?.id;
    this.dropSession(`${code}: ${reason}`);
    if (sessionId !== undefined) this.events.emit('session_ended', { sessionId, code, reason });
    if (FATAL.has(code)) {
      this.end(code, reason);
      return;
    }
    if (code === 'idle_timeout') {
      // Nobody uses it: the next connection opens a new one.
      this.markFarmDown(`session ended (${code}): ${reason}`, false);
      if (this.waiters.length > 0) this.requestOpen();
      return;
    }
    // closed (the farm stopped on purpose, or the hub closed it), peer_restarted, resume_window_expired,
    // broker_going_away …: the farm is away for now; open again at once, waiting for it, while the
    // listener stays. Waiting here rather than on the next connection is what makes the first
    // connection after the farm is back go through at once.
    this.markFarmDown(`${code}: ${reason}`);
    this.requestOpen();
  }

  private newSession(sessionId: string): TunnelSession {
    const timings = this.link.timings;
    const session = new TunnelSession({
      role: 'client',
      sessionId,
      peer: this.options.agentId,
      service: this.options.service,
      clock: this.clock,
      pingIntervalMs: timings?.ping_interval_ms ?? 5000,
      pingTimeoutMs: timings?.ping_timeout_ms ?? 15_000,
      ...(this.options.windowBytes !== undefined ? { windowBytes: this.options.windowBytes } : {}),
    });
    session.events.on('change', () => {
      this.onSessionChange(session);
    });
    session.events.on('pathDead', ({ reason }) => {
      this.log.warn({ reason }, 'session path silent; waiting for the farm or the hub');
    });
    session.events.on('closed', ({ code, reason }) => {
      this.log.info({ session_id: session.id, code, reason }, 'session over');
    });
    return session;
  }

  private attachRelay(again = false): void {
    const session = this.session;
    if (!session || this.route === undefined) return;
    const path = this.link.relayPath(this.route);
    if (!path) return;
    // Attaching sends RESUME; after the peer came back the same path is attached anew to send it again.
    if (again) session.detach(path, 'the farm attached again');
    session.attach(path);
  }

  private dropSession(reason: string): void {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    this.route = undefined;
    this.lostSession = true;
    this.direct.stop(`session dropped: ${reason}`);
    this.log.info({ session_id: session.id, reason }, 'session dropped; open streams end');
    session.close('closed', reason);
  }

  private onSessionChange(session: TunnelSession): void {
    if (session !== this.session) return;
    this.report(session);
    if (!this.farmUp || this.downSince !== undefined) return;
    const info = session.info();
    if (info.path !== null && info.path !== this.lastPath) {
      const wasDirect = this.lastPath === 'direct';
      this.lastPath = info.path;
      if (info.path === 'direct') {
        this.log.info({ session_id: session.id, rtt_ms: info.rtt_ms }, 'session now on the direct path');
        this.events.emit('direct', { sessionId: session.id, rttMs: info.rtt_ms });
        return;
      }
      const lost = wasDirect ? info.recoveries.findLast((r) => r.kind === 'direct_lost') : undefined;
      if (lost) this.log.info({ session_id: session.id, reason: lost.reason }, 'direct path lost; back on the relay');
      this.events.emit('relay', {
        sessionId: session.id,
        rttMs: info.rtt_ms,
        ...(lost ? { directLost: lost.reason } : {}),
      });
    }
  }

  /**
   * Tells the hub the session's path and open streams when they change: its admin listing shows the
   * path, and a session with a stream open on the direct path (nothing through the relay) is not idle.
   */
  private report(session: TunnelSession): void {
    const info = session.info();
    if (info.path === null || !this.link.isConnected) return;
    const key = `${info.path}/${String(info.streams_open)}`;
    if (key === this.reported) return;
    const sent = this.link.send({
      type: 'session_report',
      session_id: session.id,
      path: info.path,
      rtt_ms: info.rtt_ms,
      streams_open: info.streams_open,
    });
    if (sent) this.reported = key;
  }

  private reportUp(newSession: boolean): void {
    const session = this.session;
    if (!session) return;
    const info = session.info();
    const path = info.path ?? 'relay';
    if (this.downSince !== undefined) {
      const tookMs = this.clock.monotonic() - this.downSince;
      this.downSince = undefined;
      this.lastPath = path;
      this.events.emit('resumed', { sessionId: session.id, path, tookMs, newSession, rttMs: info.rtt_ms });
    } else if (path !== this.lastPath) {
      // Attaching the path may have reported it already (the session's change event).
      this.lastPath = path;
      this.events.emit(path, { sessionId: session.id, rttMs: info.rtt_ms });
    }
  }

  private markFarmDown(reason: string, announce = true): void {
    const wasUp = this.farmUp || this.downSince === undefined;
    this.farmUp = false;
    this.downSince ??= this.clock.monotonic();
    if (announce && wasUp) this.events.emit('farm_unavailable', { reason });
  }

  private onLinkDown(reason: string, kind: LinkDownKind): void {
    if (this.ended) return;
    this.farmUp = false;
    this.pendingRequest = undefined;
    this.clock.clearTimeout(this.reopenTimer);
    const wasUp = this.downSince === undefined;
    this.downSince ??= this.clock.monotonic();
    this.reported = '';
    // The farm drops its side when the hub says we are away; both start again after the resume.
    this.direct.stop(`hub connection lost (${reason})`);
    if (kind !== 'stopped') {
      this.session?.recordRecovery({ kind, reason, took_ms: null });
      if (wasUp) this.events.emit('link_down', { reason, kind });
    }
  }

  private replaced(reason: string): void {
    this.events.emit('session_replaced', { reason });
    this.session = undefined;
    this.end('replaced', reason);
  }

  // ---- connections -------------------------------------------------------------------------------

  private onConnection(socket: net.Socket): void {
    if (this.ended) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.pause();
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    let closed = false;
    socket.on('error', () => {
      // The close handler logs; the stream side sees the error through the pipe.
    });
    socket.once('close', () => {
      closed = true;
      this.sockets.delete(socket);
    });
    this.openStream().then(
      (stream) => {
        if (closed) {
          stream.reset(StreamResetCode.ABORTED, 'the local connection closed before the farm answered');
          return;
        }
        this.pipe(socket, stream, peer);
      },
      (error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        this.log.warn({ peer, reason }, 'local connection closed without a stream; the listener stays up');
        this.events.emit('connection_refused', { reason });
        socket.destroy();
      },
    );
  }

  private pipe(socket: net.Socket, stream: TunnelStream, peer: string): void {
    let ended = false;
    const finish = (why: string, error?: Error): void => {
      if (ended) return;
      ended = true;
      if (error) this.log.info({ peer, stream: stream.id, reason: why }, 'stream closed');
    };
    socket.on('error', (error) => {
      stream.reset(StreamResetCode.ABORTED, `local socket: ${error.message}`);
      finish('local socket error', error);
    });
    stream.on('error', (error: Error) => {
      const reason = error instanceof StreamResetError ? error.reason : error.message;
      finish(reason, error);
      socket.destroy();
    });
    stream.on('close', () => {
      finish('stream closed');
    });
    socket.pipe(stream).pipe(socket);
    socket.resume();
  }

  /** Opens a stream for each waiting caller while a session is up. */
  private flushWaiters(): void {
    const session = this.session;
    if (!session || !this.farmUp || this.route === undefined || this.ended) return;
    while (this.waiters.length > 0) {
      const waiter = this.waiters.shift() as Waiter;
      this.openOn(session, waiter);
    }
  }

  private openOn(session: TunnelSession, waiter: Waiter): void {
    const stream = session.openStream();
    const onConnect = (): void => {
      stream.off('error', onError);
      this.clock.clearTimeout(waiter.timer);
      waiter.resolve(stream);
    };
    const onError = (error: Error): void => {
      stream.off('connect', onConnect);
      // The session ended under a stream that was never answered (the farm restarted): it has carried
      // no byte, so it waits for the next session instead of failing its caller.
      if (error instanceof StreamResetError && error.resetCode === StreamResetCode.SESSION_ENDED && !this.ended) {
        this.waiters.unshift(waiter);
        this.flushWaiters();
        return;
      }
      this.clock.clearTimeout(waiter.timer);
      waiter.reject(error);
    };
    stream.once('connect', onConnect);
    stream.once('error', onError);
  }

  private dropWaiter(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private end(code: TunnelClientEndCode, reason: string): void {
    if (this.ended) return;
    this.ended = { code, reason };
    this.clock.clearTimeout(this.reopenTimer);
    for (const waiter of this.waiters.splice(0)) {
      this.clock.clearTimeout(waiter.timer);
      waiter.reject(new TunnelRefusedError(code, reason));
    }
    this.direct.close(reason);
    this.session?.close(code === 'stopped' ? 'closed' : code, reason);
    this.session = undefined;
    this.link.stop(reason);
    for (const socket of this.sockets) socket.destroy();
    this.server?.close();
    this.log.info({ code, reason }, 'tunnel client stopped');
    this.events.emit('closed', { code, reason });
  }
}

/** Stable for one tunnel of one program on one host: a restart with the same arguments replaces its session. */
export function deriveClientKey(agentId: string, service: string, where: string): string {
  return createHash('sha256').update(`${hostname()}\n${agentId}\n${service}\n${where}`).digest('hex').slice(0, 32);
}
