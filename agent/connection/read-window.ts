import type { HubLimits } from '../../protocol/messages.js';

/** Pings whose data starts with this are the window's probes; every other pong is the ping monitor's. */
const PROBE_PREFIX = 'farmlink-read:';

/** True for the pong of a read-window probe (also one of an earlier window: never the ping monitor's). */
export function isProbePong(data: Buffer): boolean {
  return data.length > PROBE_PREFIX.length && data.toString('latin1', 0, PROBE_PREFIX.length) === PROBE_PREFIX;
}

/**
 * Legacy mode: how many frames may be on the way to the hub, written by the agent and not yet read
 * by it. The hub's rate limit counts frames when it reads them, so a hub that falls behind (a GC
 * pause, a busy event loop, a starved VM) reads a backlog all at once; the frame pacer alone keeps
 * the agent's *sending* under the rate, not the hub's *reading*. With at most `size` frames unread,
 * and the pacer's own burst (half the hub's), the hub never reads more at once than its burst: a
 * read pace of `size` + the pacer's burst + the hello + one heartbeat ≤ the hub's burst.
 *
 * What the hub has read is learnt from WebSocket pings: a hub reads a connection's frames in order
 * and answers a ping (RFC 6455 requires it, with the same data) only once it has read every frame
 * before it, so the pong of a probe sent after frame N says frames 1…N are read and counted. Pings
 * are control frames: the hub's rate limit does not count them, and every hub answers them, old
 * legacy hubs included — what legacy means on the wire does not change.
 */
export class HubReadWindow {
  readonly size: number;
  private readonly probeEvery: number;
  private written = 0;
  private read = 0;
  /** Frames written when the last probe went. */
  private probedAt = 0;
  private nextProbe = 1;
  /** Probes not answered yet, oldest first: their number and the frames written before them. */
  private readonly probes: Array<{ id: number; writtenBefore: number }> = [];

  constructor(
    limits: HubLimits,
    private readonly ping: (data: Buffer) => void,
  ) {
    const burst = limits.burst_messages;
    const pacerBurst = Math.max(1, Math.floor(burst / 2));
    this.size = Math.max(1, burst - pacerBurst - 2);
    this.probeEvery = Math.max(1, Math.floor(this.size / 2));
  }

  /** Frames written and not known to be read by the hub. */
  get unread(): number {
    return this.written - this.read;
  }

  /** No more frames until the hub has read some (frames that must go anyway still may). */
  get full(): boolean {
    return this.unread >= this.size;
  }

  /** A frame was written to the socket. */
  wrote(): void {
    this.written += 1;
    // Probed every half window, and always once it fills: a full window with no probe out would never open.
    if (this.written - this.probedAt >= this.probeEvery || this.full) this.probe();
  }

  /**
   * A pong came: true when it answered one of this window's probes (the caller does not pass it on).
   * `opened`: the window was full and is not any more.
   */
  pong(data: Buffer): { probe: boolean; opened: boolean } {
    if (!isProbePong(data)) return { probe: false, opened: false };
    const id = Number(data.toString('latin1', PROBE_PREFIX.length));
    const wasFull = this.full;
    // Pongs come in the order of their pings: anything older than this one was answered on the way.
    while (this.probes.length > 0 && (this.probes[0]?.id ?? Infinity) <= id) {
      const answered = this.probes.shift();
      if (answered) this.read = Math.max(this.read, answered.writtenBefore);
    }
    return { probe: true, opened: wasFull && !this.full };
  }

  private probe(): void {
    const id = this.nextProbe++;
    this.probes.push({ id, writtenBefore: this.written });
    this.probedAt = this.written;
    this.ping(Buffer.from(`${PROBE_PREFIX}${String(id)}`, 'latin1'));
  }
}
