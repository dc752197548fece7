import { FRAME_HEADER_BYTES, MAX_DATA_BYTES } from '../../protocol/tunnel-frame.js';

/** Every pooled buffer holds the largest DATA frame, so any DATA frame fits any buffer. */
export const POOLED_FRAME_BYTES = FRAME_HEADER_BYTES + MAX_DATA_BYTES;

/**
 * Reusable buffers for outgoing DATA frames. Allocating a fresh 64 KiB buffer for every frame made the
 * sending process spend a quarter of its time in the garbage collector and in page faults on new memory
 * (bench/README.md, "Where the time went"); a session instead takes a buffer here, and gives it back
 * once the peer acknowledged the frame and every path it went on has let go of it.
 *
 * Bounded: at most `maxFree` idle buffers are kept (the rest are left to the GC), so a burst does not
 * pin its peak for ever. One pool per process is enough; sessions share it.
 */
export class FramePool {
  private readonly free: Buffer[] = [];
  private taken = 0;
  private reused = 0;

  constructor(private readonly maxFree = 256) {}

  /** A buffer of POOLED_FRAME_BYTES; its contents are whatever the last user left. */
  acquire(): Buffer {
    this.taken += 1;
    const buf = this.free.pop();
    if (buf) {
      this.reused += 1;
      return buf;
    }
    return Buffer.allocUnsafeSlow(POOLED_FRAME_BYTES);
  }

  /** Back to the pool: the caller guarantees nothing reads or writes `buf` (or a view of it) any more. */
  release(buf: Buffer): void {
    if (buf.length !== POOLED_FRAME_BYTES || this.free.length >= this.maxFree) return;
    this.free.push(buf);
  }

  /** For tests and the bench: buffers handed out, how many of them were reused, and how many wait. */
  stats(): { taken: number; reused: number; idle: number } {
    return { taken: this.taken, reused: this.reused, idle: this.free.length };
  }
}

/** The pool the sessions of this process share. */
export const sharedFramePool = new FramePool();
