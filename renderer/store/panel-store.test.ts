import { describe, expect, it, vi } from 'vitest';
import { createAgentHostClient } from '../../protocol/agent-host-client.js';
import {
  FakeRefusal,
  MemoryTransport,
  fakeHandlers,
  sampleSnapshot,
  type FakeHandlers,
} from '../../protocol/fake-host.fixture.js';
import { createPanelStore } from './panel-store.js';

const SERVER = { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' };

function setup(overrides: Partial<FakeHandlers> = {}) {
  const transport = new MemoryTransport(fakeHandlers(overrides));
  const store = createPanelStore(createAgentHostClient(transport), () => 999_000);
  return { transport, store };
}

describe('panel store', () => {
  it('loads the snapshot and the log tail, and keeps the host clock offset for countdowns', async () => {
    const { store } = setup();
    await store.getState().start();
    const state = store.getState();
    expect(state.snapshot?.agent.id).toBe('pc-1');
    expect(state.clockOffsetMs).toBe(1_000); // host 1_000_000 − local 999_000
    expect(state.logs.map((l) => l.seq)).toEqual([1, 2]);
  });

  it('takes pushed snapshots, and ignores payloads that do not match the schema', async () => {
    const { store, transport } = setup();
    await store.getState().start();
    transport.push('snapshot', sampleSnapshot({ now: 2_000_000 }));
    expect(store.getState().snapshot?.now).toBe(2_000_000);
    transport.push('snapshot', { now: 'garbage' });
    expect(store.getState().snapshot?.now).toBe(2_000_000);
  });

  it('appends pushed log batches once each, at or above the chosen level, bounded', async () => {
    const { store, transport } = setup();
    await store.getState().start();
    transport.push('logs', [
      { seq: 2, time: 2, level: 'warn', msg: 'dup' },
      { seq: 3, time: 3, level: 'debug', msg: 'noise' },
      { seq: 4, time: 4, level: 'error', msg: 'bad' },
    ]);
    expect(store.getState().logs.map((l) => l.seq)).toEqual([1, 2, 4]);
    await store.getState().setLogLevel('warn');
    expect(store.getState().logs.map((l) => l.level)).toEqual(['warn']);
    transport.push(
      'logs',
      Array.from({ length: 1200 }, (_, i) => ({ seq: 10 + i, time: 10 + i, level: 'error', msg: `e${i}` })),
    );
    expect(store.getState().logs).toHaveLength(1000);
    expect(store.getState().logs.at(-1)?.msg).toBe('e1199');
  });

  it('subscribes once however often it restarts (the panel socket reconnecting)', async () => {
    const { store, transport } = setup();
    await store.getState().start();
    await store.getState().start();
    transport.push('logs', [{ seq: 50, time: 50, level: 'info', msg: 'once' }]);
    expect(store.getState().logs.filter((l) => l.msg === 'once')).toHaveLength(1);
  });

  it("fetches everything again when the panel's own link to the agent comes back", async () => {
    const { store, transport } = setup();
    await store.getState().start();
    store.getState().setLink('open'); // the first open: start()'s own calls go out, nothing more
    const before = transport.calls.filter((c) => c.method === 'getSnapshot').length;
    store.getState().setLink('open');
    expect(transport.calls.filter((c) => c.method === 'getSnapshot').length).toBe(before);
    store.getState().setLink('closed');
    store.getState().setLink('connecting');
    store.getState().setLink('open');
    await vi.waitFor(() => expect(transport.calls.filter((c) => c.method === 'getSnapshot').length).toBe(before + 1));
    expect(store.getState().link).toBe('open');
  });

  it('saving reports field problems inline and keeps nothing as saved; success says where', async () => {
    const refusing = setup({
      saveSettings: () => {
        throw new FakeRefusal('INVALID_SETTINGS', 'nothing was saved', [
          { path: 'server.url', message: 'expected an http:// … URL' },
        ]);
      },
    });
    expect(await refusing.store.getState().saveSettings({ server: { url: 'nope' }, connection: {}, agent: {} })).toBe(
      false,
    );
    expect(refusing.store.getState()).toMatchObject({
      saving: false,
      savedTo: null,
      error: null,
      settingsProblems: [{ path: 'server.url' }],
    });

    const accepting = setup();
    expect(
      await accepting.store
        .getState()
        .saveSettings({ server: { url: 'https://hub.example' }, connection: {}, agent: {} }),
    ).toBe(true);
    expect(accepting.store.getState()).toMatchObject({
      saving: false,
      savedTo: '/tmp/agent.yaml',
      settingsProblems: [],
    });
    expect(accepting.transport.calls.at(-1)).toEqual({
      method: 'saveSettings',
      input: { settings: { server: { url: 'https://hub.example' }, connection: {}, agent: {} } },
    });
  });

  it('shows a refused action as a notice until dismissed', async () => {
    const { store } = setup({
      reconnectNow: () => {
        throw new FakeRefusal('NOT_RUNNING', 'The agent is stopping');
      },
    });
    await store.getState().reconnectNow();
    expect(store.getState().error).toEqual({ code: 'NOT_RUNNING', message: 'The agent is stopping' });
    store.getState().dismissError();
    expect(store.getState().error).toBeNull();
  });

  it('a refused mode switch is kept for the mode card, not swallowed, and cleared by the next switch', async () => {
    let refuse = true;
    const { store, transport } = setup({
      setMode: ({ mode }) => {
        if (refuse) throw new FakeRefusal('MODE_UNAVAILABLE', 'Enhanced mode is not built yet');
        return { mode };
      },
    });
    await store.getState().start();
    await store.getState().setMode('enhanced');
    expect(transport.calls.at(-1)).toEqual({ method: 'setMode', input: { mode: 'enhanced' } });
    expect(store.getState()).toMatchObject({
      modeError: { code: 'MODE_UNAVAILABLE', message: 'Enhanced mode is not built yet' },
      modeSwitch: null,
    });
    refuse = false;
    await store.getState().setMode('legacy');
    expect(store.getState().modeError).toBeNull();
  });

  it('a mode switch stays in progress until the agent has registered again in the mode asked for', async () => {
    const { store, transport } = setup();
    await store.getState().start(); // connected in legacy on session s-1, configured auto
    await store.getState().setMode('enhanced');
    expect(store.getState().modeSwitch).toMatchObject({ to: 'enhanced', fromSession: 's-1' });
    const base = sampleSnapshot();
    const mode = { ...base.mode, configured: 'enhanced' as const };
    // The agent took the setting but is still on the old connection, then is between connections.
    transport.push('snapshot', sampleSnapshot({ mode }));
    expect(store.getState().modeSwitch).not.toBeNull();
    transport.push('snapshot', sampleSnapshot({ mode, state: { phase: 'connecting', server: SERVER, attempt: 1 } }));
    expect(store.getState().modeSwitch).not.toBeNull();
    // Registered again, on a new session, in enhanced mode: over.
    transport.push(
      'snapshot',
      sampleSnapshot({
        mode: { ...mode, current: 'enhanced', available: ['legacy', 'enhanced'], unavailable: {} },
        state: { phase: 'connected', server: SERVER, since: 1_000_000, session_id: 's-2', hub_id: 'hub' },
      }),
    );
    expect(store.getState().modeSwitch).toBeNull();
  });

  it('a switch the connection already fits is over as soon as the agent has the setting', async () => {
    const { store, transport } = setup();
    await store.getState().start(); // legacy in use
    await store.getState().setMode('legacy');
    expect(store.getState().modeSwitch).not.toBeNull(); // the fake host's snapshot still says auto
    transport.push('snapshot', sampleSnapshot({ mode: { ...sampleSnapshot().mode, configured: 'legacy' } }));
    expect(store.getState().modeSwitch).toBeNull();
  });
});
