import type { WebSocket } from 'ws';
import type { z } from 'zod';
import { at, every, type Clock, type TimerHandle } from '../../lib/clock.js';
import { CloseCode } from '../../protocol/close-codes.js';
import { describeIssues } from '../../protocol/messages.js';
import {
  ClientToBrokerSchema,
  FarmToBrokerSchema,
  type BrokerToClient,
  type BrokerToFarm,
  type ClientToBroker,
  type FarmToBroker,
} from '../../protocol/tunnel.js';
import type { TokenClaims } from '../auth.js';
import { truncateReason } from '../agent-session.js';

export type TunnelRole = 'farm' | 'client';

export interface ConnectionTimings {
  helloTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxBufferedBytes: number;
}

/** What a tunnel socket reports to the broker. */
export interface ConnectionHandler {
  /** A control message that passed its role's schema (`raw` is the text as it came, for `signal`). */
  control(conn: TunnelConnection, message: FarmToBroker | ClientToBroker, raw: Buffer): void;
  /** A binary frame after hello. */
  binary(conn: TunnelConnection, frame: Buffer): void;
  /** The socket closed (whoever closed it); called once. */
  closed(conn: TunnelConnection, code: number, reason: string): void;
  /** The broker closed it for a fault of the peer's (counted by kind). */
  fault(conn: TunnelConnection, kind: ConnectionFault, detail: string): void;
}

export type ConnectionFault =
  | 'invalid_json'
  | 'invalid_message'
  | 'hello_timeout'
  | 'ping_timeout'
  | 'slow_consumer'
  | 'binary_before_hello'
  | 'token_expired';

/**
 * One tunnel socket, farm end or client end (the token at the upgrade decided which): reads and
 * checks its control messages with the role's schema, hands binary frames on untouched, pings it
 * and drops it when it stops answering, and closes it with a code and a sentence on a fault.
 */
export class TunnelConnection {
  /** Set once the peer's hello was accepted. */
  helloDone = false;
  /** farm_hello's or client_hello's boot id. */
  bootId: string | undefined;
  closed = false;
  readonly connectedAt: number;
  private lastHeardMono: number;
  private helloTimer: TimerHandle | undefined;
  private expiry: { stop(): void } | undefined;
  private readonly pinger: { stop(): void };
  private readonly schema: z.ZodType<FarmToBroker | ClientToBroker>;

  constructor(
    readonly ws: WebSocket,
    readonly role: TunnelRole,
    readonly claims: TokenClaims,
    /** "host:port" as seen at the upgrade. */
    readonly address: string,
    private readonly clock: Clock,
    private readonly timings: ConnectionTimings,
    private readonly handler: ConnectionHandler,
  ) {
    this.connectedAt = clock.now();
    this.lastHeardMono = clock.monotonic();
    this.schema = role === 'farm' ? FarmToBrokerSchema : ClientToBrokerSchema;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('pong', () => this.heard());
    ws.on('error', () => undefined);
    ws.once('close', (code: number, reason: Buffer) => {
      this.closed = true;
      this.clock.clearTimeout(this.helloTimer);
      this.expiry?.stop();
      this.pinger.stop();
      this.handler.closed(this, code, reason.toString('utf8'));
    });
    this.helloTimer = clock.setTimeout(() => {
      if (this.helloDone || this.closed) return;
      this.fail('hello_timeout', CloseCode.HELLO_TIMEOUT, `no ${role}_hello within ${timings.helloTimeoutMs} ms`);
    }, timings.helloTimeoutMs);
    if (claims.expiresAt !== null) this.scheduleExpiry(claims.expiresAt);
    // Anything heard from the peer proves it alive: under a full relay its pong may queue behind data.
    this.pinger = every(clock, timings.pingIntervalMs, () => this.pingOrDrop(), { unref: true });
  }

  /** "farm pc-017" / "client alice", for logs. */
  get label(): string {
    return `${this.role} ${this.claims.subject}`;
  }

  /** The token's subject: the agent id of a farm end, the client's name of a client end. */
  get name(): string {
    return this.claims.subject;
  }

  helloAccepted(bootId: string): void {
    this.helloDone = true;
    this.bootId = bootId;
    this.clock.clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
  }

  send(message: BrokerToFarm | BrokerToClient): void {
    this.sendRaw(JSON.stringify(message), false);
  }

  /** Writes a frame as it is (a relayed binary frame, a forwarded signal); false if the socket is gone or backed up. */
  sendRaw(data: Buffer | string, binary: boolean): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.send(data, { binary });
    if (this.ws.bufferedAmount > this.timings.maxBufferedBytes) {
      this.fail(
        'slow_consumer',
        CloseCode.SLOW_CONSUMER,
        `not reading: over ${this.timings.maxBufferedBytes} bytes waiting to be sent`,
      );
      return false;
    }
    return true;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.close(code, truncateReason(reason));
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** Closes for a fault of the peer's, telling the broker first (metrics, a log line). */
  fail(kind: ConnectionFault, code: number, reason: string): void {
    if (this.closed) return;
    this.handler.fault(this, kind, reason);
    if (kind === 'ping_timeout') this.ws.terminate();
    else this.close(code, reason);
  }

  /**
   * A token that expires while its socket is open ends the socket then (4440 TOKEN_EXPIRED), or a
   * client whose access was meant to end would keep it for as long as it stays connected. Its
   * sessions wait out the resume window like any side gone away; the reconnect with the same token
   * is refused at the upgrade (401), which `farmlink connect` reports and exits on.
   */
  private scheduleExpiry(expiresAt: number): void {
    this.expiry = at(
      this.clock,
      expiresAt,
      () => {
        const when = new Date(expiresAt).toISOString();
        this.fail('token_expired', CloseCode.TOKEN_EXPIRED, `token expired at ${when}; connect again with a new token`);
      },
      { unref: true },
    );
  }

  private heard(): void {
    this.lastHeardMono = this.clock.monotonic();
  }

  private pingOrDrop(): void {
    if (this.closed) return;
    const silentMs = this.clock.monotonic() - this.lastHeardMono;
    if (silentMs >= this.timings.pingTimeoutMs) {
      this.fail('ping_timeout', CloseCode.GOING_AWAY, `no pong for ${Math.round(silentMs)} ms`);
      return;
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.heard();
    if (this.closed) return;
    if (isBinary) {
      if (!this.helloDone) {
        this.fail('binary_before_hello', CloseCode.INVALID_MESSAGE, `binary frame before ${this.role}_hello`);
        return;
      }
      this.handler.binary(this, data);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      this.fail('invalid_json', CloseCode.INVALID_JSON, 'a text frame that is not JSON');
      return;
    }
    const parsed = this.schema.safeParse(json);
    if (!parsed.success) {
      this.fail('invalid_message', CloseCode.INVALID_MESSAGE, describeIssues(parsed.error, 1));
      return;
    }
    this.handler.control(this, parsed.data, data);
  }
}
