import { Suspense, lazy, useState } from 'react';
import { useStore } from 'zustand';
import type { ThroughputSample } from '../../protocol/agent-host.js';
import { chartWindow } from '../model/chart-window.js';
import type { PanelStore } from '../store/panel-store.js';
import type { Unit } from './ThroughputPlot.js';

// recharts is most of the bundle: load the plot after the first paint (as LatencyChart does).
const ThroughputPlot = lazy(() => import('./ThroughputPlot.js'));

const NO_SAMPLES: ThroughputSample[] = [];

/** Traffic each way over the last 15 minutes, in bytes or messages per second. */
export function ThroughputChart({ store }: { store: PanelStore }) {
  const samples = useStore(store, (s) => s.snapshot?.throughput ?? NO_SAMPLES);
  const now = useStore(store, (s) => s.snapshot?.now ?? 0);
  const [unit, setUnit] = useState<Unit>('bytes');
  const { start, end } = chartWindow(now);

  return (
    <section className="card card-chart" data-testid="throughput-chart" aria-labelledby="throughput-title">
      <div className="card-head">
        <h2 id="throughput-title" className="card-title">
          Throughput <span className="card-title-sub">last 15 min</span>
        </h2>
        <div className="segmented segmented-small" role="group" aria-label="Unit">
          <button type="button" className="segment" aria-pressed={unit === 'bytes'} onClick={() => setUnit('bytes')}>
            Bytes/s
          </button>
          <button type="button" className="segment" aria-pressed={unit === 'msg'} onClick={() => setUnit('msg')}>
            Messages/s
          </button>
        </div>
      </div>
      {samples.length < 2 ? (
        <div className="chart-empty" data-testid="throughput-empty">
          <p className="chart-empty-title">Collecting samples…</p>
          <p className="muted">
            The agent counts its traffic every 5 seconds; the first rates appear after two counts.
          </p>
        </div>
      ) : (
        <Suspense fallback={<div className="chart-body chart-loading" aria-hidden="true" />}>
          <ThroughputPlot samples={samples} start={start} end={end} unit={unit} />
        </Suspense>
      )}
    </section>
  );
}
