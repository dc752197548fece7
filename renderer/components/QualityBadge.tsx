import { useStore } from 'zustand';
import { formatMs } from '../model/format.js';
import { formatPercent, qualityRules, qualityShown } from '../model/labels.js';
import type { PanelStore } from '../store/panel-store.js';

const RULES = qualityRules();

/** The connection's quality (protocol/quality.ts), with the two figures it is judged on right beside it. */
export function QualityBadge({ store }: { store: PanelStore }) {
  const quality = useStore(store, (s) => s.snapshot?.quality);
  const switchingMode = useStore(store, (s) => s.modeSwitch !== null);
  if (!quality) return null;
  const level = qualityShown(quality.level, switchingMode);

  return (
    <section className="card card-quality" aria-labelledby="quality-title">
      <div className="card-head">
        <h2 id="quality-title" className="card-title">
          Connection quality
        </h2>
      </div>
      <div
        className={`quality tone-${level.tone}`}
        data-testid="quality"
        data-level={quality.level}
        data-switching={level.switching ? 'true' : undefined}
        title={RULES.join('\n')}
      >
        <span className="status-dot status-dot-large" aria-hidden="true" />
        <span className="quality-label">{level.label}</span>
      </div>
      <dl className="facts">
        <div>
          <dt>Median round trip</dt>
          <dd className="num" data-testid="quality-median">
            {formatMs(quality.median_rtt_ms)}
          </dd>
        </div>
        <div>
          <dt>Heartbeats lost</dt>
          <dd className="num" data-testid="quality-loss">
            {quality.samples === 0 ? '—' : formatPercent(quality.loss)}
          </dd>
        </div>
      </dl>
      {level.switching ? (
        <p className="card-hint quality-stale">
          Reconnecting in the new protocol mode; these figures are from the connection before.
        </p>
      ) : quality.level === 'disconnected' && quality.samples > 0 ? (
        <p className="card-hint quality-stale">These figures are from before the link dropped.</p>
      ) : null}
      <details className="rules">
        <summary>
          How this is judged{' '}
          <span className="muted">
            ({quality.samples === 1 ? 'on 1 heartbeat' : `on the last ${quality.samples} heartbeats`})
          </span>
        </summary>
        <ul>
          {RULES.map((rule) => (
            <li key={rule}>{rule}</li>
          ))}
        </ul>
      </details>
    </section>
  );
}
