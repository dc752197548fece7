import type { IpcMainInvokeEvent, WebContents } from 'electron';
import { IPC_CHANNELS } from '../protocol/ipc-channels.js';
import type { ResultEnvelope } from '../protocol/agent-host.js';
import { routeCall, type AgentHostHandlers } from '../agent/host/call-router.js';
import { subscribeFeed, type FeedSource } from '../agent/host/snapshot-feed.js';

/**
 * The Electron transport of the AgentHost API: one invoke channel for every call (checked against
 * the schema by routeCall, answered with a result envelope — never a thrown error), one event
 * channel for the coalesced feed. Calls from anything but our page's top frame are refused.
 */
/** The part of ipcMain this needs (Electron's ipcMain fits; tests pass a fake). */
export interface InvokeRegistry {
  handle(
    channel: string,
    listener: (event: Pick<IpcMainInvokeEvent, 'senderFrame'>, message: unknown) => unknown,
  ): void;
  removeHandler(channel: string): void;
}

export function registerAgentHostIpc(
  ipcMain: InvokeRegistry,
  handlers: AgentHostHandlers,
  isTrusted: (event: Pick<IpcMainInvokeEvent, 'senderFrame'>) => boolean,
): () => void {
  ipcMain.handle(IPC_CHANNELS.call, (event, message): Promise<ResultEnvelope> | ResultEnvelope => {
    if (!isTrusted(event))
      return { ok: false, error: { code: 'FORBIDDEN', message: 'This frame may not call the agent' } };
    if (
      typeof message !== 'object' ||
      message === null ||
      typeof (message as { method?: unknown }).method !== 'string'
    ) {
      return { ok: false, error: { code: 'INVALID_INPUT', message: 'Expected { method, input }' } };
    }
    const { method, input } = message as { method: string; input?: unknown };
    return routeCall(handlers, method, input);
  });
  return () => ipcMain.removeHandler(IPC_CHANNELS.call);
}

/** Pushes the host's coalesced changes to one window for as long as it lives. */
export function forwardFeed(
  host: FeedSource,
  contents: Pick<WebContents, 'send' | 'isDestroyed' | 'once'>,
): () => void {
  const unsubscribe = subscribeFeed(host, (event, payload) => {
    if (!contents.isDestroyed()) contents.send(IPC_CHANNELS.event, { event, payload });
  });
  contents.once('destroyed', unsubscribe);
  return unsubscribe;
}
