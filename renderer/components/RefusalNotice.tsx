import { useStore } from 'zustand';
import { hubRefusals } from '../model/refusals.js';
import type { PanelStore } from '../store/panel-store.js';
import { Notice } from './Notice.js';

/**
 * Says so when a hub keeps refusing this PC (its token, its agent id, its version): retrying goes
 * on, but cannot succeed until someone changes the configuration — which the banner says how to do.
 */
export function RefusalNotice({
  store,
  onOpenSettings,
}: {
  store: PanelStore;
  onOpenSettings?: (() => void) | undefined;
}) {
  const snapshot = useStore(store, (s) => s.snapshot);
  const banner = snapshot ? hubRefusals(snapshot) : null;
  if (!banner) return null;
  return (
    <Notice
      kind={banner.scope === 'all' ? 'error' : 'warn'}
      testId="refusal-notice"
      title={banner.title}
      action={
        onOpenSettings ? (
          <button type="button" className="button" onClick={onOpenSettings}>
            Open Settings
          </button>
        ) : null
      }
    >
      <ul className="refusal-list" data-scope={banner.scope}>
        {banner.refusals.map((r) => (
          <li key={r.index} data-testid="refusal" data-close-code={r.closeCode}>
            <strong>{r.name}</strong> <code>{r.url}</code> closes the connection with{' '}
            <code>
              {r.closeCode} {r.codeName}
            </code>
            : {r.meaning}.{r.hubSaid ? <span className="muted"> The hub said: “{r.hubSaid}”.</span> : null}
          </li>
        ))}
      </ul>
      {banner.steps.map((step) => (
        <p key={step} className="refusal-step">
          <strong>To fix:</strong> {withCode(step)}
        </p>
      ))}
    </Notice>
  );
}

/** `backticked` parts of a step as code. */
function withCode(text: string) {
  return text.split('`').map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part));
}
