import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { BridgeTransport } from '../protocol/agent-host.js';
import { IPC_CHANNELS } from '../protocol/ipc-channels.js';

/**
 * The whole of what the renderer can reach: one object with a call and a subscription, typed by
 * the AgentHost schema. No ipcRenderer, no Node: the renderer is sandboxed and isolated, and the
 * main process checks every call's input and sender.
 */
const bridge: BridgeTransport = {
  call: (method, input) => ipcRenderer.invoke(IPC_CHANNELS.call, { method, input }),
  subscribe(listener) {
    const handler = (_event: IpcRendererEvent, message: { event: string; payload: unknown }) =>
      listener(message.event, message.payload);
    ipcRenderer.on(IPC_CHANNELS.event, handler);
    return () => {
      ipcRenderer.removeListener(IPC_CHANNELS.event, handler);
    };
  },
};

contextBridge.exposeInMainWorld('farmlinkBridge', bridge);
