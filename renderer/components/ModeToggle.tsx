import { useStore } from 'zustand';
import { AGENT_MODES } from '../../protocol/agent-host.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import { MODE_LABEL, MODE_SETTINGS, modeStatus } from '../model/mode.js';
import type { PanelStore } from '../store/panel-store.js';

/**
 * The protocol mode: the setting (Auto / Enhanced / Legacy), the mode actually in use and whether
 * the hub agreed to it, why a mode is not available, and a switch while it happens. A switch the
 * agent refuses is said here, beside the choice, never swallowed.
 */
export function ModeToggle({ store }: { store: PanelStore }) {
  const mode = useStore(store, (s) => s.snapshot?.mode);
  const state = useStore(store, (s) => s.snapshot?.state);
  const pending = useStore(store, (s) => s.modeSwitch);
  const refused = useStore(store, (s) => s.modeError);
  if (!mode || !state) return null;

  const choose = (next: ProtocolModeSetting) => {
    if (next === mode.configured || pending) return;
    void store.getState().setMode(next);
  };
  const status = modeStatus({ mode, state });
  const unavailable = AGENT_MODES.filter((m) => mode.unavailable[m] !== undefined);
  const chosen = MODE_SETTINGS.find((m) => m.setting === mode.configured);
  const pendingLabel = pending ? (MODE_SETTINGS.find((m) => m.setting === pending.to)?.label ?? pending.to) : null;

  return (
    <section className="card card-mode" aria-labelledby="mode-title" data-testid="mode-card">
      <div className="card-head">
        <h2 id="mode-title" className="card-title">
          Protocol mode
        </h2>
      </div>
      <div className="segmented" role="group" aria-label="Protocol mode setting">
        {MODE_SETTINGS.map((m) => {
          const chosen = mode.configured === m.setting;
          return (
            <button
              key={m.setting}
              type="button"
              className="segment"
              data-testid={`mode-${m.setting}`}
              aria-pressed={chosen}
              aria-describedby="mode-status"
              disabled={pending !== null}
              title={m.what}
              onClick={() => choose(m.setting)}
            >
              {chosen ? '✓ ' : ''}
              {m.label}
              <span className="sr-only">{chosen ? ' (chosen)' : ''}</span>
            </button>
          );
        })}
      </div>
      <p
        id="mode-status"
        className={`mode-status tone-${pending ? 'warn' : status.tone}`}
        data-testid="mode-status"
        data-current={mode.current}
        data-negotiated={String(mode.negotiated)}
        role="status"
      >
        {pendingLabel ? `Switching to ${pendingLabel.toLowerCase()}: reconnecting…` : status.text}
      </p>
      {refused ? (
        <p className="mode-refused" data-testid="mode-error" role="alert">
          <strong>Not switched:</strong> {refused.message} <code>{refused.code}</code>
        </p>
      ) : null}
      {unavailable.map((m) => (
        <p key={m} className="mode-unavailable" data-testid={`mode-unavailable-${m}`}>
          <strong>{MODE_LABEL[m]} is not available.</strong> {mode.unavailable[m]}
        </p>
      ))}
      <p className="card-hint" data-testid="mode-setting-hint">
        {chosen ? `${chosen.label}: ${chosen.what} ` : null}A switch reconnects at once if the connection's mode must
        change; the statistics carry on. It lasts until the agent restarts: <code>protocol.mode</code> in the
        configuration file keeps a choice.
      </p>
    </section>
  );
}
