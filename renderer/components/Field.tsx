import type { ReactNode } from 'react';

export interface FieldProps {
  id: string;
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  /** The settings path ("connection.ping_timeout"), for the error's test id. */
  path: string;
  testId: string;
  error?: string | undefined;
  hint?: ReactNode;
  /** What fixes this value outside the file; the field is then read-only. */
  overriddenBy?: string | null;
  unit?: string;
  type?: 'text' | 'password';
  inputMode?: 'text' | 'decimal' | 'url';
  placeholder?: string;
  autoComplete?: string;
}

/** A labelled input with its hint and its problem directly under it, tied together for screen readers. */
export function Field({
  id,
  label,
  value,
  onChange,
  path,
  testId,
  error,
  hint,
  overriddenBy,
  unit,
  type = 'text',
  inputMode,
  placeholder,
  autoComplete,
}: FieldProps) {
  const described = [hint ? `${id}-hint` : null, overriddenBy ? `${id}-override` : null, error ? `${id}-error` : null]
    .filter(Boolean)
    .join(' ');
  return (
    <div className={`field${error ? ' has-error' : ''}${overriddenBy ? ' is-overridden' : ''}`}>
      <label htmlFor={id} className="field-label">
        {label}
      </label>
      <div className="field-control">
        <input
          id={id}
          data-testid={testId}
          type={type}
          inputMode={inputMode}
          value={value}
          placeholder={placeholder}
          autoComplete={autoComplete ?? 'off'}
          spellCheck={false}
          readOnly={Boolean(overriddenBy)}
          aria-invalid={error ? true : undefined}
          aria-describedby={described || undefined}
          onChange={(e) => onChange(e.target.value)}
        />
        {unit ? <span className="field-unit">{unit}</span> : null}
      </div>
      {error ? (
        <p id={`${id}-error`} className="field-error" data-testid={`error-${path}`}>
          {error}
        </p>
      ) : null}
      {overriddenBy ? (
        <p id={`${id}-override`} className="field-override" data-testid={`overridden-${path}`}>
          Set by <code>{overriddenBy}</code>, which wins over the file: read-only here.
        </p>
      ) : null}
      {hint ? (
        <p id={`${id}-hint`} className="field-hint">
          {hint}
        </p>
      ) : null}
    </div>
  );
}
