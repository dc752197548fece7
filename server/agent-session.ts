import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { batchFrame } from '../protocol/batch-frame.js';
import { CloseCode, type CloseCodeValue, closeCodeName } from '../protocol/close-codes.js';
import {
  AgentBatchSchema,
  AgentMessageSchema,
  HelloSchema,
  describeIssues,
  type AgentMessage,
  type BatchSettings,
  type BatchedAgentMessage,
  type Heartbeat,
  type Hello,
  type HubLimits,
  type HubMessage,
} from '../protocol/messages.js';
import { Capability, PROTOCOL_VERSION } from '../protocol/version.js';
import { BreakerOpenError, type Breaker } from '../lib/circuit-breaker.js';
import { at, type Clock } from '../lib/clock.js';
import { FarmlinkError, errorInfo } from '../lib/errors.js';
import type { TokenClaims } from './auth.js';
import type { Verifier } from './cached-token-verifier.js';
import { EnhancedIntake, type SeqMessage } from './enhanced-intake.js';
import type { EventSink } from './events/event-sink.js';
import type { ErrorKind, HubMetrics, SessionMode } from './metrics.js';
import { OutgoingBatcher } from './outgoing-batch.js';
import { TokenBucket } from './rate-limiter.js';

/** What every session shares with its hub. One object, so a session costs only its own fields. */
export interface SessionContext {
  hubId: string;
  logger: Logger;
  metrics: HubMetrics;
  verifier: Verifier;
  clock: Clock;
  limits: HubLimits;
  /** The hub grants enhanced mode (`--no-enhanced` turns it off). */
  enhanced: boolean;
  /** Where enhanced sessions append events. */
  events: EventSink;
  /** How enhanced sessions batch right now (the window widens under load). */
  batchSettings(): BatchSettings;
  /** Under load: the heartbeat interval enhanced agents are asked for in `registered` (undefined: their own). */
  heartbeatIntervalMs(): number | undefined;
  /** The circuit breaker around the handler of this message type (shared by every session). */
  handlerBreaker(type: string): Breaker;
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
  /** A legacy session's event (enhanced sessions append through their intake); may finish later. */
  onEvent(session: AgentSession, message: Extract<AgentMessage, { type: 'event' }>): unknown;
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

/** Where a socket's listeners find their session. */
const SESSION = Symbol('farmlink.session');
type SessionSocket = WebSocket & { [SESSION]: AgentSession };

/** Grace for a close frame to get through before the socket is cut. */
const CLOSE_GRACE_MS = 1000;
/** Hub → agent messages that do not wait for the batch window. */
const URGENT = new Set(['registered', 'draining', 'token_expired', 'heartbeat_ack', 'nack']);

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
  /** Events received from this agent, in either mode. */
  eventsIn = 0;
  /** Set at registration: enhanced when batch.v1 was granted. */
  mode: SessionMode | undefined;
  /** The hub's ping sweep sets this and the pong clears it; still set at the next sweep → dead. */
  awaitingPong = false;
  /** Why the agent said it was leaving, if it did. */
  disconnectReason: string | undefined;
  /** How the hub ended it, if the hub did (for the disconnect metric). */
  closedBy: 'replaced' | 'error' | 'drain_timeout' | 'token_expired' | undefined;
  /** Set while the session holds a seat in the hub's unauthenticated budget: the source it is counted under. */
  unauthenticatedSource: string | undefined;
  private readonly bucket: TokenBucket;
  private helloTimer: NodeJS.Timeout | undefined;
  private expiry: { stop(): void } | undefined;
  /** Enhanced, once `registered` is out: every frame to the agent is a batch. */
  private batching = false;
  /** Enhanced: where the sink stood at registration, until the intake exists. */
  private resumeSeq = 0;
  // Both made at the first message that needs them, not at registration: a held connection that
  // only heartbeats never does, and costs neither their memory nor their making.
  private intake: EnhancedIntake | undefined;
  private batcher: OutgoingBatcher | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly address: string,
    private headerToken: string | undefined,
    private readonly ctx: SessionContext,
    /** Connected on AGENT_LEGACY_WS_PATH: enhanced is never granted here. */
    readonly legacyOnly = false,
    /** What headerToken verified as at the upgrade, when it did: hello does not verify it again. */
    private headerClaims?: TokenClaims,
  ) {
    this.bucket = new TokenBucket(ctx.limits.max_messages_per_second, ctx.limits.burst_messages, this.connectedAt);
    this.helloTimer = setTimeout(() => {
      if (this.phase === 'awaiting_hello' || this.phase === 'verifying') {
        this.fail('hello_timeout', CloseCode.HELLO_TIMEOUT, `no hello within ${ctx.helloTimeoutMs} ms`);
      }
    }, ctx.helloTimeoutMs);
    // The same four listeners for every socket, finding their session on it: four closures per
    // connection were a tenth of what a held connection cost the hub's heap.
    (ws as SessionSocket)[SESSION] = this;
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    ws.on('error', onSocketError);
    ws.on('close', onSocketClose);
  }

  /** The socket's listeners (below the class) land here. */
  onSocketError(error: Error & { code?: string }): void {
    // ws reports frame-level violations as errors and closes the connection itself
    // (1009 for an oversize frame, 1002/1007 for malformed ones).
    this.closedBy = 'error';
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
      this.countError('message_too_big', CloseCode.MESSAGE_TOO_BIG, error.message);
    else this.countError('protocol_error', 1002, error.message);
  }

  onSocketClose(code: number, reason: Buffer): void {
    clearTimeout(this.helloTimer);
    this.expiry?.stop();
    this.batcher?.close();
    this.intake?.stop();
    if (this.mode) this.ctx.metrics.sessionClosed(this.mode, this.closedBy === 'error');
    this.phase = 'closing';
    this.ctx.closed(this, code, reason.toString());
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

  /** The highest seq acknowledged (enhanced), or null. */
  get ackedSeq(): number | null {
    if (this.intake) return this.intake.ackedSeq;
    return this.batching ? this.resumeSeq : null;
  }

  /**
   * Sends one message: on its own frame in legacy mode, inside a batch frame in enhanced mode.
   * Closes the session as a slow consumer when its unsent data passes the bound.
   */
  send(message: HubMessage, onSent?: () => void): void {
    this.sendRaw(JSON.stringify(message), message.type, onSent);
  }

  /** Sends pre-serialised text (broadcasts serialise once for everyone). */
  sendRaw(text: string | Buffer, type: string, onSent?: () => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.batching) {
      if (URGENT.has(type) && !this.batcher?.size) {
        // What the batcher would do with an urgent message and nothing pending, without one.
        this.writeBatch(batchFrame([typeof text === 'string' ? text : text.toString('utf8')]), 1, [type]);
        onSent?.();
        return;
      }
      this.batcher ??= new OutgoingBatcher(
        this.ctx.batchSettings(),
        (frame, count, types) => this.writeBatch(frame, count, types),
        this.ctx.clock,
      );
      this.batcher.push({
        text: typeof text === 'string' ? text : text.toString('utf8'),
        type,
        // A cumulative ack replaces the one still waiting: only the latest matters.
        ...(type === 'ack' ? { key: 'ack' } : {}),
        ...(URGENT.has(type) ? { urgent: true } : {}),
        ...(onSent ? { onSent } : {}),
      });
      return;
    }
    // ws sends a Buffer as a binary frame unless told otherwise; the protocol is text frames.
    this.ws.send(text, { binary: false });
    this.messagesOut += 1;
    const bytes = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
    this.ctx.metrics.sent(type, bytes);
    if (this.mode) this.ctx.metrics.sentFrame(this.mode, bytes, 1);
    onSent?.();
    this.checkBuffered();
  }

  /** The batcher's writer: one `batch` frame of `count` messages. */
  private writeBatch(frame: string, count: number, types: readonly string[]): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(frame, { binary: false });
    this.messagesOut += count;
    const bytes = Buffer.byteLength(frame);
    for (const type of types) this.ctx.metrics.sent(type, 0);
    this.ctx.metrics.bytesSent.inc(bytes);
    this.ctx.metrics.sentFrame('enhanced', bytes, count);
    this.checkBuffered();
  }

  private checkBuffered(): void {
    if (this.ws.bufferedAmount > this.ctx.maxBufferedBytes) {
      this.fail('slow_consumer', CloseCode.SLOW_CONSUMER, `slow consumer: ${this.ws.bufferedAmount} bytes unsent`);
    }
  }

  /** The hub's load changed: its own batches to this agent take the new window (enhanced; nothing in legacy). */
  retune(settings: BatchSettings): void {
    this.batcher?.retune(settings);
  }

  /** Resolves once every seq'd message received so far has been handled (enhanced; at once in legacy). */
  async idle(): Promise<void> {
    await this.intake?.idle();
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

  /** One frame from the agent (the socket's `message` listener). */
  onFrame(data: Buffer, isBinary: boolean): void {
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
    if (this.mode === 'enhanced') {
      this.onBatch(json, data.length);
      return;
    }
    const parsed = this.parseMessage(json);
    if (!parsed.success) {
      this.fail('invalid_message', CloseCode.INVALID_MESSAGE, `invalid message: ${describeIssues(parsed.error, 2)}`);
      return;
    }
    const message = parsed.data;
    const receivedAt = this.ctx.clock.monotonic();
    this.messagesIn += 1;
    this.ctx.metrics.received(message.type, data.length);
    if (this.mode) this.ctx.metrics.receivedFrame(this.mode, data.length, 1);
    // hello is the registration itself, not a handler that can keep failing.
    const breaker = message.type === 'hello' ? undefined : this.ctx.handlerBreaker(message.type);
    if (breaker && !breaker.allow()) {
      this.breakerOpen(breaker, message.type);
      return;
    }
    try {
      const done = this.handle(message);
      breaker?.success();
      if (this.mode) this.handledAfter(done, receivedAt);
    } catch (error) {
      breaker?.failure(errorInfo(error).message);
      this.handlerFailed(error, message.type);
    }
  }

  /**
   * The first frame is parsed as hello directly: through the union it costs a registration about
   * twice as much. A hello that does not parse is parsed again through the union, for the same
   * description of what is wrong as any other invalid message.
   */
  private parseMessage(json: unknown) {
    if (this.phase === 'awaiting_hello' && (json as { type?: unknown } | null)?.type === 'hello') {
      const hello = HelloSchema.safeParse(json);
      if (hello.success) return hello;
    }
    return AgentMessageSchema.safeParse(json);
  }

  /** A handler that keeps failing: its sender learns so at once instead of each message failing on its own. */
  private breakerOpen(breaker: Breaker, type: string): void {
    const until = new Date(this.ctx.clock.now() + breaker.msUntilRetry()).toISOString();
    this.fail(
      'breaker_open',
      CloseCode.INTERNAL_ERROR,
      `the hub's ${type} handler is failing (circuit breaker open until ${until})`,
    );
  }

  /** An enhanced result through its handler's breaker; a throw makes the intake nack it. */
  private dispatchResult(result: Extract<AgentMessage, { type: 'result' }>): void {
    const breaker = this.ctx.handlerBreaker('result');
    if (!breaker.allow()) {
      const status = breaker.status();
      throw new BreakerOpenError(
        breaker.name,
        this.ctx.clock.now() + breaker.msUntilRetry(),
        status.reason,
        status.state === 'half-open',
      );
    }
    try {
      this.ctx.onResult(this, result);
      breaker.success();
    } catch (error) {
      breaker.failure(errorInfo(error).message);
      this.ctx.logger.error(
        { err: error, session: this.sessionId, type: 'result', seq: result.seq },
        `Failed handling result ${result.id} from ${this.label}; nacked, the agent sends it again`,
      );
      throw error;
    }
  }

  /** Frame receipt → its messages handled, for the per-mode latency (legacy: after the handler's own work). */
  private handledAfter(done: unknown, receivedAt: number): void {
    const mode = this.mode;
    if (!mode) return;
    const observe = () => this.ctx.metrics.handled(mode, (this.ctx.clock.monotonic() - receivedAt) / 1000);
    if (done instanceof Promise) done.then(observe, () => undefined);
    else observe();
  }

  private handlerFailed(error: unknown, type: string): void {
    this.ctx.logger.error(
      { err: error, session: this.sessionId, type },
      `Failed handling ${type} from ${this.label}; closing the connection with 1011`,
    );
    this.fail('internal', CloseCode.INTERNAL_ERROR, 'internal error');
  }

  /**
   * An enhanced session's frame: a `batch` of messages, handled in order. Heartbeats are answered
   * at once; events and results go through the intake, which acknowledges them once handled.
   */
  private onBatch(json: unknown, bytes: number): void {
    const parsed = AgentBatchSchema.safeParse(json);
    if (!parsed.success) {
      const type = (json as { type?: unknown } | null)?.type;
      const what =
        type === 'batch'
          ? describeIssues(parsed.error, 2)
          : type === undefined
            ? 'got no type'
            : `got ${JSON.stringify(type)}`;
      this.fail('invalid_message', CloseCode.INVALID_MESSAGE, `enhanced mode: expected a batch frame; ${what}`);
      return;
    }
    const { messages } = parsed.data;
    const problem = seqProblem(messages);
    if (problem) {
      this.fail('invalid_message', CloseCode.INVALID_MESSAGE, `enhanced mode: ${problem}`);
      return;
    }
    const receivedAt = this.ctx.clock.monotonic();
    this.messagesIn += messages.length;
    this.ctx.metrics.bytesReceived.inc(bytes);
    this.ctx.metrics.receivedFrame('enhanced', bytes, messages.length);
    const seqd: SeqMessage[] = [];
    for (const message of messages) {
      this.ctx.metrics.received(message.type, 0);
      if (message.type === 'event') {
        this.eventsIn += 1;
        this.ctx.metrics.eventReceived('enhanced');
      }
      if ((message.type === 'event' || message.type === 'result') && message.seq !== undefined) {
        // Handled by the intake: events by the sink append, behind the sink's own breaker.
        seqd.push(message as SeqMessage);
        continue;
      }
      // Not numbered (an agent answering a command without its outbox): handled as in legacy
      // mode, at once and at most once, and never acknowledged.
      const breaker = this.ctx.handlerBreaker(message.type);
      if (!breaker.allow()) {
        this.breakerOpen(breaker, message.type);
        return;
      }
      try {
        if (message.type === 'heartbeat') this.onHeartbeat(message);
        else if (message.type === 'disconnect') this.disconnectReason = message.reason;
        else if (message.type === 'result') this.ctx.onResult(this, message);
        else void this.ctx.onEvent(this, message);
        breaker.success();
      } catch (error) {
        breaker.failure(errorInfo(error).message);
        this.handlerFailed(error, message.type);
        return;
      }
    }
    if (seqd.length > 0) (this.intake ??= this.newIntake(this.ctx.events, this.resumeSeq)).accept(seqd, receivedAt);
  }

  private onHeartbeat(message: Heartbeat): void {
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
  }

  private handle(message: AgentMessage): unknown {
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
      case 'heartbeat':
        this.onHeartbeat(message);
        return;
      case 'disconnect':
        this.disconnectReason = message.reason;
        return;
      case 'result':
        this.ctx.onResult(this, message);
        return;
      case 'event':
        this.eventsIn += 1;
        this.ctx.metrics.eventReceived('legacy');
        return this.ctx.onEvent(this, message);
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
      claims = await this.claimsOf(token);
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
      this.fail(
        'forbidden',
        CloseCode.FORBIDDEN,
        `${claims.role === 'admin' ? 'an admin' : 'a client'} token cannot register an agent`,
      );
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
    const sink = this.grantsEnhanced(hello) ? this.ctx.events : undefined;
    let ackedSeq = 0;
    if (sink) {
      try {
        ackedSeq = await sink.lastSeq(hello.agent_id);
      } catch (error) {
        // Without where the agent stands in the sink, enhanced cannot resume it, and granting
        // legacy instead would quietly give up exactly-once: the agent keeps its outbox and
        // tries again (here or on a fallback hub).
        const why = error instanceof Error ? error.message : String(error);
        this.fail('sink_unavailable', CloseCode.TRY_AGAIN_LATER, `event sink unavailable, try again later: ${why}`);
        return;
      }
      // The socket may have gone while the sink was asked.
      if ((this.phase as SessionPhase) !== 'verifying') return;
    }
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    // Not needed once registered: a held connection keeps neither.
    this.headerToken = undefined;
    this.headerClaims = undefined;
    this.agent = {
      id: hello.agent_id,
      name: hello.name,
      version: hello.version,
      hostname: hello.hostname ?? null,
      platform: hello.platform ?? null,
    };
    this.phase = 'registered';
    this.mode = sink ? 'enhanced' : 'legacy';
    this.ctx.metrics.sessionOpened(this.mode);
    this.ctx.register(this);
    const batch = sink ? this.ctx.batchSettings() : undefined;
    const heartbeat = sink ? this.ctx.heartbeatIntervalMs() : undefined;
    this.send({
      type: 'registered',
      agent_id: hello.agent_id,
      session_id: this.sessionId,
      hub_id: this.ctx.hubId,
      server_time: Date.now(),
      limits: this.ctx.limits,
      ...(sink ? { capabilities: [Capability.BATCH_V1], acked_seq: ackedSeq, batch } : {}),
      // Enhanced only: a legacy agent is never sent a tune to bring its pace back.
      ...(heartbeat !== undefined ? { heartbeat_interval_ms: heartbeat } : {}),
    });
    // `registered` itself goes on a frame of its own, as in legacy: the agent learns from it
    // that what follows is batched.
    if (sink) {
      this.batching = true;
      this.resumeSeq = ackedSeq;
    }
    if (claims.expiresAt !== null) this.scheduleExpiry(claims.expiresAt);
  }

  /**
   * The token's claims. The upgrade verified the header's token a moment ago; it is checked again
   * only if it has expired since (and is then refused as expired, as any check would).
   */
  private claimsOf(token: string): TokenClaims | Promise<TokenClaims> {
    const known = this.headerClaims;
    if (known && token === this.headerToken && (known.expiresAt === null || known.expiresAt > Date.now())) return known;
    return this.ctx.verifier.verify(token);
  }

  private grantsEnhanced(hello: Hello): boolean {
    return this.ctx.enhanced && !this.legacyOnly && (hello.capabilities ?? []).includes(Capability.BATCH_V1);
  }

  private newIntake(sink: EventSink, ackedSeq: number): EnhancedIntake {
    const agentId = this.registeredAgent().id;
    const { clock, metrics, logger } = this.ctx;
    return new EnhancedIntake(agentId, ackedSeq, {
      clock,
      append: (events) => sink.append(agentId, events),
      dispatchResult: (result) => this.dispatchResult(result),
      ack: (seq, receivedAt) => {
        metrics.handled('enhanced', (clock.monotonic() - receivedAt) / 1000);
        this.send({ type: 'ack', seq }, () => metrics.ackLag((clock.monotonic() - receivedAt) / 1000));
      },
      nack: (seq, error, retryAfterMs) => {
        metrics.nack();
        logger.warn(
          { agent_id: agentId, seq, err_code: error.code, retry_after_ms: retryAfterMs },
          `Could not keep the events of ${this.label} from seq ${seq} (${error.message}); told it to send them ` +
            `again in ${retryAfterMs} ms, the connection stays`,
        );
        this.send({ type: 'nack', seq, error, retry_after_ms: retryAfterMs });
      },
      duplicates: (count) => metrics.duplicates(count),
      ignored: (count, awaiting) => {
        logger.debug(
          { agent_id: agentId, count, awaiting },
          `Ignored ${count} message(s) of ${this.label} sent before it heard the nack at seq ${awaiting}`,
        );
      },
    });
  }

  /**
   * A token that expires while the agent is connected: the agent is told, then closed with 4440,
   * so it fetches a new token instead of being dropped by a later check it cannot see coming.
   */
  private scheduleExpiry(expiresAt: number): void {
    this.expiry = at(this.ctx.clock, expiresAt, () => this.expire(expiresAt), { unref: true });
  }

  private expire(expiresAt: number): void {
    if (this.phase !== 'registered') return;
    const at = new Date(expiresAt).toISOString();
    const reason = `token expired at ${at}; connect again with a new token`;
    this.send({ type: 'token_expired', expired_at: expiresAt, reason });
    this.ctx.metrics.error('token_expired');
    this.ctx.logger.info(
      { agent_id: this.agent?.id, expired_at: at, close_code: CloseCode.TOKEN_EXPIRED },
      `The token of ${this.label} expired at ${at}: told it so and closing with 4440 TOKEN_EXPIRED; ` +
        'it must connect again with a new token',
    );
    this.closedBy = 'token_expired';
    this.close(CloseCode.TOKEN_EXPIRED, reason);
  }
}

// ws calls its listeners with the socket as `this`.
function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  (this as SessionSocket)[SESSION].onFrame(data, isBinary);
}

function onSocketPong(this: WebSocket): void {
  (this as SessionSocket)[SESSION].awaitingPong = false;
}

function onSocketError(this: WebSocket, error: Error & { code?: string }): void {
  (this as SessionSocket)[SESSION].onSocketError(error);
}

function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as SessionSocket)[SESSION].onSocketClose(code, reason);
}

/** Why a batch's numbered messages cannot be handled (seqs must increase within the frame), or undefined. */
function seqProblem(messages: readonly BatchedAgentMessage[]): string | undefined {
  let previous = 0;
  for (const [index, message] of messages.entries()) {
    if (message.type !== 'event' && message.type !== 'result') continue;
    if (message.seq === undefined) continue;
    if (message.seq <= previous)
      return `messages.${index}: seq ${message.seq} after ${previous}; seqs must increase within a frame`;
    previous = message.seq;
  }
  return undefined;
}

/** Close reasons are limited to 123 bytes by RFC 6455. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = reason.slice(0, 120);
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return `${out}…`;
}
