import { unmaskedFramesAllowed, zeroMask } from './frame-mask.js';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { z } from 'zod';
import { Backoff } from '../backoff.js';
import type { Clock, Random, TimerHandle } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import { AGENT_VERSION } from '../version.js';
import { redactUrl, toTunnelEndpoint } from '../../protocol/server-url.js';
import {
  BrokerToClientSchema,
  BrokerToFarmSchema,
  ClientToBrokerSchema,
  FarmToBrokerSchema,
  type BrokerTimings,
  type BrokerToClient,
  type BrokerToFarm,
  type ClientToBroker,
  type FarmToBroker,
  type RecoveryEvent,
} from '../../protocol/tunnel.js';
import { peekRoute } from '../../protocol/tunnel-frame.js';
import { RelayPath } from './relay-path.js';

/** What each end sends and receives on its tunnel socket. */
export interface TunnelRoleMessages {
  farm: { out: FarmToBroker; in: BrokerToFarm; hello: Extract<FarmToBroker, { type: 'farm_hello' }> };
  client: { out: ClientToBroker; in: BrokerToClient; hello: Extract<ClientToBroker, { type: 'client_hello' }> };
}
export type TunnelRole = keyof TunnelRoleMessages;
export type Welcome = Extract<BrokerToClient, { type: 'welcome' }>;

const SCHEMAS: { [R in TunnelRole]: { out: z.ZodType; in: z.ZodType } } = {
  farm: { out: FarmToBrokerSchema, in: BrokerToFarmSchema },
  client: { out: ClientToBrokerSchema, in: BrokerToClientSchema },
};

/** Why a connection ended: a recovery kind, or `stopped` when the owner closed the link. */
export type LinkDownKind = RecoveryEvent['kind'] | 'stopped';

export interface BrokerLinkEvents<R extends TunnelRole> extends Record<string, unknown> {
  /** A dial begins (`index` into the server list, 0 = primary). */
  connecting: { url: string; index: number };
  /** The broker said `welcome`: the socket carries sessions from now on. */
  connected: { url: string; index: number; welcome: Welcome };
  /** A dial did not reach `welcome` (refused, HTTP status at the upgrade, no answer in time). */
  dialFailed: { url: string; index: number; reason: string; status: number | null };
  /** A welcomed connection ended; every relay path on it is down. */
  disconnected: { url: string; reason: string; kind: LinkDownKind; upMs: number };
  /** The link waits before its next dial (a round over every server failed). */
  waiting: { delayMs: number; nextAttemptAt: number; reason: string };
  /** A control message from the broker (validated), `welcome` and `draining` included. */
  message: TunnelRoleMessages[R]['in'];
}

export interface BrokerLinkOptions<R extends TunnelRole> {
  role: R;
  /** Hub URLs, primary first: http(s) bases or ws(s) endpoints (protocol/server-url.ts toTunnelEndpoint). */
  servers: readonly string[];
  token: string;
  /** Called at every connection: what this end says first (its boot id, services, addresses now). */
  hello: () => TunnelRoleMessages[R]['hello'];
  clock: Clock;
  random: Random;
  logger: Logger;
  /** Waits between rounds over the server list (default 0.5 s doubling to 10 s, ±20 %). */
  backoff?: { initialMs: number; maxMs: number; jitter?: number };
  /** A dial that has not reached `welcome` by then is given up (default 10 s). */
  connectTimeoutMs?: number;
  /** A connection up this long before it was lost starts a fresh round: the next dial goes at once (default 10 s). */
  stableAfterMs?: number;
  /** Relay paths report "full" above this many buffered bytes, and drain below the low-water mark. */
  highWaterBytes?: number;
  lowWaterBytes?: number;
  /** Largest message accepted from the broker (default 4 MiB). */
  maxIncomingBytes?: number;
  /** Source address to dial from. */
  localAddress?: string;
}

export type BrokerLinkState = 'off' | 'connecting' | 'connected' | 'waiting';

/** What the agent's snapshot shows of the link (protocol/tunnel.ts TunnelSummary.link). */
export interface BrokerLinkStatus {
  state: BrokerLinkState;
  broker_url: string | null;
  observed_address: string | null;
  detail: string | null;
  next_attempt_at: number | null;
}

interface Attempt {
  ws: WebSocket;
  url: string;
  index: number;
  welcome: Welcome | undefined;
  welcomedAt: number;
  connectTimer: TimerHandle | undefined;
  pingTimer: TimerHandle | undefined;
  deadlineTimer: TimerHandle | undefined;
  /** Set when this end ends the socket on purpose: the reason and kind it reports. */
  ending: { reason: string; kind: LinkDownKind } | undefined;
  paths: Map<number, RelayPath>;
  /** Paths whose last send found the socket above the high-water mark. */
  blocked: Set<RelayPath>;
}

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 10_000, jitter: 0.2 };
const DEFAULT_HIGH_WATER = 1024 * 1024;
const DEFAULT_LOW_WATER = 256 * 1024;

/**
 * The reconnecting tunnel socket both ends use (docs/tunnel.md): one WebSocket to a broker at a time,
 * dialled primary → each fallback → wait (backoff) → primary again, for ever. It says hello, takes the
 * broker's timings from `welcome`, keeps the socket honest with pings (no pong within the deadline →
 * terminate and reconnect: a socket that looks up but passes nothing is the failure it exists to end),
 * leaves a draining broker for the next server at once, and routes binary frames to one `RelayPath`
 * per session route. Sessions live above it: when the socket goes, its relay paths go `down` and the
 * owner resumes its sessions on the next connection.
 */
export class BrokerLink<R extends TunnelRole> {
  readonly events: TypedEmitter<BrokerLinkEvents<R>>;
  private readonly endpoints: [string, ...string[]];
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private attempt: Attempt | undefined;
  private index = 0;
  private failuresInRound = 0;
  private waitTimer: TimerHandle | undefined;
  private nextAttemptAt: number | null = null;
  private waitReason: string | null = null;
  private started = false;
  private lastObservedAddress: string | null = null;

  constructor(private readonly options: BrokerLinkOptions<R>) {
    const [primary, ...fallbacks] = options.servers;
    if (primary === undefined) throw new FarmlinkError('TUNNEL_NO_SERVERS', 'the tunnel needs at least one hub URL');
    this.endpoints = [toTunnelEndpoint(primary), ...fallbacks.map((s) => toTunnelEndpoint(s))];
    this.backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff, random: options.random });
    this.log = options.logger;
    this.events = new TypedEmitter((error, event) => {
      this.log.error({ err: error, event }, 'a tunnel link listener threw; the link carries on');
    });
  }

  /** The broker's timings while connected. */
  get timings(): BrokerTimings | undefined {
    return this.attempt?.welcome?.timings;
  }

  get isConnected(): boolean {
    return this.attempt?.welcome !== undefined;
  }

  /** The endpoint in use or being dialled (redacted for logs and the panel). */
  get currentUrl(): string | null {
    return this.attempt ? redactUrl(this.attempt.url) : null;
  }

  status(): BrokerLinkStatus {
    const state: BrokerLinkState = !this.started
      ? 'off'
      : this.attempt?.welcome
        ? 'connected'
        : this.attempt
          ? 'connecting'
          : 'waiting';
    return {
      state,
      broker_url: this.currentUrl,
      observed_address: this.lastObservedAddress,
      detail: state === 'waiting' ? this.waitReason : null,
      next_attempt_at: state === 'waiting' ? this.nextAttemptAt : null,
    };
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.dial();
  }

  /** Closes the socket (normal close) and stops reconnecting. Relay paths go down with reason `reason`. */
  stop(reason = 'stopped'): void {
    if (!this.started) return;
    this.started = false;
    this.options.clock.clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    const attempt = this.attempt;
    if (attempt) {
      attempt.ending = { reason, kind: 'stopped' };
      this.finish(attempt, reason, 'stopped');
      try {
        attempt.ws.close(1000, reason.slice(0, 120));
      } catch {
        attempt.ws.terminate();
      }
      // A broker that does not answer the close frame must not hold the process open.
      const kill = this.options.clock.setTimeout(() => attempt.ws.terminate(), 2000, { unref: true });
      attempt.ws.once('close', () => this.options.clock.clearTimeout(kill));
    }
  }

  /**
   * Drops the current socket (or the wait) and dials again at once, from the current server: the farm
   * calls it when its addresses changed (the old socket's source address is gone), with kind
   * `address_change`.
   */
  reconnectNow(reason: string, kind: RecoveryEvent['kind']): void {
    if (!this.started) return;
    this.log.info({ reason, kind, url: this.currentUrl }, 'tunnel link reconnecting at once');
    this.options.clock.clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    const attempt = this.attempt;
    if (attempt) {
      attempt.ending = { reason, kind };
      attempt.ws.terminate();
      this.finish(attempt, reason, kind, false);
    }
    this.failuresInRound = 0;
    this.backoff.reset();
    this.dial();
  }

  /** Sends a control message (validated against this role's union). False when no broker is connected. */
  send(message: TunnelRoleMessages[R]['out']): boolean {
    const parsed = SCHEMAS[this.options.role].out.safeParse(message);
    if (!parsed.success) {
      throw new FarmlinkError(
        'TUNNEL_BAD_MESSAGE',
        `refusing to send an invalid ${this.options.role} control message: ${parsed.error.message}`,
      );
    }
    const attempt = this.attempt;
    if (!attempt?.welcome || attempt.ws.readyState !== WebSocket.OPEN) return false;
    attempt.ws.send(JSON.stringify(message));
    return true;
  }

  /**
   * The relay path of a session's route on the current socket (made on first ask). Undefined when no
   * broker is connected: the session waits for the next `connected`.
   */
  relayPath(route: number): RelayPath | undefined {
    const attempt = this.attempt;
    if (!attempt?.welcome) return undefined;
    let path = attempt.paths.get(route);
    if (!path || !path.isUp) {
      path = new RelayPath(route, {
        write: (frame, self, onReleased) => this.writeFrame(attempt, self, frame, onReleased),
        buffered: () => attempt.ws.bufferedAmount,
        release: (p) => {
          if (attempt.paths.get(route) === p) attempt.paths.delete(route);
          attempt.blocked.delete(p);
        },
      });
      attempt.paths.set(route, path);
    }
    return path;
  }

  private writeFrame(attempt: Attempt, path: RelayPath, frame: Buffer, onReleased?: () => void): boolean {
    if (this.attempt !== attempt || attempt.ws.readyState !== WebSocket.OPEN) {
      onReleased?.();
      return false;
    }
    const high = this.options.highWaterBytes ?? DEFAULT_HIGH_WATER;
    const low = this.options.lowWaterBytes ?? DEFAULT_LOW_WATER;
    if (attempt.ws.bufferedAmount <= low && attempt.blocked.size === 0) {
      // ws calls back once the socket wrote the frame, or failed to (closed): either way it let go of it.
      attempt.ws.send(frame, { binary: true }, onReleased);
    } else {
      // Above the low-water mark every frame asks to hear when it is written, so the last one written
      // tells the blocked paths they may send again.
      attempt.ws.send(frame, { binary: true }, () => {
        onReleased?.();
        this.checkDrain(attempt, low);
      });
    }
    if (attempt.ws.bufferedAmount > high) {
      attempt.blocked.add(path);
      return false;
    }
    return true;
  }

  private checkDrain(attempt: Attempt, low: number): void {
    if (attempt.blocked.size === 0 || attempt.ws.bufferedAmount > low) return;
    const paths = [...attempt.blocked];
    attempt.blocked.clear();
    for (const path of paths) path.drained();
  }

  private dial(): void {
    if (!this.started) return;
    this.waitTimer = undefined;
    this.nextAttemptAt = null;
    const index = this.index;
    const url = this.endpoints[index] ?? this.endpoints[0];
    const { clock } = this.options;
    const headers = {
      authorization: `Bearer ${this.options.token}`,
      'user-agent': `farmlink-tunnel-${this.options.role}/${AGENT_VERSION}`,
    };
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      ...(unmaskedFramesAllowed(url) ? { generateMask: zeroMask } : {}),
      maxPayload: this.options.maxIncomingBytes ?? 4 * 1024 * 1024,
      followRedirects: false,
      ...(this.options.localAddress !== undefined ? { localAddress: this.options.localAddress } : {}),
    });
    const attempt: Attempt = {
      ws,
      url,
      index,
      welcome: undefined,
      welcomedAt: 0,
      connectTimer: undefined,
      pingTimer: undefined,
      deadlineTimer: undefined,
      ending: undefined,
      paths: new Map(),
      blocked: new Set(),
    };
    this.attempt = attempt;
    this.events.emit('connecting', { url: redactUrl(url), index });
    let status: number | null = null;
    let failure: string | undefined;

    attempt.connectTimer = clock.setTimeout(() => {
      failure = `no welcome within ${this.options.connectTimeoutMs ?? 10_000} ms`;
      ws.terminate();
    }, this.options.connectTimeoutMs ?? 10_000);

    ws.on('open', () => {
      if (this.attempt !== attempt) return;
      ws.send(JSON.stringify(this.options.hello()));
    });
    ws.on('unexpected-response', (_req, res) => {
      status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (chunks.length < 16) chunks.push(c);
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').trim().slice(0, 300);
        failure = `the hub refused the tunnel socket: HTTP ${status ?? 0}${body ? ` (${body})` : ''}`;
        ws.terminate();
      });
      res.on('error', () => ws.terminate());
    });
    ws.on('error', (error: Error) => {
      failure ??= error.message;
    });
    ws.on('pong', () => this.alive(attempt));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.attempt !== attempt) return;
      this.alive(attempt);
      if (isBinary) this.onFrame(attempt, data);
      else this.onText(attempt, data);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      clock.clearTimeout(attempt.connectTimer);
      if (this.attempt !== attempt) return;
      if (attempt.welcome) {
        const why = attempt.ending?.reason ?? `socket closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`;
        const kind = attempt.ending?.kind ?? (code === 1001 || code === 1012 ? 'broker_restart' : 'network_timeout');
        this.finish(attempt, why, kind);
      } else {
        const why = failure ?? `socket closed before welcome (${code}${reason.length ? ` ${reason.toString()}` : ''})`;
        this.attempt = undefined;
        this.log.warn(
          { url: redactUrl(url), status, reason: why },
          'tunnel link could not connect; trying the next server',
        );
        this.events.emit('dialFailed', { url: redactUrl(url), index, reason: why, status });
        this.scheduleNext(why, false);
      }
    });
  }

  private onText(attempt: Attempt, data: Buffer): void {
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      this.log.warn(
        { url: redactUrl(attempt.url), bytes: data.length },
        'tunnel link: broker sent text that is not JSON; ignored',
      );
      return;
    }
    const parsed = SCHEMAS[this.options.role].in.safeParse(json);
    if (!parsed.success) {
      this.log.warn(
        { url: redactUrl(attempt.url), type: (json as { type?: unknown } | null)?.type, error: parsed.error.message },
        'tunnel link: broker sent a control message this end does not accept; ignored',
      );
      return;
    }
    const message = parsed.data as TunnelRoleMessages[R]['in'];
    if (message.type === 'welcome') {
      this.onWelcome(attempt, message);
      return;
    }
    if (!attempt.welcome) {
      this.log.warn({ type: message.type }, 'tunnel link: control message before welcome; ignored');
      return;
    }
    this.events.emit('message', message);
    if (message.type === 'draining') {
      this.log.info(
        { url: redactUrl(attempt.url), reason: message.reason },
        'broker is draining; moving to the next server now',
      );
      attempt.ending = { reason: `broker draining: ${message.reason}`, kind: 'broker_restart' };
      attempt.ws.close(1000, 'draining');
      this.finish(attempt, attempt.ending.reason, 'broker_restart');
    }
  }

  private onWelcome(attempt: Attempt, welcome: Welcome): void {
    const { clock } = this.options;
    if (welcome.role !== this.options.role) {
      this.log.error(
        { expected: this.options.role, got: welcome.role },
        'tunnel link: the broker took this socket for the other end',
      );
      attempt.ws.terminate();
      return;
    }
    clock.clearTimeout(attempt.connectTimer);
    attempt.welcome = welcome;
    attempt.welcomedAt = clock.monotonic();
    this.lastObservedAddress = welcome.observed_address;
    this.waitReason = null;
    const url = redactUrl(attempt.url);
    this.log.info(
      { url, broker: welcome.broker_id, observed: welcome.observed_address, timings: welcome.timings },
      'tunnel link connected',
    );
    this.armDeadline(attempt);
    const ping = (): void => {
      if (this.attempt !== attempt) return;
      attempt.pingTimer = clock.setTimeout(ping, welcome.timings.ping_interval_ms);
      try {
        attempt.ws.ping();
      } catch {
        // Closing: the close event ends the connection.
      }
    };
    attempt.pingTimer = clock.setTimeout(ping, welcome.timings.ping_interval_ms);
    this.events.emit('connected', { url, index: attempt.index, welcome });
    this.events.emit('message', welcome);
  }

  /**
   * Anything from the broker proves the socket alive, not only a pong: a pong can sit behind megabytes
   * of relayed frames on a busy socket, and that socket is anything but dead.
   */
  private alive(attempt: Attempt): void {
    if (attempt.welcome && this.attempt === attempt) this.armDeadline(attempt);
  }

  private armDeadline(attempt: Attempt): void {
    const { clock } = this.options;
    const timings = attempt.welcome?.timings;
    if (!timings) return;
    clock.clearTimeout(attempt.deadlineTimer);
    attempt.deadlineTimer = clock.setTimeout(() => {
      if (this.attempt !== attempt) return;
      const reason = `no pong from the broker for ${timings.ping_timeout_ms} ms`;
      this.log.warn(
        { url: redactUrl(attempt.url), kind: 'network_timeout', reason },
        'tunnel link dead; reconnecting at once',
      );
      attempt.ending = { reason, kind: 'network_timeout' };
      attempt.ws.terminate();
      this.finish(attempt, reason, 'network_timeout');
    }, timings.ping_timeout_ms);
  }

  private onFrame(attempt: Attempt, data: Buffer): void {
    const route = peekRoute(data);
    if (route === undefined) {
      this.log.warn({ bytes: data.length }, 'tunnel link: binary frame shorter than a header; dropped');
      return;
    }
    const path = attempt.paths.get(route);
    if (!path) {
      this.log.debug({ route }, 'tunnel link: frame for a route with no session here; dropped');
      return;
    }
    path.deliver(data);
  }

  /** A welcomed connection is over: timers off, paths down, `disconnected`, and the next dial. */
  private finish(attempt: Attempt, reason: string, kind: LinkDownKind, redial = true): void {
    if (this.attempt !== attempt) return;
    const { clock } = this.options;
    this.attempt = undefined;
    clock.clearTimeout(attempt.connectTimer);
    clock.clearTimeout(attempt.pingTimer);
    clock.clearTimeout(attempt.deadlineTimer);
    const upMs = attempt.welcome ? clock.monotonic() - attempt.welcomedAt : 0;
    for (const path of [...attempt.paths.values()]) path.goDown(reason);
    attempt.paths.clear();
    attempt.blocked.clear();
    if (attempt.welcome) {
      this.log.info({ url: redactUrl(attempt.url), reason, kind, up_ms: Math.round(upMs) }, 'tunnel link disconnected');
      this.events.emit('disconnected', { url: redactUrl(attempt.url), reason, kind, upMs });
    }
    if (kind === 'stopped' || !redial) return;
    const stable = upMs >= (this.options.stableAfterMs ?? 10_000);
    if (stable || kind === 'broker_restart') {
      // A connection that had been fine (or a broker that asked us to go) starts a fresh round: the
      // next server is dialled at once, and only a round of failures after that waits.
      this.failuresInRound = 0;
      if (stable) this.backoff.reset();
    }
    this.scheduleNext(reason, true);
  }

  /**
   * After a failure on the current server: the next one at once, or after a full round the backoff wait.
   * The first loss of a connection that had been stable is a fresh start (dialled at once, even with one
   * server); a server that accepts and then drops us straight away cannot make the link spin.
   */
  private scheduleNext(reason: string, wasConnected: boolean): void {
    if (!this.started) return;
    const count = this.endpoints.length;
    this.index = (this.index + 1) % count;
    const freshStart = wasConnected && this.failuresInRound === 0;
    this.failuresInRound += 1;
    if (freshStart || this.failuresInRound < count) {
      this.dial();
      return;
    }
    this.failuresInRound = 0;
    const { delayMs } = this.backoff.next();
    this.nextAttemptAt = this.options.clock.now() + delayMs;
    this.waitReason = reason;
    this.log.info({ delay_ms: Math.round(delayMs), reason }, 'tunnel link: every server failed this round; waiting');
    this.events.emit('waiting', { delayMs, nextAttemptAt: this.nextAttemptAt, reason });
    this.waitTimer = this.options.clock.setTimeout(() => this.dial(), delayMs);
  }
}
