import { TypedEmitter } from '../events.js';
import type { TunnelPath, TunnelPathEvents } from './tunnel-path.js';

/** What a relay path needs of the tunnel socket it rides on (lib/tunnel/broker-link.ts gives it). */
export interface RelaySocket {
  /**
   * Writes one binary frame; false when the socket is above its high-water mark (or gone). Calls
   * `onReleased` (when given) once the socket let go of the frame: written, or dropped.
   */
  write(frame: Buffer, path: RelayPath, onReleased?: () => void): boolean;
  /** Bytes queued on the socket and not yet written to the network. */
  buffered(): number;
  /** The path is down: forget it. */
  release(path: RelayPath): void;
}

/**
 * One session's frames on the tunnel socket, tagged with the session's route on this broker. The
 * socket is shared by every session of this end, so `buffered` and `drain` are the socket's: a
 * session that filled it waits with the rest until it drains.
 */
export class RelayPath implements TunnelPath {
  readonly kind = 'relay' as const;
  readonly events = new TypedEmitter<TunnelPathEvents>();
  private up = true;

  constructor(
    readonly route: number,
    private readonly socket: RelaySocket,
  ) {}

  get isUp(): boolean {
    return this.up;
  }

  get buffered(): number {
    return this.up ? this.socket.buffered() : 0;
  }

  send(frame: Buffer, onReleased?: () => void): boolean {
    if (!this.up) {
      onReleased?.();
      return false;
    }
    return this.socket.write(frame, this, onReleased);
  }

  /** The session no longer uses this route here (closed, or resumed under another route). */
  close(reason: string): void {
    this.goDown(reason);
  }

  /** @internal A frame for this route arrived on the socket. */
  deliver(frame: Buffer): void {
    if (this.up) this.events.emit('frame', frame);
  }

  /** @internal The socket fell below its low-water mark after this path was refused. */
  drained(): void {
    if (this.up) this.events.emit('drain', undefined);
  }

  /** @internal The socket is gone (or the path closed): `down` once, no frame after it. */
  goDown(reason: string): void {
    if (!this.up) return;
    this.up = false;
    this.socket.release(this);
    this.events.emit('down', { reason });
  }
}
