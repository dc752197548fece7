import { useState } from 'react';
import { useStore } from 'zustand';
import { agentProcessLabel } from '../../protocol/agent-host.js';
import type { LinkStatus } from '../bridge/link-status.js';
import type { PanelStore } from '../store/panel-store.js';
import { EmptyState } from './EmptyState.js';
import { Header } from './Header.js';
import { LogTail } from './LogTail.js';
import { Notice } from './Notice.js';
import { OutboxNotice } from './OutboxNotice.js';
import { Overview } from './Overview.js';
import { PanelLinkNotice } from './PanelLinkNotice.js';
import { RefusalNotice } from './RefusalNotice.js';
import { SettingsForm } from './SettingsForm.js';
import { Tabs, type TabId } from './Tabs.js';

/**
 * The panel: a header that always says how the link is, notices that say what needs doing, and
 * three tabs. Each part subscribes to just what it shows, so the 1 s tick and the snapshots
 * re-render the figures that change and not the whole page.
 */
export function App({ store }: { store: PanelStore }) {
  const hasSnapshot = useStore(store, (s) => s.snapshot !== null);
  // Only while the link is down: otherwise every snapshot would re-render the whole page from here.
  const lastSeenAt = useStore(store, (s) => (s.link === 'open' ? null : (s.snapshot?.now ?? null)));
  const link = useStore(store, (s) => s.link);
  const error = useStore(store, (s) => s.error);
  const localHubUrl = useStore(store, (s) => s.snapshot?.local_hub?.url ?? null);
  const agentProcess = useStore(store, (s) => (s.snapshot ? agentProcessLabel(s.snapshot.agent_process) : null));
  const [tab, setTab] = useState<TabId>('overview');
  // A call cut off by the panel's own link going down is the link notice's news, and stale once it is back.
  const problem = error && error.code !== 'TRANSPORT' ? error : null;
  const showOutbox = () => {
    setTab('overview');
    // After the overview has rendered, if it was not the tab shown.
    requestAnimationFrame(() => document.getElementById('outbox-title')?.scrollIntoView({ block: 'start' }));
  };

  return (
    <div className="app">
      <header className="topbar">
        <Header store={store} />
        {/* Until the agent has answered every tab would say the same thing. */}
        {hasSnapshot ? <Tabs current={tab} onSelect={setTab} /> : null}
      </header>

      <div className="notices">
        {problem ? (
          <Notice
            kind="error"
            testId="notice"
            title={problem.message}
            onDismiss={() => store.getState().dismissError()}
          >
            <code>{problem.code}</code>
            {problem.problems?.length
              ? ` — ${problem.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`
              : null}
          </Notice>
        ) : null}
        {hasSnapshot && link !== 'open' ? <PanelLinkNotice link={link} lastSeenAt={lastSeenAt} /> : null}
        <RefusalNotice store={store} onOpenSettings={tab !== 'settings' ? () => setTab('settings') : undefined} />
        <OutboxNotice store={store} onShow={showOutbox} />
        {localHubUrl ? (
          <Notice
            kind="warn"
            testId="local-hub-notice"
            title="Connected to a local test hub because nothing is configured — add your farm's hub in Settings."
            action={
              tab !== 'settings' ? (
                <button type="button" className="button" onClick={() => setTab('settings')}>
                  Open Settings
                </button>
              ) : null
            }
          >
            The test hub at <code>{localHubUrl}</code> runs inside this agent: it proves the agent works, but no farm
            sees this PC until a real hub is saved.
          </Notice>
        ) : null}
      </div>

      <main
        className={`content content-${tab}`}
        id={`panel-${tab}`}
        role={hasSnapshot ? 'tabpanel' : undefined}
        aria-labelledby={hasSnapshot ? `tab-${tab}` : undefined}
      >
        {!hasSnapshot ? (
          <Waiting link={link} failed={problem !== null} />
        ) : (
          <>
            {tab === 'overview' ? <Overview store={store} /> : null}
            {tab === 'logs' ? <LogTail store={store} /> : null}
            {/* Kept mounted while hidden, so edits survive a look at another tab. */}
            <div hidden={tab !== 'settings'}>
              <SettingsForm store={store} />
            </div>
          </>
        )}
      </main>
      {/* One agent runs per PC: say whether this app runs it or shows one another process runs. */}
      {agentProcess ? (
        <footer className="agent-process" data-testid="agent-process">
          {agentProcess}
        </footer>
      ) : null}
    </div>
  );
}

function Waiting({ link, failed }: { link: LinkStatus; failed: boolean }) {
  if (link === 'closed' || link === 'unauthorized') {
    return (
      <EmptyState title={link === 'unauthorized' ? 'No access to the agent' : 'No contact with the agent'}>
        <PanelLinkNotice link={link} lastSeenAt={null} />
      </EmptyState>
    );
  }
  if (failed && link === 'open') {
    return (
      <EmptyState title="The agent answered, but not with its status">
        <p>
          The message above says why. Reload this page to ask again; if it keeps happening, the panel and the agent may
          be different versions.
        </p>
      </EmptyState>
    );
  }
  return (
    <EmptyState title="Connecting to the agent…" busy>
      <p>The status appears as soon as the agent answers; this takes a moment.</p>
    </EmptyState>
  );
}
