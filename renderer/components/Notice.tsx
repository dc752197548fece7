import type { ReactNode } from 'react';

type Kind = 'error' | 'warn' | 'info';

const KIND_WORD: Record<Kind, string> = { error: 'Error', warn: 'Warning', info: 'Note' };

/** A banner that says what happened and what to do about it; words first, colour only as a cue. */
export function Notice({
  kind,
  testId,
  title,
  children,
  onDismiss,
  action,
}: {
  kind: Kind;
  testId: string;
  title: ReactNode;
  children?: ReactNode;
  onDismiss?: () => void;
  action?: ReactNode;
}) {
  return (
    <div className={`notice notice-${kind}`} data-testid={testId} role={kind === 'error' ? 'alert' : 'status'}>
      <span className="sr-only">{KIND_WORD[kind]}: </span>
      <div className="notice-body">
        <p className="notice-title">{title}</p>
        {children ? <div className="notice-detail">{children}</div> : null}
      </div>
      {action ? <div className="notice-action">{action}</div> : null}
      {onDismiss ? (
        <button
          type="button"
          className="button button-quiet notice-dismiss"
          onClick={onDismiss}
          aria-label="Dismiss this message"
        >
          Dismiss
        </button>
      ) : null}
    </div>
  );
}
