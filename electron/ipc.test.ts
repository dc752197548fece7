import { describe, expect, it } from 'vitest';
import { HostFailure } from '../agent/host/call-router.js';
import { IPC_CHANNELS } from '../protocol/ipc-channels.js';
import { fakeHandlers } from '../protocol/fake-host.fixture.js';
import { registerAgentHostIpc } from './ipc.js';
import { PANEL_URL } from './panel-protocol.js';
import { isTrustedSender } from './trusted-sender.js';

type Handler = (event: { senderFrame: never }, message: unknown) => unknown;

function fakeIpcMain() {
  const handlers = new Map<string, Handler>();
  return {
    handle: (channel: string, handler: Handler) => {
      handlers.set(channel, handler);
    },
    removeHandler: (channel: string) => {
      handlers.delete(channel);
    },
    invoke: (frame: unknown, message: unknown) =>
      handlers.get(IPC_CHANNELS.call)!({ senderFrame: frame as never }, message) as Promise<unknown>,
    handlers,
  };
}

const RENDERER = PANEL_URL;
const top = { url: RENDERER, parent: null };

describe('isTrustedSender', () => {
  it('trusts only our page in the top frame', () => {
    expect(isTrustedSender(top, RENDERER)).toBe(true);
    expect(isTrustedSender({ url: `${RENDERER}#token`, parent: null }, RENDERER)).toBe(true);
    expect(isTrustedSender({ url: RENDERER, parent: {} as never }, RENDERER)).toBe(false);
    expect(isTrustedSender({ url: 'https://evil.example/', parent: null }, RENDERER)).toBe(false);
    expect(isTrustedSender({ url: 'file:///tmp/other.html', parent: null }, RENDERER)).toBe(false);
    // The built panel itself, opened from disk rather than from the panel's origin.
    const fromDisk = 'file:///opt/farmlink/resources/app.asar/dist/renderer/index.html';
    expect(isTrustedSender({ url: fromDisk, parent: null }, RENDERER)).toBe(false);
    expect(isTrustedSender({ url: 'app://panel/other.html', parent: null }, RENDERER)).toBe(false);
    expect(isTrustedSender({ url: 'app://panel.evil/index.html', parent: null }, RENDERER)).toBe(false);
    expect(isTrustedSender({ url: 'app://panel/index.html/', parent: null }, RENDERER)).toBe(false);
    expect(isTrustedSender(null, RENDERER)).toBe(false);
  });
});

describe('Electron IPC wiring against the AgentHost schema', () => {
  const setup = (overrides = {}) => {
    const ipc = fakeIpcMain();
    registerAgentHostIpc(ipc, fakeHandlers(overrides), (event) => isTrustedSender(event.senderFrame, RENDERER));
    return ipc;
  };

  it('answers a valid call with a result envelope', async () => {
    const ipc = setup();
    await expect(ipc.invoke(top, { method: 'setMode', input: { mode: 'legacy' } })).resolves.toEqual({
      ok: true,
      value: { mode: 'legacy' },
    });
  });

  it('refuses untrusted frames, unknown methods and inputs the schema rejects — as envelopes, never throws', async () => {
    const ipc = setup();
    expect(
      await ipc.invoke({ url: 'https://evil.example', parent: null }, { method: 'reconnectNow', input: {} }),
    ).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await ipc.invoke(top, 'nonsense')).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    expect(await ipc.invoke(top, { method: 'deleteEverything', input: {} })).toMatchObject({
      ok: false,
      error: { code: 'UNKNOWN_METHOD' },
    });
    expect(await ipc.invoke(top, { method: 'setMode', input: { mode: 'turbo' } })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_INPUT', problems: [{ path: 'mode', message: expect.any(String) as string }] },
    });
    expect(await ipc.invoke(top, { method: 'tailLogs', input: { limit: 5, extra: 1 } })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_INPUT' },
    });
  });

  it("turns a handler's refusal or crash into an error envelope", async () => {
    const ipc = setup({
      setMode: () => {
        throw new HostFailure('MODE_UNAVAILABLE', 'not built yet');
      },
      reconnectNow: () => {
        throw new Error('boom');
      },
    });
    expect(await ipc.invoke(top, { method: 'setMode', input: { mode: 'enhanced' } })).toEqual({
      ok: false,
      error: { code: 'MODE_UNAVAILABLE', message: 'not built yet' },
    });
    expect(await ipc.invoke(top, { method: 'reconnectNow', input: {} })).toEqual({
      ok: false,
      error: { code: 'INTERNAL', message: 'boom' },
    });
  });

  it('removes its handler when asked', () => {
    const ipc = fakeIpcMain();
    const off = registerAgentHostIpc(ipc, fakeHandlers(), () => true);
    expect(ipc.handlers.has(IPC_CHANNELS.call)).toBe(true);
    off();
    expect(ipc.handlers.has(IPC_CHANNELS.call)).toBe(false);
  });
});
