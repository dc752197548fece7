import path from 'node:path';
import type { Logger } from 'pino';
import type { CacheSummary } from '../../protocol/agent-host.js';
import type { CommandHandler } from '../commands/registry.js';
import { MultiTierCache, type CacheMetricsSnapshot } from '../../lib/cache/cache.js';

/** The last hub the agent registered with, kept on disk so a restart dials it first. */
export interface LastServer {
  url: string;
  hub_id: string;
  session_id: string;
  registered_at: number;
}

const LAST_SERVER_KEY = 'connection:last-server';
/** Past this, a restart starts at the primary again, the configured order (the old fallback may be long gone). */
const LAST_SERVER_TTL_MS = 24 * 60 * 60_000;

/**
 * The agent's cache: memory in front of an LMDB file in the data directory (no Redis — an agent
 * shares nothing with other processes). It holds the results of slow commands for a moment, so a
 * burst of `devices.list` from several operators runs adb once, and the last server that worked,
 * so a restarted agent goes straight back to the hub it was on.
 */
export class AgentCache {
  private readonly writes = new Set<Promise<void>>();

  private constructor(
    private readonly cache: MultiTierCache,
    private readonly log: Logger,
  ) {}

  /** Opens the cache under `dataDir/cache`; without a usable disk, memory only (said so in the log). */
  static open(dataDir: string, logger: Logger): AgentCache {
    const dir = path.join(dataDir, 'cache');
    try {
      return new AgentCache(
        MultiTierCache.create({
          name: 'agent',
          memory: { maxEntries: 1000 },
          disk: { path: dir, maxEntries: 10_000 },
          logger,
        }),
        logger,
      );
    } catch (error) {
      logger.warn(
        { err: error, dir },
        `Cache: cannot open ${dir} (${(error as Error).message}); caching in memory only, so a restart will start at the primary server`,
      );
      return new AgentCache(MultiTierCache.create({ name: 'agent', memory: { maxEntries: 1000 }, logger }), logger);
    }
  }

  /**
   * A command handler whose result is reused for `ttlMs`: callers within that time share one run
   * (single-flight), and `args.fresh: true` always runs it. Failures are not cached.
   */
  command(name: string, ttlMs: number, handler: CommandHandler): CommandHandler {
    return async (args, context) => {
      const { fresh, ...rest } = args;
      const key = `command:${name}:${stableJson(rest)}`;
      if (fresh === true) {
        const value = await handler(rest, context);
        await this.cache.set(key, value, { ttlMs, jitter: 0, tiers: ['memory'] });
        return value;
      }
      return this.cache.getOrSet(key, ({ signal }) => handler(rest, { signal }), {
        ttlMs,
        jitter: 0,
        tiers: ['memory'],
        graceMs: 0,
      });
    };
  }

  /** Index of the last server that worked among `servers`, if it is still configured and recent. */
  async lastServer(servers: readonly string[]): Promise<{ index: number; entry: LastServer } | undefined> {
    try {
      const entry = await this.cache.get<LastServer>(LAST_SERVER_KEY);
      if (!entry) return undefined;
      const index = servers.indexOf(entry.url);
      return index >= 0 ? { index, entry } : undefined;
    } catch (error) {
      this.log.warn({ err: error }, 'Cache: could not read the last server; starting at the primary');
      return undefined;
    }
  }

  /**
   * Fire and forget for the agent (a failed write only costs the next start its shortcut); the
   * write is kept so that `settled()` can await it — a test that reads it back needs it done, not timed.
   */
  rememberServer(entry: LastServer): void {
    const write = this.cache
      .set(LAST_SERVER_KEY, entry, { ttlMs: LAST_SERVER_TTL_MS, jitter: 0, tiers: ['memory', 'disk'] })
      .catch((error: unknown) => {
        this.log.warn({ err: error }, 'Cache: could not record the last server; a restart will start at the primary');
      })
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }

  /** Resolves once every `rememberServer` write started so far has finished (or failed and been logged). */
  async settled(): Promise<void> {
    await Promise.all([...this.writes]);
  }

  metrics(): CacheMetricsSnapshot {
    return this.cache.metrics();
  }

  close(): Promise<void> {
    return this.cache.close();
  }
}

/** JSON with object keys sorted, so { a, b } and { b, a } are one cache key. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** The cache's metrics in the panel's terms (protocol/agent-host.ts CacheSummary). */
export function cacheSummary(m: CacheMetricsSnapshot): CacheSummary {
  const lookups = m.hits + m.misses;
  const tiers: CacheSummary['tiers'] = [
    {
      tier: 'memory',
      hits: m.tiers.memory.hits,
      misses: m.tiers.memory.misses,
      entries: m.tiers.memory.entries,
      errors: 0,
    },
  ];
  if (m.tiers.redis)
    tiers.push({
      tier: 'redis',
      hits: m.tiers.redis.hits,
      misses: m.tiers.redis.misses,
      entries: null,
      errors: m.tiers.redis.errors,
    });
  if (m.tiers.disk)
    tiers.push({
      tier: 'disk',
      hits: m.tiers.disk.hits,
      misses: m.tiers.disk.misses,
      entries: m.tiers.disk.entries,
      errors: m.tiers.disk.errors,
    });
  return {
    hit_ratio: lookups === 0 ? null : m.hits / lookups,
    hits: m.hits,
    misses: m.misses,
    loads: m.loads,
    single_flight_joins: m.singleFlightJoins,
    evictions: m.tiers.memory.evictions,
    memory_bytes: Math.max(0, Math.round(m.tiers.memory.bytes)),
    tiers,
    warm_start: m.warmStart
      ? { entries: m.warmStart.entries, found: m.warmStart.found, ms: Math.round(m.warmStart.ms * 100) / 100 }
      : null,
  };
}
