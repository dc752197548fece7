import type { ReactNode } from 'react';
import { useStore } from 'zustand';
import { hitRatioText, warmStartText } from '../model/cache-labels.js';
import { formatBytes } from '../model/format.js';
import type { PanelStore } from '../store/panel-store.js';

const TIER_LABEL = { memory: 'Memory', redis: 'Redis', disk: 'Disk' } as const;
const TIER_HINT = {
  memory: 'Fastest; emptied when the agent stops',
  redis: 'Shared with other processes',
  disk: "Kept across restarts, in the data directory's cache folder",
} as const;

/**
 * The agent's cache (slow command results, the last server that worked): whether it is earning its
 * keep. Secondary information, so it sits below the link's own cards.
 */
export function CacheCard({ store }: { store: PanelStore }) {
  const cache = useStore(store, (s) => s.snapshot?.cache);
  if (cache === undefined) return null;
  if (cache === null) {
    return (
      <CacheFrame>
        <p className="card-hint" data-testid="cache-off">
          This agent runs without a cache: every command runs afresh, and a restart starts at the primary server.
        </p>
      </CacheFrame>
    );
  }
  const ratio = hitRatioText(cache);
  const warm = warmStartText(cache);
  return (
    <CacheFrame hint="Keeps command answers (such as the device list) for a moment, and the last server that worked across restarts">
      <table className="stats">
        <thead>
          <tr>
            <td />
            <th scope="col" title="Lookups this part of the cache answered (hits)">
              Answered
            </th>
            <th
              scope="col"
              title="Lookups it could not answer, so the next part or the command itself was asked (misses)"
            >
              Not found
            </th>
            <th scope="col" title="Entries it holds now">
              Stored now
            </th>
            <th scope="col" title="Reads or writes of it that failed">
              Errors
            </th>
          </tr>
        </thead>
        <tbody>
          {cache.tiers.map((tier) => (
            <tr key={tier.tier} data-testid={`cache-tier-${tier.tier}`}>
              <th scope="row" title={TIER_HINT[tier.tier]}>
                {TIER_LABEL[tier.tier]}
              </th>
              <td className="num">{tier.hits.toLocaleString('en-US')}</td>
              <td className="num">{tier.misses.toLocaleString('en-US')}</td>
              <td className="num">{tier.entries === null ? '—' : tier.entries.toLocaleString('en-US')}</td>
              <td className="num">{tier.errors.toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <dl className="facts">
        <div>
          <dt title={ratio.detail}>Answered from the cache</dt>
          <dd className="num" data-testid="cache-hit-ratio" title={ratio.detail}>
            {ratio.text}
          </dd>
        </div>
        <div>
          <dt title="Times an answer had to be produced afresh, e.g. an adb run (cache loads)">Commands run</dt>
          <dd className="num" data-testid="cache-loads">
            {cache.loads.toLocaleString('en-US')}
          </dd>
        </div>
        <div>
          <dt title="Requests that came while the same command was already running and got its answer instead of running it again (single-flight joins)">
            Requests that shared a run
          </dt>
          <dd className="num" data-testid="cache-shared">
            {cache.single_flight_joins.toLocaleString('en-US')}
          </dd>
        </div>
        <div>
          <dt title="Memory the cached entries take in the agent">Memory used</dt>
          <dd className="num">{formatBytes(cache.memory_bytes)}</dd>
        </div>
        <div>
          <dt
            title={
              'What the agent found on disk when it started and loaded into memory. ' +
              'Entries written since (such as the server it registered with) count under Disk → Stored now.'
            }
          >
            At start-up
          </dt>
          <dd data-testid="cache-warm-start" title={warm.detail}>
            {warm.text}
          </dd>
        </div>
      </dl>
    </CacheFrame>
  );
}

function CacheFrame({ hint, children }: { hint?: string; children: ReactNode }) {
  return (
    <section className="card card-cache" aria-labelledby="cache-title">
      <div className="card-head">
        <h2 id="cache-title" className="card-title">
          Cache
        </h2>
        {hint ? <span className="card-hint">{hint}</span> : null}
      </div>
      {children}
    </section>
  );
}
