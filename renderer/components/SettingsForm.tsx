import { useState, type SubmitEvent } from 'react';
import { useStore } from 'zustand';
import type { Snapshot, SettingsInput } from '../../protocol/agent-host.js';
import {
  CONNECTION_KEYS,
  draftFromSettings,
  draftToInput,
  overriddenBy,
  sameSettings,
  validateDraft,
  valueAtPath,
  type ConnectionKey,
  type SettingsDraft,
} from '../model/settings-draft.js';
import type { PanelStore } from '../store/panel-store.js';
import { FallbackList } from './FallbackList.js';
import { Field } from './Field.js';

const CONNECTION_FIELDS: Record<ConnectionKey, { label: string; hint: string; unit?: string }> = {
  heartbeat_interval: {
    label: 'Heartbeat every',
    hint: 'The agent reports to the hub (with CPU and RAM use) this often.',
  },
  dead_timeout: {
    label: 'Dead after no heartbeat answer for',
    hint: 'Longer than the heartbeat interval, so one late answer is not fatal.',
  },
  ping_interval: { label: 'WebSocket ping every', hint: 'Catches a silently dropped connection between heartbeats.' },
  ping_timeout: { label: 'Dead if no pong within', hint: 'Then the agent moves on to the next server.' },
  connect_timeout: {
    label: 'Connect timeout',
    hint: 'How long to wait for a server to answer before trying the next.',
  },
  registration_timeout: { label: 'Registration timeout', hint: 'From hello to registered.' },
  initial_reconnect_delay: { label: 'First reconnect delay', hint: 'The backoff then doubles each round…' },
  max_reconnect_delay: { label: 'Longest reconnect delay', hint: '…up to this.' },
  reconnect_jitter: {
    label: 'Reconnect jitter',
    hint: 'Each delay varies by ± this share (0–1), so a fleet does not reconnect in step.',
    unit: '× delay',
  },
  stable_after: { label: 'Stable after', hint: 'A connection this old starts the backoff again from the first delay.' },
};

interface FormState {
  /** The snapshot values the form last took in, to notice when they change. */
  key: string;
  /** What the draft is compared with to know whether anything changed. */
  base: SettingsDraft;
  draft: SettingsDraft;
  /** The settings changed elsewhere (the file, another window) while this form had edits. */
  changedElsewhere: boolean;
  /** What the last Save sent, so the agent's complaints show only while the field still holds it. */
  submitted: SettingsInput | null;
}

type SettingsView = Snapshot['settings'];

/**
 * The servers, timings and identity, edited and checked against the same schema as the config
 * file, so the form refuses exactly what the file would. Saving writes the file and the agent
 * applies it at once, without a restart.
 */
export function SettingsForm({ store }: { store: PanelStore }) {
  const settings = useStore(store, (s) => s.snapshot?.settings);
  if (!settings) return null;
  return <SettingsEditor store={store} settings={settings} />;
}

function SettingsEditor({ store, settings }: { store: PanelStore; settings: SettingsView }) {
  const saving = useStore(store, (s) => s.saving);
  const savedTo = useStore(store, (s) => s.savedTo);
  const serverProblems = useStore(store, (s) => s.settingsProblems);

  const key = JSON.stringify(settings.values);
  const [form, setForm] = useState<FormState>(() => {
    const draft = draftFromSettings(settings.values);
    return { key, base: draft, draft, changedElsewhere: false, submitted: null };
  });

  // Take in new values from the agent while doing so loses nothing (React's "adjust state while rendering").
  if (form.key !== key) {
    const fresh = draftFromSettings(settings.values, form.draft);
    // The token is never in the agent's values, so it takes no part in this comparison and survives it.
    const edited = { ...form.draft, token: '' };
    if (sameSettings(edited, { ...form.base, token: '' }) || sameSettings(edited, fresh)) {
      setForm({ ...form, key, base: fresh, draft: { ...fresh, token: form.draft.token }, changedElsewhere: false });
    } else {
      setForm({ ...form, key, changedElsewhere: true });
    }
  }

  const { draft, base } = form;
  const input = draftToInput(draft);
  const problems = validateDraft(draft);
  const dirty = !sameSettings(draft, base);

  // The agent's verdict on the last Save, for each field that still holds what was sent.
  const agentSays = new Map<string, string>();
  for (const problem of serverProblems) {
    if (
      form.submitted &&
      JSON.stringify(valueAtPath(input, problem.path)) === JSON.stringify(valueAtPath(form.submitted, problem.path))
    ) {
      agentSays.set(problem.path, problem.message);
    }
  }
  const shownPaths = new Set<string>();
  const errorAt = (path: string) => {
    shownPaths.add(path);
    return problems.get(path) ?? agentSays.get(path);
  };
  const lockedBy = (path: string) => overriddenBy(path, settings.overridden);

  const update = (change: (d: SettingsDraft) => SettingsDraft) => setForm((f) => ({ ...f, draft: change(f.draft) }));
  const setConnection = (k: ConnectionKey, value: string) =>
    update((d) => ({ ...d, connection: { ...d.connection, [k]: value } }));

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    if (saving || !dirty || problems.size > 0) return;
    const sent = draftToInput(draft);
    setForm((f) => ({ ...f, submitted: sent }));
    const ok = await store.getState().saveSettings(sent);
    if (ok) {
      // The token is never sent back; once saved, an empty field again means "keep it".
      setForm((f) => {
        const saved = { ...f.draft, token: '' };
        return { ...f, base: saved, draft: saved, changedElsewhere: false };
      });
    }
  };

  const discard = () =>
    setForm((f) => ({
      ...f,
      draft: draftFromSettings(settings.values, f.draft),
      base: draftFromSettings(settings.values, f.draft),
      changedElsewhere: false,
    }));

  const fallbackErrors = draft.fallbacks.map((_, i) => errorAt(`server.fallback_urls.${i}`));

  // Render the fields first so every path they show is known; what is left goes in a list at the end.
  const fields = (
    <>
      <fieldset className="form-section">
        <legend className="form-section-title">Servers</legend>
        <Field
          id="settings-server-url"
          label="Primary server URL"
          path="server.url"
          testId="settings-server-url"
          value={draft.url}
          onChange={(url) => update((d) => ({ ...d, url }))}
          error={errorAt('server.url')}
          overriddenBy={lockedBy('server.url')}
          inputMode="url"
          placeholder="https://hub.example.com"
          hint="Your farm's hub: http(s):// or ws(s)://. The agent path is added for http(s) URLs."
        />
        <FallbackList
          fallbacks={draft.fallbacks}
          onChange={(fallbacks) => update((d) => ({ ...d, fallbacks }))}
          errorAt={(i) => fallbackErrors[i]}
          listError={errorAt('server.fallback_urls')}
          overriddenBy={lockedBy('server.fallback_urls')}
        />
      </fieldset>

      <fieldset className="form-section">
        <legend className="form-section-title">Timings</legend>
        <p className="field-hint form-section-hint">In seconds; fractions are allowed.</p>
        <div className="field-grid">
          {CONNECTION_KEYS.map((k) => {
            const meta = CONNECTION_FIELDS[k];
            const path = `connection.${k}`;
            return (
              <Field
                key={k}
                id={`settings-connection-${k}`}
                label={meta.label}
                path={path}
                testId={`settings-connection-${k}`}
                value={draft.connection[k]}
                onChange={(v) => setConnection(k, v)}
                error={errorAt(path)}
                overriddenBy={lockedBy(path)}
                inputMode="decimal"
                unit={meta.unit ?? 's'}
                hint={meta.hint}
              />
            );
          })}
        </div>
      </fieldset>

      <fieldset className="form-section">
        <legend className="form-section-title">This agent</legend>
        <div className="field-grid">
          <Field
            id="settings-agent-name"
            label="Agent name"
            path="agent.name"
            testId="settings-agent-name"
            value={draft.name}
            onChange={(name) => update((d) => ({ ...d, name }))}
            error={errorAt('agent.name')}
            overriddenBy={lockedBy('agent.name')}
            placeholder="This computer's name"
            hint="How this PC appears on the hub. Empty uses the computer's name."
          />
          <Field
            id="settings-agent-token"
            label="Replace token"
            path="agent.token"
            testId="settings-agent-token"
            type="password"
            value={draft.token}
            onChange={(token) => update((d) => ({ ...d, token }))}
            error={errorAt('agent.token')}
            overriddenBy={lockedBy('agent.token')}
            autoComplete="new-password"
            placeholder={settings.has_token ? 'Leave empty to keep the current token' : 'Paste the token from your hub'}
            hint={
              <span data-testid="settings-token-state">
                {settings.has_token
                  ? 'A token is set. Leave this empty to keep it.'
                  : 'No token is set: the hub may refuse this agent until one is entered.'}
              </span>
            }
          />
        </div>
      </fieldset>
    </>
  );

  const leftover = [...new Map([...problems, ...agentSays]).entries()].filter(([path]) => !shownPaths.has(path));

  return (
    <form
      className="settings"
      data-testid="settings-form"
      onSubmit={(e) => void submit(e)}
      noValidate
      aria-labelledby="settings-title"
    >
      <div className="settings-head">
        <h2 id="settings-title" className="card-title">
          Settings
        </h2>
        <p className="muted settings-file">
          {settings.file ? (
            <>
              Saved in <code>{settings.file}</code>
            </>
          ) : (
            <>
              No settings file yet: Save creates <code>{settings.default_file}</code>
            </>
          )}
        </p>
      </div>

      {form.changedElsewhere ? (
        <div className="inline-notice" role="status">
          The settings changed elsewhere while you were editing.{' '}
          <button type="button" className="button button-quiet" onClick={discard}>
            Discard my changes and load them
          </button>
        </div>
      ) : null}

      {fields}

      {settings.overridden.length > 0 ? (
        <section className="form-section overridden" aria-labelledby="overridden-title">
          <h3 id="overridden-title" className="form-section-title">
            Set outside the file
          </h3>
          <p className="field-hint">
            These come from the environment or the command line and take precedence over the file; they are read-only
            here.
          </p>
          <ul className="overridden-list">
            {settings.overridden.map((o) => (
              <li key={o.path} data-testid="settings-overridden" data-path={o.path}>
                <code>{o.path}</code> set by <code>{o.source}</code>
              </li>
            ))}
          </ul>
        </section>
      ) : null}

      {leftover.length > 0 ? (
        <ul className="form-problems">
          {leftover.map(([path, message]) => (
            <li key={path} className="field-error" data-testid={`error-${path}`}>
              {path ? <code>{path}</code> : 'Settings'}: {message}
            </li>
          ))}
        </ul>
      ) : null}

      <div className="form-actions">
        <button
          type="submit"
          className="button button-primary"
          data-testid="settings-save"
          disabled={saving || !dirty || problems.size > 0}
        >
          {saving ? 'Saving…' : 'Save and apply'}
        </button>
        {dirty && !saving ? (
          <button type="button" className="button button-quiet" onClick={discard}>
            Discard changes
          </button>
        ) : null}
        <p className="form-status" aria-live="polite">
          {problems.size > 0 ? (
            <>
              <span className="text-bad">
                To save, fix {problems.size === 1 ? 'this field' : `these ${problems.size} fields`}:
              </span>
              {[...problems.keys()].map((path) => {
                const target = fieldFor(path, draft);
                return (
                  <button
                    key={path}
                    type="button"
                    className="button-link"
                    onClick={() => document.getElementById(target.id)?.focus()}
                  >
                    {target.label}
                  </button>
                );
              })}
            </>
          ) : saving ? (
            'Saving and reconnecting with the new settings…'
          ) : agentSays.size > 0 ? (
            <span className="text-bad">
              The agent refused the marked {agentSays.size === 1 ? 'value' : 'values'}; nothing was saved.
            </span>
          ) : dirty ? (
            'Saving writes the file and reconnects the agent with the new settings; no restart needed.'
          ) : savedTo ? (
            <span className="text-good" data-testid="settings-saved">
              ✓ Saved to <code>{savedTo}</code> and applied.
            </span>
          ) : (
            <span className="muted">No changes to save.</span>
          )}
        </p>
      </div>
    </form>
  );
}

/** The input and its label for a settings path, so the list of problems can take the person to each. */
function fieldFor(path: string, draft: SettingsDraft): { id: string; label: string } {
  const [section, key, index] = path.split('.');
  if (path === 'server.url') return { id: 'settings-server-url', label: 'Primary server URL' };
  if (section === 'server' && key === 'fallback_urls' && index !== undefined) {
    const fallback = draft.fallbacks[Number(index)];
    return {
      id: fallback ? `fallback-${fallback.id}` : 'settings-add-fallback',
      label: `Fallback #${Number(index) + 1}`,
    };
  }
  if (section === 'connection' && key && key in CONNECTION_FIELDS)
    return { id: `settings-connection-${key}`, label: CONNECTION_FIELDS[key as ConnectionKey].label };
  if (path === 'agent.name') return { id: 'settings-agent-name', label: 'Agent name' };
  if (path === 'agent.token') return { id: 'settings-agent-token', label: 'Replace token' };
  return { id: 'settings-save', label: path || 'settings' };
}
