import { useEffect, useState } from 'react';
import { moveItem, newFallback, type SettingsDraft } from '../model/settings-draft.js';

type Fallbacks = SettingsDraft['fallbacks'];

/** Most the config file accepts (ServerSectionSchema's fallback_urls.max). */
const MAX_FALLBACKS = 32;

/**
 * The fallback servers, tried in this order after the primary: add, remove, reorder. Focus
 * follows the row that moved, so the arrow buttons can be pressed again and again from the keyboard.
 */
export function FallbackList({
  fallbacks,
  onChange,
  errorAt,
  listError,
  overriddenBy,
}: {
  fallbacks: Fallbacks;
  onChange: (next: Fallbacks) => void;
  errorAt: (index: number) => string | undefined;
  listError: string | undefined;
  overriddenBy: string | null;
}) {
  // A new object per request, so asking for the same element twice focuses it twice; the effect runs
  // after the render that moved the rows, when the element to focus exists.
  const [focusRequest, setFocusRequest] = useState<{ id: string } | null>(null);
  const setFocusId = (id: string) => setFocusRequest({ id });

  useEffect(() => {
    if (focusRequest) document.getElementById(focusRequest.id)?.focus();
  }, [focusRequest]);

  const readOnly = Boolean(overriddenBy);
  const set = (index: number, url: string) => onChange(fallbacks.map((f, i) => (i === index ? { ...f, url } : f)));
  const move = (index: number, to: number, button: 'up' | 'down') => {
    const id = fallbacks[index]?.id;
    if (id === undefined) return;
    onChange(moveItem(fallbacks, index, to));
    // At the top or bottom the pressed button becomes disabled; focus its sibling instead.
    const edge = (button === 'up' && to === 0) || (button === 'down' && to === fallbacks.length - 1);
    setFocusId(`fallback-${id}-${edge ? (button === 'up' ? 'down' : 'up') : button}`);
  };
  const remove = (index: number) => {
    const next = fallbacks.filter((_, i) => i !== index);
    onChange(next);
    const neighbour = next[Math.min(index, next.length - 1)];
    setFocusId(neighbour ? `fallback-${neighbour.id}` : 'settings-add-fallback');
  };
  const add = () => {
    const created = newFallback();
    onChange([...fallbacks, created]);
    setFocusId(`fallback-${created.id}`);
  };

  return (
    <fieldset className="fallbacks" disabled={readOnly}>
      <legend className="field-label">Fallback servers</legend>
      <p className="field-hint">Tried in this order when the primary cannot be reached; then the primary again.</p>
      {overriddenBy ? (
        <p className="field-override" data-testid="overridden-server.fallback_urls">
          Set by <code>{overriddenBy}</code>, which wins over the file: read-only here.
        </p>
      ) : null}
      {fallbacks.length === 0 ? (
        <p className="muted fallbacks-empty">No fallbacks: if the primary is down the agent waits and retries it.</p>
      ) : null}
      <ol className="fallback-rows">
        {fallbacks.map((fallback, index) => {
          const error = errorAt(index);
          const inputId = `fallback-${fallback.id}`;
          const label = `Fallback #${index + 1}`;
          return (
            <li key={fallback.id} className={`fallback-row${error ? ' has-error' : ''}`}>
              <label htmlFor={inputId} className="fallback-label">
                #{index + 1}
                <span className="sr-only"> fallback server URL</span>
              </label>
              <input
                id={inputId}
                data-testid={`settings-fallback-${index}`}
                type="text"
                inputMode="url"
                value={fallback.url}
                placeholder="https://backup.example.com"
                autoComplete="off"
                spellCheck={false}
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? `${inputId}-error` : undefined}
                onChange={(e) => set(index, e.target.value)}
              />
              <div className="fallback-actions">
                <button
                  type="button"
                  id={`${inputId}-up`}
                  className="button button-icon"
                  data-testid={`settings-move-up-${index}`}
                  aria-label={`Move ${label} up`}
                  title="Try earlier"
                  disabled={index === 0}
                  onClick={() => move(index, index - 1, 'up')}
                >
                  ↑
                </button>
                <button
                  type="button"
                  id={`${inputId}-down`}
                  className="button button-icon"
                  data-testid={`settings-move-down-${index}`}
                  aria-label={`Move ${label} down`}
                  title="Try later"
                  disabled={index === fallbacks.length - 1}
                  onClick={() => move(index, index + 1, 'down')}
                >
                  ↓
                </button>
                <button
                  type="button"
                  className="button button-quiet"
                  data-testid={`settings-remove-fallback-${index}`}
                  aria-label={`Remove ${label}`}
                  onClick={() => remove(index)}
                >
                  Remove
                </button>
              </div>
              {error ? (
                <p
                  id={`${inputId}-error`}
                  className="field-error fallback-error"
                  data-testid={`error-server.fallback_urls.${index}`}
                >
                  {error}
                </p>
              ) : null}
            </li>
          );
        })}
      </ol>
      {listError ? (
        <p className="field-error" data-testid="error-server.fallback_urls">
          {listError}
        </p>
      ) : null}
      <button
        type="button"
        id="settings-add-fallback"
        className="button"
        data-testid="settings-add-fallback"
        onClick={add}
        disabled={fallbacks.length >= MAX_FALLBACKS}
      >
        + Add fallback
      </button>
    </fieldset>
  );
}
