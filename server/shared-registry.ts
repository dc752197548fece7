import type { Logger } from 'pino';
import type { MultiTierCache } from '../lib/cache/cache.js';

/** Where an agent is connected, as every hub sharing the Redis sees it. */
export interface RegistryEntry {
  agent_id: string;
  name: string;
  hub_id: string;
  session_id: string;
  address: string;
  connected_since: number;
  /** When this hub last confirmed the agent is still there. */
  seen_at: number;
}

/**
 * The agent registry shared between hubs through the cache's Redis tier: any hub can answer
 * "where is agent X" for an agent connected to another hub, and an admin command sent to the
 * wrong hub says which one to ask. Each hub writes its own agents' entries and refreshes them
 * while the agent stays (at most every third of the TTL, on heartbeats), so the entries of a hub
 * that died without cleaning up lapse after the TTL. An entry is withdrawn on disconnect only if
 * it is still this session's: a hub that lost an agent must not erase where it went next.
 */
export class SharedRegistry {
  /** Per agent id (so a replaced connection leaves nothing behind): when its entry was last written. */
  private readonly refreshedAt = new Map<string, number>();

  constructor(
    private readonly cache: MultiTierCache,
    private readonly hubId: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new registration here; logs where the agent was before when another hub had it. */
  async announce(entry: Omit<RegistryEntry, 'hub_id' | 'seen_at'>): Promise<void> {
    const previous = await this.cache.get<RegistryEntry>(keyOf(entry.agent_id));
    if (previous && previous.hub_id !== this.hubId) {
      this.log.info(
        { agent_id: entry.agent_id, from_hub: previous.hub_id },
        `Agent ${entry.agent_id} moved here from hub ${previous.hub_id}`,
      );
    }
    await this.write({ ...entry, hub_id: this.hubId, seen_at: this.now() });
  }

  /** Whether the agent's entry is a third of the way to lapsing: asked on every heartbeat (the hub's hot path), so it only reads a map. */
  dueForRefresh(agentId: string): boolean {
    return this.now() - (this.refreshedAt.get(agentId) ?? 0) >= this.ttlMs / 3;
  }

  /** Writes the entry again, confirming the agent is still here. */
  refresh(entry: Omit<RegistryEntry, 'hub_id' | 'seen_at'>): void {
    void this.write({ ...entry, hub_id: this.hubId, seen_at: this.now() });
  }

  /**
   * Deletes the agent's entry if it is still this session's, as one compare-and-delete in Redis:
   * a read then a delete let another hub's announcement land in between (the agent moved there
   * while this hub noticed its old connection close), and the delete erased it. When Redis cannot
   * answer, the shared entry stays and lapses after the registry TTL.
   */
  async withdraw(agentId: string, sessionId: string): Promise<void> {
    this.refreshedAt.delete(agentId);
    const withdrawn = await this.cache.deleteIf<RegistryEntry>(
      keyOf(agentId),
      (current) => current.session_id === sessionId,
    );
    this.log.debug(
      { agent_id: agentId, session: sessionId, withdrawn },
      withdrawn
        ? `Shared registry: withdrew agent ${agentId}; other hubs no longer see it here`
        : `Shared registry: left agent ${agentId}'s entry in place (another session's now, already gone, or ` +
            `Redis could not confirm); a stale one lapses after the registry TTL`,
    );
  }

  lookup(agentId: string): Promise<RegistryEntry | undefined> {
    return this.cache.get<RegistryEntry>(keyOf(agentId));
  }

  private async write(entry: RegistryEntry): Promise<void> {
    this.refreshedAt.set(entry.agent_id, entry.seen_at);
    try {
      await this.cache.set(keyOf(entry.agent_id), entry, { ttlMs: this.ttlMs, jitter: 0, tiers: ['memory', 'redis'] });
    } catch (error) {
      this.log.warn(
        { err: error, agent_id: entry.agent_id },
        `Shared registry: could not record agent ${entry.agent_id}; other hubs will not see it until the next refresh`,
      );
    }
  }
}

const keyOf = (agentId: string) => `agent:${agentId}`;
