import { Suspense, lazy } from 'react';
import { useStore } from 'zustand';
import type { RttSample } from '../../protocol/connection-state.js';
import { chartWindow } from '../model/chart-window.js';
import { formatDuration, formatMs } from '../model/format.js';
import { latencySummary } from '../model/latency.js';
import type { PanelStore } from '../store/panel-store.js';

// recharts is most of the bundle: load the plot after the first paint, so the numbers come first.
const LatencyPlot = lazy(() => import('./LatencyPlot.js'));

const NO_RTT: RttSample[] = [];
const NO_LOST: number[] = [];

/** Heartbeat round trips over the last 15 minutes, with the window's p50 and p95. */
export function LatencyChart({ store }: { store: PanelStore }) {
  const rtt = useStore(store, (s) => s.snapshot?.stats.heartbeat_rtt ?? NO_RTT);
  const lost = useStore(store, (s) => s.snapshot?.stats.heartbeat_lost ?? NO_LOST);
  const now = useStore(store, (s) => s.snapshot?.now ?? 0);
  const intervalS = useStore(store, (s) => s.snapshot?.settings.values.connection.heartbeat_interval ?? 30);
  const { start, end } = chartWindow(now);
  const summary = latencySummary(rtt, now);
  const lostInWindow = lost.filter((at) => at >= start).length;

  return (
    <section className="card card-chart" data-testid="latency-chart" aria-labelledby="latency-title">
      <div className="card-head">
        <h2 id="latency-title" className="card-title">
          Heartbeat round trip <span className="card-title-sub">last 15 min</span>
        </h2>
        <dl className="chart-figures">
          <div>
            <dt>p50</dt>
            <dd className="num" data-testid="latency-p50">
              {formatMs(summary.p50)}
            </dd>
          </div>
          <div>
            <dt>p95</dt>
            <dd className="num" data-testid="latency-p95">
              {formatMs(summary.p95)}
            </dd>
          </div>
          <div>
            <dt>lost</dt>
            <dd className={`num${lostInWindow > 0 ? ' text-bad' : ''}`} data-testid="latency-lost">
              {lostInWindow}
            </dd>
          </div>
        </dl>
      </div>
      {summary.samples === 0 ? (
        <div className="chart-empty" data-testid="latency-empty">
          <p className="chart-empty-title">No heartbeats yet</p>
          <p className="muted">
            {lostInWindow > 0
              ? `${lostInWindow} heartbeat${lostInWindow === 1 ? ' was' : 's were'} sent but not answered in the last 15 minutes.`
              : `Once the agent is registered it sends one every ${formatDuration(intervalS * 1000)} and the round trips appear here.`}
          </p>
        </div>
      ) : (
        <Suspense fallback={<div className="chart-body chart-loading" aria-hidden="true" />}>
          <LatencyPlot
            samples={rtt}
            lost={lost}
            start={start}
            end={end}
            p50={summary.p50}
            p95={summary.p95}
            maxGapMs={intervalS * 2500}
          />
        </Suspense>
      )}
    </section>
  );
}
