import { Duplex } from 'node:stream';
import { MAX_DATA_BYTES, StreamResetCode, type StreamResetCodeValue } from '../../protocol/tunnel-frame.js';
import { StreamResetError } from './stream-reset-error.js';

export { StreamResetError } from './stream-reset-error.js';

/** What a stream asks of its session: the session numbers, sends and retransmits every frame. */
export interface StreamHost {
  sendOpenOk(stream: TunnelStream, windowBytes: number): void;
  /** One DATA frame whose body is `pieces` in order (`bytes` in all). */
  sendData(stream: TunnelStream, pieces: readonly Buffer[], bytes: number): void;
  sendFin(stream: TunnelStream): void;
  sendReset(stream: TunnelStream, code: number, reason: string): void;
  /** CREDIT: what this end consumed, and its receive window now (it may have grown). */
  sendCredit(stream: TunnelStream, consumed: number, windowBytes: number): void;
  /** Monotonic milliseconds (the session's clock), for growing the window. */
  now(): number;
  /** The stream is over both ways (or reset): the session forgets it. */
  streamDone(stream: TunnelStream): void;
}

export interface TunnelStreamOptions {
  id: number;
  host: StreamHost;
  /** This end's receive window: the most the peer may have sent past what this end consumed. */
  windowBytes: number;
  /**
   * The window may grow to this (default: it stays at `windowBytes`). It doubles each time the local
   * reader took a whole window within WINDOW_GROWTH_MS, so a bulk transfer is not held to one window
   * per round trip while a stream whose reader is slow keeps its small window.
   */
  maxWindowBytes?: number;
  /** The peer's receive window, when known (the farm learns it from OPEN; the client from OPEN_OK). */
  peerWindowBytes?: number;
}

/**
 * A reader that takes a whole window within this long is limited by the window, not by itself: the
 * window doubles (up to maxWindowBytes). A window then holds about this long of the stream's traffic.
 */
export const WINDOW_GROWTH_MS = 50;

/**
 * One TCP connection carried by a session, as a Duplex so either end simply pipes a socket through it:
 * `socket.pipe(stream).pipe(socket)`. Writes become DATA frames, sent only within the peer's credit;
 * `end()` becomes FIN (half-close); the peer's FIN ends the readable side; the peer's RST destroys the
 * stream with a StreamResetError. The session calls the `on*` methods as frames arrive in order.
 */
export class TunnelStream extends Duplex {
  readonly id: number;
  private readonly host: StreamHost;
  private windowBytes: number;
  private readonly maxWindowBytes: number;
  /** Since when, and from which consumed total, the reader's pace is measured for growing the window. */
  private paceSinceMs: number;
  private paceSinceBytes = 0;
  /** Until the peer's window is known (client: before OPEN_OK) nothing may be sent. */
  private peerWindow: number | undefined;
  private opened: boolean;

  // Sending: bytes put in DATA frames, and the peer's consumed total from its last CREDIT.
  private sentBytes = 0;
  private peerConsumed = 0;
  /** What the writable side handed over and the peer's credit has not yet let go: one write or several (_writev). */
  private pendingWrite:
    { chunks: Buffer[]; index: number; offset: number; callback: (error?: Error | null) => void } | undefined;
  private pendingFinal: ((error?: Error | null) => void) | undefined;
  private finSent = false;

  // Receiving: bytes that arrived and are not yet handed to the reader, and what the reader took.
  private readonly inbox: Buffer[] = [];
  private receivedBytes = 0;
  private consumedBytes = 0;
  private creditSent = 0;
  private wantsData = false;
  private finReceived = false;
  private endPushed = false;

  private resetDone = false;
  private done = false;

  constructor(options: TunnelStreamOptions) {
    // The readable buffer is small on purpose: bytes waiting for the reader stay in the inbox, where they
    // count against this end's window, so CREDIT tracks what the local socket really took.
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.id = options.id;
    this.host = options.host;
    this.windowBytes = options.windowBytes;
    this.maxWindowBytes = Math.max(options.windowBytes, options.maxWindowBytes ?? options.windowBytes);
    this.paceSinceMs = this.host.now();
    this.peerWindow = options.peerWindowBytes;
    this.opened = options.peerWindowBytes !== undefined;
  }

  /** Farm: the service was dialled; the client may send. */
  accept(): void {
    if (this.done || this.destroyed) return;
    this.host.sendOpenOk(this, this.windowBytes);
    this.opened = true;
    this.pumpWrite();
  }

  /** Sends RST to the peer and destroys the stream here (with no error: the caller chose to end it). */
  reset(code: StreamResetCodeValue, reason: string): void {
    if (this.done) return;
    this.sendResetOnce(code, reason);
    this.destroy();
  }

  /** @internal The peer broke the protocol on this stream: RST to it, and the local side gets the error too. */
  fail(code: number, reason: string): void {
    if (this.done) return;
    this.sendResetOnce(code, reason);
    this.destroy(new StreamResetError(code, reason));
  }

  /** Bytes delivered by the peer not yet read locally (diagnostics and tests). */
  get unreadBytes(): number {
    return this.receivedBytes - this.consumedBytes;
  }

  // ---- from the session --------------------------------------------------------------------------

  /** @internal OPEN_OK: the farm dialled the service; its window is now known. */
  onOpenOk(peerWindowBytes: number): void {
    if (this.opened) return;
    this.peerWindow = peerWindowBytes;
    this.opened = true;
    this.emit('connect');
    this.pumpWrite();
  }

  /**
   * @internal DATA, in order. Returns false when it breaks the credit (more than this end's window past
   * what it consumed): the session then resets the stream with PROTOCOL_ERROR.
   */
  onData(body: Buffer): boolean {
    if (this.finReceived) return false;
    if (this.receivedBytes + body.length > this.consumedBytes + this.windowBytes) return false;
    this.receivedBytes += body.length;
    if (this.destroyed) return true; // reset locally, the peer has not heard yet: drop quietly
    this.inbox.push(body);
    if (this.wantsData) this.deliver();
    return true;
  }

  /** @internal FIN: the peer sends no more. */
  onFin(): void {
    if (this.finReceived) return;
    this.finReceived = true;
    if (this.wantsData || this.inbox.length === 0) this.deliver();
    this.checkDone();
  }

  /**
   * @internal CREDIT: the peer's total consumed bytes (repeats and stale ones are harmless), and its
   * window when it says (a window only grows: a smaller one is stale).
   */
  onCredit(consumed: number, windowBytes?: number): void {
    const grew = windowBytes !== undefined && this.peerWindow !== undefined && windowBytes > this.peerWindow;
    if (grew) this.peerWindow = windowBytes;
    if (consumed <= this.peerConsumed && !grew) return;
    this.peerConsumed = Math.max(this.peerConsumed, consumed);
    this.pumpWrite();
  }

  /** @internal RST from the peer, or the session ending: no frame is sent back. */
  onReset(code: number, reason: string): void {
    if (this.done) return;
    this.resetDone = true;
    this.finish();
    this.destroy(new StreamResetError(code, reason));
  }

  /** @internal The session sends its consumed total when it changes paths (a CREDIT may have been lost). */
  get consumed(): number {
    return this.consumedBytes;
  }

  /** This end's receive window now (it grows for a reader that keeps up). */
  get receiveWindow(): number {
    return this.windowBytes;
  }

  // ---- Duplex --------------------------------------------------------------------------------------

  override _read(): void {
    this.wantsData = true;
    this.deliver();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pendingWrite = { chunks: [chunk], index: 0, offset: 0, callback };
    this.pumpWrite();
  }

  /**
   * The writes that queued while the last one waited for credit, together: they go as few, large DATA
   * frames (up to MAX_DATA_BYTES), which costs every process on the way less than many small ones.
   */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.pendingWrite = { chunks: chunks.map((c) => c.chunk), index: 0, offset: 0, callback };
    this.pumpWrite();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.pendingFinal = callback;
    this.pumpWrite();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.done) {
      // Destroyed here before both FINs passed: the peer must hear of it, or its socket hangs.
      const reason = error ? error.message : 'stream closed before it ended';
      this.sendResetOnce(StreamResetCode.ABORTED, reason);
    }
    this.inbox.length = 0;
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.callback(error ?? new StreamResetError(StreamResetCode.ABORTED, 'stream destroyed'));
    callback(error);
  }

  // ---- inside --------------------------------------------------------------------------------------

  private deliver(): void {
    while (this.inbox.length > 0) {
      const chunk = this.inbox.shift();
      if (chunk === undefined) break;
      this.consumedBytes += chunk.length;
      if (!this.push(chunk)) {
        this.wantsData = false;
        break;
      }
    }
    if (this.inbox.length === 0 && this.finReceived && !this.endPushed) {
      this.endPushed = true;
      this.push(null);
    }
    // CREDIT once a quarter of the window was taken: few frames, and the peer never waits on a full window.
    if (this.consumedBytes - this.creditSent >= this.windowBytes / 4 && !this.done) {
      this.growWindow();
      this.creditSent = this.consumedBytes;
      this.host.sendCredit(this, this.consumedBytes, this.windowBytes);
    }
  }

  private growWindow(): void {
    if (this.windowBytes >= this.maxWindowBytes || this.consumedBytes - this.paceSinceBytes < this.windowBytes) return;
    const now = this.host.now();
    if (now - this.paceSinceMs < WINDOW_GROWTH_MS) {
      this.windowBytes = Math.min(this.windowBytes * 2, this.maxWindowBytes);
    }
    this.paceSinceMs = now;
    this.paceSinceBytes = this.consumedBytes;
  }

  private pumpWrite(): void {
    if (!this.opened || this.peerWindow === undefined || this.done) return;
    const write = this.pendingWrite;
    if (write) {
      while (write.index < write.chunks.length) {
        const credit = this.peerConsumed + this.peerWindow - this.sentBytes;
        if (credit <= 0) return;
        // One frame: as much of the queued chunks as the credit and the frame size allow.
        let room = Math.min(credit, MAX_DATA_BYTES);
        const pieces: Buffer[] = [];
        let size = 0;
        while (room > 0 && write.index < write.chunks.length) {
          const chunk = write.chunks[write.index] as Buffer;
          const take = Math.min(room, chunk.length - write.offset);
          pieces.push(take === chunk.length ? chunk : chunk.subarray(write.offset, write.offset + take));
          size += take;
          room -= take;
          write.offset += take;
          if (write.offset === chunk.length) {
            write.index += 1;
            write.offset = 0;
          }
        }
        if (size === 0) continue; // only empty chunks were left
        this.sentBytes += size;
        this.host.sendData(this, pieces, size);
      }
      this.pendingWrite = undefined;
      write.callback();
    }
    const final = this.pendingFinal;
    if (final && !this.pendingWrite) {
      this.pendingFinal = undefined;
      this.finSent = true;
      this.host.sendFin(this);
      final();
      this.checkDone();
    }
  }

  private sendResetOnce(code: number, reason: string): void {
    if (this.resetDone) return;
    this.resetDone = true;
    this.host.sendReset(this, code, reason);
    this.finish();
  }

  private checkDone(): void {
    if (this.finSent && this.finReceived) this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.host.streamDone(this);
  }
}
