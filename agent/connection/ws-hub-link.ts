import type { LookupFunction } from 'node:net';
import WebSocket from 'ws';
import type { Clock } from '../../lib/clock.js';
import { TypedEmitter } from '../../lib/events.js';
import type { AgentMessage, BatchSettings, HubLimits } from '../../protocol/messages.js';
import { FrameBatcher } from './frame-batcher.js';
import { FramePacer } from './frame-pacer.js';
import { BATCH_OVERHEAD_BYTES } from '../../protocol/batch-frame.js';
import { type HubCodec, encodeWithin, jsonCodec } from './hub-codec.js';
import type { HubDial, HubLink, HubLinkEvents, HubLinkFactory } from './hub-link.js';
import { HubReadWindow, isProbePong } from './read-window.js';

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
  private hubLimits: HubLimits | undefined;
  private pacer: FramePacer | undefined;
  /** Legacy: frames written and not yet read by the hub, bounded (enhanced frames go through the batcher). */
  private readWindow: HubReadWindow | undefined;
  private batcher: FrameBatcher | undefined;
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
      if (!decoded.ok) {
        this.events.emit('undecodable', { bytes: data.length, decoded });
        return;
      }
      this.events.emit('frame', { direction: 'in', messages: decoded.messages.length, bytes: data.length });
      decoded.messages.forEach((message, i) => {
        this.events.emit('message', { message, bytes: i === 0 ? data.length : 0 });
      });
    });
    ws.on('pong', (data: Buffer) => {
      // A probe's pong is the read window's business, never the ping monitor's.
      if (!isProbePong(data)) {
        this.events.emit('pong', undefined);
        return;
      }
      if (this.readWindow?.pong(data).opened === true) this.events.emit('caughtUp', undefined);
    });
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

  get limits(): HubLimits | undefined {
    return this.hubLimits;
  }

  set limits(limits: HubLimits | undefined) {
    this.hubLimits = limits;
    this.pacer = limits ? new FramePacer(limits, this.options.clock) : undefined;
    this.readWindow = limits && !this.batcher ? new HubReadWindow(limits, (data) => this.probe(data)) : undefined;
  }

  get batching(): BatchSettings | undefined {
    return this.batcher?.window;
  }

  get pending(): number {
    return this.batcher?.pending ?? 0;
  }

  frameWaitMs(): number {
    if (this.readWindow?.full === true) return Number.POSITIVE_INFINITY;
    return this.pacer?.waitMs() ?? 0;
  }

  useBatches(settings: BatchSettings): void {
    const limit = this.hubLimits?.max_payload_bytes ?? settings.max_bytes;
    const window = { ...settings, max_bytes: Math.min(settings.max_bytes, limit) };
    if (this.batcher) {
      this.batcher.retune(window);
      return;
    }
    // Batch frames are few and acknowledged; the read window is legacy's.
    this.readWindow = undefined;
    const pacer = (this.pacer ??= new FramePacer(
      { max_payload_bytes: limit, max_messages_per_second: 1000, burst_messages: 1000 },
      this.options.clock,
    ));
    this.batcher = new FrameBatcher({
      clock: this.options.clock,
      settings: window,
      pacer,
      write: (frame, messages, bytes) => this.write(frame, messages, bytes),
    });
  }

  send(message: AgentMessage, options: { urgent?: boolean } = {}): void {
    if (this.batcher) {
      const { text } = encodeWithin(this.codec, message, this.hubLimits, BATCH_OVERHEAD_BYTES);
      this.batcher.push(text, message.type, options.urgent === true);
      return;
    }
    const { text, bytes } = encodeWithin(this.codec, message, this.hubLimits);
    this.pacer?.take();
    this.write(text, 1, bytes);
    this.readWindow?.wrote();
  }

  private probe(data: Buffer): void {
    try {
      this.ws.ping(data);
    } catch {
      // The socket is closing; its close event ends the link.
    }
  }

  private write(frame: string, messages: number, bytes: number): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(frame);
    this.events.emit('frame', { direction: 'out', messages, bytes });
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
    // What is queued (the `disconnect` among it) goes before the close frame.
    this.batcher?.flush();
    this.batcher?.dispose();
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
    this.batcher?.dispose();
    this.ws.terminate();
  }
}
