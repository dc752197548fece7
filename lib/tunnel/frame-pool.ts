import { FRAME_HEADER_BYTES, MAX_DATA_BYTES } from '../../protocol/tunnel-frame.js';

/**
 * Buffer sizes the pool keeps: a frame of one socket read (Node reads 64 KiB at a time) and the largest
 * DATA frame (queued writes gathered). A frame takes the smallest that fits, so the common 64 KiB frame
 * does not pin a buffer three times its size for as long as it waits for its acknowledgement.
 */
export const POOLED_FRAME_SIZES = [FRAME_HEADER_BYTES + 64 * 1024, FRAME_HEADER_BYTES + MAX_DATA_BYTES] as const;

/**
 * Reusable buffers for outgoing DATA frames. Allocating a fresh buffer for every frame made the sending
 * process spend a quarter of its time in the garbage collector and in page faults on new memory
 * (bench/README.md, "Where the time went"); a session instead takes a buffer here, and gives it back
 * once the peer acknowledged the frame and every path it went on has let go of it.
 *
 * Bounded: at most `maxFreeBytes` of idle buffers are kept (the rest are left to the GC), so a burst
 * does not pin its peak for ever. One pool per process is enough; sessions share it.
 */
export class FramePool {
  private readonly free: Buffer[][] = POOLED_FRAME_SIZES.map(() => []);
  private freeBytes = 0;
  private taken = 0;
  private reused = 0;

  constructor(private readonly maxFreeBytes = 16 * 1024 * 1024) {}

  /** A buffer of at least `bytes` (≤ the largest pooled size); its contents are whatever the last user left. */
  acquire(bytes: number): Buffer {
    const index = POOLED_FRAME_SIZES.findIndex((size) => size >= bytes);
    if (index < 0) throw new RangeError(`no pooled frame buffer holds ${bytes} bytes`);
    this.taken += 1;
    const buf = this.free[index]?.pop();
    if (buf) {
      this.reused += 1;
      this.freeBytes -= buf.length;
      return buf;
    }
    return Buffer.allocUnsafeSlow(POOLED_FRAME_SIZES[index] as number);
  }

  /** Back to the pool: the caller guarantees nothing reads or writes `buf` (or a view of it) any more. */
  release(buf: Buffer): void {
    const index = POOLED_FRAME_SIZES.indexOf(buf.length);
    if (index < 0 || this.freeBytes + buf.length > this.maxFreeBytes) return;
    this.free[index]?.push(buf);
    this.freeBytes += buf.length;
  }

  /** For tests and the bench: buffers handed out, how many of them were reused, and how many wait. */
  stats(): { taken: number; reused: number; idle: number } {
    return { taken: this.taken, reused: this.reused, idle: this.free.reduce((n, list) => n + list.length, 0) };
  }
}

/** The pool the sessions of this process share. */
export const sharedFramePool = new FramePool();
