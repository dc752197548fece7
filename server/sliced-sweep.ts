/**
 * Visits every member once per period, one slice per tick, so a sweep over ten thousand
 * connections never runs as one long synchronous loop (it showed up as a heartbeat round-trip
 * spike at every sweep in the benchmark).
 */
export class SlicedSweep<T> {
  private readonly slices: Array<Set<T>>;
  private readonly sliceOf = new Map<T, Set<T>>();
  private nextSlice = 0;
  private nextInsert = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly periodMs: number,
    private readonly visit: (item: T) => void,
    sliceCount = 20,
  ) {
    this.slices = Array.from({ length: Math.max(1, sliceCount) }, () => new Set<T>());
  }

  /** The slice at `index`, counted round the ring (there is always at least one). */
  private sliceAt(index: number): Set<T> {
    const slice = this.slices[index % this.slices.length];
    if (!slice) throw new RangeError(`SlicedSweep has no slice ${index}`);
    return slice;
  }

  add(item: T): void {
    const slice = this.sliceAt(this.nextInsert++);
    slice.add(item);
    this.sliceOf.set(item, slice);
  }

  delete(item: T): void {
    this.sliceOf.get(item)?.delete(item);
    this.sliceOf.delete(item);
  }

  start(): void {
    if (this.timer || this.periodMs <= 0) return;
    this.timer = setInterval(() => {
      const slice = this.sliceAt(this.nextSlice);
      this.nextSlice = (this.nextSlice + 1) % this.slices.length;
      for (const item of [...slice]) this.visit(item);
    }, this.periodMs / this.slices.length);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
