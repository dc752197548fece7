import type { AgentHostEvent, LogEntry, Snapshot } from '../../protocol/agent-host.js';
import type { TypedEmitter } from '../../lib/events.js';
import type { HostEvents } from './agent-host.js';

/** What a feed reads: the AgentHost, or anything that shows one (the desktop app's attachment to a running agent). */
export interface FeedSource {
  readonly events: Pick<TypedEmitter<HostEvents>, 'on'>;
  snapshot(): Snapshot;
}

/** The panel is refreshed at most this often; a busy connection changes many times a second. */
export const FEED_INTERVAL_MS = 250;

/**
 * Pushes the host's changes to one subscriber (a renderer window, a browser tab), coalesced: a
 * snapshot at most every `intervalMs`, taken when it is sent so it is never stale, and new log
 * lines in batches on the same beat. Nothing is sent while nothing changes.
 */
export function subscribeFeed(
  host: FeedSource,
  send: (event: AgentHostEvent, payload: unknown) => void,
  intervalMs = FEED_INTERVAL_MS,
): () => void {
  let lastSnapshotAt = -Infinity;
  let snapshotTimer: NodeJS.Timeout | undefined;
  let logTimer: NodeJS.Timeout | undefined;
  let logBatch: LogEntry[] = [];

  const sendSnapshot = () => {
    snapshotTimer = undefined;
    lastSnapshotAt = Date.now();
    send('snapshot', host.snapshot());
  };
  const offChanged = host.events.on('changed', () => {
    if (snapshotTimer) return;
    snapshotTimer = setTimeout(sendSnapshot, Math.max(0, lastSnapshotAt + intervalMs - Date.now()));
  });
  const offLog = host.events.on('log', (entry) => {
    logBatch.push(entry);
    logTimer ??= setTimeout(() => {
      logTimer = undefined;
      const batch = logBatch;
      logBatch = [];
      send('logs', batch);
    }, intervalMs);
  });
  return () => {
    offChanged();
    offLog();
    clearTimeout(snapshotTimer);
    clearTimeout(logTimer);
  };
}
