import type { MetricsView, WorkerMetrics } from '../hub.js';
import { SESSION_MODES, emptyFigures, type LatencyTotal, type ModeFigures, type SessionMode } from '../metrics.js';

/** One worker's part of the JSON view of /metrics, as it answers the primary. */
export interface WorkerMetricsPart {
  /** "w1", "w2", … */
  id: string;
  pid: number;
  view: MetricsView;
  latency: Record<SessionMode, LatencyTotal>;
}

/** What the primary answers a worker asking for the whole hub's JSON view. */
export interface HubMetricsParts {
  workers: WorkerMetricsPart[];
  /** Most sessions of each mode open at once across the workers (HubSessionPeaks). */
  peak_connections?: Record<SessionMode, number>;
  /** Since the primary started: the hub's own uptime. */
  uptime_s?: number;
  draining?: boolean;
}

/** Figures that add up across workers; the rest (peak, mean latency) are worked out below. */
const SUMMED = [
  'total_connections',
  'current_connections',
  'messages_sent',
  'messages_received',
  'frames_sent',
  'frames_received',
  'bytes_sent',
  'bytes_received',
  'events_received',
  'connection_errors',
  'duplicates_dropped',
  'nacks',
] as const satisfies ReadonlyArray<keyof ModeFigures>;

/**
 * The JSON view of /metrics for a hub of several workers, from whichever worker answers: counts are
 * summed; `average_latency` is the mean over every worker's frames (not a mean of means);
 * `peak_connections` is the primary's (the workers need not peak together, so a sum of their own
 * peaks would overstate it), never below what is open now. `hub` names the worker that answered, as
 * /health does; `workers` lists each one's own figures.
 */
export function combineMetricsViews(answering: MetricsView, parts: HubMetricsParts): MetricsView {
  const mode = (m: SessionMode): ModeFigures => {
    const figures = emptyFigures();
    let latency: LatencyTotal = { sum: 0, count: 0 };
    for (const part of parts.workers) {
      const own = part.view[m];
      for (const key of SUMMED) figures[key] += own[key];
      latency = { sum: latency.sum + part.latency[m].sum, count: latency.count + part.latency[m].count };
    }
    const peak = parts.peak_connections?.[m] ?? 0;
    figures.peak_connections = Math.max(peak, figures.current_connections);
    figures.average_latency = latency.count > 0 ? latency.sum / latency.count : null;
    return figures;
  };
  const sum = (pick: (view: MetricsView) => number) => parts.workers.reduce((total, p) => total + pick(p.view), 0);
  const [enhanced, legacy] = SESSION_MODES.map(mode) as [ModeFigures, ModeFigures];
  return {
    enhanced,
    legacy,
    hub: {
      ...answering.hub,
      uptime_s: parts.uptime_s ?? answering.hub.uptime_s,
      draining: (parts.draining ?? false) || parts.workers.some((p) => p.view.hub.draining),
      agents_connected: sum((v) => v.hub.agents_connected),
      connections_open: sum((v) => v.hub.connections_open),
      connection_errors: sum((v) => v.hub.connection_errors),
      // Each worker adapts on its own load: the hub is as loaded as its most loaded worker.
      load: parts.workers
        .map((p) => p.view.hub.load)
        .reduce(
          (a, b) =>
            b.level > a.level || (b.level === a.level && b.event_loop_delay_p99_ms > a.event_loop_delay_p99_ms) ? b : a,
          answering.hub.load,
        ),
    },
    workers: parts.workers.map(workerFigures).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })),
  };
}

function workerFigures(part: WorkerMetricsPart): WorkerMetrics {
  const { hub } = part.view;
  return {
    id: part.id,
    hub_id: hub.hub_id,
    pid: part.pid,
    uptime_s: hub.uptime_s,
    draining: hub.draining,
    agents_connected: hub.agents_connected,
    connections_open: hub.connections_open,
    connection_errors: hub.connection_errors,
    load: hub.load,
    enhanced: part.view.enhanced,
    legacy: part.view.legacy,
  };
}
