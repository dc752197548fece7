import { useState } from 'react';
import { useStore } from 'zustand';
import type { AgentMode } from '../../protocol/agent-host.js';
import type { PanelStore } from '../store/panel-store.js';

const MODES: { mode: AgentMode; label: string; what: string }[] = [
  { mode: 'legacy', label: 'Legacy', what: 'One JSON message per frame; every hub speaks it.' },
  { mode: 'enhanced', label: 'Enhanced', what: 'Batched frames; unsent messages are replayed after a reconnect.' },
];

/**
 * The Enhanced / Legacy protocol switch (docs/architecture.md: Enhanced is planned, not built).
 * A mode the agent cannot run is shown disabled with the agent's own explanation, rather than a
 * switch that silently does nothing.
 */
export function ModeToggle({ store }: { store: PanelStore }) {
  const mode = useStore(store, (s) => s.snapshot?.mode);
  const [pending, setPending] = useState<AgentMode | null>(null);
  if (!mode) return null;

  const choose = (next: AgentMode) => {
    if (next === mode.current || pending) return;
    setPending(next);
    void store
      .getState()
      .setMode(next)
      .finally(() => setPending(null));
  };

  const unavailable = MODES.filter((m) => !mode.available.includes(m.mode));

  return (
    <section className="card card-mode" aria-labelledby="mode-title">
      <div className="card-head">
        <h2 id="mode-title" className="card-title">
          Protocol mode
        </h2>
      </div>
      <div className="segmented" role="group" aria-labelledby="mode-title">
        {MODES.map((m) => {
          const available = mode.available.includes(m.mode);
          const current = mode.current === m.mode;
          return (
            <button
              key={m.mode}
              type="button"
              className="segment"
              data-testid={`mode-${m.mode}`}
              aria-pressed={current}
              disabled={!available || pending !== null}
              title={available ? m.what : (mode.unavailable[m.mode] ?? 'Not available')}
              onClick={() => choose(m.mode)}
            >
              {current ? '✓ ' : ''}
              {m.label}
              <span className="sr-only">{current ? ' (in use)' : !available ? ' (unavailable)' : ''}</span>
            </button>
          );
        })}
      </div>
      <p className="card-hint">
        {pending
          ? `Switching to ${pending}: reconnecting…`
          : `In use: ${MODES.find((m) => m.mode === mode.current)?.label ?? mode.current}. Switching reconnects at once in the other mode.`}
      </p>
      {unavailable.map((m) => (
        <p
          key={m.mode}
          className="mode-unavailable"
          data-testid={m.mode === 'enhanced' ? 'mode-unavailable' : `mode-unavailable-${m.mode}`}
        >
          <strong>{m.label} is not available.</strong> {mode.unavailable[m.mode] ?? ''}
        </p>
      ))}
    </section>
  );
}
