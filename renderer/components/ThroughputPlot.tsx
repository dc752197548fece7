import { memo } from 'react';
import { CartesianGrid, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import type { ThroughputSample } from '../../protocol/agent-host.js';
import { formatTick, sameSeries, timeTicks } from '../model/chart-window.js';
import { formatBytes, formatClock, formatRate } from '../model/format.js';
import { ratePoints } from '../model/rates.js';

export type Unit = 'bytes' | 'msg';

interface PlotProps {
  samples: readonly ThroughputSample[];
  start: number;
  end: number;
  unit: Unit;
}

const ThroughputPlot = memo(
  function ThroughputPlot({ samples, start, end, unit }: PlotProps) {
    const data = ratePoints(samples).filter((p) => p.at >= start);
    const inKey = unit === 'bytes' ? 'bytesInPerSec' : 'messagesInPerSec';
    const outKey = unit === 'bytes' ? 'bytesOutPerSec' : 'messagesOutPerSec';
    const tick = (v: number) => (unit === 'bytes' ? `${formatBytes(v)}/s` : `${Math.round(v * 10) / 10}/s`);
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
          <YAxis domain={[0, 'auto']} tickFormatter={tick} width={64} stroke="#8a9099" fontSize={12} />
          <Tooltip
            isAnimationActive={false}
            labelFormatter={(label) => (typeof label === 'number' ? formatClock(label) : label)}
            formatter={(value, name) => [formatRate(typeof value === 'number' ? value : 0, unit), name]}
          />
          <Line
            type="monotone"
            dataKey={inKey}
            name="Received"
            stroke="#2f6fb3"
            strokeWidth={2}
            dot={false}
            isAnimationActive={false}
          />
          <Line
            type="monotone"
            dataKey={outKey}
            name="Sent"
            stroke="#7a4fb0"
            strokeWidth={2}
            strokeDasharray="6 3"
            dot={false}
            isAnimationActive={false}
          />
        </LineChart>
        <p className="chart-legend">
          <span className="legend-item">
            <span className="legend-swatch legend-in" aria-hidden="true" />
            received
          </span>
          <span className="legend-item">
            <span className="legend-swatch legend-out" aria-hidden="true" />
            sent
          </span>
        </p>
      </div>
    );
  },
  (a, b) =>
    a.start === b.start && a.end === b.end && a.unit === b.unit && sameSeries(a.samples, b.samples, (s) => s.at),
);

export default ThroughputPlot;
