import { useState } from 'react';
import { useStore } from 'zustand';
import type { ConnectionPhase } from '../../protocol/connection-state.js';
import { linkStatus, type LinkTone } from '../../protocol/link-status.js';
import { formatClock, formatDuration } from '../model/format.js';
import { linkDuration, serverName } from '../model/labels.js';
import type { PanelStore } from '../store/panel-store.js';
import { useNow } from './useNow.js';

const TONE_WORD: Record<LinkTone, string> = {
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

/** The bar that answers "is this PC linked to the hub?" from across the room, and offers the one fix. */
export function Header({ store }: { store: PanelStore }) {
  const snapshot = useStore(store, (s) => s.snapshot);
  const link = useStore(store, (s) => s.link);
  const now = useNow(store);
  const [pending, setPending] = useState(false);

  if (!snapshot) {
    return (
      <div className="header tone-unknown">
        <Brand />
        <div className="status-pill tone-unknown">
          <span className="status-dot" aria-hidden="true" />
          <span>
            {link === 'unauthorized'
              ? 'No access to the agent'
              : link === 'closed'
                ? 'No contact with the agent'
                : 'Waiting for the agent…'}
          </span>
        </div>
      </div>
    );
  }

  const status = linkStatus(snapshot.state, snapshot.stats, snapshot.started_at, now);
  const stale = link !== 'open';
  const server = status.server ? snapshot.servers[status.server.index] : undefined;
  const duration = linkDuration(snapshot, now);

  const reconnect = () => {
    setPending(true);
    void store
      .getState()
      .reconnectNow()
      .finally(() => setPending(false));
  };

  return (
    <div className={`header tone-${stale ? 'unknown' : status.tone}`}>
      <Brand name={snapshot.agent.name} version={snapshot.agent.version} />
      <div
        className={`status-pill tone-${stale ? 'unknown' : status.tone}`}
        data-testid="link-status"
        data-tone={status.tone}
        data-stale={stale ? 'true' : undefined}
        title={stale ? 'The panel has lost contact with the agent: this is the last state it reported' : undefined}
      >
        <span className="status-dot" aria-hidden="true" />
        <span className="status-label">{stale ? `Last known: ${status.label}` : status.label}</span>
      </div>
      {/* Announce changes of state, not every tick of the countdown. */}
      <span className="sr-only" aria-live="polite">
        {TONE_WORD[status.tone]}
      </span>
      <div className="header-server">
        <span className="header-caption">
          {server ? serverCaption(snapshot.state.phase, serverName(server.index)) : 'Server'}
        </span>
        <span
          className="header-url"
          data-testid="active-server"
          title={server ? `${server.configured_url}\nendpoint: ${server.url}` : undefined}
        >
          {server?.configured_url ?? 'none'}
        </span>
      </div>
      <div className="header-uptime">
        <span className="header-caption">{duration.kind === 'up' ? 'Up for' : 'Down for'}</span>
        <span
          className="header-figure"
          data-testid="uptime"
          data-kind={duration.kind}
          title={
            duration.kind === 'up'
              ? `Registered at ${formatClock(duration.since)}`
              : `Without a hub since ${formatClock(duration.since)}`
          }
        >
          {formatDuration(duration.ms)}
        </span>
      </div>
      <button
        type="button"
        className="button button-primary header-reconnect"
        data-testid="reconnect-now"
        onClick={reconnect}
        disabled={pending || stale}
        title={
          stale
            ? 'The panel has lost contact with the agent'
            : 'Drop the current connection and dial the servers again from the primary, without waiting'
        }
      >
        {pending ? 'Reconnecting…' : 'Reconnect now'}
      </button>
    </div>
  );
}

function serverCaption(phase: ConnectionPhase, name: string): string {
  if (phase === 'connected') return `In use: ${name.toLowerCase()}`;
  if (phase === 'reconnecting') return `Next try: ${name.toLowerCase()}`;
  return `Trying ${name.toLowerCase()}`;
}

function Brand({ name, version }: { name?: string; version?: string }) {
  return (
    <div className="brand">
      <span className="brand-name">FarmLink</span>
      {name ? (
        <span className="brand-agent" title={version ? `${name} — FarmLink agent ${version}` : name}>
          {name}
        </span>
      ) : null}
    </div>
  );
}
