import { memo } from 'react';
import { CartesianGrid, Line, LineChart, ReferenceLine, Tooltip, XAxis, YAxis } from 'recharts';
import type { RttSample } from '../../protocol/connection-state.js';
import { formatTick, rttWithGaps, sameSeries, timeTicks } from '../model/chart-window.js';
import { formatClock, formatMs } from '../model/format.js';

interface PlotProps {
  samples: readonly RttSample[];
  lost: readonly number[];
  start: number;
  end: number;
  p50: number | null;
  p95: number | null;
  maxGapMs: number;
}

// Snapshots arrive up to four times a second with fresh arrays; redraw only when the data or the axis moved.
const LatencyPlot = memo(
  function LatencyPlot({ samples, lost, start, end, p50, p95, maxGapMs }: PlotProps) {
    const data = rttWithGaps(
      samples.filter((s) => s.at >= start),
      maxGapMs,
    );
    const lostMarks = lost.filter((at) => at >= start).slice(-200);
    // Lines closer than a label's height share one label (the plot is about 170 px tall).
    const top = Math.max(p95 ?? 0, ...data.map((d) => d.rtt ?? 0));
    const together = p50 !== null && p95 !== null && top > 0 && ((p95 - p50) / top) * 170 < 14;
    return (
      <div className="chart-body">
        <LineChart responsive width="100%" height={200} data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e6e8eb" vertical={false} />
          <XAxis
            dataKey="at"
            type="number"
            scale="time"
            domain={[start, end]}
            ticks={timeTicks(start, end)}
            tickFormatter={formatTick}
            allowDataOverflow
            stroke="#8a9099"
            fontSize={12}
          />
          <YAxis
            domain={[0, 'auto']}
            tickFormatter={(v: number) => formatMs(v)}
            width={56}
            stroke="#8a9099"
            fontSize={12}
          />
          <Tooltip
            isAnimationActive={false}
            labelFormatter={(label) => (typeof label === 'number' ? formatClock(label) : label)}
            formatter={(value) => [formatMs(typeof value === 'number' ? value : null), 'Round trip']}
          />
          {lostMarks.map((at) => (
            <ReferenceLine
              key={at}
              x={at}
              stroke="#c0392b"
              strokeOpacity={0.45}
              strokeDasharray="2 3"
              ifOverflow="discard"
            />
          ))}
          {p95 !== null ? (
            <ReferenceLine
              y={p95}
              stroke="#8a5606"
              strokeDasharray="5 4"
              label={{
                value: together ? 'p50 · p95' : 'p95',
                position: 'insideBottomRight',
                fill: '#8a5606',
                fontSize: 11,
              }}
            />
          ) : null}
          {p50 !== null ? (
            <ReferenceLine
              y={p50}
              stroke="#4b5563"
              strokeDasharray="5 4"
              {...(together
                ? {}
                : { label: { value: 'p50', position: 'insideTopRight', fill: '#4b5563', fontSize: 11 } })}
            />
          ) : null}
          <Line
            type="linear"
            dataKey="rtt"
            stroke="#2f6fb3"
            strokeWidth={2}
            dot={data.length <= 60 ? { r: 2 } : false}
            connectNulls={false}
            isAnimationActive={false}
          />
        </LineChart>
        <p className="chart-legend">
          <span className="legend-item">
            <span className="legend-swatch legend-rtt" aria-hidden="true" />
            round trip
          </span>
          <span className="legend-item">
            <span className="legend-swatch legend-lost" aria-hidden="true" />
            heartbeat with no answer
          </span>
        </p>
      </div>
    );
  },
  (a, b) =>
    a.start === b.start &&
    a.end === b.end &&
    a.p50 === b.p50 &&
    a.p95 === b.p95 &&
    a.maxGapMs === b.maxGapMs &&
    sameSeries(a.samples, b.samples, (s) => s.at) &&
    sameSeries(a.lost, b.lost, (at) => at),
);

export default LatencyPlot;
