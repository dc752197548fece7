import { describe, expect, it } from 'vitest';
import type { CacheSummary } from '../../protocol/agent-host.js';
import { hitRatioText, warmStartText } from './cache-labels.js';

const tiers: CacheSummary['tiers'] = [
  { tier: 'memory', hits: 0, misses: 0, entries: 1, errors: 0 },
  { tier: 'disk', hits: 0, misses: 0, entries: 1, errors: 0 },
];

describe('cache card labels', () => {
  it('on a first start the disk was empty, though it holds the server registered with since', () => {
    const line = warmStartText({ tiers, warm_start: { entries: 0, found: 0, ms: 0.1 } });
    expect(line.text).toBe('disk was empty');
    expect(line.text).not.toMatch(/nothing on disk/);
  });

  it('after a restart: what was found and loaded, and what stayed on disk', () => {
    expect(warmStartText({ tiers, warm_start: { entries: 1, found: 1, ms: 0.4 } })).toEqual({
      text: 'loaded 1 entry from disk',
      detail: expect.stringContaining('in 0.4 ms') as string,
    });
    expect(warmStartText({ tiers, warm_start: { entries: 800, found: 1200, ms: 3 } }).text).toBe(
      'loaded 800 of 1,200 entries from disk',
    );
  });

  it('says so without a disk', () => {
    expect(warmStartText({ tiers: [tiers[0]!], warm_start: null }).text).toBe('memory only');
  });

  it('puts the hit ratio in words before the first lookup, and counts behind the figure', () => {
    expect(hitRatioText({ hit_ratio: null, hits: 0, misses: 0 }).text).toBe('nothing asked yet');
    expect(hitRatioText({ hit_ratio: 0.75, hits: 3, misses: 1 })).toEqual({
      text: '75.0 %',
      detail: expect.stringContaining('3 of 4 lookups') as string,
    });
  });
});
