import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../../lib/clock.js';
import type { SessionEndCode, SessionState, TunnelPathKind } from '../../protocol/tunnel.js';

/** Largest route a frame header can carry (u32); 0 is never assigned (a direct path's frames carry 0). */
const MAX_ROUTE = 0xffff_ffff;

/** Which side of a session: the farm PC's end, or the remote client's. */
export type Side = 'farm' | 'client';

/** What a session holds of a tunnel socket: enough to tell the two sides apart and to reach them. */
export interface SessionPeer {
  readonly address: string;
}

/** One tunnel session as the broker keeps it (docs/tunnel.md, "The control plane"). */
export interface BrokerSession<P extends SessionPeer = SessionPeer> {
  readonly id: string;
  /** This broker's number for the session in binary frames; unique among live sessions, never reused while live. */
  readonly route: number;
  readonly clientName: string;
  readonly clientKey: string;
  readonly agentId: string;
  readonly service: string;
  state: SessionState;
  /** Epoch ms. */
  readonly createdAt: number;
  /** Epoch ms of the last stream frame relayed (or the open). */
  lastActivityAt: number;
  /** Monotonic ms of the same, for the idle limit. */
  lastActivityMono: number;
  bytesClientToFarm: number;
  bytesFarmToClient: number;
  /** As last reported by either end (session_report). */
  path: TunnelPathKind | null;
  rttMs: number | null;
  streamsOpen: { farm: number; client: number };
  /** The sockets carrying it now; undefined while that side is away. */
  farm: P | undefined;
  client: P | undefined;
  /** The farm's boot id when it accepted the session; a farm back with another one has lost it. */
  farmBootId: string | undefined;
  /** The farm's address when it last held the session (to tell the client when it moved). */
  farmAddress: string | undefined;
  clientAddress: string;
  /**
   * An `open` the client is waiting on an answer for (the farm has not accepted yet, or is not
   * connected and the client asked to wait). Cleared by `opened` / `open_failed`.
   */
  pending: { requestId: number; resume: boolean; wait: boolean } | undefined;
  /** session_open was sent to the farm socket in `farm` (or to `offeredTo`) and no answer came yet. */
  offeredTo: P | undefined;
  /** Monotonic ms since which a side has been away; undefined while both are there. */
  awaySince: number | undefined;
  /** The resume-window (or answer) deadline, while one runs. */
  timer: TimerHandle | undefined;
}

export interface NewSession<P extends SessionPeer> {
  /** Given on a resume the broker does not know (it restarted): the session keeps its id. */
  id?: string;
  clientName: string;
  clientKey: string;
  agentId: string;
  service: string;
  client: P;
  pending: { requestId: number; resume: boolean; wait: boolean };
}

export interface SessionLimits {
  perFarm: number;
  perClient: number;
}

/**
 * The broker's sessions: by id, by route (the relay's lookup), by client name + client_key (a
 * restarted client's new open replaces its old session), and counted per farm and per client for
 * the limits. Timers are the broker's; this holds state and indexes only.
 */
export class SessionRegistry<P extends SessionPeer = SessionPeer> {
  private readonly byId = new Map<string, BrokerSession<P>>();
  private readonly byRoute = new Map<number, BrokerSession<P>>();
  private readonly byKey = new Map<string, BrokerSession<P>>();
  private readonly byAgent = new Map<string, Set<BrokerSession<P>>>();
  private readonly perClient = new Map<string, number>();
  private nextRoute = 1;

  constructor(
    private readonly clock: Clock,
    private readonly limits: SessionLimits,
    /** 16 random bytes per session id (injected so tests can name sessions). */
    private readonly randomId: () => string = () => randomBytes(16).toString('hex'),
  ) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): BrokerSession<P> | undefined {
    return this.byId.get(id);
  }

  byRouteNumber(route: number): BrokerSession<P> | undefined {
    return this.byRoute.get(route);
  }

  /** The live session a client opened under this key, if any. */
  byClientKey(clientName: string, clientKey: string): BrokerSession<P> | undefined {
    return this.byKey.get(keyOf(clientName, clientKey));
  }

  ofAgent(agentId: string): BrokerSession<P>[] {
    return [...(this.byAgent.get(agentId) ?? [])];
  }

  all(): IterableIterator<BrokerSession<P>> {
    return this.byId.values();
  }

  /** Which limit a new session would break, as a sentence, or undefined. */
  limitProblem(agentId: string, clientName: string): string | undefined {
    const toFarm = this.byAgent.get(agentId)?.size ?? 0;
    if (toFarm >= this.limits.perFarm)
      return `${agentId} already has ${toFarm} sessions (--tunnel-max-sessions-per-farm ${this.limits.perFarm})`;
    const ofClient = this.perClient.get(clientName) ?? 0;
    if (ofClient >= this.limits.perClient)
      return `client ${clientName} already has ${ofClient} sessions (--tunnel-max-sessions-per-client ${this.limits.perClient})`;
    return undefined;
  }

  /** Registers a session in `establishing`, with a fresh route (and a fresh id unless one is given). */
  create(spec: NewSession<P>): BrokerSession<P> {
    let id = spec.id ?? this.randomId();
    while (spec.id === undefined && this.byId.has(id)) id = this.randomId();
    if (this.byId.has(id)) throw new Error(`session ${id} exists already`);
    const now = this.clock.now();
    const session: BrokerSession<P> = {
      id,
      route: this.allocateRoute(),
      clientName: spec.clientName,
      clientKey: spec.clientKey,
      agentId: spec.agentId,
      service: spec.service,
      state: 'establishing',
      createdAt: now,
      lastActivityAt: now,
      lastActivityMono: this.clock.monotonic(),
      bytesClientToFarm: 0,
      bytesFarmToClient: 0,
      path: null,
      rttMs: null,
      streamsOpen: { farm: 0, client: 0 },
      farm: undefined,
      client: spec.client,
      farmBootId: undefined,
      farmAddress: undefined,
      clientAddress: spec.client.address,
      pending: spec.pending,
      offeredTo: undefined,
      awaySince: undefined,
      timer: undefined,
    };
    this.byId.set(id, session);
    this.byRoute.set(session.route, session);
    this.byKey.set(keyOf(session.clientName, session.clientKey), session);
    let ofAgent = this.byAgent.get(session.agentId);
    if (!ofAgent) this.byAgent.set(session.agentId, (ofAgent = new Set()));
    ofAgent.add(session);
    this.perClient.set(session.clientName, (this.perClient.get(session.clientName) ?? 0) + 1);
    return session;
  }

  /** Removes an ended session from every index (its timer is cleared); false if it was not here. */
  remove(session: BrokerSession<P>, _code: SessionEndCode): boolean {
    if (this.byId.get(session.id) !== session) return false;
    this.clock.clearTimeout(session.timer);
    session.timer = undefined;
    session.state = 'closed';
    this.byId.delete(session.id);
    this.byRoute.delete(session.route);
    const key = keyOf(session.clientName, session.clientKey);
    if (this.byKey.get(key) === session) this.byKey.delete(key);
    const ofAgent = this.byAgent.get(session.agentId);
    ofAgent?.delete(session);
    if (ofAgent?.size === 0) this.byAgent.delete(session.agentId);
    const left = (this.perClient.get(session.clientName) ?? 1) - 1;
    if (left > 0) this.perClient.set(session.clientName, left);
    else this.perClient.delete(session.clientName);
    return true;
  }

  /** A stream frame went through: the session is not idle. */
  touch(session: BrokerSession<P>): void {
    session.lastActivityMono = this.clock.monotonic();
    session.lastActivityAt = this.clock.now();
  }

  /**
   * Sessions past the idle limit: no stream frame relayed for `idleMs` and neither end reports a
   * stream open (a session on the direct path relays nothing, so its ends' reports decide).
   */
  idle(idleMs: number): BrokerSession<P>[] {
    const now = this.clock.monotonic();
    const found: BrokerSession<P>[] = [];
    for (const session of this.byId.values()) {
      if (session.state !== 'active') continue;
      if (session.streamsOpen.farm > 0 || session.streamsOpen.client > 0) continue;
      if (now - session.lastActivityMono >= idleMs) found.push(session);
    }
    return found;
  }

  /** Sessions by state, for the gauges. */
  countByState(): Record<SessionState, number> {
    const counts: Record<SessionState, number> = { establishing: 0, active: 0, degraded: 0, closed: 0 };
    for (const session of this.byId.values()) counts[session.state] += 1;
    return counts;
  }

  /**
   * The next route not held by a live session: counting up, wrapping past 2^32 − 1 back to 1. A route
   * is never reused while its session lives; after a wrap, one freed long ago may come again.
   */
  private allocateRoute(): number {
    for (;;) {
      const route = this.nextRoute;
      this.nextRoute = route >= MAX_ROUTE ? 1 : route + 1;
      if (!this.byRoute.has(route)) return route;
    }
  }
}

function keyOf(clientName: string, clientKey: string): string {
  return `${clientName}\u0000${clientKey}`;
}
