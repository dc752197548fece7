import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IPC_CHANNEL, IpcEndpoint, type Notice, type Op } from './ipc.js';

/** Two endpoints joined back to back, as a primary and a worker are over the cluster's channel. */
function pair(answerB: (op: Op) => Promise<unknown>, options: { connected?: () => boolean } = {}) {
  const notices: Notice[] = [];
  const invalid: string[] = [];
  const connected = options.connected ?? (() => true);
  // Delivered on a later turn, as IPC messages are; JSON round trip, as the channel serialises.
  const deliver = (to: () => IpcEndpoint, message: unknown) => {
    if (!connected()) return false;
    const copy: unknown = JSON.parse(JSON.stringify(message));
    queueMicrotask(() => to().receive(copy));
    return true;
  };
  const a: IpcEndpoint = new IpcEndpoint({
    peer: 'b',
    send: (m) => deliver(() => b, m),
    answer: () => Promise.reject(new Error('a answers nothing')),
    onNotice: (n) => notices.push(n),
    onInvalid: (p) => invalid.push(p),
  });
  const b: IpcEndpoint = new IpcEndpoint({ peer: 'a', send: (m) => deliver(() => a, m), answer: answerB });
  return { a, b, notices, invalid };
}

describe('IpcEndpoint', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers a request with the other side’s result, checked against the operation’s shape', async () => {
    const { a } = pair((op) =>
      Promise.resolve(op.op === 'health' ? { draining: false, agents_connected: 3, connections_open: 4 } : null),
    );
    await expect(a.request({ op: 'health' }, 1000)).resolves.toEqual({
      draining: false,
      agents_connected: 3,
      connections_open: 4,
    });
  });

  it('passes on the other side’s error with its code', async () => {
    const { a } = pair(() => Promise.reject(Object.assign(new Error('no such thing'), { code: 'NOPE' })));
    await expect(a.request({ op: 'agents' }, 1000)).rejects.toMatchObject({ code: 'NOPE', message: 'no such thing' });
  });

  it('refuses a reply of the wrong shape rather than handing it on', async () => {
    const { a } = pair(() => Promise.resolve({ agents_connected: 'many' }));
    await expect(a.request({ op: 'health' }, 1000)).rejects.toMatchObject({ code: 'IPC_BAD_REPLY' });
  });

  it('gives up after the time bound when no answer comes', async () => {
    const { a } = pair(() => new Promise(() => undefined));
    const asked = a.request({ op: 'broadcast', data: {} }, 500);
    const settled = expect(asked).rejects.toMatchObject({ code: 'IPC_TIMEOUT' });
    await vi.advanceTimersByTimeAsync(500);
    await settled;
  });

  it('fails a request at once when the channel is closed, and every waiting one on closeAll', async () => {
    let connected = true;
    const { a } = pair(() => new Promise(() => undefined), { connected: () => connected });
    const waiting = a.request({ op: 'agents' }, 60_000);
    const failed = expect(waiting).rejects.toMatchObject({ code: 'IPC_CLOSED', message: 'worker w2 exited' });
    a.closeAll('worker w2 exited');
    await failed;
    connected = false;
    await expect(a.request({ op: 'agents' }, 60_000)).rejects.toMatchObject({ code: 'IPC_CLOSED' });
  });

  it('delivers notices, ignores other channels’ messages and reports unreadable ones on its own', async () => {
    const { a, b, notices, invalid } = pair(() => Promise.resolve(null));
    b.notify({ type: 'registered', agent_id: 'pc-1', session_id: 's1' });
    await vi.advanceTimersByTimeAsync(0);
    expect(notices).toEqual([{ type: 'registered', agent_id: 'pc-1', session_id: 's1' }]);
    a.receive({ type: 'prom-client:getMetricsReq', requestId: 1 });
    a.receive('text');
    expect(invalid).toEqual([]);
    a.receive({ channel: IPC_CHANNEL, kind: 'notice', notice: { type: 'registered' } });
    expect(invalid).toHaveLength(1);
    expect(notices).toHaveLength(1);
  });
});
