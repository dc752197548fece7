import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { CloseCode, type CloseCodeValue, closeCodeName } from '../protocol/close-codes.js';
import {
  AgentMessageSchema,
  describeIssues,
  type AgentMessage,
  type Hello,
  type HubLimits,
  type HubMessage,
} from '../protocol/messages.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { FarmlinkError } from '../lib/errors.js';
import type { Verifier } from './cached-token-verifier.js';
import type { ErrorKind, HubMetrics } from './metrics.js';
import { TokenBucket } from './rate-limiter.js';

/** What every session shares with its hub. One object, so a session costs only its own fields. */
export interface SessionContext {
  hubId: string;
  logger: Logger;
  metrics: HubMetrics;
  verifier: Verifier;
  limits: HubLimits;
  maxBufferedBytes: number;
  helloTimeoutMs: number;
  isDraining(): boolean;
  /**
   * hello's token verified (before registering): a session that had no valid token at the upgrade
   * moves from the unauthenticated budget to a --max-connections seat. Returns why it cannot, if so.
   */
  authenticated(session: AgentSession): string | undefined;
  /** Registers the session under its agent id, replacing (and closing) an older one. */
  register(session: AgentSession): void;
  /** Called once when the socket has closed. */
  closed(session: AgentSession, code: number, reason: string): void;
  onResult(session: AgentSession, message: Extract<AgentMessage, { type: 'result' }>): void;
  onEvent(session: AgentSession, message: Extract<AgentMessage, { type: 'event' }>): void;
  /** After each heartbeat is answered (keeps the shared registry's entry alive). */
  onHeartbeat(session: AgentSession): void;
}

export type SessionPhase = 'awaiting_hello' | 'verifying' | 'registered' | 'closing';

export interface AgentInfo {
  id: string;
  name: string;
  version: string;
  hostname: string | null;
  platform: string | null;
}

/** Grace for a close frame to get through before the socket is cut. */
const CLOSE_GRACE_MS = 1000;

/**
 * One agent connection on the hub: hello → token check → registered, then heartbeats, results
 * and events. Every frame is validated; anything wrong closes this connection alone with a
 * documented code (protocol/close-codes.ts) and counts it by kind.
 */
export class AgentSession {
  readonly sessionId = randomUUID();
  readonly connectedAt = Date.now();
  phase: SessionPhase = 'awaiting_hello';
  agent: AgentInfo | undefined;
  lastHeartbeatAt: number | null = null;
  cpuUsage: number | null = null;
  ramUsage: number | null = null;
  messagesIn = 0;
  messagesOut = 0;
  /** The hub's ping sweep sets this and the pong clears it; still set at the next sweep → dead. */
  awaitingPong = false;
  /** Why the agent said it was leaving, if it did. */
  disconnectReason: string | undefined;
  /** How the hub ended it, if the hub did (for the disconnect metric). */
  closedBy: 'replaced' | 'error' | 'drain_timeout' | undefined;
  /** Set while the session holds a seat in the hub's unauthenticated budget: the source it is counted under. */
  unauthenticatedSource: string | undefined;
  private readonly bucket: TokenBucket;
  private helloTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly address: string,
    private readonly headerToken: string | undefined,
    private readonly ctx: SessionContext,
  ) {
    this.bucket = new TokenBucket(ctx.limits.max_messages_per_second, ctx.limits.burst_messages, this.connectedAt);
    this.helloTimer = setTimeout(() => {
      if (this.phase === 'awaiting_hello' || this.phase === 'verifying') {
        this.fail('hello_timeout', CloseCode.HELLO_TIMEOUT, `no hello within ${ctx.helloTimeoutMs} ms`);
      }
    }, ctx.helloTimeoutMs);
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary));
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('error', (error: Error & { code?: string }) => {
      // ws reports frame-level violations as errors and closes the connection itself
      // (1009 for an oversize frame, 1002/1007 for malformed ones).
      this.closedBy = 'error';
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        this.countError('message_too_big', CloseCode.MESSAGE_TOO_BIG, error.message);
      else this.countError('protocol_error', 1002, error.message);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      clearTimeout(this.helloTimer);
      this.phase = 'closing';
      this.ctx.closed(this, code, reason.toString());
    });
  }

  /** Who this is, for code that runs only once the session is registered (its hello accepted). */
  registeredAgent(): AgentInfo {
    if (!this.agent)
      throw new FarmlinkError('INTERNAL', `${this.label} was treated as registered before its hello was accepted`);
    return this.agent;
  }

  get label(): string {
    return this.agent ? `${this.agent.name} (${this.agent.id})` : this.address;
  }

  /** Sends one message; closes the session as a slow consumer when its unsent data passes the bound. */
  send(message: HubMessage): void {
    this.sendRaw(JSON.stringify(message), message.type);
  }

  /** Sends pre-serialised text (broadcasts serialise once for everyone). */
  sendRaw(text: string | Buffer, type: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    // ws sends a Buffer as a binary frame unless told otherwise; the protocol is text frames.
    this.ws.send(text, { binary: false });
    this.messagesOut += 1;
    this.ctx.metrics.sent(type, typeof text === 'string' ? Buffer.byteLength(text) : text.length);
    if (this.ws.bufferedAmount > this.ctx.maxBufferedBytes) {
      this.fail('slow_consumer', CloseCode.SLOW_CONSUMER, `slow consumer: ${this.ws.bufferedAmount} bytes unsent`);
    }
  }

  /** Close with a code and reason, and cut the socket if the close frame cannot get through in time. */
  close(code: CloseCodeValue, reason: string): void {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.phase !== 'closing') this.phase = 'closing';
    clearTimeout(this.helloTimer);
    this.ws.close(code, truncateReason(reason));
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Ping sweep step: false when the previous ping went unanswered (the caller terminates). */
  ping(): boolean {
    if (this.awaitingPong) return false;
    this.awaitingPong = true;
    try {
      this.ws.ping();
    } catch {
      // closing already
    }
    return true;
  }

  fail(kind: ErrorKind, code: CloseCodeValue, reason: string): void {
    if (this.phase === 'closing') return;
    this.countError(kind, code, reason);
    this.closedBy = 'error';
    this.close(code, reason);
  }

  private countError(kind: ErrorKind, code: number, reason: string): void {
    this.ctx.metrics.error(kind);
    this.ctx.logger.warn(
      { session: this.sessionId, address: this.address, agent_id: this.agent?.id, close_code: code, kind },
      `Closing ${this.label}: ${code} ${closeCodeName(code)} (${reason})`,
    );
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.phase === 'closing') return;
    if (!this.bucket.take(Date.now())) {
      const { max_messages_per_second: rate, burst_messages: burst } = this.ctx.limits;
      this.fail('rate_limited', CloseCode.RATE_LIMITED, `rate limit: over ${rate} msg/s (burst ${burst})`);
      return;
    }
    if (isBinary) {
      this.fail('unsupported_data', CloseCode.UNSUPPORTED_DATA, 'binary frames are not accepted; send JSON text');
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      this.fail('invalid_json', CloseCode.INVALID_JSON, 'frame is not valid JSON');
      return;
    }
    const parsed = AgentMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.fail('invalid_message', CloseCode.INVALID_MESSAGE, `invalid message: ${describeIssues(parsed.error, 2)}`);
      return;
    }
    const message = parsed.data;
    this.messagesIn += 1;
    this.ctx.metrics.received(message.type, data.length);
    try {
      this.handle(message);
    } catch (error) {
      this.ctx.logger.error(
        { err: error, session: this.sessionId, type: message.type },
        `Failed handling ${message.type} from ${this.label}`,
      );
      this.fail('internal', CloseCode.INTERNAL_ERROR, 'internal error');
    }
  }

  private handle(message: AgentMessage): void {
    if (this.phase === 'awaiting_hello') {
      if (message.type !== 'hello') {
        this.fail('invalid_message', CloseCode.INVALID_MESSAGE, `expected hello first, got ${message.type}`);
        return;
      }
      this.phase = 'verifying';
      void this.register(message);
      return;
    }
    if (this.phase === 'verifying') {
      this.fail('invalid_message', CloseCode.INVALID_MESSAGE, `${message.type} before registered`);
      return;
    }
    switch (message.type) {
      case 'hello':
        this.fail('invalid_message', CloseCode.INVALID_MESSAGE, 'hello after registration');
        return;
      case 'heartbeat': {
        const now = Date.now();
        this.lastHeartbeatAt = now;
        this.cpuUsage = message.cpu_usage;
        this.ramUsage = message.ram_usage;
        this.send(
          message.seq === undefined
            ? { type: 'heartbeat_ack', timestamp: message.timestamp, server_time: now }
            : { type: 'heartbeat_ack', seq: message.seq, timestamp: message.timestamp, server_time: now },
        );
        this.ctx.onHeartbeat(this);
        return;
      }
      case 'disconnect':
        this.disconnectReason = message.reason;
        return;
      case 'result':
        this.ctx.onResult(this, message);
        return;
      case 'event':
        this.ctx.onEvent(this, message);
        return;
    }
  }

  private async register(hello: Hello): Promise<void> {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.fail(
        'unsupported_protocol',
        CloseCode.UNSUPPORTED_PROTOCOL,
        `protocol ${hello.protocol} unsupported; this hub speaks ${PROTOCOL_VERSION}`,
      );
      return;
    }
    const token = this.headerToken ?? hello.token;
    if (!token) {
      this.fail('unauthorized', CloseCode.UNAUTHORIZED, 'no token: send Authorization: Bearer <jwt> or hello.token');
      return;
    }
    let claims;
    try {
      claims = await this.ctx.verifier.verify(token);
    } catch (error) {
      const message = error instanceof FarmlinkError ? error.message : 'token rejected';
      this.fail('unauthorized', CloseCode.UNAUTHORIZED, message);
      return;
    }
    // The socket may have gone (or the hub started draining) while the token was checked.
    if (this.phase !== 'verifying') return;
    if (this.ctx.isDraining()) {
      this.ctx.metrics.error('refused_draining');
      this.close(CloseCode.GOING_AWAY, 'hub is draining');
      return;
    }
    if (claims.role !== 'agent') {
      this.fail('forbidden', CloseCode.FORBIDDEN, `an ${claims.role} token cannot register an agent`);
      return;
    }
    if (claims.subject !== hello.agent_id) {
      this.fail(
        'forbidden',
        CloseCode.FORBIDDEN,
        `token is for agent "${claims.subject.slice(0, 40)}", hello says "${hello.agent_id.slice(0, 40)}"`,
      );
      return;
    }
    const refusal = this.ctx.authenticated(this);
    if (refusal) {
      this.fail('at_capacity', CloseCode.TRY_AGAIN_LATER, refusal);
      return;
    }
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    this.agent = {
      id: hello.agent_id,
      name: hello.name,
      version: hello.version,
      hostname: hello.hostname ?? null,
      platform: hello.platform ?? null,
    };
    this.phase = 'registered';
    this.ctx.register(this);
    this.send({
      type: 'registered',
      agent_id: hello.agent_id,
      session_id: this.sessionId,
      hub_id: this.ctx.hubId,
      server_time: Date.now(),
      limits: this.ctx.limits,
    });
  }
}

/** Close reasons are limited to 123 bytes by RFC 6455. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = reason.slice(0, 120);
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return `${out}…`;
}
