import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { mintToken } from '../../server/auth.js';
import { FrameKind, encodeFrame, peekRoute } from '../../protocol/tunnel-frame.js';
import { TUNNEL_PROTOCOL_VERSION, TUNNEL_WS_PATH } from '../../protocol/tunnel.js';
import { TEST_SECRET, type HubProcess } from './hub-process.js';
import { waitUntil } from './wait.js';

/**
 * A hand-driven tunnel end for broker tests: a raw WebSocket to /api/v1/tunnel that speaks the
 * JSON control messages (protocol/tunnel.ts) and binary frames (protocol/tunnel-frame.ts) exactly
 * as a test tells it to, and records everything the broker sends back. It is a farm end or a
 * client end only by the token it connects with.
 */

export type TunnelMessage = { type: string } & Record<string, unknown>;

export interface CloseInfo {
  code: number;
  reason: string;
}

const open = new Set<TunnelPeer>();

export class TunnelPeer {
  readonly ws: WebSocket;
  readonly messages: TunnelMessage[] = [];
  readonly frames: Buffer[] = [];
  readonly closed: Promise<CloseInfo>;
  /** The HTTP answer when the broker refused the upgrade. */
  rejection: { status: number; body: string } | undefined;
  closeInfo: CloseInfo | undefined;
  /** Every message before this index has been looked at by next(): it waits for newer ones only. */
  private cursor = 0;
  private nextRequest = 1;

  private constructor(url: string, token: string | undefined, options: { localAddress?: string } = {}) {
    this.ws = new WebSocket(url, {
      headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
      perMessageDeflate: false,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
    open.add(this);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.frames.push(data);
      else this.messages.push(JSON.parse(data.toString('utf8')) as TunnelMessage);
    });
    this.ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        this.rejection = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
        this.ws.terminate();
      });
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code: number, reason: Buffer) => {
        open.delete(this);
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
      });
    });
  }

  static url(hub: HubProcess): string {
    return `ws://127.0.0.1:${hub.port}${TUNNEL_WS_PATH}`;
  }

  /** Starts the upgrade without waiting (for upgrades the broker refuses). */
  static dial(hub: HubProcess, token: string | undefined, options: { localAddress?: string } = {}): TunnelPeer {
    return new TunnelPeer(TunnelPeer.url(hub), token, options);
  }

  /** Opens the socket and waits until the upgrade succeeded. */
  static async connect(hub: HubProcess, token: string, options: { localAddress?: string } = {}): Promise<TunnelPeer> {
    const peer = TunnelPeer.dial(hub, token, options);
    await waitUntil(`tunnel socket open to ${TunnelPeer.url(hub)}`, () => {
      if (peer.ws.readyState === WebSocket.OPEN) return true;
      if (peer.rejection) throw new Error(`upgrade refused: ${peer.rejection.status} ${peer.rejection.body}`);
      if (peer.closeInfo) throw new Error(`closed: ${JSON.stringify(peer.closeInfo)}`);
      return false;
    });
    return peer;
  }

  /** A farm end for `agentId`, hello sent and welcomed. */
  static async farm(
    hub: HubProcess,
    agentId: string,
    options: { bootId?: string; services?: string[]; localAddress?: string; localAddresses?: string[] } = {},
  ): Promise<TunnelPeer> {
    const peer = await TunnelPeer.connect(hub, await mintToken(TEST_SECRET, { role: 'agent', agentId }), options);
    peer.send({
      type: 'farm_hello',
      protocol: TUNNEL_PROTOCOL_VERSION,
      agent_id: agentId,
      boot_id: options.bootId ?? bootId(),
      services: options.services ?? ['adb'],
      local_addresses: options.localAddresses ?? ['192.168.1.17'],
      version: '0.0.0-test',
    });
    await peer.next('welcome');
    return peer;
  }

  /** A client end named `name` allowed to reach `agents`, hello sent and welcomed. */
  static async client(
    hub: HubProcess,
    name: string,
    agents: string[] = ['*'],
    options: { localAddress?: string } = {},
  ): Promise<TunnelPeer> {
    const token = await mintToken(TEST_SECRET, { role: 'client', clientName: name, agents });
    const peer = await TunnelPeer.connect(hub, token, options);
    peer.send({ type: 'client_hello', protocol: TUNNEL_PROTOCOL_VERSION, boot_id: bootId(), version: '0.0.0-test' });
    await peer.next('welcome');
    return peer;
  }

  static terminateAll(): void {
    for (const peer of open) peer.ws.terminate();
    open.clear();
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  sendFrame(frame: Buffer): void {
    this.ws.send(frame, { binary: true });
  }

  /** A DATA frame for `route` carrying `body`. */
  sendData(route: number, seq: number, stream: number, body: Buffer): void {
    this.sendFrame(encodeFrame(FrameKind.DATA, route, seq, stream, body));
  }

  /**
   * The first message of `type` (matching `where`) received after the last one next() returned; the
   * cursor moves past it. Fails at once if the socket closes first.
   */
  async next(
    type: string,
    where: (m: TunnelMessage) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<TunnelMessage> {
    const found = await waitUntil(
      `a "${type}" message (got: ${this.messages
        .slice(this.cursor)
        .map((m) => m.type)
        .join(', ')}; closed: ${JSON.stringify(this.closeInfo)})`,
      () => {
        for (let i = this.cursor; i < this.messages.length; i += 1) {
          const m = this.messages[i]!;
          if (m.type === type && where(m)) return { m, i };
        }
        if (this.closeInfo) throw new Error(`closed ${JSON.stringify(this.closeInfo)} before a "${type}" message`);
        return undefined;
      },
      timeoutMs,
    );
    this.cursor = found.i + 1;
    return found.m;
  }

  /** Any message of `type` for `sessionId` received so far (not waiting, cursor unchanged). */
  has(type: string, where: (m: TunnelMessage) => boolean = () => true): boolean {
    return this.messages.some((m) => m.type === type && where(m));
  }

  /** Sends `open` and returns the answer (`opened` or `open_failed`) to it. */
  async open(
    agentId: string,
    service: string,
    options: { clientKey?: string; resume?: string; wait?: boolean } = {},
  ): Promise<TunnelMessage> {
    const requestId = this.nextRequest++;
    this.send({
      type: 'open',
      request_id: requestId,
      agent_id: agentId,
      service,
      client_key: options.clientKey ?? `key-${requestId}-${randomBytes(4).toString('hex')}`,
      ...(options.resume !== undefined ? { resume: options.resume } : {}),
      ...(options.wait !== undefined ? { wait: options.wait } : {}),
    });
    return waitUntil(`the answer to open #${requestId}`, () => {
      const answer = this.messages.find(
        (m) => (m.type === 'opened' || m.type === 'open_failed') && m.request_id === requestId,
      );
      if (!answer && this.closeInfo) throw new Error(`closed ${JSON.stringify(this.closeInfo)} before the answer`);
      return answer;
    });
  }

  /** Farm end: waits for session_open (for `sessionId` if given) and accepts it. */
  async accept(sessionId?: string): Promise<TunnelMessage> {
    const offer = await this.next('session_open', (m) => sessionId === undefined || m.session_id === sessionId);
    this.send({ type: 'session_accept', session_id: offer.session_id, route: offer.route });
    return offer;
  }

  /** Binary frames received with this route. */
  framesFor(route: number): Buffer[] {
    return this.frames.filter((f) => peekRoute(f) === route);
  }

  /** Stops reading the TCP socket: pings go unanswered and the broker's writes back up. */
  pauseReading(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }
}

/** A random boot id (16 hex digits and more, as BootIdSchema wants). */
export function bootId(): string {
  return randomBytes(8).toString('hex');
}
