import type { Clock } from '../../lib/clock.js';
import { TypedEmitter } from '../../lib/events.js';
import type { AgentMessage, BatchSettings, HubLimits, HubMessage, Registered } from '../../protocol/messages.js';
import { encodeWithin, jsonCodec } from './hub-codec.js';
import type { ConnectionTiming } from './connection.js';
import type { HubDial, HubLink, HubLinkEvents, HubLinkFactory } from './hub-link.js';

/** The agent's default timings, without jitter: what the state-machine tests run on, in test time. */
export const TEST_TIMING: ConnectionTiming = {
  connectTimeoutMs: 30_000,
  registrationTimeoutMs: 15_000,
  heartbeatIntervalMs: 30_000,
  deadTimeoutMs: 90_000,
  pingIntervalMs: 20_000,
  pingTimeoutMs: 20_000,
  stableAfterMs: 60_000,
  initialReconnectDelayMs: 1000,
  maxReconnectDelayMs: 60_000,
  reconnectJitter: 0,
  closeTimeoutMs: 2000,
};

export const FAKE_LIMITS: HubLimits = {
  max_payload_bytes: 64 * 1024,
  max_messages_per_second: 50,
  burst_messages: 100,
};

/** How the agent ended a fake link. */
export type FakeEnd = { how: 'terminated' } | { how: 'closed'; code: number; reason: string };

/**
 * A link the test drives, for the connection's state machine: nothing goes on the wire. The test
 * accepts or refuses the dial, delivers hub messages, closes with a code, and decides whether pings
 * and heartbeats are answered. Events are emitted synchronously, so one call is one transition.
 */
export class FakeHubLink implements HubLink {
  readonly events = new TypedEmitter<HubLinkEvents>((error) => {
    // A state machine that throws is a failing test, not a log line.
    throw error;
  });
  limits: HubLimits | undefined;
  /** Every message the agent sent, in order. */
  readonly sent: AgentMessage[] = [];
  /** Answer each ping with a pong at once. */
  answerPings = true;
  /** Answer each heartbeat with its ack at once. */
  answerHeartbeats = true;
  /** Answer a graceful close with the hub's close frame at once; otherwise the agent waits out its timeout. */
  answerClose = true;
  pings = 0;
  ended: FakeEnd | undefined;
  /** Set by `useBatches`: the fake sends each message at once, as a frame of one, but records the settings. */
  batching: BatchSettings | undefined;
  /** Messages sent with `urgent`. */
  readonly urgent: AgentMessage[] = [];
  readonly pending = 0;
  private open = false;
  private gone = false;

  constructor(
    readonly dial: HubDial,
    private readonly clock: Clock,
  ) {}

  get url(): string {
    return this.dial.url;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** The hub accepted the upgrade. */
  accept(): this {
    this.open = true;
    this.events.emit('open', undefined);
    return this;
  }

  /** The dial fails at the socket (ECONNREFUSED by default), then the link closes without a close frame. */
  refuse(errno = 'ECONNREFUSED'): void {
    this.events.emit('error', Object.assign(new Error(`connect ${errno} ${this.dial.url}`), { code: errno }));
    this.hubCloses(1006, '');
  }

  /** The server answers the upgrade with an HTTP status. */
  rejectUpgrade(status: number): void {
    this.gone = true;
    this.events.emit('rejected', { status });
  }

  /** The hub sends a message. */
  deliver(message: HubMessage): void {
    this.events.emit('message', { message, bytes: Buffer.byteLength(JSON.stringify(message)) });
  }

  /** The hub sends a frame, decoded as the JSON codec would. */
  deliverFrame(data: string | Buffer, isBinary = false): void {
    const buffer = typeof data === 'string' ? Buffer.from(data) : data;
    const decoded = jsonCodec.decode(buffer, isBinary);
    if (!decoded.ok) {
      this.events.emit('undecodable', { bytes: buffer.length, decoded });
      return;
    }
    decoded.messages.forEach((message, i) => {
      this.events.emit('message', { message, bytes: i === 0 ? buffer.length : 0 });
    });
  }

  /** The hub answers hello. */
  register(overrides: Partial<Registered> = {}): void {
    this.deliver({
      type: 'registered',
      agent_id: 'pc-017',
      session_id: `session-${this.dial.url}`,
      hub_id: 'hub-1',
      server_time: this.clock.now(),
      limits: FAKE_LIMITS,
      ...overrides,
    });
  }

  /** The hub (or the network, with 1006) ends the link. */
  hubCloses(code: number, reason = ''): void {
    if (this.gone) return;
    this.open = false;
    this.gone = true;
    this.events.emit('close', { code, reason });
  }

  /** The messages of one type the agent sent. */
  sentOf<T extends AgentMessage['type']>(type: T): Array<Extract<AgentMessage, { type: T }>> {
    return this.sent.filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  }

  useBatches(settings: BatchSettings): void {
    this.batching = settings;
  }

  frameWaitMs(): number {
    return 0;
  }

  send(message: AgentMessage, options: { urgent?: boolean } = {}): void {
    if (!this.open) throw new Error(`FakeHubLink: ${message.type} sent on a link that is not open`);
    const { bytes } = encodeWithin(jsonCodec, message, this.limits);
    this.sent.push(message);
    if (options.urgent === true) this.urgent.push(message);
    this.events.emit('frame', { direction: 'out', messages: 1, bytes });
    if (message.type === 'heartbeat' && this.answerHeartbeats) {
      const { seq, timestamp } = message;
      this.deliver({ type: 'heartbeat_ack', seq, timestamp, server_time: this.clock.now() });
    }
  }

  ping(): void {
    this.pings += 1;
    if (this.answerPings) this.events.emit('pong', undefined);
  }

  close(code: number, reason: string, timeoutMs: number): Promise<void> {
    this.ended = { how: 'closed', code, reason };
    this.open = false;
    if (this.answerClose) {
      this.hubCloses(code, reason);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.clock.setTimeout(() => {
        this.ended = { how: 'terminated' };
        this.hubCloses(1006, '');
        resolve();
      }, timeoutMs);
    });
  }

  terminate(): void {
    this.ended ??= { how: 'terminated' };
    this.open = false;
    this.hubCloses(1006, '');
  }
}

/** Hands out fake links and keeps every one, in dial order. */
export class FakeHub {
  readonly links: FakeHubLink[] = [];
  /** Thrown by the next dial (a URL or header the socket refuses), then cleared. */
  failNextDial: Error | undefined;
  readonly factory: HubLinkFactory;

  constructor(clock: Clock) {
    this.factory = (dial) => {
      const error = this.failNextDial;
      if (error) {
        this.failNextDial = undefined;
        throw error;
      }
      const link = new FakeHubLink(dial, clock);
      this.links.push(link);
      return link;
    };
  }

  /** The link of the latest dial. */
  last(): FakeHubLink {
    const link = this.links.at(-1);
    if (!link) throw new Error('FakeHub: nothing was dialled');
    return link;
  }
}
