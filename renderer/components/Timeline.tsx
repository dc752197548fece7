import { useState } from 'react';
import { useStore } from 'zustand';
import type { ConnectionEvent } from '../../protocol/connection-state.js';
import { formatClock } from '../model/format.js';
import { timelineItems } from '../model/timeline.js';
import type { PanelStore } from '../store/panel-store.js';

const NO_EVENTS: ConnectionEvent[] = [];
/**
 * Rows shown until asked for all. The list has no scroll box of its own — a box of fixed height
 * cuts its last row wherever the rows' heights (wrapped reasons) happen to end — so it is this
 * many whole rows, and the page scrolls.
 */
const FIRST_PAGE = 10;

/** What the connection went through, newest first, each with the reason the agent gave. */
export function Timeline({ store }: { store: PanelStore }) {
  const events = useStore(store, (s) => s.snapshot?.events ?? NO_EVENTS);
  const [showAll, setShowAll] = useState(false);
  const entries = timelineItems(events);
  const shown = showAll ? entries : entries.slice(0, FIRST_PAGE);

  return (
    <section className="card card-timeline" aria-labelledby="timeline-title">
      <div className="card-head">
        <h2 id="timeline-title" className="card-title">
          Timeline <span className="card-title-sub">newest first</span>
        </h2>
      </div>
      <ol className="timeline" data-testid="timeline">
        {shown.length === 0 ? (
          <li className="muted timeline-empty">Nothing has happened yet: the agent has not started connecting.</li>
        ) : null}
        {/* Keyed from the oldest end: new lines arrive on top, and the older ones keep their keys. */}
        {shown.map((entry, i) => (
          <li
            key={`${entry.at}-${entries.length - i}`}
            className={`timeline-item tone-${entry.tone}`}
            data-testid="timeline-item"
            data-reason={entry.code}
          >
            <time className="timeline-time num" dateTime={new Date(entry.at).toISOString()}>
              {formatClock(entry.at)}
            </time>
            <span className="timeline-mark" aria-hidden="true" />
            <div className="timeline-text">
              <span className="timeline-title">{entry.title}</span>
              <span className="timeline-detail">
                {entry.detail}
                <code className="timeline-code" title="reason code">
                  {entry.code}
                  {entry.closeCode !== undefined ? ` · ${entry.closeCode}` : ''}
                </code>
              </span>
            </div>
          </li>
        ))}
      </ol>
      {entries.length > FIRST_PAGE ? (
        <button
          type="button"
          className="button button-quiet timeline-more"
          data-testid="timeline-more"
          onClick={() => setShowAll(!showAll)}
        >
          {showAll ? `Show the newest ${FIRST_PAGE}` : `Show all ${entries.length}`}
        </button>
      ) : null}
    </section>
  );
}
