/**
 * Names of the Electron IPC channels. A module of its own with no imports: the sandboxed
 * preload bundles it and nothing else of ours.
 */
export const IPC_CHANNELS = { call: 'farmlink:call', event: 'farmlink:event' } as const;
