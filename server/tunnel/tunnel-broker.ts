import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { every, type Clock } from '../../lib/clock.js';
import { addressHost } from '../../lib/tunnel/address-host.js';
import { CloseCode } from '../../protocol/close-codes.js';
import { FrameKind, peekRoute } from '../../protocol/tunnel-frame.js';
import {
  TUNNEL_PROTOCOL_VERSION,
  type BrokerTimings,
  type ClientToBroker,
  type FarmToBroker,
  type SessionEndCode,
  type SessionState,
  type TunnelPathKind,
} from '../../protocol/tunnel.js';
import { bearerToken, mayReach, type TokenClaims } from '../auth.js';
import type { Verifier } from '../cached-token-verifier.js';
import type { TunnelMetrics } from '../metrics.js';
import { FarmRegistry } from './farm-registry.js';
import { SessionRegistry, type BrokerSession, type SessionLimits } from './session-registry.js';
import { TunnelConnection, type ConnectionFault, type ConnectionTimings } from './tunnel-connection.js';

export interface TunnelBrokerOptions {
  brokerId: string;
  timings: BrokerTimings;
  helloTimeoutMs: number;
  maxBufferedBytes: number;
  limits: SessionLimits;
}

type Session = BrokerSession<TunnelConnection>;
type Open = Extract<ClientToBroker, { type: 'open' }>;

/** A session as GET /api/v1/admin/tunnel/sessions lists it. */
export interface TunnelSessionListing {
  session_id: string;
  route: number;
  client: string;
  client_key: string;
  client_address: string;
  client_connected: boolean;
  agent_id: string;
  service: string;
  state: SessionState;
  created_at: number;
  last_activity_at: number;
  bytes_client_to_farm: number;
  bytes_farm_to_client: number;
  path: TunnelPathKind | null;
  rtt_ms: number | null;
  streams_open: number;
  farm_connected: boolean;
  farm_address: string | null;
}

export interface TunnelFarmListing {
  agent_id: string;
  boot_id: string;
  address: string;
  local_addresses: readonly string[];
  services: readonly string[];
  connected_since: number;
}

/**
 * The tunnel broker (docs/tunnel.md): the /api/v1/tunnel endpoint of the hub. Farm PCs (agent
 * tokens) and remote clients (client tokens) connect here; the broker opens sessions between them,
 * relays their binary frames by route without reading or copying them, keeps a session while a side
 * is away for up to the resume window, and ends what is stale (replaced, restarted, idle) at once.
 */
export class TunnelBroker {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<TunnelConnection>();
  readonly farms: FarmRegistry<TunnelConnection>;
  readonly sessions: SessionRegistry<TunnelConnection>;
  private readonly connectionTimings: ConnectionTimings;
  private draining = false;
  private closed = false;
  /** Set when this hub cannot serve tunnels at all (a worker of several): every upgrade gets 503 with it. */
  private unavailable: string | undefined;
  private idleSweep: { stop(): void } | undefined;

  constructor(
    private readonly options: TunnelBrokerOptions,
    private readonly verifier: Verifier,
    private readonly metrics: TunnelMetrics,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.timings.max_frame_bytes,
      perMessageDeflate: false,
    });
    // A departed farm is remembered as long as any of its sessions can wait for it.
    this.farms = new FarmRegistry(clock, options.timings.resume_window_ms * 2);
    this.sessions = new SessionRegistry(clock, options.limits);
    this.connectionTimings = {
      helloTimeoutMs: options.helloTimeoutMs,
      pingIntervalMs: options.timings.ping_interval_ms,
      pingTimeoutMs: options.timings.ping_timeout_ms,
      maxBufferedBytes: options.maxBufferedBytes,
    };
    metrics.gauges({
      farms: () => this.farms.size,
      clients: () => this.clientCount(),
      sessions: () => this.sessions.countByState(),
    });
  }

  /** Starts the idle sweep (the hub calls it once listening). */
  start(): void {
    const idleMs = this.options.timings.idle_timeout_ms;
    const interval = Math.max(10, Math.min(1000, Math.floor(idleMs / 4)));
    this.idleSweep = every(this.clock, interval, () => this.sweepIdle(), { unref: true });
  }

  /** Refuses every tunnel upgrade with HTTP 503 and this sentence (a hub of several workers). */
  refuseAll(reason: string): void {
    this.unavailable = reason;
  }

  get figures(): TunnelFigures {
    return {
      farms_connected: this.farms.size,
      clients_connected: this.clientCount(),
      ...this.metrics.figures(this.sessions.countByState()),
    };
  }

  listSessions(): TunnelSessionListing[] {
    return [...this.sessions.all()].map((s) => ({
      session_id: s.id,
      route: s.route,
      client: s.clientName,
      client_key: s.clientKey,
      client_address: s.clientAddress,
      client_connected: s.client !== undefined,
      agent_id: s.agentId,
      service: s.service,
      state: s.state,
      created_at: s.createdAt,
      last_activity_at: s.lastActivityAt,
      bytes_client_to_farm: s.bytesClientToFarm,
      bytes_farm_to_client: s.bytesFarmToClient,
      path: s.path,
      rtt_ms: s.rttMs,
      streams_open: Math.max(s.streamsOpen.farm, s.streamsOpen.client),
      farm_connected: s.farm !== undefined,
      farm_address: this.farms.get(s.agentId)?.address ?? s.farmAddress ?? null,
    }));
  }

  listFarms(): TunnelFarmListing[] {
    return [...this.farms.all()].map((f) => ({
      agent_id: f.agentId,
      boot_id: f.bootId,
      address: f.address,
      local_addresses: f.localAddresses,
      services: f.services,
      connected_since: f.connectedAt,
    }));
  }

  // ---- the upgrade ------------------------------------------------------------------------

  /** An upgrade to /api/v1/tunnel: the token decides farm end or client end; refusals are HTTP answers. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const address = formatAddress(req.socket.remoteAddress, req.socket.remotePort);
    const refusal = this.upgradeRefusal();
    if (refusal) {
      this.refuse(socket, 503, refusal, address);
      return;
    }
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      this.refuse(
        socket,
        401,
        'no token: send Authorization: Bearer <token> (an agent token for a farm PC, a client token from ' +
          'farmlink token --client for a remote client)',
        address,
      );
      return;
    }
    this.verifier.verify(token).then(
      (claims) => {
        if (socket.destroyed) return;
        if (claims.role === 'admin') {
          this.refuse(
            socket,
            403,
            'an admin token cannot open a tunnel socket: use an agent token (farm PC) or a client token ' +
              '(farmlink token --client NAME --agents ID)',
            address,
          );
          return;
        }
        const late = this.upgradeRefusal();
        if (late) {
          this.refuse(socket, 503, late, address);
          return;
        }
        this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, claims, address));
      },
      (error: unknown) => {
        if (socket.destroyed) return;
        this.refuse(socket, 401, `token refused: ${(error as Error).message}`, address);
      },
    );
  }

  private upgradeRefusal(): string | undefined {
    if (this.unavailable !== undefined) return this.unavailable;
    if (this.draining || this.closed)
      return 'this hub is draining: connect to the next server in your list (sessions resume there)';
    return undefined;
  }

  private refuse(socket: Duplex, status: 401 | 403 | 503, why: string, address: string): void {
    this.metrics.refused(status);
    this.log.info({ address, status }, `Tunnel upgrade from ${address} refused with HTTP ${status}: ${why}`);
    const text = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' }[status];
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nRefused: ${why}.\n`);
  }

  private onConnection(ws: WebSocket, claims: TokenClaims, address: string): void {
    const role = claims.role === 'agent' ? 'farm' : 'client';
    const conn = new TunnelConnection(ws, role, claims, address, this.clock, this.connectionTimings, {
      control: (c, message, raw) => this.onControl(c, message, raw),
      binary: (c, frame) => this.relay(c, frame),
      closed: (c, code, reason) => this.onClosed(c, code, reason),
      fault: (c, kind, detail) => this.onFault(c, kind, detail),
    });
    this.conns.add(conn);
    this.log.debug({ address, role, name: claims.subject }, `Tunnel socket from ${address} (${conn.label})`);
  }

  private onFault(conn: TunnelConnection, kind: ConnectionFault, detail: string): void {
    this.metrics.socketFault(kind);
    const next =
      kind === 'ping_timeout' || kind === 'slow_consumer'
        ? 'its sessions wait for it to come back (resume window)'
        : kind === 'token_expired'
          ? 'it must reconnect with a new token; its sessions wait for that (resume window)'
          : 'it must reconnect with valid messages';
    this.log.warn(
      { address: conn.address, role: conn.role, name: conn.name, kind, detail },
      `Tunnel socket of ${conn.label} from ${conn.address} closed (${kind}: ${detail}); ${next}`,
    );
  }

  // ---- control messages --------------------------------------------------------------------

  private onControl(conn: TunnelConnection, message: FarmToBroker | ClientToBroker, raw: Buffer): void {
    if (message.type === 'farm_hello' || message.type === 'client_hello') {
      if (conn.helloDone) {
        conn.fail('invalid_message', CloseCode.INVALID_MESSAGE, `${message.type} sent twice`);
        return;
      }
      if (message.protocol !== TUNNEL_PROTOCOL_VERSION) {
        conn.close(
          CloseCode.UNSUPPORTED_PROTOCOL,
          `tunnel protocol ${message.protocol} is not spoken here (this broker speaks ${TUNNEL_PROTOCOL_VERSION})`,
        );
        return;
      }
      if (message.type === 'farm_hello') this.onFarmHello(conn, message);
      else this.onClientHello(conn, message.boot_id);
      return;
    }
    if (!conn.helloDone) {
      conn.fail('invalid_message', CloseCode.INVALID_MESSAGE, `${message.type} before ${conn.role}_hello`);
      return;
    }
    switch (message.type) {
      case 'address_change':
        this.onAddressChange(conn, message.local_addresses);
        return;
      case 'session_accept':
        this.onAccept(conn, message.session_id, message.route);
        return;
      case 'session_refuse':
        this.onRefuse(conn, message.session_id, message.route, message.code, message.reason);
        return;
      case 'open':
        this.onOpen(conn, message);
        return;
      case 'signal':
        this.onSignal(conn, message.session_id, raw);
        return;
      case 'session_close':
        this.onSessionClose(conn, message.session_id, message.reason);
        return;
      case 'session_report': {
        const session = this.partyTo(conn, message.session_id);
        if (!session) return;
        session.path = message.path;
        session.rttMs = message.rtt_ms;
        session.streamsOpen[conn.role] = message.streams_open;
        return;
      }
    }
  }

  private welcome(conn: TunnelConnection): void {
    conn.send({
      type: 'welcome',
      protocol: TUNNEL_PROTOCOL_VERSION,
      broker_id: this.options.brokerId,
      role: conn.role,
      observed_address: conn.address,
      timings: this.options.timings,
    });
  }

  private onClientHello(conn: TunnelConnection, bootId: string): void {
    conn.helloAccepted(bootId);
    this.welcome(conn);
    this.log.info(
      { client: conn.name, address: conn.address, boot_id: bootId },
      `Tunnel client ${conn.name} connected from ${conn.address}`,
    );
  }

  private onFarmHello(conn: TunnelConnection, hello: Extract<FarmToBroker, { type: 'farm_hello' }>): void {
    if (hello.agent_id !== conn.name) {
      this.metrics.socketFault('forbidden');
      this.log.warn(
        { address: conn.address, agent_id: hello.agent_id, token_subject: conn.name },
        `Tunnel farm_hello from ${conn.address} says ${hello.agent_id} but its token is ${conn.name}'s: closed 4403`,
      );
      conn.close(
        CloseCode.FORBIDDEN,
        `farm_hello says agent_id "${hello.agent_id}" but the token is for "${conn.name}"`,
      );
      return;
    }
    conn.helloAccepted(hello.boot_id);
    const agentId = hello.agent_id;
    const outcome = this.farms.connect({
      agentId,
      conn,
      bootId: hello.boot_id,
      services: hello.services,
      localAddresses: hello.local_addresses,
      address: conn.address,
    });
    this.welcome(conn);
    if (outcome.replaced && !outcome.replaced.closed) {
      outcome.replaced.close(CloseCode.REPLACED, `replaced by a new connection from ${conn.address}`);
    }
    let offered = 0;
    let ended = 0;
    for (const session of this.sessions.ofAgent(agentId)) {
      if (session.farmBootId === undefined) {
        // Never accepted by a farm yet: an open waiting for this farm, or one offered to the socket just replaced.
        if (session.offeredTo === conn) continue;
        if (!hello.services.includes(session.service)) {
          this.endSession(session, 'unknown_service', `${agentId} does not expose "${session.service}"`);
          continue;
        }
        this.offer(session, conn, session.pending?.resume ?? false);
        this.setTimer(session, this.options.timings.ping_timeout_ms, () => this.answerTimeout(session));
        offered += 1;
      } else if (session.farmBootId === hello.boot_id) {
        // The same process of the farm, back on a new socket: it still holds the session.
        session.farm = undefined;
        this.settle(session);
        // A new socket always has a new port: only another host is a move (any direct path is stale).
        const moved =
          session.farmAddress === undefined || addressHost(session.farmAddress) !== addressHost(conn.address);
        if (moved && session.client) {
          session.client.send({
            type: 'peer_state',
            session_id: session.id,
            state: 'moved',
            reason: `${agentId} reconnected from ${conn.address} (was ${session.farmAddress ?? 'unknown'})`,
            address: conn.address,
          });
        }
        this.offer(session, conn, true);
        offered += 1;
      } else {
        this.endSession(session, 'peer_restarted', `${agentId} restarted (a new boot id); open a new session`);
        ended += 1;
      }
    }
    const how = outcome.replaced
      ? `replaced by a new connection from ${conn.address}`
      : outcome.arrival === 'first'
        ? `connected from ${conn.address}`
        : outcome.arrival === 'reconnect'
          ? `reconnected from ${conn.address}`
          : `restarted and connected from ${conn.address}`;
    const moved = outcome.movedFrom !== undefined ? ` (moved from ${outcome.movedFrom})` : '';
    const parts = [
      `${offered} session${offered === 1 ? '' : 's'} offered${outcome.arrival === 'first' ? '' : ' for resume'}`,
      ...(ended > 0 ? [`${ended} ended (peer_restarted)`] : []),
    ];
    this.log.info(
      {
        agent_id: agentId,
        address: conn.address,
        boot_id: hello.boot_id,
        arrival: outcome.arrival,
        replaced: outcome.replaced !== undefined,
        moved_from: outcome.movedFrom,
        services: hello.services,
        offered,
        ended,
      },
      `Farm ${agentId} ${how}${moved}; ${parts.join(', ')}`,
    );
  }

  private onAddressChange(conn: TunnelConnection, addresses: readonly string[]): void {
    if (!this.farms.recordLocalAddresses(conn.name, conn, addresses)) return;
    let told = 0;
    for (const session of this.sessions.ofAgent(conn.name)) {
      if (session.farm !== conn || !session.client) continue;
      session.client.send({
        type: 'peer_state',
        session_id: session.id,
        state: 'moved',
        reason: `${conn.name}'s addresses changed (${addresses.join(', ') || 'none'}); any direct path is stale`,
        address: conn.address,
      });
      told += 1;
    }
    this.log.info(
      { agent_id: conn.name, local_addresses: addresses, clients_told: told },
      `Farm ${conn.name} reports new local addresses (${addresses.join(', ') || 'none'}); told ${told} client session${told === 1 ? '' : 's'} it moved`,
    );
  }

  private onOpen(conn: TunnelConnection, open: Open): void {
    const fail = (code: SessionEndCode, reason: string): void => {
      this.metrics.openFailed(code);
      conn.send({ type: 'open_failed', request_id: open.request_id, code, reason });
      this.log.info(
        { client: conn.name, agent_id: open.agent_id, service: open.service, code, resume: open.resume },
        `Tunnel open by ${conn.name} → ${open.agent_id}/${open.service} refused (${code}): ${reason}`,
      );
    };
    if (conn.role !== 'client') return;
    if (!mayReach(conn.claims, open.agent_id)) {
      fail('not_authorized', `client ${conn.name}'s token does not allow ${open.agent_id}`);
      return;
    }
    if (open.resume !== undefined) {
      const known = this.sessions.get(open.resume);
      if (known) {
        if (known.clientName !== conn.name) {
          fail('not_authorized', `session ${short(known.id)} belongs to another client`);
          return;
        }
        if (known.agentId !== open.agent_id || known.service !== open.service) {
          fail('protocol_error', `session ${short(known.id)} is to ${known.agentId}/${known.service}`);
          return;
        }
        this.reattachClient(known, conn, open);
        return;
      }
    }
    const existing = this.sessions.byClientKey(conn.name, open.client_key);
    if (existing && existing.id !== open.resume) {
      this.endSession(
        existing,
        'replaced',
        `client ${conn.name} opened ${open.agent_id}/${open.service} again with the same client key`,
      );
    }
    const farm = this.farms.get(open.agent_id);
    if (!farm && open.wait !== true) {
      fail('farm_unavailable', `${open.agent_id} is not connected to this hub`);
      return;
    }
    if (farm && !farm.services.includes(open.service)) {
      const list = farm.services.length > 0 ? farm.services.join(', ') : 'none';
      fail('unknown_service', `${open.agent_id} does not expose "${open.service}" (it exposes: ${list})`);
      return;
    }
    const limit = this.sessions.limitProblem(open.agent_id, conn.name);
    if (limit) {
      fail('limit_reached', limit);
      return;
    }
    const resume = open.resume !== undefined;
    const session = this.sessions.create({
      ...(open.resume !== undefined ? { id: open.resume } : {}),
      clientName: conn.name,
      clientKey: open.client_key,
      agentId: open.agent_id,
      service: open.service,
      client: conn,
      pending: { requestId: open.request_id, resume, wait: open.wait === true },
    });
    if (farm) {
      this.offer(session, farm.conn, resume);
      this.setTimer(session, this.options.timings.ping_timeout_ms, () => this.answerTimeout(session));
    } else {
      this.log.info(
        { session: session.id, client: conn.name, agent_id: open.agent_id, service: open.service },
        `Tunnel session ${short(session.id)} ${conn.name} → ${open.agent_id}/${open.service} waits for ` +
          `${open.agent_id} to connect (up to ${this.options.timings.resume_window_ms} ms)`,
      );
      this.setTimer(session, this.options.timings.resume_window_ms, () =>
        this.endSession(
          session,
          'farm_unavailable',
          `${open.agent_id} did not connect within the resume window (${this.options.timings.resume_window_ms} ms)`,
        ),
      );
    }
  }

  /** A client back on a new socket resumes a session this broker holds. */
  private reattachClient(session: Session, conn: TunnelConnection, open: Open): void {
    session.client = conn;
    session.clientAddress = conn.address;
    if (session.pending) {
      // Still being opened: the answer goes to the new socket, under the new request.
      session.pending = { requestId: open.request_id, resume: session.pending.resume, wait: open.wait === true };
      return;
    }
    const farm = session.farm;
    conn.send({
      type: 'opened',
      request_id: open.request_id,
      session_id: session.id,
      route: session.route,
      agent_id: session.agentId,
      service: session.service,
      resumed: true,
      farm_address: farm?.address ?? session.farmAddress ?? '',
    });
    this.metrics.opened(true);
    if (farm) {
      farm.send({
        type: 'peer_state',
        session_id: session.id,
        state: 'up',
        reason: `client ${conn.name} is back from ${conn.address}`,
        address: conn.address,
        route: session.route,
      });
    } else {
      conn.send({
        type: 'peer_state',
        session_id: session.id,
        state: 'down',
        reason: `${session.agentId} is away; the session waits for it up to the resume window`,
      });
    }
    this.settle(session);
    this.log.info(
      { session: session.id, client: conn.name, agent_id: session.agentId, route: session.route },
      `Tunnel session ${short(session.id)} ${conn.name} → ${session.agentId}/${session.service} resumed by the ` +
        `client from ${conn.address} (route ${session.route})${farm ? '' : `; ${session.agentId} is still away`}`,
    );
  }

  private offer(session: Session, farm: TunnelConnection, resume: boolean): void {
    session.offeredTo = farm;
    farm.send({
      type: 'session_open',
      session_id: session.id,
      route: session.route,
      service: session.service,
      client: { name: session.clientName, address: session.clientAddress },
      resume,
    });
  }

  private answerTimeout(session: Session): void {
    if (!session.pending) return;
    this.endSession(
      session,
      'farm_unavailable',
      `${session.agentId} did not answer the open within ${this.options.timings.ping_timeout_ms} ms`,
    );
  }

  private onAccept(conn: TunnelConnection, id: string, route: number): void {
    const session = this.sessions.get(id);
    if (session?.offeredTo !== conn || session.route !== route) {
      this.log.debug({ agent_id: conn.name, session: id, route }, 'Tunnel session_accept for no open offer: ignored');
      return;
    }
    session.offeredTo = undefined;
    session.farm = conn;
    session.farmBootId = conn.bootId;
    session.farmAddress = conn.address;
    const pending = session.pending;
    session.pending = undefined;
    this.clock.clearTimeout(session.timer);
    session.timer = undefined;
    const client = session.client;
    if (pending && client) {
      client.send({
        type: 'opened',
        request_id: pending.requestId,
        session_id: session.id,
        route: session.route,
        agent_id: session.agentId,
        service: session.service,
        resumed: pending.resume,
        farm_address: conn.address,
      });
      this.metrics.opened(pending.resume);
      this.sessions.touch(session);
      this.log.info(
        { session: session.id, client: session.clientName, agent_id: session.agentId, route: session.route },
        `Tunnel session ${short(session.id)} ${session.clientName} → ${session.agentId}/${session.service} ` +
          `${pending.resume ? 'resumed' : 'opened'} (route ${session.route})`,
      );
    } else if (client) {
      client.send({
        type: 'peer_state',
        session_id: session.id,
        state: 'up',
        reason: `${session.agentId} is back from ${conn.address}`,
        address: conn.address,
        route: session.route,
      });
      this.log.info(
        { session: session.id, client: session.clientName, agent_id: session.agentId, route: session.route },
        `Tunnel session ${short(session.id)} ${session.clientName} → ${session.agentId}/${session.service} ` +
          `resumed by the farm (route ${session.route})`,
      );
    }
    this.settle(session);
  }

  private onRefuse(conn: TunnelConnection, id: string, route: number, code: SessionEndCode, reason: string): void {
    const session = this.sessions.get(id);
    if (session?.offeredTo !== conn || session.route !== route) return;
    session.offeredTo = undefined;
    this.endSession(session, code, `${session.agentId} refused: ${reason}`, conn);
  }

  private onSignal(conn: TunnelConnection, id: string, raw: Buffer): void {
    const session = this.partyTo(conn, id);
    if (!session) return;
    const other = conn === session.farm ? session.client : session.farm;
    if (!other?.sendRaw(raw, false)) this.metrics.dropped('signal_peer_away');
  }

  private onSessionClose(conn: TunnelConnection, id: string, reason: string): void {
    const session = this.partyTo(conn, id);
    if (!session) return;
    this.endSession(session, 'closed', reason || `closed by ${conn.label}`, conn);
  }

  /** The session `id` when `conn` is one of its sides (or the farm it was offered to), else undefined. */
  private partyTo(conn: TunnelConnection, id: string): Session | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.farm === conn || session.client === conn || session.offeredTo === conn) return session;
    return undefined;
  }

  // ---- the relay ---------------------------------------------------------------------------

  /** A binary frame: to the other side of its route's session, as it came (no copy, no parsing). */
  private relay(conn: TunnelConnection, frame: Buffer): void {
    const route = peekRoute(frame);
    if (route === undefined) {
      this.metrics.dropped('short_frame');
      return;
    }
    const session = this.sessions.byRouteNumber(route);
    if (!session) {
      // A race after an end: frames already on their way when the session was removed.
      this.metrics.dropped('unknown_route');
      return;
    }
    const fromFarm = conn === session.farm;
    if (!fromFarm && conn !== session.client) {
      this.metrics.dropped('not_a_party');
      return;
    }
    const to = fromFarm ? session.client : session.farm;
    if (!to) {
      this.metrics.dropped('peer_away');
      return;
    }
    // Stream frames keep a session from idling; health pings, acks and resumes do not.
    if ((frame[0] ?? 0) <= FrameKind.CREDIT) this.sessions.touch(session);
    if (!to.sendRaw(frame, true)) {
      this.metrics.dropped('peer_away');
      return;
    }
    if (fromFarm) session.bytesFarmToClient += frame.length;
    else session.bytesClientToFarm += frame.length;
    this.metrics.relayed(fromFarm ? 'farm_to_client' : 'client_to_farm', frame.length);
  }

  // ---- sides going away, timers, ends ------------------------------------------------------

  private onClosed(conn: TunnelConnection, code: number, reason: string): void {
    this.conns.delete(conn);
    if (this.draining || this.closed || !conn.helloDone) return;
    if (conn.role === 'farm') this.farmGone(conn, code, reason);
    else this.clientGone(conn, code, reason);
  }

  private farmGone(conn: TunnelConnection, code: number, reason: string): void {
    const registered = this.farms.disconnect(conn.name, conn);
    let waiting = 0;
    for (const session of this.sessions.ofAgent(conn.name)) {
      if (session.offeredTo === conn) {
        session.offeredTo = undefined;
        if (session.pending?.wait === true) {
          this.setTimer(session, this.options.timings.resume_window_ms, () =>
            this.endSession(session, 'farm_unavailable', `${conn.name} did not come back within the resume window`),
          );
        } else if (session.pending) {
          this.endSession(session, 'farm_unavailable', `${conn.name} disconnected before answering`);
          continue;
        }
      }
      if (session.farm !== conn) continue;
      session.farm = undefined;
      waiting += 1;
      session.client?.send({
        type: 'peer_state',
        session_id: session.id,
        state: 'down',
        reason: `${conn.name} went away (${describeClose(code, reason)}); waiting up to ${this.options.timings.resume_window_ms} ms`,
      });
      this.settle(session);
    }
    if (!registered) return;
    this.log.info(
      { agent_id: conn.name, address: conn.address, close_code: code, reason, sessions_waiting: waiting },
      `Farm ${conn.name} disconnected (${describeClose(code, reason)}); ${waiting} ` +
        `session${waiting === 1 ? ' waits' : 's wait'} for it up to ${this.options.timings.resume_window_ms} ms`,
    );
  }

  private clientGone(conn: TunnelConnection, code: number, reason: string): void {
    let waiting = 0;
    for (const session of [...this.sessions.all()]) {
      if (session.client !== conn) continue;
      if (session.pending) {
        this.endSession(session, 'closed', `client ${conn.name} went away before the session opened`, conn);
        continue;
      }
      session.client = undefined;
      waiting += 1;
      session.farm?.send({
        type: 'peer_state',
        session_id: session.id,
        state: 'down',
        reason: `client ${conn.name} went away (${describeClose(code, reason)}); waiting up to ${this.options.timings.resume_window_ms} ms`,
      });
      this.settle(session);
    }
    this.log.info(
      { client: conn.name, address: conn.address, close_code: code, sessions_waiting: waiting },
      `Tunnel client ${conn.name} from ${conn.address} disconnected (${describeClose(code, reason)}); ${waiting} ` +
        `session${waiting === 1 ? ' waits' : 's wait'} for it up to ${this.options.timings.resume_window_ms} ms`,
    );
  }

  /**
   * An opened session's state from who is there: both → active; a side away → degraded, and the
   * resume window runs from when it left (not restarted by a reconnect that did not finish).
   */
  private settle(session: Session): void {
    if (session.pending) return;
    if (session.farm && session.client) {
      session.state = 'active';
      session.awaySince = undefined;
      this.clock.clearTimeout(session.timer);
      session.timer = undefined;
      return;
    }
    session.state = 'degraded';
    if (session.awaySince !== undefined) return;
    session.awaySince = this.clock.monotonic();
    const windowMs = this.options.timings.resume_window_ms;
    this.setTimer(session, windowMs, () => {
      const away = session.farm ? `client ${session.clientName}` : session.agentId;
      this.endSession(
        session,
        'resume_window_expired',
        `${away} was away longer than the resume window (${windowMs} ms)`,
      );
    });
  }

  private setTimer(session: Session, ms: number, fn: () => void): void {
    this.clock.clearTimeout(session.timer);
    session.timer = this.clock.setTimeout(() => {
      session.timer = undefined;
      fn();
    }, ms);
  }

  private sweepIdle(): void {
    const idleMs = this.options.timings.idle_timeout_ms;
    for (const session of this.sessions.idle(idleMs)) {
      this.endSession(session, 'idle_timeout', `no stream open and no data for ${idleMs} ms`);
    }
  }

  /**
   * Ends a session everywhere: the client is told (`open_failed` if it was still waiting for the
   * open, else `session_closed`), and so is the farm, except the side that asked for the end.
   */
  private endSession(session: Session, code: SessionEndCode, reason: string, except?: TunnelConnection): void {
    if (!this.sessions.remove(session, code)) return;
    const pending = session.pending;
    const client = session.client;
    if (client && client !== except) {
      if (pending) client.send({ type: 'open_failed', request_id: pending.requestId, code, reason });
      else client.send({ type: 'session_closed', session_id: session.id, code, reason });
    }
    const farm = session.farm ?? session.offeredTo;
    if (farm && farm !== except) farm.send({ type: 'session_closed', session_id: session.id, code, reason });
    this.metrics.ended(code);
    this.log.info(
      {
        session: session.id,
        client: session.clientName,
        agent_id: session.agentId,
        service: session.service,
        code,
        reason,
        bytes_client_to_farm: session.bytesClientToFarm,
        bytes_farm_to_client: session.bytesFarmToClient,
      },
      `Tunnel session ${short(session.id)} ${session.clientName} → ${session.agentId}/${session.service} ended ` +
        `(${code}): ${reason}`,
    );
  }

  // ---- drain and shutdown ------------------------------------------------------------------

  /** Every tunnel socket is told `draining` and closed 1001: both ends resume on their next server. */
  drain(reason: string): void {
    if (this.draining) return;
    this.draining = true;
    const count = this.conns.size;
    for (const conn of this.conns) {
      conn.send({ type: 'draining', reason });
      conn.close(CloseCode.GOING_AWAY, `hub is draining (${reason}); resume on the next server`);
    }
    this.stopTimers();
    this.log.info(
      { tunnel_sockets: count, sessions: this.sessions.size },
      `Tunnel broker draining: told ${count} tunnel socket${count === 1 ? '' : 's'} to move to the next server and ` +
        `closed them (1001); their ${this.sessions.size} session${this.sessions.size === 1 ? '' : 's'} resume there`,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    for (const conn of this.conns) conn.close(CloseCode.GOING_AWAY, 'hub shutting down');
    const deadline = this.clock.monotonic() + 1000;
    while (this.conns.size > 0 && this.clock.monotonic() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const conn of this.conns) conn.terminate();
    this.wss.close();
  }

  private stopTimers(): void {
    this.idleSweep?.stop();
    for (const session of this.sessions.all()) {
      this.clock.clearTimeout(session.timer);
      session.timer = undefined;
    }
  }

  private clientCount(): number {
    let n = 0;
    for (const conn of this.conns) if (conn.role === 'client' && conn.helloDone) n += 1;
    return n;
  }
}

/** /metrics' JSON view of the broker. */
export type TunnelFigures = { farms_connected: number; clients_connected: number } & ReturnType<
  TunnelMetrics['figures']
>;

/** "host:port", IPv6 in brackets, IPv4-mapped IPv6 as plain IPv4. */
export function formatAddress(host: string | undefined, port: number | undefined): string {
  const h = (host ?? '?').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? '?'}`;
}

function short(id: string): string {
  return `${id.slice(0, 8)}…`;
}

function describeClose(code: number, reason: string): string {
  return reason ? `close ${code} "${reason}"` : `close ${code}`;
}
