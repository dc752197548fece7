import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import { Breaker } from '../circuit-breaker.js';

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
  /** …or the nodes of a Redis Cluster to start from (the rest are discovered). */
  cluster?: ClusterNode[] | undefined;
  /** Prefix of every key and of the bus channel, so several caches or apps share one Redis. */
  prefix: string;
  /** No operation waits longer than this: past it the call goes on without Redis. */
  opTimeoutMs: number;
  /** The breaker: failureThreshold failures within windowMs skip Redis for cooldownMs, then one call probes it. */
  failureThreshold: number;
  windowMs: number;
  cooldownMs: number;
  /** The time bounds' timers and the breaker's window and cool-down. */
  clock: Clock;
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

/** Keys changed while Redis was unreachable that are remembered one by one; past that, everything under the prefix goes. */
const MAX_UNSYNCED_KEYS = 10_000;

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
 * KEYS[1]: the key; ARGV[1]: the bytes the caller read. Deletes the key only if it still holds
 * exactly those bytes (Lua strings are binary-safe); returns 1 if it did, 0 otherwise. One script,
 * so no other process's write can land between the comparison and the DEL.
 */
const DELETE_IF_UNCHANGED_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
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
  private readonly breaker: Breaker;
  private readonly channel: string;
  private readonly tagsKey: string;
  private connected = false;
  private subscribedOnce = false;
  private subscriberDown = false;
  private counters = { errors: 0, timeouts: 0, skipped: 0, messagesIn: 0, messagesOut: 0 };
  /**
   * What this process changed without Redis or the other processes learning of it (the call
   * failed, timed out or was skipped): once Redis answers again, these keys are deleted there,
   * these tags bumped, and all of it published — otherwise Redis, which may well have kept its
   * data (a hang, a partition, an open circuit), would serve the old values back to everyone.
   * Until then this process does not read those keys from Redis.
   */
  private readonly unsynced = { keys: new Set<string>(), tags: new Set<string>(), clear: false };
  private syncing = false;

  constructor(private readonly options: RedisTierOptions) {
    const endpoint = options.cluster?.length
      ? { cluster: options.cluster }
      : options.url
        ? { url: options.url }
        : undefined;
    if (!endpoint) throw new FarmlinkError('CACHE_CONFIG', 'The Redis tier needs a url or cluster nodes');
    this.events = new TypedEmitter((error) => options.logger.error({ err: error }, 'A cache bus listener threw'));
    this.breaker = new Breaker({
      name: `cache ${options.prefix} redis`,
      failures: options.failureThreshold,
      windowMs: options.windowMs,
      recoveryMs: options.cooldownMs,
      clock: options.clock,
    });
    this.channel = `${options.prefix}bus`;
    // One hash tag for the tag versions: a single slot in a Cluster, so HMGET and the bump script stay single-node.
    this.tagsKey = `${options.prefix}{tag-versions}`;
    const redisOptions: RedisOptions = {
      // Fail fast instead of queueing while disconnected: a cache must not wait for Redis.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: Math.max(1000, options.opTimeoutMs * 4),
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
      lazyConnect: false,
    };
    this.client =
      'cluster' in endpoint
        ? new Cluster(endpoint.cluster, {
            redisOptions,
            enableOfflineQueue: false,
            clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
          })
        : new Redis(endpoint.url, redisOptions);
    this.subscriber = this.client.duplicate();
    this.client.on('ready', () => {
      if (!this.connected) options.logger.info('Cache: Redis connected');
      this.connected = true;
      this.breaker.reset();
      void this.sync();
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
    // Redis still holds what this process changed while it could not reach it: not that.
    if (this.unsynced.clear || this.unsynced.keys.has(key)) return Promise.resolve(undefined);
    return this.guard(async () => (await this.client.getBuffer(this.options.prefix + key)) ?? undefined);
  }

  async set(key: string, bytes: Buffer, ttlMs: number): Promise<void> {
    await this.tracked({ keys: [key] }, () =>
      this.client.set(this.options.prefix + key, bytes, 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
    this.unsynced.keys.delete(key);
  }

  /** Single-key DELs: keys of a Cluster live in different slots, and a multi-key DEL would fail there. */
  async delete(keys: readonly string[]): Promise<void> {
    await this.tracked({ keys: [...keys] }, () =>
      Promise.all(keys.map((key) => this.client.del(this.options.prefix + key))),
    );
    for (const key of keys) this.unsynced.keys.delete(key);
  }

  /**
   * Deletes the key only if Redis still holds exactly `expected` (what this process read); true if
   * it did. Guarded but not tracked: when the call fails or times out, the outcome is unknown and
   * must stay so — remembering the key for sync() would delete it unconditionally later, erasing
   * whatever another process wrote meanwhile, which is what the comparison is there to prevent.
   */
  async deleteIfUnchanged(key: string, expected: Buffer): Promise<boolean> {
    if (this.unsynced.clear || this.unsynced.keys.has(key)) return false;
    const deleted = await this.guard(
      () => this.client.eval(DELETE_IF_UNCHANGED_SCRIPT, 1, this.options.prefix + key, expected) as Promise<number>,
    );
    return deleted === 1;
  }

  tagVersions(tags: readonly string[]): Promise<number[]> {
    if (tags.length === 0) return Promise.resolve([]);
    return this.guard(async () =>
      (await this.client.hmget(this.tagsKey, ...tags)).map((v) => (v === null ? 0 : Number(v))),
    );
  }

  /**
   * New versions for the tags: each above both the stored one and Redis's clock in milliseconds.
   * Not a plain HINCRBY: when Redis loses the hash (a restart without persistence, FLUSHALL, an
   * eviction) a counter would start again at 1, below the versions records already carry and
   * processes already know, and the invalidation would drop nothing. Redis's clock keeps going.
   */
  async bumpTags(tags: readonly string[]): Promise<Record<string, number>> {
    if (tags.length === 0) return {};
    const versions = await this.tracked(
      { tags: [...tags] },
      () => this.client.eval(BUMP_TAGS_SCRIPT, 1, this.tagsKey, ...tags) as Promise<number[]>,
    );
    return Object.fromEntries(tags.map((tag, i) => [tag, Number(versions[i])]));
  }

  async publish(message: BusMessage): Promise<void> {
    // A message that does not go out leaves its keys, tags or clear to be published later.
    const { keys = [], expire = [], tags = {}, clear = false } = message;
    await this.tracked({ keys: [...keys, ...expire], tags: Object.keys(tags), clear }, () =>
      this.client.publish(this.channel, JSON.stringify(message)),
    );
    this.counters.messagesOut += 1;
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
    try {
      await this.deleteAll();
    } catch (error) {
      this.unsynced.clear = true;
      throw error;
    }
    this.unsynced.clear = false;
    this.unsynced.keys.clear();
  }

  private async deleteAll(): Promise<void> {
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
    return {
      connected: this.connected,
      breaker: this.breaker.state,
      breakerOpens: this.breaker.opens,
      ...this.counters,
    };
  }

  async close(): Promise<void> {
    this.client.disconnect();
    this.subscriber.disconnect();
    await Promise.resolve();
  }

  /** Runs a call that changes Redis; if it does not get through, what it changed is remembered for sync(). */
  private async tracked<T>(
    change: { keys?: string[]; tags?: string[]; clear?: boolean },
    call: () => Promise<T>,
  ): Promise<T> {
    try {
      return await this.guard(call);
    } catch (error) {
      if (change.clear) this.unsynced.clear = true;
      for (const tag of change.tags ?? []) this.unsynced.tags.add(tag);
      for (const key of change.keys ?? []) this.unsynced.keys.add(key);
      // Past this many keys, dropping everything under the prefix is cheaper than remembering them.
      if (this.unsynced.keys.size > MAX_UNSYNCED_KEYS) {
        this.unsynced.clear = true;
        this.unsynced.keys.clear();
      }
      throw error;
    }
  }

  /**
   * Once Redis answers again: deletes there what this process changed meanwhile (or everything,
   * after a clear or too many changes), bumps the tags it invalidated, and publishes it all, so
   * no process reads the old values back. Runs after each successful call while anything is left.
   */
  private async sync(): Promise<void> {
    const { unsynced } = this;
    if (this.syncing || (!unsynced.clear && unsynced.keys.size === 0 && unsynced.tags.size === 0)) return;
    this.syncing = true;
    const clear = unsynced.clear;
    const keys = [...unsynced.keys];
    const tags = [...unsynced.tags];
    try {
      const message: BusMessage = { origin: this.options.origin };
      if (clear) {
        await this.deleteAll();
        message.clear = true;
      } else if (keys.length > 0) {
        // Single-key DELs, sent together (a Cluster pipeline must stay within one slot).
        await this.guard(() => Promise.all(keys.map((key) => this.client.del(this.options.prefix + key))));
        message.keys = keys;
      }
      if (tags.length > 0) {
        const versions = (
          await this.guard(() => this.client.eval(BUMP_TAGS_SCRIPT, 1, this.tagsKey, ...tags) as Promise<number[]>)
        ).map(Number);
        message.tags = Object.fromEntries(
          tags.flatMap((tag, i) => {
            const version = versions[i];
            return version === undefined ? [] : [[tag, version]];
          }),
        );
      }
      await this.guard(() => this.client.publish(this.channel, JSON.stringify(message)));
      this.counters.messagesOut += 1;
      // Done with these (anything added meanwhile stays for the next round).
      if (clear) unsynced.clear = false;
      for (const key of keys) unsynced.keys.delete(key);
      for (const tag of tags) unsynced.tags.delete(tag);
      this.options.logger.info(
        { keys: clear ? 'all' : keys.length, tags: tags.length },
        'Cache: Redis is back; what changed meanwhile is deleted there and announced',
      );
    } catch {
      // Still failing: the next successful call or reconnection tries again.
    } finally {
      this.syncing = false;
    }
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
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.options.clock.setTimeout(
        () =>
          reject(new FarmlinkError('CACHE_L2_TIMEOUT', `Redis did not answer within ${this.options.opTimeoutMs} ms`)),
        this.options.opTimeoutMs,
      );
    });
    try {
      const result = await Promise.race([call(), timeout]);
      this.breaker.success();
      if (!this.syncing) void this.sync();
      return result;
    } catch (error) {
      if (error instanceof FarmlinkError && error.code === 'CACHE_L2_TIMEOUT') this.counters.timeouts += 1;
      else this.counters.errors += 1;
      this.breaker.failure(error instanceof Error ? error.message : String(error));
      throw error instanceof FarmlinkError
        ? error
        : new FarmlinkError('CACHE_L2_ERROR', `Redis: ${(error as Error).message}`, { cause: error });
    } finally {
      this.options.clock.clearTimeout(timer);
    }
  }
}
