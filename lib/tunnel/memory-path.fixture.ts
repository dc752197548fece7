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
  /**
   * Like a socket (the default): the peer gets a copy of each frame, and the sender's `onReleased` is
   * called once it was delivered (or dropped), so the sending session reuses its pooled buffers. False:
   * the peer gets the very buffer and `onReleased` is never called.
   */
  copies?: boolean;
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
  const make = () =>
    new MemoryPath(
      kind,
      route,
      options.highWaterMark ?? 1024 * 1024,
      options.bytesPerTurn ?? Infinity,
      options.copies ?? true,
    );
  const a = make();
  const b = make();
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
  /**
   * While true, `onReleased` callbacks are kept in `held` instead of being called (a socket still
   * writing the frame); releaseHeld() calls them.
   */
  holdReleases = false;
  readonly held: (() => void)[] = [];
  private up = true;
  private queue: { frame: Buffer; onReleased: (() => void) | undefined }[] = [];
  private queueHead = 0;
  private queued = 0;
  private scheduled = false;
  private full = false;

  constructor(
    readonly kind: TunnelPathKind,
    readonly route: number,
    private readonly highWaterMark: number,
    private readonly bytesPerTurn: number,
    private readonly copies: boolean,
  ) {}

  releaseHeld(): void {
    for (const release of this.held.splice(0)) release();
  }

  get isUp(): boolean {
    return this.up;
  }

  get buffered(): number {
    return this.queued;
  }

  send(frame: Buffer, onReleased?: () => void): boolean {
    if (!this.up) {
      this.release(onReleased);
      return false;
    }
    if (frame.readUInt32BE(1) !== this.route)
      throw new Error(`frame for route ${frame.readUInt32BE(1)} on route ${this.route}`);
    this.framesSent += 1;
    if (this.silent) {
      this.release(onReleased);
      return true;
    }
    this.queue.push({ frame, onReleased });
    this.queued += frame.length;
    this.schedule();
    if (this.queued >= this.highWaterMark) this.full = true;
    return !this.full;
  }

  goDown(reason: string): void {
    if (!this.up) return;
    this.up = false;
    for (const { onReleased } of this.queue.slice(this.queueHead)) this.release(onReleased);
    this.queue = [];
    this.queueHead = 0;
    this.queued = 0;
    this.events.emit('down', { reason });
  }

  private release(onReleased: (() => void) | undefined): void {
    if (!onReleased || !this.copies) return;
    if (this.holdReleases) this.held.push(onReleased);
    else onReleased();
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
      const item = this.queue[this.queueHead++];
      if (item === undefined) break;
      const { frame, onReleased } = item;
      this.queued -= frame.length;
      budget -= frame.length;
      const peer = this.peer;
      const delivered = this.copies ? Buffer.from(frame) : frame;
      this.release(onReleased);
      if (!this.silent && peer?.up === true) peer.events.emit('frame', delivered);
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
