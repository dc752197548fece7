import { useLayoutEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import type { LogLevel } from '../../protocol/config.js';
import { formatClock } from '../model/format.js';
import type { PanelStore } from '../store/panel-store.js';

const LEVELS: { level: Exclude<LogLevel, 'silent'>; label: string }[] = [
  { level: 'trace', label: 'Trace (everything)' },
  { level: 'debug', label: 'Debug' },
  { level: 'info', label: 'Info' },
  { level: 'warn', label: 'Warnings' },
  { level: 'error', label: 'Errors' },
  { level: 'fatal', label: 'Fatal only' },
];

const EMPTY: Record<LogLevel, string> = {
  trace: 'The agent has not written anything yet.',
  debug: 'No log lines yet.',
  info: 'No log lines yet.',
  warn: 'No warnings or errors so far.',
  error: 'No errors so far.',
  fatal: 'No fatal errors.',
  silent: 'Nothing is shown at this level.',
};

/** Within this many pixels of the end counts as "at the end": keep following new lines. */
const FOLLOW_SLACK_PX = 16;

const timeOf = (at: number) => `${formatClock(at)}.${String(at % 1000).padStart(3, '0')}`;

/**
 * The agent's log as it is written. It follows the newest line unless the person has scrolled up
 * to read something, in which case it stays put and offers a way back down.
 */
export function LogTail({ store }: { store: PanelStore }) {
  const logs = useStore(store, (s) => s.logs);
  const level = useStore(store, (s) => s.logLevel);
  const boxRef = useRef<HTMLDivElement>(null);
  const followRef = useRef(true);
  const [follow, setFollow] = useState(true);

  useLayoutEffect(() => {
    const box = boxRef.current;
    if (box && followRef.current) box.scrollTop = box.scrollHeight;
  }, [logs]);

  const onScroll = () => {
    const box = boxRef.current;
    if (!box) return;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight <= FOLLOW_SLACK_PX;
    followRef.current = atEnd;
    setFollow(atEnd);
  };

  const jumpToNewest = () => {
    const box = boxRef.current;
    followRef.current = true;
    setFollow(true);
    if (box) box.scrollTop = box.scrollHeight;
  };

  return (
    <section className="logs" aria-labelledby="logs-title">
      <div className="logs-toolbar">
        <h2 id="logs-title" className="card-title">
          Agent log
        </h2>
        <label className="logs-level">
          <span>Show</span>
          <select
            data-testid="log-level"
            value={level}
            onChange={(e) => void store.getState().setLogLevel(e.target.value as LogLevel)}
          >
            {LEVELS.map((l) => (
              <option key={l.level} value={l.level}>
                {l.label}
              </option>
            ))}
          </select>
          <span className="muted">and above</span>
        </label>
        <span className="muted logs-count num">
          {logs.length} line{logs.length === 1 ? '' : 's'}
        </span>
        <span className="logs-follow">
          {follow ? (
            <span className="muted">Following new lines</span>
          ) : (
            <button type="button" className="button" onClick={jumpToNewest}>
              Jump to newest ↓
            </button>
          )}
        </span>
      </div>
      <div
        className="log-box"
        ref={boxRef}
        onScroll={onScroll}
        data-testid="log-tail"
        tabIndex={0}
        role="log"
        aria-label="Agent log lines"
      >
        {logs.length === 0 ? (
          <p className="log-empty" data-testid="log-empty">
            {EMPTY[level]}
            {level !== 'trace' ? ' Choose a lower level above to see more.' : ''}
          </p>
        ) : (
          logs.map((entry) => (
            <div
              key={entry.seq}
              className={`log-line level-${entry.level}`}
              data-testid="log-line"
              data-level={entry.level}
            >
              <span className="log-time num">{timeOf(entry.time)}</span>
              <span className="log-level">{entry.level.toUpperCase()}</span>
              <span className="log-component">{entry.component ?? ''}</span>
              <span className="log-msg">{entry.msg}</span>
            </div>
          ))
        )}
      </div>
    </section>
  );
}
