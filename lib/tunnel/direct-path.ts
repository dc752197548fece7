import { TypedEmitter } from '../events.js';
import type { TunnelPath, TunnelPathEvents } from './tunnel-path.js';

/**
 * What a direct path needs of a data channel: the part of node-datachannel's DataChannel it uses, so
 * the path can be read (and tested) without the connector that made the channel.
 */
export interface DataChannelLike {
  sendMessageBinary(buffer: Buffer): boolean;
  bufferedAmount(): number;
  setBufferedAmountLowThreshold(bytes: number): void;
  onBufferedAmountLow(cb: () => void): void;
  onMessage(cb: (message: string | Buffer | ArrayBuffer) => void): void;
  onClosed(cb: () => void): void;
  onError(cb: (error: string) => void): void;
  isOpen(): boolean;
  close(): void;
}

export interface DirectPathOptions {
  /** `send` answers false at or above this many bytes queued on the channel (default 1 MiB). */
  highWaterBytes?: number;
  /** `drain` fires when the queue falls to this after a refused send (default 256 KiB). */
  lowWaterBytes?: number;
}

export const DIRECT_HIGH_WATER_BYTES = 1024 * 1024;
export const DIRECT_LOW_WATER_BYTES = 256 * 1024;

/**
 * One session's frames on its own reliable, ordered data channel: one frame per message, so the
 * channel keeps the frame boundaries and the route field is always 0. The channel belongs to the
 * connector that opened it; the connector calls `markDown` when the peer connection fails, and the
 * path says `down` once, whichever of the channel or the connection noticed first.
 */
export class DirectPath implements TunnelPath {
  readonly kind = 'direct' as const;
  readonly route = 0;
  readonly events = new TypedEmitter<TunnelPathEvents>();
  private up = true;
  /** A send was refused: the next fall below the low-water mark is worth a `drain`. */
  private blocked = false;
  private readonly highWater: number;

  constructor(
    private readonly channel: DataChannelLike,
    options: DirectPathOptions = {},
  ) {
    this.highWater = options.highWaterBytes ?? DIRECT_HIGH_WATER_BYTES;
    channel.setBufferedAmountLowThreshold(options.lowWaterBytes ?? DIRECT_LOW_WATER_BYTES);
    channel.onBufferedAmountLow(() => {
      if (!this.up || !this.blocked) return;
      this.blocked = false;
      this.events.emit('drain', undefined);
    });
    channel.onMessage((message) => {
      if (!this.up) return;
      if (typeof message === 'string') {
        // Frames are binary; text on the channel means the peer is not speaking our protocol.
        this.markDown('text message on the data channel');
        return;
      }
      this.events.emit('frame', Buffer.isBuffer(message) ? message : Buffer.from(message));
    });
    channel.onClosed(() => {
      this.markDown('data channel closed');
    });
    channel.onError((error) => {
      this.markDown(`data channel error: ${error}`);
    });
  }

  get isUp(): boolean {
    return this.up;
  }

  get buffered(): number {
    if (!this.up) return 0;
    try {
      return this.channel.bufferedAmount();
    } catch {
      return 0;
    }
  }

  send(frame: Buffer, onReleased?: () => void): boolean {
    if (!this.up) {
      onReleased?.();
      return false;
    }
    try {
      // libdatachannel copies the message before this returns, so the frame is free again at once.
      this.channel.sendMessageBinary(frame);
    } catch (error) {
      // The channel closed under us (its close callback may still be queued): the path is gone.
      this.markDown(`send failed: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    } finally {
      onReleased?.();
    }
    if (this.channel.bufferedAmount() >= this.highWater) {
      this.blocked = true;
      return false;
    }
    return true;
  }

  /** The path is gone (channel or connection closed or failed): `down` once, and the channel closed. */
  markDown(reason: string): void {
    if (!this.up) return;
    this.up = false;
    try {
      this.channel.close();
    } catch {
      // Already closed natively: nothing left to free.
    }
    this.events.emit('down', { reason });
  }
}
