import type { ReactNode } from 'react';
import { useStore } from 'zustand';
import { formatBytes } from '../model/format.js';
import type { PanelStore } from '../store/panel-store.js';

const TIER_LABEL = { memory: 'Memory', redis: 'Redis', disk: 'Disk' } as const;

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
  const ratio = cache.hit_ratio === null ? '—' : `${(cache.hit_ratio * 100).toFixed(cache.hit_ratio === 1 ? 0 : 1)} %`;
  return (
    <CacheFrame hint="command results for a moment; the last server across restarts">
      <table className="stats">
        <thead>
          <tr>
            <td />
            <th scope="col">Hits</th>
            <th scope="col">Misses</th>
            <th scope="col">Entries</th>
            <th scope="col">Errors</th>
          </tr>
        </thead>
        <tbody>
          {cache.tiers.map((tier) => (
            <tr key={tier.tier} data-testid={`cache-tier-${tier.tier}`}>
              <th scope="row">{TIER_LABEL[tier.tier]}</th>
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
          <dt>Hit ratio</dt>
          <dd className="num" data-testid="cache-hit-ratio">
            {ratio}
          </dd>
        </div>
        <div>
          <dt title="Loader runs (e.g. adb calls), and the requests that shared a run already going">Loads / shared</dt>
          <dd className="num" data-testid="cache-loads">
            {cache.loads} / {cache.single_flight_joins}
          </dd>
        </div>
        <div>
          <dt>In memory</dt>
          <dd className="num">{formatBytes(cache.memory_bytes)}</dd>
        </div>
        <div>
          <dt>Warm start</dt>
          <dd className="num" data-testid="cache-warm-start">
            {cache.warm_start && cache.warm_start.entries > 0 ? `${cache.warm_start.entries} in ${cache.warm_start.ms} ms` : 'nothing on disk'}
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
