import { describe, expect, it } from 'vitest';
import type { MetricsView } from '../hub.js';
import { emptyFigures, type ModeFigures } from '../metrics.js';
import { combineMetricsViews, type WorkerMetricsPart } from './metrics-view.js';

function view(hubId: string, legacy: Partial<ModeFigures>, hub: Partial<MetricsView['hub']> = {}): MetricsView {
  return {
    enhanced: emptyFigures(),
    legacy: { ...emptyFigures(), ...legacy },
    hub: {
      hub_id: hubId,
      version: '1.0.0',
      uptime_s: 5,
      draining: false,
      agents_connected: legacy.current_connections ?? 0,
      connections_open: legacy.current_connections ?? 0,
      connection_errors: 0,
      enhanced_granted: true,
      batch: { window_ms: 50, max_messages: 500, max_bytes: 65536 },
      load: { level: 0, name: 'normal', event_loop_delay_p99_ms: 1, adapt: true, heartbeat_interval_ms: null },
      ...hub,
    },
  };
}

function part(id: string, v: MetricsView, latency: { sum: number; count: number }): WorkerMetricsPart {
  return { id, pid: 100, view: v, latency: { enhanced: { sum: 0, count: 0 }, legacy: latency } };
}

describe('combineMetricsViews', () => {
  const w1 = view('hub/w1', {
    total_connections: 7,
    current_connections: 3,
    peak_connections: 6,
    messages_received: 100,
    connection_errors: 1,
    average_latency: 0.01,
  });
  const w2 = view(
    'hub/w2',
    { total_connections: 4, current_connections: 4, peak_connections: 4, messages_received: 20, average_latency: 0.1 },
    {
      connection_errors: 2,
      draining: true,
      load: { level: 1, name: 'busy', event_loop_delay_p99_ms: 83, adapt: true, heartbeat_interval_ms: 60_000 },
    },
  );
  const parts = [part('w2', w2, { sum: 0.2, count: 2 }), part('w1', w1, { sum: 0.8, count: 80 })];

  it('sums counts, averages latency over every frame, and takes the peak the primary saw', () => {
    const combined = combineMetricsViews(w1, {
      workers: parts,
      peak_connections: { enhanced: 0, legacy: 8 },
      uptime_s: 60,
    });
    expect(combined.legacy).toMatchObject({
      total_connections: 11,
      current_connections: 7,
      peak_connections: 8,
      messages_received: 120,
      connection_errors: 1,
    });
    // (0.8 + 0.2) / 82 frames, not the mean of 0.01 and 0.1.
    expect(combined.legacy.average_latency).toBeCloseTo(1 / 82, 10);
    expect(combined.enhanced.average_latency).toBeNull();
    expect(combined.hub).toMatchObject({
      hub_id: 'hub/w1',
      uptime_s: 60,
      agents_connected: 7,
      connections_open: 7,
      connection_errors: 2,
      draining: true,
      // Answered by w1 (normal), but w2 is busy: the hub is as loaded as its most loaded worker.
      load: { level: 1, name: 'busy' },
    });
    expect(combined.workers?.map((w) => [w.id, w.hub_id, w.legacy.current_connections])).toEqual([
      ['w1', 'hub/w1', 3],
      ['w2', 'hub/w2', 4],
    ]);
  });

  it('never answers a peak below what is open now (the primary has not had the latest report yet)', () => {
    const combined = combineMetricsViews(w1, { workers: parts, peak_connections: { enhanced: 0, legacy: 5 } });
    expect(combined.legacy.peak_connections).toBe(7);
  });
});
