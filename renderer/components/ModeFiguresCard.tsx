import { useStore } from 'zustand';
import type { AgentMode } from '../../protocol/agent-host.js';
import { formatBytes } from '../model/format.js';
import { MODE_LABEL, batchingSaving, figureRow, formatPerFrame, type FigureRow } from '../model/mode.js';
import type { PanelStore } from '../store/panel-store.js';

const n = (value: number) => value.toLocaleString('en-US');
const perMessage = (bytes: number | null) => (bytes === null ? '—' : formatBytes(bytes));
const ORDER: readonly AgentMode[] = ['enhanced', 'legacy'];

interface Line {
  key: string;
  label: string;
  title: string;
  cell: (row: FigureRow) => string;
}

const LINES: Line[] = [
  {
    key: 'frames',
    label: 'Frames',
    title: 'WebSocket frames, sent / received',
    cell: (r) => `${n(r.frames.sent)} / ${n(r.frames.received)}`,
  },
  {
    key: 'messages',
    label: 'Messages',
    title: 'Protocol messages, sent / received',
    cell: (r) => `${n(r.messages.sent)} / ${n(r.messages.received)}`,
  },
  {
    key: 'bytes',
    label: 'Bytes',
    title: 'Bytes on the socket, sent / received',
    cell: (r) => `${formatBytes(r.bytes.sent)} / ${formatBytes(r.bytes.received)}`,
  },
  {
    key: 'per-frame',
    label: 'Messages per frame',
    title: 'How many messages share a frame, sent / received: always 1 in legacy mode',
    cell: (r) => `${formatPerFrame(r.perFrame.sent)} / ${formatPerFrame(r.perFrame.received)}`,
  },
  {
    key: 'bytes-per-message',
    label: 'Bytes per message',
    title: 'Bytes on the socket per message, sent / received',
    cell: (r) => `${perMessage(r.bytesPerMessage.sent)} / ${perMessage(r.bytesPerMessage.received)}`,
  },
  {
    key: 'connected',
    label: 'Time connected',
    title: 'Time registered with a hub in this mode',
    cell: (r) => r.connected,
  },
];

/** Enhanced and legacy traffic side by side since the agent started, so a person can see what batching saves. */
export function ModeFiguresCard({ store }: { store: PanelStore }) {
  const figures = useStore(store, (s) => s.snapshot?.mode_figures);
  const current = useStore(store, (s) => (s.snapshot?.state.phase === 'connected' ? s.snapshot.mode.current : null));
  if (!figures) return null;
  const rows: Record<AgentMode, FigureRow> = {
    legacy: figureRow(figures.legacy),
    enhanced: figureRow(figures.enhanced),
  };
  const saving = batchingSaving(figures);

  return (
    <section className="card card-figures" aria-labelledby="figures-title" data-testid="mode-figures">
      <div className="card-head">
        <h2 id="figures-title" className="card-title">
          Enhanced and legacy side by side
        </h2>
        <span className="card-hint">Since the agent started; sent / received</span>
      </div>
      <table className="stats figures">
        <thead>
          <tr>
            <td />
            {ORDER.map((m) => (
              <th key={m} scope="col" data-testid={`figures-head-${m}`}>
                {MODE_LABEL[m]}
                {current === m ? <span className="figures-now"> (in use)</span> : null}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {LINES.map((line) => (
            <tr key={line.key} data-testid={`figures-${line.key}`}>
              <th scope="row" title={line.title}>
                {line.label}
              </th>
              {ORDER.map((m) => (
                <td key={m} className="num" data-testid={`figures-${line.key}-${m}`}>
                  {line.cell(rows[m])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <p className="card-hint figures-saving" data-testid="figures-saving">
        {saving ?? 'Enhanced mode has carried no messages yet: its savings show here once it has.'}
      </p>
    </section>
  );
}
