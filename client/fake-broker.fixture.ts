import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { systemClock } from '../lib/clock.js';
import { TypedEmitter } from '../lib/events.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import type { TunnelPath, TunnelPathEvents } from '../lib/tunnel/tunnel-path.js';
import { StreamResetCode, peekRoute } from '../protocol/tunnel-frame.js';
import { TUNNEL_PROTOCOL_VERSION, type BrokerTimings, type SessionEndCode } from '../protocol/tunnel.js';

export const FAKE_TIMINGS: BrokerTimings = {
  ping_interval_ms: 500,
  ping_timeout_ms: 3000,
  resume_window_ms: 30_000,
  idle_timeout_ms: 300_000,
  max_frame_bytes: 256 * 1024,
};

/** The broker's socket to the client, as the farm session's relay path (route-tagged frames). */
class SocketPath implements TunnelPath {
  readonly kind = 'relay' as const;
  readonly events = new TypedEmitter<TunnelPathEvents>();
  private up = true;
  constructor(
    readonly route: number,
    private readonly ws: WebSocket,
  ) {}
  get isUp(): boolean {
    return this.up;
  }
  get buffered(): number {
    return this.ws.bufferedAmount;
  }
  send(frame: Buffer): boolean {
    if (!this.up) return false;
    this.ws.send(frame, { binary: true });
    return true;
  }
  down(reason: string): void {
    if (!this.up) return;
    this.up = false;
    this.events.emit('down', { reason });
  }
}

interface OpenRequest {
  request_id: number;
  agent_id: string;
  service: string;
  client_key: string;
  resume?: string;
  wait?: boolean;
}

/**
 * A stand-in for the hub's broker with the farm built in, for the client's unit tests: it speaks the
 * client's side of the control plane, and serves each session with a farm-role TunnelSession that dials
 * `target` for every stream. Tests decide how opens are answered (`onOpen`) and push broker messages.
 */
export class FakeBrokerWithFarm {
  readonly opens: OpenRequest[] = [];
  readonly closes: string[] = [];
  private readonly wss: WebSocketServer;
  private client: WebSocket | undefined;
  private farm: { session: TunnelSession; path: SocketPath | undefined; route: number } | undefined;
  private nextRoute = 1;
  private nextSession = 1;
  /** How to answer an open: 'open' (or resume when possible), or an open_failed code, or 'hold' (no answer yet). */
  onOpen: (request: OpenRequest) => 'open' | 'hold' | SessionEndCode = () => 'open';
  private held: OpenRequest[] = [];

  constructor(private readonly target: { host: string; port: number }) {
    this.wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    this.wss.on('connection', (ws) => {
      this.client = ws;
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) {
          const route = peekRoute(data);
          if (this.farm?.path && route === this.farm.route) this.farm.path.events.emit('frame', data);
          return;
        }
        const msg = JSON.parse(data.toString()) as { type: string } & Record<string, unknown>;
        if (msg.type === 'client_hello') this.send(ws, this.welcome());
        if (msg.type === 'open') this.handleOpen(msg as unknown as OpenRequest);
        if (msg.type === 'session_close') this.closes.push(String(msg.reason));
      });
      ws.on('close', () => {
        this.farm?.path?.down('client socket closed');
        if (this.farm) this.farm.path = undefined;
      });
    });
  }

  ready(): Promise<this> {
    return new Promise((resolve) => {
      if (this.wss.address()) resolve(this);
      else this.wss.once('listening', () => resolve(this));
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  get sessionId(): string | undefined {
    return this.farm?.session.id;
  }

  private welcome(): object {
    return {
      type: 'welcome',
      protocol: TUNNEL_PROTOCOL_VERSION,
      broker_id: 'fake',
      role: 'client',
      observed_address: '127.0.0.1:1',
      timings: FAKE_TIMINGS,
    };
  }

  private send(ws: WebSocket | undefined, message: object): void {
    ws?.send(JSON.stringify(message));
  }

  private handleOpen(request: OpenRequest): void {
    this.opens.push(request);
    const answer = this.onOpen(request);
    if (answer === 'hold') {
      this.held.push(request);
      return;
    }
    this.answer(request, answer);
  }

  /** Answers the opens held so far with `answer`. */
  release(answer: 'open' | SessionEndCode = 'open'): void {
    for (const request of this.held.splice(0)) this.answer(request, answer);
  }

  private answer(request: OpenRequest, answer: 'open' | SessionEndCode): void {
    const ws = this.client;
    if (!ws) return;
    if (answer !== 'open') {
      this.send(ws, { type: 'open_failed', request_id: request.request_id, code: answer, reason: `fake: ${answer}` });
      return;
    }
    const resumed = request.resume !== undefined && request.resume === this.farm?.session.id;
    if (request.resume !== undefined && !resumed) {
      this.send(ws, { type: 'open_failed', request_id: request.request_id, code: 'unknown_session', reason: 'gone' });
      return;
    }
    const route = this.nextRoute++;
    if (!resumed) {
      this.farm?.session.close('replaced', 'a new session');
      const id = (this.nextSession++).toString(16).padStart(32, '0');
      const session = new TunnelSession({
        role: 'farm',
        sessionId: id,
        peer: 'tester',
        service: request.service,
        clock: systemClock,
        pingIntervalMs: FAKE_TIMINGS.ping_interval_ms,
        pingTimeoutMs: FAKE_TIMINGS.ping_timeout_ms,
      });
      session.events.on('stream', (stream) => {
        const socket = net.connect(this.target.port, this.target.host);
        socket.once('connect', () => {
          stream.accept();
          socket.pipe(stream).pipe(socket);
        });
        socket.once('error', (error) => {
          stream.reset(StreamResetCode.CONNECT_FAILED, error.message);
        });
        stream.on('error', () => socket.destroy());
      });
      this.farm = { session, path: undefined, route };
    }
    const farm = this.farm;
    if (!farm) return;
    farm.route = route;
    farm.path?.down('resumed on another route');
    farm.path = new SocketPath(route, ws);
    farm.session.attach(farm.path);
    this.send(ws, {
      type: 'opened',
      request_id: request.request_id,
      session_id: farm.session.id,
      route,
      agent_id: request.agent_id,
      service: request.service,
      resumed,
      farm_address: '127.0.0.1:2',
    });
  }

  /** The farm restarted (or, with `closed`, stopped on purpose; `idle_timeout`, idle): its session is gone, the client is told. */
  farmRestarted(code: 'peer_restarted' | 'closed' | 'idle_timeout' = 'peer_restarted'): void {
    const farm = this.farm;
    if (!farm) return;
    this.farm = undefined;
    farm.path?.down('farm restarted');
    farm.session.close(code, 'farm restarted');
    this.send(this.client, {
      type: 'session_closed',
      session_id: farm.session.id,
      code,
      reason: `fake: ${code}`,
    });
  }

  /** The farm went away (the session waits for it). */
  farmDown(): void {
    if (!this.farm) return;
    this.send(this.client, {
      type: 'peer_state',
      session_id: this.farm.session.id,
      state: 'down',
      reason: 'farm gone',
    });
  }

  /** The farm is back from another address (it reconnected from there, or said its addresses changed). */
  farmMoved(address: string): void {
    if (!this.farm) return;
    this.send(this.client, {
      type: 'peer_state',
      session_id: this.farm.session.id,
      state: 'moved',
      reason: `farm moved to ${address}`,
      address,
    });
  }

  /** Drops the client's socket, as a network failure would. */
  dropClient(): void {
    this.client?.terminate();
  }

  close(): Promise<void> {
    this.farm?.session.close('closed', 'test over');
    for (const c of this.wss.clients) c.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
