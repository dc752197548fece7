import type net from 'node:net';
import type { Logger } from 'pino';
import { every, type Clock, type TimerHandle } from '../../lib/clock.js';
import { TypedEmitter } from '../../lib/events.js';
import { linkDirect } from '../../lib/tunnel/direct-link.js';
import type { TunnelPath } from '../../lib/tunnel/tunnel-path.js';
import {
  TUNNEL_PROTOCOL_VERSION,
  type BrokerToFarm,
  type SessionEndCode,
  type TunnelSessionInfo,
  type TunnelSummary,
} from '../../protocol/tunnel.js';
import type {
  CreateFarmDirect,
  FarmDirect,
  FarmLink,
  FarmSession,
  FarmSessionOptions,
  FarmStream,
  RecoveryKind,
} from './farm-ports.js';
import type { ServiceAllowlist } from './service-allowlist.js';
import type { ServiceDialer } from './service-dialer.js';
import { bridgeStream } from './stream-bridge.js';

type FarmHello = Extract<Parameters<FarmLink['send']>[0], { type: 'farm_hello' }>;
type SessionOpen = Extract<BrokerToFarm, { type: 'session_open' }>;
type PeerState = Extract<BrokerToFarm, { type: 'peer_state' }>;

/**
 * What the farm follows before a broker has said otherwise (its `welcome` timings replace them):
 * the broker's own defaults, so a session opened right after a welcome never sees different ones.
 */
export const FARM_TUNNEL_DEFAULTS = {
  pingIntervalMs: 5000,
  pingTimeoutMs: 10_000,
  resumeWindowMs: 30_000,
  idleTimeoutMs: 5 * 60_000,
  dialTimeoutMs: 10_000,
} as const;

export interface FarmTunnelEvents extends Record<string, unknown> {
  /** Something the snapshot shows changed (coalesced by the panel feed). */
  change: undefined;
}

export interface FarmTunnelOptions {
  agentId: string;
  /** Random per process start: a broker that sees another one ends this PC's old sessions at once. */
  bootId: string;
  version: string;
  services: ServiceAllowlist;
  /** Makes the link to the broker list, with the hello it says at every connection. */
  createLink: (hello: () => FarmHello) => FarmLink;
  createSession: (options: FarmSessionOptions) => FarmSession;
  dial: ServiceDialer;
  /** This PC's non-internal addresses now. */
  localAddresses: () => string[];
  /** Calls back when the addresses change; returns the stop function (agent/system/network-watch.ts). */
  watchAddresses: (onChange: () => void) => () => void;
  clock: Clock;
  logger: Logger;
  dialTimeoutMs?: number;
  /** Makes each session's direct-path connector; absent or answering undefined: relay only. */
  createDirect?: CreateFarmDirect;
}

interface HeldSession {
  id: string;
  session: FarmSession;
  client: string;
  clientAddress: string;
  service: string;
  route: number;
  relay: TunnelPath | undefined;
  offRelay: () => void;
  /** The relay missed its ping deadline with its socket up: kept attached until it answers (pathAlive) or goes down. */
  relaySilent: boolean;
  /** Set while the session waits for a side to come back: when, and why (for the recovery record). */
  away: { since: number; kind: RecoveryKind; reason: string } | undefined;
  /** The broker said the client is away (peer_state down): shown as degraded even while our relay is up. */
  peerDown: boolean;
  resumeTimer: TimerHandle | undefined;
  sockets: Set<net.Socket>;
  /** How this end learnt the session is over; set before close() so `closed` knows whom to tell. */
  ending: 'local' | 'broker' | undefined;
  /** The direct-path connector while the client is there (closed on peer_state down, made again on up). */
  direct: { connector: FarmDirect; unlink: () => void } | undefined;
  /** What the broker was last told of the session's path and streams (session_report), to tell it only changes. */
  reported: string;
}

/**
 * The farm end of the tunnel (docs/tunnel.md): one link to the broker list, sessions the broker
 * opens to the services in the allowlist, local connections dialled per stream. The farm never
 * keeps a hanging session: a session whose client is away longer than the resume window, or idle
 * past the idle limit, is ended here and its local sockets closed, whatever the broker does.
 */
export class FarmTunnel {
  readonly events: TypedEmitter<FarmTunnelEvents>;
  private readonly log: Logger;
  private readonly link: FarmLink;
  private readonly sessions = new Map<string, HeldSession>();
  private readonly offs: Array<() => void> = [];
  private closedTotal = 0;
  private started = false;
  private stopped = false;
  private idleSweep: { stop(): void } | undefined;
  private sweepEveryMs = 0;
  /** After an address change: drop direct candidates once the new connection is up. */
  private restartDirectOnConnect = false;

  constructor(private readonly options: FarmTunnelOptions) {
    this.log = options.logger;
    this.events = new TypedEmitter((error, event) => {
      this.log.error({ err: error, event }, `A listener of the tunnel's "${event}" threw; the tunnel carries on`);
    });
    this.link = options.createLink(() => this.hello());
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const { link } = this;
    const changed = () => this.events.emit('change', undefined);
    this.offs.push(
      link.events.on('connecting', changed),
      link.events.on('dialFailed', changed),
      link.events.on('waiting', changed),
      link.events.on('connected', (event) => {
        this.onConnected(event.welcome);
        changed();
      }),
      link.events.on('disconnected', (event) => {
        this.onDisconnected(event.reason, event.kind);
        changed();
      }),
      link.events.on('message', (message) => {
        this.onMessage(message);
      }),
      this.options.watchAddresses(() => {
        this.onAddressChange();
      }),
    );
    this.log.info(
      { services: this.options.services.names() },
      `Tunnel: exposing ${this.options.services.names().join(', ')}; connecting to the broker`,
    );
    link.start();
  }

  /** Ends every session (the broker tells each client), then closes the link. */
  stop(reason = 'the agent is stopping'): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    this.idleSweep?.stop();
    for (const held of [...this.sessions.values()]) this.endSession(held, 'closed', reason, 'local');
    if (this.started) this.link.stop(reason);
    this.log.info({ reason }, `Tunnel stopped (${reason})`);
  }

  summary(): TunnelSummary {
    return {
      services: this.options.services.list().map(({ name, target }) => ({ name, target })),
      link: this.started && !this.stopped ? this.link.status() : offLink(),
      sessions: [...this.sessions.values()].map((held) => this.sessionInfo(held)),
      closed_total: this.closedTotal,
    };
  }

  // ---- the link ---------------------------------------------------------------------------------

  private hello(): FarmHello {
    return {
      type: 'farm_hello',
      protocol: TUNNEL_PROTOCOL_VERSION,
      agent_id: this.options.agentId,
      boot_id: this.options.bootId,
      services: this.options.services.names(),
      local_addresses: this.options.localAddresses().slice(0, 64),
      version: this.options.version,
    };
  }

  private onConnected(welcome: { broker_id: string; observed_address: string }): void {
    this.scheduleIdleSweep();
    this.log.info(
      { broker: welcome.broker_id, observed_address: welcome.observed_address, sessions: this.sessions.size },
      `Tunnel connected to broker ${welcome.broker_id}, which sees this PC at ${welcome.observed_address}` +
        (this.sessions.size > 0 ? `; ${this.sessions.size} session(s) wait for the broker to resume them` : ''),
    );
    // Routes are one broker's numbers, and a broker forwards a route's frames only once the farm has
    // accepted it: every held session waits for the broker's session_open (resume) before its path.
    if (this.restartDirectOnConnect) {
      this.restartDirectOnConnect = false;
      this.restartDirectPaths();
    }
  }

  private onDisconnected(reason: string, kind: RecoveryKind | 'stopped'): void {
    if (kind === 'stopped') return;
    for (const held of this.sessions.values()) {
      this.dropRelay(held, `tunnel socket lost: ${reason}`);
      const why = `tunnel socket to the broker lost (${reason})`;
      // The relay path may have gone down first and guessed; the link knows the kind of failure.
      if (held.away && !held.peerDown) held.away = { ...held.away, kind, reason: why };
      this.markAway(held, kind, why);
    }
    if (this.sessions.size > 0) {
      this.log.warn(
        { reason, kind, sessions: this.sessions.size },
        `Tunnel socket lost (${reason}); ${this.sessions.size} session(s) wait up to ${this.resumeWindowMs()} ms to resume`,
      );
    }
  }

  private onAddressChange(): void {
    const addresses = this.options.localAddresses();
    this.log.info(
      { local_addresses: addresses, sessions: this.sessions.size },
      `This PC's addresses changed (now ${addresses.join(', ') || 'none'}): telling the broker and reconnecting the tunnel from the new address`,
    );
    if (!this.started || this.stopped) return;
    this.link.send({ type: 'address_change', local_addresses: addresses.slice(0, 64) });
    this.restartDirectOnConnect = true;
    this.link.reconnectNow('this PC changed address', 'address_change');
    this.events.emit('change', undefined);
  }

  /**
   * Candidates from the old address are stale: each session's connector starts over (it tells the
   * client, which offers again); a session on a direct path without a connector here is told directly.
   */
  private restartDirectPaths(): void {
    for (const held of this.sessions.values()) {
      if (held.direct) {
        held.direct.connector.restart('this PC changed address');
      } else if (held.session.info().path === 'direct') {
        this.link.send({ type: 'signal', session_id: held.id, payload: { kind: 'restart' } });
      } else {
        continue;
      }
      this.log.info({ session: held.id }, `Session ${held.id}: direct path restarted after the address change`);
    }
  }

  /** A connector for the session, unless it has one or the direct path is off. */
  private startDirect(held: HeldSession): void {
    if (held.direct || !this.options.createDirect || !this.sessions.has(held.id)) return;
    const connector = this.options.createDirect(held.id, (payload) => {
      this.link.send({ type: 'signal', session_id: held.id, payload });
    });
    if (!connector) return;
    held.direct = { connector, unlink: linkDirect(held.session, connector) };
  }

  /**
   * Tells the broker the session's path and open streams when they change: its admin listing shows the
   * path, and a session with a stream open on the direct path (nothing through the relay) is not idle.
   */
  private report(held: HeldSession): void {
    const info = held.session.info();
    if (info.path === null) return;
    const key = `${info.path}/${String(info.streams_open)}`;
    if (key === held.reported) return;
    if (
      !this.link.send({
        type: 'session_report',
        session_id: held.id,
        path: info.path,
        rtt_ms: info.rtt_ms,
        streams_open: info.streams_open,
      })
    )
      return;
    held.reported = key;
  }

  private stopDirect(held: HeldSession, reason: string): void {
    const direct = held.direct;
    if (!direct) return;
    held.direct = undefined;
    direct.unlink();
    direct.connector.close(reason);
  }

  // ---- control messages -------------------------------------------------------------------------

  private onMessage(message: BrokerToFarm): void {
    switch (message.type) {
      case 'session_open':
        this.onSessionOpen(message);
        break;
      case 'peer_state':
        this.onPeerState(message);
        break;
      case 'session_closed': {
        const held = this.sessions.get(message.session_id);
        if (held) this.endSession(held, message.code, message.reason, 'broker');
        break;
      }
      case 'draining':
        this.log.info(
          { reason: message.reason },
          `The broker is draining (${message.reason}); sessions resume on the next one`,
        );
        break;
      case 'signal':
        this.sessions.get(message.session_id)?.direct?.connector.receive(message.payload);
        break;
      case 'welcome':
        // The link's.
        break;
    }
  }

  private onSessionOpen(open: SessionOpen): void {
    const held = this.sessions.get(open.session_id);
    const who = `${open.client.name} (${open.client.address})`;
    if (open.resume) {
      if (!held) {
        this.refuse(
          open,
          'unknown_session',
          `this PC does not hold session ${open.session_id} (restarted, or the resume window passed)`,
        );
        return;
      }
      this.link.send({ type: 'session_accept', session_id: open.session_id, route: open.route });
      held.route = open.route;
      held.clientAddress = open.client.address;
      // Attached afresh even on the same path: the RESUME it sends now reaches a broker that has the answer.
      this.dropRelay(held, 'resumed by the broker');
      this.attachRelay(held, open.route);
      this.startDirect(held);
      this.log.info(
        { session: held.id, client: open.client.name, route: open.route },
        `Session ${held.id} resumed for ${who} on route ${open.route}`,
      );
      return;
    }
    if (held) {
      // The broker asked again (its answer was lost): the same session, answered the same way.
      this.link.send({ type: 'session_accept', session_id: open.session_id, route: open.route });
      this.attachRelay(held, open.route);
      return;
    }
    const service = this.options.services.lookup(open.service);
    if (!service) {
      const exposed = this.options.services.names();
      this.refuse(
        open,
        'unknown_service',
        `this PC does not expose "${open.service}" (${exposed.length ? `it exposes ${exposed.join(', ')}` : 'it exposes nothing'})`,
      );
      return;
    }
    const timings = this.link.timings;
    const session = this.options.createSession({
      sessionId: open.session_id,
      peer: open.client.name,
      service: service.name,
      pingIntervalMs: timings?.ping_interval_ms ?? FARM_TUNNEL_DEFAULTS.pingIntervalMs,
      pingTimeoutMs: timings?.ping_timeout_ms ?? FARM_TUNNEL_DEFAULTS.pingTimeoutMs,
    });
    const entry: HeldSession = {
      id: open.session_id,
      session,
      client: open.client.name,
      clientAddress: open.client.address,
      service: service.name,
      route: open.route,
      relay: undefined,
      offRelay: () => {},
      relaySilent: false,
      away: undefined,
      peerDown: false,
      resumeTimer: undefined,
      sockets: new Set(),
      ending: undefined,
      direct: undefined,
      reported: '',
    };
    this.sessions.set(entry.id, entry);
    const log = this.log.child({ session: entry.id, client: entry.client, service: service.name });
    session.events.on('change', () => {
      this.report(entry);
      this.events.emit('change', undefined);
    });
    session.events.on('stream', (stream: FarmStream) => {
      void bridgeStream(stream, {
        service,
        dial: this.options.dial,
        dialTimeoutMs: this.options.dialTimeoutMs ?? FARM_TUNNEL_DEFAULTS.dialTimeoutMs,
        clock: this.options.clock,
        logger: log,
        track: (socket) => {
          entry.sockets.add(socket);
          return () => entry.sockets.delete(socket);
        },
      });
    });
    session.events.on('pathDead', ({ path, reason }) => {
      if (path === entry.relay) {
        this.onRelaySilent(entry, reason, log);
        return;
      }
      // A direct path: linkDirect drops it and its connector tries again; the relay carries on.
      log.warn({ path: path.kind, reason }, `Session ${entry.id}: the ${path.kind} path stopped answering (${reason})`);
    });
    session.events.on('pathAlive', ({ path }) => {
      if (path !== entry.relay || !entry.relaySilent) return;
      entry.relaySilent = false;
      log.info({ path: path.kind }, `Session ${entry.id}: the relay path answers again; traffic is back on it`);
      this.settleAway(entry);
    });
    session.events.on('closed', ({ code, reason }) => {
      this.forget(entry, code, reason);
    });
    this.link.send({ type: 'session_accept', session_id: entry.id, route: open.route });
    this.attachRelay(entry, open.route);
    this.startDirect(entry);
    log.info(
      { route: open.route, target: service.target },
      `Session ${entry.id} opened: ${who} → ${service.name} (${service.target}) on route ${open.route}`,
    );
    this.events.emit('change', undefined);
  }

  private refuse(open: SessionOpen, code: SessionEndCode, reason: string): void {
    this.link.send({ type: 'session_refuse', session_id: open.session_id, route: open.route, code, reason });
    this.log.warn(
      { session: open.session_id, client: open.client.name, service: open.service, code },
      `Refused ${open.client.name}'s ${open.resume ? 'resume' : 'session'} to "${open.service}" (${code}): ${reason}`,
    );
  }

  private onPeerState(message: PeerState): void {
    const held = this.sessions.get(message.session_id);
    if (!held) return;
    switch (message.state) {
      case 'down':
        held.peerDown = true;
        // The client may be gone for good (power, network): its direct path with it. A new one after `up`.
        this.stopDirect(held, `client away (${message.reason})`);
        this.markAway(held, 'network_timeout', `client ${held.client} went away (${message.reason})`);
        this.log.warn(
          { session: held.id, client: held.client, reason: message.reason },
          `Session ${held.id}: client ${held.client} went away (${message.reason}); ending it unless it is back within ${this.resumeWindowMs()} ms`,
        );
        break;
      case 'up':
        held.peerDown = false;
        if (message.route !== undefined) {
          // The client attached a new relay path and waits for our RESUME on it, which this end sends only
          // when it attaches (and answers only the first RESUME per path): attached afresh even on the same
          // route, as the client does, so both ends replay what the other lacks.
          held.route = message.route;
          this.dropRelay(held, 'the client attached again');
          this.attachRelay(held, message.route);
        } else {
          this.settleAway(held);
        }
        this.startDirect(held);
        this.log.info({ session: held.id, client: held.client }, `Session ${held.id}: client ${held.client} is back`);
        break;
      case 'moved':
        if (message.address !== undefined) held.clientAddress = message.address;
        this.log.info(
          { session: held.id, client: held.client, address: message.address },
          `Session ${held.id}: client ${held.client} moved to ${message.address ?? 'a new address'}; the relay carries on`,
        );
        break;
    }
    this.events.emit('change', undefined);
  }

  // ---- paths and waiting --------------------------------------------------------------------------

  private attachRelay(held: HeldSession, route: number): void {
    const path = this.link.relayPath(route);
    if (!path) return;
    if (held.relay === path && path.isUp) {
      this.settleAway(held);
      return;
    }
    this.dropRelay(held, 'replaced by a new relay path');
    held.relay = path;
    held.offRelay = path.events.on('down', ({ reason }) => {
      if (held.relay !== path) return;
      this.dropRelay(held, reason);
      this.markAway(held, 'network_timeout', `relay path down (${reason})`);
    });
    held.session.attach(path);
    this.settleAway(held);
  }

  /**
   * The relay missed its ping deadline, but its socket is up (a relay path goes down with its socket):
   * under load the peer's pongs can queue behind megabytes of DATA in the socket buffers, on a socket
   * that is perfectly alive. So the relay stays attached — the session keeps pinging it and takes it back
   * at its first answer (pathAlive) — instead of being detached, which would leave the late pongs no
   * session to revive and end a healthy session when the resume window runs out.
   *
   * Truly dead ends are found elsewhere: the link's own socket-level deadline terminates a dead socket
   * (the path goes down: dropRelay and markAway as usual), and the broker sends peer_state down when
   * the client's socket goes. What is left is a safety net: the resume-window timer runs from here, and
   * a relay still silent when it fires ends the session as before (`resume_window_expired`). Once the
   * relay is marked dead nothing but pings goes on it, so a live relay answers as soon as its socket
   * buffers drain; one silent for a whole window carries nothing (a route the broker no longer relays,
   * a peer that no longer answers on it), and ending the session lets the client open a working one
   * rather than keeping one that can never carry data. Its answer, or a new relay path, cancels the timer.
   */
  private onRelaySilent(held: HeldSession, reason: string, log: Logger): void {
    held.relaySilent = true;
    this.markAway(
      held,
      'network_timeout',
      `relay path stopped answering health pings while the tunnel socket was up (${reason})`,
    );
    const windowMs = this.resumeWindowMs();
    log.warn(
      { path: 'relay', reason, window_ms: windowMs },
      `Session ${held.id}: the relay path stopped answering health pings (${reason}) although the tunnel socket ` +
        `is up; keeping it attached so a late answer takes it back, and ending the session only if it stays ` +
        `silent for the resume window (${windowMs} ms)`,
    );
  }

  private dropRelay(held: HeldSession, reason: string): void {
    const path = held.relay;
    if (!path) return;
    held.relay = undefined;
    held.relaySilent = false;
    held.offRelay();
    held.offRelay = () => {};
    held.session.detach(path, reason);
  }

  /** The session waits for a side to come back; past the resume window it is ended here. */
  private markAway(held: HeldSession, kind: RecoveryKind, reason: string): void {
    held.away ??= { since: this.options.clock.monotonic(), kind, reason };
    if (held.resumeTimer !== undefined) return;
    const windowMs = this.resumeWindowMs();
    held.resumeTimer = this.options.clock.setTimeout(() => {
      held.resumeTimer = undefined;
      const what =
        held.relaySilent && !held.peerDown
          ? `its relay path stayed silent for the whole resume window (${windowMs} ms) with the tunnel socket up`
          : `nobody came back within the resume window (${windowMs} ms)`;
      this.log.warn(
        { session: held.id, client: held.client, window_ms: windowMs, reason: held.away?.reason },
        `Session ${held.id} (${held.client} → ${held.service}) ended: ${what}; closing its local connections`,
      );
      this.endSession(
        held,
        'resume_window_expired',
        `no path for ${windowMs} ms (${held.away?.reason ?? 'away'})`,
        'local',
      );
    }, windowMs);
    this.events.emit('change', undefined);
  }

  /**
   * A relay is back and answering, and the client is not known to be away: the wait is over, recorded
   * with how long it took.
   */
  private settleAway(held: HeldSession): void {
    if (held.peerDown || !held.relay?.isUp || held.relaySilent) return;
    this.options.clock.clearTimeout(held.resumeTimer);
    held.resumeTimer = undefined;
    const away = held.away;
    if (!away) return;
    held.away = undefined;
    const tookMs = Math.max(0, this.options.clock.monotonic() - away.since);
    held.session.recordRecovery({ kind: away.kind, reason: away.reason, took_ms: Math.round(tookMs) });
    this.log.info(
      { session: held.id, kind: away.kind, took_ms: Math.round(tookMs) },
      `Session ${held.id} recovered after ${Math.round(tookMs)} ms (${away.kind}: ${away.reason})`,
    );
    this.events.emit('change', undefined);
  }

  private scheduleIdleSweep(): void {
    const idleMs = this.idleTimeoutMs();
    // A quarter of the limit: a session is ended at most 25 % late, and the sweep stays cheap.
    const sweepMs = Math.max(250, Math.min(30_000, Math.floor(idleMs / 4)));
    if (this.idleSweep && sweepMs === this.sweepEveryMs) return;
    this.idleSweep?.stop();
    this.sweepEveryMs = sweepMs;
    this.idleSweep = every(this.options.clock, sweepMs, () => this.sweepIdle(), { unref: true });
  }

  private sweepIdle(): void {
    const limit = this.idleTimeoutMs();
    for (const held of [...this.sessions.values()]) {
      const idle = held.session.idleMs();
      if (idle === null || idle < limit) continue;
      this.log.info(
        { session: held.id, client: held.client, idle_ms: idle },
        `Session ${held.id} (${held.client} → ${held.service}) ended: idle for ${Math.round(idle / 1000)} s (limit ${Math.round(limit / 1000)} s)`,
      );
      this.endSession(held, 'idle_timeout', `no stream and no data for ${Math.round(idle / 1000)} s`, 'local');
    }
  }

  // ---- ending ---------------------------------------------------------------------------------------

  private endSession(held: HeldSession, code: SessionEndCode, reason: string, by: 'local' | 'broker'): void {
    if (!this.sessions.has(held.id)) return;
    held.ending = by;
    held.session.close(code, reason);
    // close() emits `closed`, which forgets the session; a session that did not (a fake) is forgotten here.
    this.forget(held, code, reason);
  }

  private forget(held: HeldSession, code: SessionEndCode, reason: string): void {
    if (this.sessions.get(held.id) !== held) return;
    this.sessions.delete(held.id);
    this.closedTotal += 1;
    this.options.clock.clearTimeout(held.resumeTimer);
    this.stopDirect(held, `session ended (${code})`);
    this.dropRelay(held, `session ended (${code})`);
    for (const socket of held.sockets) socket.destroy();
    held.sockets.clear();
    if (held.ending !== 'broker') {
      // Ended here (window, idle, stop, protocol error): the broker tells the client.
      this.link.send({ type: 'session_close', session_id: held.id, reason: `${code}: ${reason}`.slice(0, 512) });
    }
    this.log.info(
      { session: held.id, client: held.client, service: held.service, code, reason },
      `Session ${held.id} (${held.client} → ${held.service}) closed: ${code} (${reason})`,
    );
    this.events.emit('change', undefined);
  }

  private sessionInfo(held: HeldSession): TunnelSessionInfo {
    const info = held.session.info();
    // The broker knows the client is away before our relay does: show it as degraded at once.
    return held.peerDown && info.state === 'active' ? { ...info, state: 'degraded' } : info;
  }

  private resumeWindowMs(): number {
    return this.link.timings?.resume_window_ms ?? FARM_TUNNEL_DEFAULTS.resumeWindowMs;
  }

  private idleTimeoutMs(): number {
    return this.link.timings?.idle_timeout_ms ?? FARM_TUNNEL_DEFAULTS.idleTimeoutMs;
  }
}

/** The link's part of the summary when the tunnel is off (no services, or not started). */
export function offLink(): TunnelSummary['link'] {
  return { state: 'off', broker_url: null, observed_address: null, detail: null, next_attempt_at: null };
}
