import type { ReactNode } from 'react';

/** What fills the page while there is nothing to show yet, saying why and what happens next. */
export function EmptyState({ title, children, busy }: { title: string; children?: ReactNode; busy?: boolean }) {
  return (
    <section className="empty-state" data-testid="empty-state" aria-busy={busy ? true : undefined}>
      {busy ? <span className="spinner" aria-hidden="true" /> : null}
      <h2 className="empty-title">{title}</h2>
      {children ? <div className="empty-detail">{children}</div> : null}
    </section>
  );
}
