import type { Logger } from 'pino';
import { defer, type Clock } from '../clock.js';
import type { TypedEmitter } from '../events.js';
import { staleFrom, type MemoryEntry } from './lifetime.js';
import type { MemoryTier } from './memory-tier.js';
import { estimateSize } from './record.js';
import type { BusMessage, RedisTierEvents } from './redis-tier.js';
import type { TagVersions } from './tag-versions.js';

/** What the processes sharing a cache talk over (the Redis tier's Pub/Sub). */
export interface CacheBus {
  readonly events: Pick<TypedEmitter<RedisTierEvents>, 'on'>;
  publish(message: BusMessage): Promise<void>;
}

export interface CoherenceOptions {
  /** Undefined without a shared tier: nothing to tell, nobody to hear from. */
  bus: CacheBus | undefined;
  /** This cache instance: stamped on what it sends (the bus drops a process's own messages). */
  origin: string;
  name: string;
  clock: Clock;
  memory: MemoryTier<MemoryEntry>;
  tagVersions: TagVersions;
  /** This process's disk copies: dropped as memory's are (the sender did the same in its own tiers). */
  dropFromDisk(key: string): Promise<void>;
  clearDisk(): Promise<void>;
  log: Logger;
}

/**
 * Keeps the memory (and disk) of this process coherent with the others': what this process
 * changes is announced on the bus, batched per turn of the event loop; what others announce
 * drops or expires the copies here and raises tag versions; after a gap in the bus, when
 * invalidations may have been missed, everything local that could be stale is dropped.
 */
export class Coherence {
  private pending: BusMessage | undefined;

  constructor(private readonly options: CoherenceOptions) {
    const { bus } = options;
    if (!bus) return;
    bus.events.on('message', (message) => {
      this.receive(message);
    });
    bus.events.on('resync', () => {
      this.resync();
    });
  }

  /**
   * Queues a message; everything queued in this turn of the event loop goes out as one publish.
   * The turn, not a timer: the publish must leave before replies to later calls come in, or a
   * write's announcement could reach Redis after Redis went away and be replayed as a delete.
   */
  announce(message: Omit<BusMessage, 'origin'>): void {
    if (!this.options.bus) return;
    if (!this.pending) {
      this.pending = { origin: this.options.origin };
      defer(this.options.clock, () => {
        this.flush();
      });
    }
    const pending = this.pending;
    if (message.keys) pending.keys = [...(pending.keys ?? []), ...message.keys];
    if (message.expire) pending.expire = [...(pending.expire ?? []), ...message.expire];
    if (message.tags) pending.tags = { ...pending.tags, ...message.tags };
    if (message.clear) pending.clear = true;
  }

  /** Sends what is queued now (also at close, so nothing announced is lost). */
  flush(): void {
    const message = this.pending;
    this.pending = undefined;
    // A publish that fails is remembered by the Redis tier and sent once Redis answers again.
    if (message && this.options.bus) this.options.bus.publish(message).catch(() => undefined);
  }

  /** Another process changed these keys, expired them, invalidated these tags or dropped everything. */
  private receive(message: BusMessage): void {
    const { memory, clock } = this.options;
    if (message.clear) {
      memory.clear();
      void this.options.clearDisk();
    }
    for (const key of message.keys ?? []) {
      memory.delete(key);
      void this.options.dropFromDisk(key);
    }
    for (const key of message.expire ?? []) {
      const entry = memory.peek(key);
      if (!entry) continue;
      const stale = { ...staleFrom(entry, clock.monotonic()), record: staleFrom(entry.record, clock.now()) };
      memory.set(key, stale, { size: estimateSize(entry.record.value) + 64, removeAt: stale.staleUntil });
    }
    if (message.tags) this.options.tagVersions.merge(message.tags);
  }

  /**
   * Invalidations sent while the bus was down are lost; memory cannot be trusted any more, nor
   * can this process's disk (a key deleted meanwhile is missing from Redis, and the disk copy would
   * answer), nor the tag versions known here (the next use of a tag asks Redis).
   */
  private resync(): void {
    this.options.log.warn(
      { cache: this.options.name },
      'Cache: the Redis bus was down; dropping the memory and disk tiers so nothing stale is served',
    );
    this.options.memory.clear();
    void this.options.clearDisk();
    this.options.tagVersions.clear();
  }
}
