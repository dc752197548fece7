import type { BatchSettings } from '../protocol/messages.js';
import type { LoadLevel } from './load-monitor.js';

/** How much wider the batch window is at each load level than the configured one. */
const WINDOW_FACTOR: Record<LoadLevel, number> = { 0: 1, 1: 2, 2: 4 };
/** A configured window of 0 (no batching) still widens under load, from this. */
const MIN_WIDENED_BASE_MS = 25;
/** Widening never goes past this: beyond a second, events would sit on the agents for longer than a farm expects. */
const MAX_WIDENED_WINDOW_MS = 1000;
/**
 * The heartbeat interval asked of agents when busy and overloaded. An agent's default is 30 s and
 * its dead timeout keeps at least three intervals (agent/connection/heartbeat.ts), so a slower
 * beat never makes it give up on a hub that is slow, not gone.
 */
const HEARTBEAT_MS: Record<Exclude<LoadLevel, 0>, number> = { 1: 60_000, 2: 120_000 };

/** What the hub asks of its enhanced agents at one load level. */
export interface Pace {
  level: LoadLevel;
  batch: BatchSettings;
  /** Beat at least this rarely; null: at the agent's own interval. */
  heartbeatIntervalMs: number | null;
}

/**
 * The pace at `level`: the configured batch window ×2 when busy and ×4 when overloaded (bounded
 * by a second, never narrower than configured), and heartbeats every 60 s / 120 s — at most
 * `maxHeartbeatMs`, which keeps a shared registry entry (refreshed on heartbeats) from lapsing.
 */
export function paceAt(level: LoadLevel, configured: BatchSettings, maxHeartbeatMs: number): Pace {
  if (level === 0) return { level, batch: configured, heartbeatIntervalMs: null };
  const widened = Math.max(MIN_WIDENED_BASE_MS, configured.window_ms) * WINDOW_FACTOR[level];
  const window = Math.max(configured.window_ms, Math.min(MAX_WIDENED_WINDOW_MS, widened));
  return {
    level,
    batch: { ...configured, window_ms: Math.round(window) },
    heartbeatIntervalMs: Math.round(Math.min(HEARTBEAT_MS[level], maxHeartbeatMs)),
  };
}

/**
 * The longest heartbeat interval the hub may ask for. With a shared registry each entry lives
 * `registryTtlMs` and is rewritten on the first heartbeat a third of the way to lapsing, so two
 * writes can be a third of the TTL plus one interval apart: half the TTL keeps a margin.
 */
export function maxHeartbeatMs(registryTtlMs: number | undefined): number {
  return registryTtlMs === undefined ? HEARTBEAT_MS[2] : Math.min(HEARTBEAT_MS[2], registryTtlMs / 2);
}

/** "every 100 ms", "every 60 s": for the one log line per level change. */
export function describePace(pace: Pace): string {
  const beat =
    pace.heartbeatIntervalMs === null
      ? 'beat at their own interval again'
      : `beat every ${formatMs(pace.heartbeatIntervalMs)}`;
  return `batch every ${formatMs(pace.batch.window_ms)} and ${beat}`;
}

export function formatMs(ms: number): string {
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${Number(ms.toFixed(ms < 1 ? 3 : 1))} ms`;
}
