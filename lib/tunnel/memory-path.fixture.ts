import { TypedEmitter } from '../events.js';
import type { TunnelPathKind } from '../../protocol/tunnel.js';
import type { TunnelPath, TunnelPathEvents } from './tunnel-path.js';

export interface MemoryPathOptions {
  kind?: TunnelPathKind;
  /** The route both ends' frames carry (default 7 for relay, 0 for direct). */
  route?: number;
  /** send() returns false once this many bytes wait to be delivered (default 1 MiB). */
  highWaterMark?: number;
  /** At most this many bytes are delivered per turn of the event loop (default: all): a slow path. */
  bytesPerTurn?: number;
}

export interface MemoryPathPair {
  readonly a: MemoryPath;
  readonly b: MemoryPath;
  /** Both directions silently drop every frame from now on (a path that stopped answering); isUp stays true. */
  blackhole(): void;
  /** Frames flow again after blackhole() (what was dropped stays lost). */
  restore(): void;
  /** Both ends go down (`down` with the reason); frames in flight are lost. */
  down(reason: string): void;
}

/**
 * Two connected TunnelPaths in memory for unit tests: what one end sends the other receives, in order, a
 * turn of the event loop later, with the knobs tests need (a silent path, a dead one, a slow one).
 */
export function memoryPathPair(options: MemoryPathOptions = {}): [MemoryPath, MemoryPath] & MemoryPathPair {
  const kind = options.kind ?? 'relay';
  const route = options.route ?? (kind === 'relay' ? 7 : 0);
  const a = new MemoryPath(kind, route, options.highWaterMark ?? 1024 * 1024, options.bytesPerTurn ?? Infinity);
  const b = new MemoryPath(kind, route, options.highWaterMark ?? 1024 * 1024, options.bytesPerTurn ?? Infinity);
  a.peer = b;
  b.peer = a;
  const pair = [a, b] as [MemoryPath, MemoryPath] & MemoryPathPair;
  return Object.assign(pair, {
    a,
    b,
    blackhole: () => {
      a.silent = true;
      b.silent = true;
    },
    restore: () => {
      a.silent = false;
      b.silent = false;
    },
    down: (reason: string) => {
      a.goDown(reason);
      b.goDown(reason);
    },
  });
}

export class MemoryPath implements TunnelPath {
  readonly events = new TypedEmitter<TunnelPathEvents>((error) => {
    throw error;
  });
  peer: MemoryPath | undefined;
  silent = false;
  /** Every frame this end sent (counted, not kept). */
  framesSent = 0;
  private up = true;
  private queue: Buffer[] = [];
  private queueHead = 0;
  private queued = 0;
  private scheduled = false;
  private full = false;

  constructor(
    readonly kind: TunnelPathKind,
    readonly route: number,
    private readonly highWaterMark: number,
    private readonly bytesPerTurn: number,
  ) {}

  get isUp(): boolean {
    return this.up;
  }

  get buffered(): number {
    return this.queued;
  }

  send(frame: Buffer): boolean {
    if (!this.up) return false;
    if (frame.readUInt32BE(1) !== this.route)
      throw new Error(`frame for route ${frame.readUInt32BE(1)} on route ${this.route}`);
    this.framesSent += 1;
    if (this.silent) return true;
    this.queue.push(frame);
    this.queued += frame.length;
    this.schedule();
    if (this.queued >= this.highWaterMark) this.full = true;
    return !this.full;
  }

  goDown(reason: string): void {
    if (!this.up) return;
    this.up = false;
    this.queue = [];
    this.queueHead = 0;
    this.queued = 0;
    this.events.emit('down', { reason });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    let budget = this.bytesPerTurn;
    while (this.queueHead < this.queue.length && budget > 0 && this.up) {
      const frame = this.queue[this.queueHead++];
      if (frame === undefined) break;
      this.queued -= frame.length;
      budget -= frame.length;
      const peer = this.peer;
      if (!this.silent && peer?.up === true) peer.events.emit('frame', frame);
    }
    if (this.queueHead >= this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 4096) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (this.queueHead < this.queue.length) this.schedule();
    if (this.full && this.queued < this.highWaterMark / 2 && this.up) {
      this.full = false;
      this.events.emit('drain', undefined);
    }
  }
}
