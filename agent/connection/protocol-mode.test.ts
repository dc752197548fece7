import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../protocol/close-codes.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import type { ConnectionEvent } from '../../protocol/connection-state.js';
import { Capability } from '../../protocol/version.js';
import { AgentConnection } from './connection.js';
import { FakeHub, TEST_TIMING, type FakeHubLink } from './fake-hub-link.fixture.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';

const A = 'ws://hub-a.test/api/v1/pc/ws';
const B = 'ws://hub-b.test/api/v1/pc/ws';
const BATCH = { window_ms: 50, max_messages: 500, max_bytes: 60_000 };

function setup(mode: ProtocolModeSetting, servers: readonly string[] = [A]) {
  const clock = new ManualClock();
  const hub = new FakeHub(clock);
  const lines: Array<{ msg: string }> = [];
  const connection = new AgentConnection({
    servers,
    timing: TEST_TIMING,
    identity: { id: 'pc-017', name: 'rack 3', token: 't', version: '0.0.0-test', hostname: 'h', platform: 'linux' },
    clock,
    random: () => 0.5,
    logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) }),
    usage: () => ({ cpu_usage: 1, ram_usage: 2 }),
    link: hub.factory,
    mode,
  });
  const events: ConnectionEvent[] = [];
  connection.events.on('state', (e) => events.push(e));
  const hello = (link: FakeHubLink) => link.sentOf('hello')[0];
  /** Accept the latest dial; the hub grants enhanced mode when `grant` and the agent asked for it. */
  const connect = (grant: boolean): FakeHubLink => {
    const link = hub.last();
    link.accept();
    const offered = hello(link)?.capabilities?.includes(Capability.BATCH_V1) === true;
    link.register(grant && offered ? { capabilities: [Capability.BATCH_V1], acked_seq: 7, batch: BATCH } : {});
    return link;
  };
  const logged = (re: RegExp) => lines.filter((l) => re.test(l.msg));
  return { clock, hub, connection, events, hello, connect, logged };
}

describe('protocol mode negotiation', () => {
  it('auto with a hub that grants it: enhanced, batched at the hub’s pace, resuming where the hub says', () => {
    const t = setup('auto');
    const registered: Array<{ mode: string; acked?: number }> = [];
    t.connection.events.on('registered', ({ mode, registered: r }) =>
      registered.push({ mode, ...(r.acked_seq !== undefined ? { acked: r.acked_seq } : {}) }),
    );
    t.connection.start();
    const link = t.connect(true);
    expect(t.hello(link)?.capabilities).toEqual(['batch.v1']);
    expect(link.batching).toEqual(BATCH);
    expect(registered).toEqual([{ mode: 'enhanced', acked: 7 }]);
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', mode: 'enhanced' });
    expect(t.connection.getModeInfo()).toMatchObject({
      setting: 'auto',
      negotiated: 'enhanced',
      hubOffersEnhanced: true,
    });
    expect(t.connection.channel()).toMatchObject({ mode: 'enhanced' });
    expect(t.logged(/^Protocol: enhanced/)).toHaveLength(1);
  });

  it('auto with a hub that does not grant it: legacy, said in the log', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.connect(false);
    expect(link.batching).toBeUndefined();
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', mode: 'legacy' });
    expect(t.connection.getModeInfo()).toMatchObject({ negotiated: 'legacy', hubOffersEnhanced: false });
    expect(t.logged(/does not offer enhanced mode/)).toHaveLength(1);
  });

  it('legacy never offers it', () => {
    const t = setup('legacy');
    t.connection.start();
    const link = t.connect(true);
    expect(t.hello(link)?.capabilities).toBeUndefined();
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', mode: 'legacy' });
  });

  it('enhanced skips a hub that does not offer it, like a failed server, and settles on one that does', () => {
    const t = setup('enhanced', [A, B]);
    t.connection.start();
    const a = t.connect(false);
    expect(a.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'mode_unavailable' }]);
    expect(a.ended).toEqual({ how: 'closed', code: CloseCode.NORMAL, reason: 'mode_unavailable' });
    expect(t.events.at(-1)?.reason.code).toBe('mode_unavailable');
    expect(t.hub.last().url).toBe(B);
    t.connect(true);
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', mode: 'enhanced', server: { index: 1 } });
    expect(t.connection.getStats().servers[0]?.last_error?.code).toBe('mode_unavailable');
  });

  it('switching live: a graceful disconnect, the same server again at once in the other mode', () => {
    const t = setup('auto', [A, B]);
    t.connection.start();
    t.connect(false);
    t.hub.last().hubCloses(1006);
    const b = t.connect(true);
    expect(t.connection.getState()).toMatchObject({ mode: 'enhanced', server: { index: 1 } });

    expect(t.connection.setMode('legacy')).toBe(true);
    expect(b.sentOf('disconnect')).toEqual([{ type: 'disconnect', reason: 'mode_changed' }]);
    expect(b.ended).toMatchObject({ how: 'closed', code: CloseCode.NORMAL });
    const again = t.hub.last();
    expect(again).not.toBe(b);
    expect(again.url).toBe(B);
    again.accept();
    expect(t.hello(again)?.capabilities).toBeUndefined();
    again.register({ capabilities: [Capability.BATCH_V1] });
    expect(t.connection.getState()).toMatchObject({ phase: 'connected', mode: 'legacy', server: { index: 1 } });
    // A switch is not a failure of the server.
    expect(t.connection.getStats().servers[1]?.failures).toBe(0);

    // Already speaking what the setting allows: nothing to do.
    expect(t.connection.setMode('legacy')).toBe(false);
    expect(t.connection.setMode('auto')).toBe(true);
    t.connect(true);
    expect(t.connection.getState()).toMatchObject({ mode: 'enhanced' });
    expect(t.connection.setMode('enhanced')).toBe(false);
  });

  it('counts frames and time per mode, side by side', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.connect(true);
    t.connection.send({ type: 'event', seq: 1, name: 'x', data: null, timestamp: 1 });
    t.clock.advanceSync(1000);
    const figures = t.connection.getModeFigures();
    // hello and registered belong to the mode agreed, though batching starts only after them: a
    // connection that never used legacy shows no legacy traffic.
    expect(figures.legacy.frames_sent).toBe(0);
    expect(figures.legacy.frames_received).toBe(0);
    expect(figures.enhanced.messages_sent).toBe(link.sent.length);
    expect(figures.enhanced.connected_ms).toBe(1000);
    expect(figures.legacy.connected_ms).toBe(0);
  });

  it('heartbeats go urgent (a batch window would read as latency)', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.connect(true);
    expect(link.urgent.map((m) => m.type)).toContain('heartbeat');
  });

  it('tune: the hub’s new batch window and heartbeat interval apply', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.connect(true);
    const beats = () => link.sentOf('heartbeat').length;
    link.deliver({
      type: 'tune',
      batch: { ...BATCH, window_ms: 200 },
      heartbeat_interval_ms: 60_000,
      reason: 'hub under load',
    });
    expect(link.batching?.window_ms).toBe(200);
    const before = beats();
    t.clock.advanceSync(TEST_TIMING.heartbeatIntervalMs);
    // The beat already scheduled goes at the old interval; the next waits the new one.
    expect(beats()).toBe(before + 1);
    t.clock.advanceSync(30_000);
    expect(beats()).toBe(before + 1);
    t.clock.advanceSync(30_000);
    expect(beats()).toBe(before + 2);
    expect(t.logged(/Hub asked for another pace \(hub under load\)/)).toHaveLength(1);
  });

  it('tune: a heartbeat interval shorter than the agent’s own is not taken; null brings its own back', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.connect(true);
    const own = TEST_TIMING.heartbeatIntervalMs;
    const pace = () => t.connection.getModeInfo().pace;
    expect(pace()).toEqual({ batch_window_ms: 50, heartbeat_interval_ms: own, hub_reason: null });
    link.deliver({ type: 'tune', heartbeat_interval_ms: Math.max(1, own / 2), reason: 'faster?' });
    expect(pace()?.heartbeat_interval_ms).toBe(own);
    link.deliver({ type: 'tune', batch: { ...BATCH, window_ms: 200 }, heartbeat_interval_ms: own * 4, reason: 'busy' });
    expect(pace()).toEqual({ batch_window_ms: 200, heartbeat_interval_ms: own * 4, hub_reason: 'busy' });
    link.deliver({ type: 'tune', batch: BATCH, heartbeat_interval_ms: null, reason: 'back to normal' });
    expect(pace()).toEqual({ batch_window_ms: 50, heartbeat_interval_ms: own, hub_reason: 'back to normal' });
    // Back at its own pace: one beat per interval (the one scheduled at the slow pace goes first).
    t.clock.advanceSync(own * 4);
    const beats = link.sentOf('heartbeat').length;
    t.clock.advanceSync(own * 3);
    expect(link.sentOf('heartbeat').length).toBe(beats + 3);
  });

  it('registered from a hub under load: the agent beats at the hub’s slower interval from the start', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.hub.last();
    link.accept();
    const own = TEST_TIMING.heartbeatIntervalMs;
    link.register({ capabilities: [Capability.BATCH_V1], acked_seq: 0, batch: BATCH, heartbeat_interval_ms: own * 3 });
    expect(t.connection.getModeInfo().pace?.heartbeat_interval_ms).toBe(own * 3);
    expect(t.logged(/^Protocol: enhanced .*the hub is under load: heartbeats every 1m 30s\)$/)).toHaveLength(1);
    const beats = link.sentOf('heartbeat').length; // the first goes at once
    t.clock.advanceSync(own * 3 - 1);
    expect(link.sentOf('heartbeat').length).toBe(beats);
    t.clock.advanceSync(1);
    expect(link.sentOf('heartbeat').length).toBe(beats + 1);
    // Connected all along: the longer interval stretched the dead timeout with it.
    expect(t.connection.getModeInfo().negotiated).toBe('enhanced');
  });

  it('registered in legacy mode ignores a heartbeat interval (no tune would ever restore it)', () => {
    const t = setup('legacy');
    t.connection.start();
    const link = t.hub.last();
    link.accept();
    link.register({ heartbeat_interval_ms: TEST_TIMING.heartbeatIntervalMs * 3 });
    expect(t.connection.getModeInfo().pace).toEqual({
      batch_window_ms: null,
      heartbeat_interval_ms: TEST_TIMING.heartbeatIntervalMs,
      hub_reason: null,
    });
  });

  it('token_expired then 4440: the reason says so and what to do', () => {
    const t = setup('auto');
    t.connection.start();
    const link = t.connect(true);
    link.deliver({ type: 'token_expired', expired_at: 1000, reason: 'token expired' });
    link.hubCloses(CloseCode.TOKEN_EXPIRED, 'token expired');
    const closed = t.events.find((e) => e.reason.code === 'token_expired');
    expect(closed?.reason.close_code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(t.logged(/token expired/).length).toBeGreaterThan(0);
  });
});
