import type { CacheSummary } from '../../protocol/agent-host.js';

const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/**
 * The Cache card's "At start-up" line: what the agent found on disk when it started and loaded
 * into memory. It is about that moment; what was written since (the server registered with a
 * moment ago) is in the disk tier's "stored now", so the two never contradict each other.
 */
export function warmStartText(cache: Pick<CacheSummary, 'warm_start' | 'tiers'>): { text: string; detail: string } {
  const warm = cache.warm_start;
  const hasDisk = cache.tiers.some((t) => t.tier === 'disk');
  if (!hasDisk)
    return { text: 'memory only', detail: 'This cache has no disk: it starts empty every time the agent starts.' };
  if (!warm)
    return {
      text: 'not loaded',
      detail: 'The disk was not read into memory at start-up; entries are read from it when asked for.',
    };
  if (warm.found === 0)
    return {
      text: 'disk was empty',
      detail: 'Nothing usable was on disk when the agent started (a first start, or everything had expired).',
    };
  const took = `in ${warm.ms} ms`;
  if (warm.entries === warm.found)
    return {
      text: `loaded ${count(warm.entries, 'entry', 'entries')} from disk`,
      detail: `Found on disk when the agent started and loaded into memory ${took}.`,
    };
  return {
    text: `loaded ${warm.entries.toLocaleString('en-US')} of ${count(warm.found, 'entry', 'entries')} from disk`,
    detail: `${warm.found - warm.entries} stayed on disk only (memory is smaller, or they are too large for it); loaded ${took}.`,
  };
}

/** "75 %", or words when nothing was looked up yet. */
export function hitRatioText(cache: Pick<CacheSummary, 'hit_ratio' | 'hits' | 'misses'>): {
  text: string;
  detail: string;
} {
  const lookups = cache.hits + cache.misses;
  if (cache.hit_ratio === null)
    return {
      text: 'nothing asked yet',
      detail: 'No command or server lookup has gone through the cache since the agent started.',
    };
  return {
    text: `${(cache.hit_ratio * 100).toFixed(cache.hit_ratio === 1 || cache.hit_ratio === 0 ? 0 : 1)} %`,
    detail: `${cache.hits.toLocaleString('en-US')} of ${count(lookups, 'lookup')} answered from the cache without running anything again (hit ratio).`,
  };
}
