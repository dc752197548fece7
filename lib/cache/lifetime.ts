import type { Clock } from '../clock.js';
import type { CacheRecord } from './record.js';

/**
 * The two clocks a cached value lives by. A record's freshUntil and staleUntil are wall-clock
 * epoch milliseconds, because records cross processes (Redis) and outlive this one (disk): only
 * wall time means the same thing there. What memory (L1) holds never leaves this process, so its
 * deadlines are kept on the monotonic clock: a wall-clock jump (NTP, a changed system clock) then
 * neither expires nor revives anything in memory. The wall time is read once, when a record enters
 * memory, to learn how long it has left.
 */

/** What L1 holds: the record (to write on, unchanged) and its deadlines on the monotonic clock. */
export interface MemoryEntry<V = unknown> {
  record: CacheRecord<V>;
  /** Monotonic milliseconds, exclusive, like the record's own. */
  freshUntil: number;
  staleUntil: number;
}

export function memoryEntry<V>(record: CacheRecord<V>, clock: Clock): MemoryEntry<V> {
  const offset = clock.monotonic() - clock.now();
  return { record, freshUntil: record.freshUntil + offset, staleUntil: record.staleUntil + offset };
}

/**
 * A value found in some tier with its deadlines, `monotonic` saying on which clock: memory's on
 * the monotonic one, Redis's and disk's on the wall clock.
 */
export interface Found<V> {
  record: CacheRecord<V>;
  tier: 'memory' | 'redis' | 'disk';
  freshUntil: number;
  staleUntil: number;
  monotonic: boolean;
}

/** Now, on the clock the found value's deadlines are on. */
export function nowFor(found: { monotonic: boolean }, clock: Clock): number {
  return found.monotonic ? clock.monotonic() : clock.now();
}

/** The record made stale now, servable for the grace it was written with (not until its old end: grace 0 means gone). */
export function staleFrom<T extends { freshUntil: number; staleUntil: number }>(lifetime: T, now: number): T {
  const freshUntil = Math.min(lifetime.freshUntil, now - 1);
  return {
    ...lifetime,
    freshUntil,
    staleUntil: Math.min(lifetime.staleUntil, freshUntil + (lifetime.staleUntil - lifetime.freshUntil)),
  };
}
