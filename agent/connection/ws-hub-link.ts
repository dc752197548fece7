import type { LookupFunction } from 'node:net';
import WebSocket from 'ws';
import type { Clock } from '../../lib/clock.js';
import { TypedEmitter } from '../../lib/events.js';
import type { AgentMessage, HubLimits } from '../../protocol/messages.js';
import { type HubCodec, encodeWithin, jsonCodec } from './hub-codec.js';
import type { HubDial, HubLink, HubLinkEvents, HubLinkFactory } from './hub-link.js';

export interface WsHubLinkOptions {
  clock: Clock;
  codec?: HubCodec;
  /** Largest frame accepted from the hub. */
  maxIncomingBytes?: number;
  /** Source address to dial from (benchmarks spread thousands of agents over 127.0.0.x). */
  localAddress?: string;
  /** Host name resolution, called on every dial (dns.lookup by default). */
  lookup?: LookupFunction;
  /** A listener of a link event threw. */
  onListenerError?: (error: unknown, event: string) => void;
}

const DEFAULT_MAX_INCOMING = 1024 * 1024;

/** Links over the `ws` package: a fresh socket, and with it a fresh name resolution, per dial. */
export function wsHubLinkFactory(options: WsHubLinkOptions): HubLinkFactory {
  return (dial) => new WsHubLink(dial, options);
}

class WsHubLink implements HubLink {
  readonly events: TypedEmitter<HubLinkEvents>;
  limits: HubLimits | undefined;
  private readonly ws: WebSocket;
  private readonly codec: HubCodec;

  constructor(
    dial: HubDial,
    private readonly options: WsHubLinkOptions,
  ) {
    this.events = new TypedEmitter(options.onListenerError);
    this.codec = options.codec ?? jsonCodec;
    const headers: Record<string, string> = { 'user-agent': `farmlink-agent/${dial.version}` };
    if (dial.token) headers.authorization = `Bearer ${dial.token}`;
    const ws = new WebSocket(dial.url, {
      headers,
      perMessageDeflate: false,
      maxPayload: options.maxIncomingBytes ?? DEFAULT_MAX_INCOMING,
      followRedirects: false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
    this.ws = ws;
    ws.on('open', () => this.events.emit('open', undefined));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const decoded = this.codec.decode(data, isBinary);
      if (decoded.ok) this.events.emit('message', { message: decoded.message, bytes: data.length });
      else this.events.emit('undecodable', { bytes: data.length, decoded });
    });
    ws.on('pong', () => this.events.emit('pong', undefined));
    ws.on('error', (error: Error) => this.events.emit('error', error));
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      this.events.emit('rejected', { status: res.statusCode ?? 0 });
    });
    ws.on('close', (code: number, reason: Buffer) => this.events.emit('close', { code, reason: reason.toString() }));
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(message: AgentMessage): number {
    const { text, bytes } = encodeWithin(this.codec, message, this.limits);
    this.ws.send(text);
    return bytes;
  }

  ping(): void {
    try {
      this.ws.ping();
    } catch {
      // The socket is closing; its close event ends the link.
    }
  }

  close(code: number, reason: string, timeoutMs: number): Promise<void> {
    const { clock } = this.options;
    return new Promise<void>((resolve) => {
      const timer = clock.setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, timeoutMs);
      this.ws.once('close', () => {
        clock.clearTimeout(timer);
        resolve();
      });
      this.ws.close(code, reason);
    });
  }

  terminate(): void {
    this.ws.terminate();
  }
}
