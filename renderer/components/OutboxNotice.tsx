import { useState } from 'react';
import { useStore } from 'zustand';
import { givenUp } from '../model/outbox.js';
import type { PanelStore } from '../store/panel-store.js';
import { Notice } from './Notice.js';

/**
 * The outbox's bad news at the top of every tab, since its card is further down the overview: a
 * store that cannot write (until it can), and messages given up (until dismissed, and again when
 * more are given up).
 */
export function OutboxNotice({ store, onShow }: { store: PanelStore; onShow?: (() => void) | undefined }) {
  const outbox = useStore(store, (s) => s.snapshot?.outbox ?? null);
  const [dismissedAt, setDismissedAt] = useState(0);
  if (!outbox) return null;
  const show = onShow ? (
    <button type="button" className="button" onClick={onShow}>
      Show the outbox
    </button>
  ) : null;
  if (outbox.state === 'error') {
    return (
      <Notice
        kind="error"
        testId="outbox-notice"
        title="The outbox cannot store messages: new events and command results are refused."
        action={show}
      >
        {outbox.error ?? 'The store could not be written.'} The connection to the hub stays up.
      </Notice>
    );
  }
  const lost = givenUp(outbox);
  if (lost.total <= dismissedAt) return null;
  return (
    <Notice
      kind="warn"
      testId="outbox-notice"
      title={`The outbox has given up ${lost.total.toLocaleString('en-US')} messages since the agent started.`}
      action={show}
      onDismiss={() => setDismissedAt(lost.total)}
    >
      {lost.text}
    </Notice>
  );
}
