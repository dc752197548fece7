import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { FarmlinkError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import { CircuitBreaker } from './circuit-breaker.js';

/** What processes tell each other over Redis Pub/Sub so their memory tiers stay coherent. */
export interface BusMessage {
  /** The sending cache instance; a process ignores its own messages. */
  origin: string;
  /** Keys whose copies must be dropped (written anew, or deleted). */
  keys?: string[];
  /** Keys whose copies become stale (servable within grace while refreshed). */
  expire?: string[];
  /** Tags and their new versions: records written with an older version are invalid. */
  tags?: Record<string, number>;
  /** Everything was dropped. */
  clear?: boolean;
}

export interface RedisTierOptions {
  /** redis://[:password@]host:port[/db] for a single node… */
  url?: string | undefined;
  /** …or the seed nodes of a Redis Cluster. */
  cluster?: ClusterNode[] | undefined;
  /** Prefix of every key and of the bus channel, so several caches or apps share one Redis. */
  prefix: string;
  /** No operation waits longer than this: past it the call goes on without Redis. */
  opTimeoutMs: number;
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
  now: () => number;
  logger: Logger;
  /** The instance id stamped on published messages. */
  origin: string;
}

export interface RedisTierStats {
  connected: boolean;
  breaker: 'closed' | 'open' | 'half-open';
  breakerOpens: number;
  errors: number;
  timeouts: number;
  /** Calls that skipped Redis because the circuit was open. */
  skipped: number;
  messagesIn: number;
  messagesOut: number;
}

export interface RedisTierEvents extends Record<string, unknown> {
  message: BusMessage;
  /** The bus is subscribed again after a gap: invalidations may have been missed meanwhile. */
  resync: undefined;
}

type Client = Redis | Cluster;

/** The prefix as a literal in a SCAN MATCH pattern: `*`, `?`, `[`, `]` and `\\` escaped. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** KEYS[1]: the tag-versions hash; ARGV: tags. Returns the new versions, in order. */
const BUMP_TAGS_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, tag in ipairs(ARGV) do
  local v = tonumber(redis.call('HGET', KEYS[1], tag) or '0') or 0
  local n = math.max(v + 1, now)
  redis.call('HSET', KEYS[1], tag, string.format('%d', n))
  out[i] = n
end
return out
`;

/**
 * The shared tier (L2): Redis, single node or Cluster, via ioredis. Fail-soft by construction:
 * commands are not queued while disconnected (they fail at once), every call is bounded by
 * `opTimeoutMs`, and a circuit breaker skips Redis entirely while it keeps failing. ioredis
 * reconnects forever on its own; the breaker closes as soon as the connection is ready again.
 */
export class RedisTier {
  readonly events: TypedEmitter<RedisTierEvents>;
  private readonly client: Client;
  private readonly subscriber: Client;
  private readonly breaker: CircuitBreaker;
  private readonly channel: string;
  private readonly tagsKey: string;
  private connected = false;
  private subscribedOnce = false;
  private subscriberDown = false;
  private counters = { errors: 0, timeouts: 0, skipped: 0, messagesIn: 0, messagesOut: 0 };

  constructor(private readonly options: RedisTierOptions) {
    if (!options.url && !options.cluster?.length) throw new FarmlinkError('CACHE_CONFIG', 'The Redis tier needs a url or cluster nodes');
    this.events = new TypedEmitter((error) => options.logger.error({ err: error }, 'A cache bus listener threw'));
    this.breaker = new CircuitBreaker({ failureThreshold: options.failureThreshold, cooldownMs: options.cooldownMs, maxCooldownMs: options.maxCooldownMs, now: options.now });
    this.channel = `${options.prefix}bus`;
    // One hash tag for the tag versions: a single slot in a Cluster, so HMGET/HINCRBY stay single-node.
    this.tagsKey = `${options.prefix}{tag-versions}`;
    const redisOptions: RedisOptions = {
      // Fail fast instead of queueing while disconnected: a cache must not wait for Redis.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: Math.max(1000, options.opTimeoutMs * 4),
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
      lazyConnect: false,
    };
    this.client = options.cluster?.length
      ? new Cluster(options.cluster, { redisOptions, enableOfflineQueue: false, clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000) })
      : new Redis(options.url!, redisOptions);
    this.subscriber = this.client.duplicate();
    this.client.on('ready', () => {
      if (!this.connected) options.logger.info('Cache: Redis connected');
      this.connected = true;
      this.breaker.reset();
    });
    this.client.on('close', () => {
      if (this.connected) options.logger.warn('Cache: lost Redis; answering from memory and disk until it is back');
      this.connected = false;
    });
    // ioredis reports connection errors here; the calls themselves fail on their own.
    this.client.on('error', () => undefined);
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('close', () => {
      this.subscriberDown = true;
    });
    this.subscriber.on('ready', () => {
      void this.subscribe();
    });
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let message: BusMessage;
      try {
        message = JSON.parse(text) as BusMessage;
      } catch {
        return;
      }
      if (message.origin === options.origin) return;
      this.counters.messagesIn += 1;
      this.events.emit('message', message);
    });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  get(key: string): Promise<Buffer | undefined> {
    return this.guard(async () => (await this.client.getBuffer(this.options.prefix + key)) ?? undefined);
  }

  set(key: string, bytes: Buffer, ttlMs: number): Promise<void> {
    return this.guard(async () => {
      await this.client.set(this.options.prefix + key, bytes, 'PX', Math.max(1, Math.ceil(ttlMs)));
    });
  }

  /** Single-key DELs: keys of a Cluster live in different slots, and a multi-key DEL would fail there. */
  delete(keys: readonly string[]): Promise<void> {
    return this.guard(async () => {
      await Promise.all(keys.map((key) => this.client.del(this.options.prefix + key)));
    });
  }

  tagVersions(tags: readonly string[]): Promise<number[]> {
    if (tags.length === 0) return Promise.resolve([]);
    return this.guard(async () => (await this.client.hmget(this.tagsKey, ...tags)).map((v) => (v === null ? 0 : Number(v))));
  }

  /**
   * New versions for the tags: each above both the stored one and Redis's clock in milliseconds.
   * Not a plain HINCRBY: when Redis loses the hash (a restart without persistence, FLUSHALL, an
   * eviction) a counter would start again at 1, below the versions records already carry and
   * processes already know, and the invalidation would drop nothing. Redis's clock keeps going.
   */
  bumpTags(tags: readonly string[]): Promise<Record<string, number>> {
    if (tags.length === 0) return Promise.resolve({});
    return this.guard(async () => {
      const versions = (await this.client.eval(BUMP_TAGS_SCRIPT, 1, this.tagsKey, ...tags)) as number[];
      return Object.fromEntries(tags.map((tag, i) => [tag, Number(versions[i])]));
    });
  }

  publish(message: BusMessage): Promise<void> {
    return this.guard(async () => {
      await this.client.publish(this.channel, JSON.stringify(message));
      this.counters.messagesOut += 1;
    });
  }

  /**
   * Deletes every key under the prefix (SCAN, not KEYS: never blocks Redis), and resolves when
   * they are gone. Each round trip is bounded by opTimeoutMs, not the whole: under one bound a
   * large clear timed out and went on deleting in the background while the cache announced it,
   * and other processes read back (and kept in memory) keys not deleted yet. The deletions of one
   * SCAN batch go in one pipeline, one UNLINK per key (in a Cluster, keys of one node may still be
   * in different slots).
   */
  async clear(): Promise<void> {
    const pattern = `${escapeGlob(this.options.prefix)}*`;
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await this.guard(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
        cursor = next;
        if (keys.length === 0) continue;
        await this.guard(async () => {
          const pipeline = node.pipeline();
          for (const key of keys) pipeline.unlink(key);
          for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
        });
      } while (cursor !== '0');
    }
  }

  stats(): RedisTierStats {
    return { connected: this.connected, breaker: this.breaker.state, breakerOpens: this.breaker.opens, ...this.counters };
  }

  async close(): Promise<void> {
    this.client.disconnect();
    this.subscriber.disconnect();
    await Promise.resolve();
  }

  private async subscribe(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.channel);
    } catch {
      return; // the next 'ready' tries again
    }
    // Invalidations published while this process was not subscribed were lost: say so.
    if (this.subscribedOnce && this.subscriberDown) this.events.emit('resync', undefined);
    this.subscribedOnce = true;
    this.subscriberDown = false;
  }

  /** Runs one Redis call within the time bound and the breaker; throws a typed error otherwise. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    if (!this.breaker.allow()) {
      this.counters.skipped += 1;
      throw new FarmlinkError('CACHE_L2_UNAVAILABLE', 'Redis is failing; skipped (circuit open)');
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FarmlinkError('CACHE_L2_TIMEOUT', `Redis did not answer within ${this.options.opTimeoutMs} ms`)), this.options.opTimeoutMs);
    });
    try {
      const result = await Promise.race([call(), timeout]);
      this.breaker.success();
      return result;
    } catch (error) {
      if (error instanceof FarmlinkError && error.code === 'CACHE_L2_TIMEOUT') this.counters.timeouts += 1;
      else this.counters.errors += 1;
      this.breaker.failure();
      throw error instanceof FarmlinkError ? error : new FarmlinkError('CACHE_L2_ERROR', `Redis: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
