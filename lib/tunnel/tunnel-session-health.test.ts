import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameKind, MAX_DATA_BYTES } from '../../protocol/tunnel-frame.js';
import { ManualClock } from '../manual-clock.fixture.js';
import { memoryPathPair } from './memory-path.fixture.js';
import { sessionPair, until } from './session-harness.fixture.js';

/**
 * Health pings, deadlines, path choice and state on a fake clock. Memory paths deliver a turn of the
 * event loop after a send, so the clock moves in 10 ms steps with the loop let run between them.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const PING = 1_000;
const DEADLINE = 3_000;
const HOLD = 5_000;

function setup(options: { directHoldMs?: number; relay?: false } = {}) {
  const clock = new ManualClock();
  const p = sessionPair({
    clock,
    pingIntervalMs: PING,
    pingTimeoutMs: DEADLINE,
    directHoldMs: options.directHoldMs ?? HOLD,
    ...(options.relay === false ? { relay: false as const } : {}),
  });
  cleanups.push(() => {
    p.client.close('closed', 'test over');
    p.farm.close('closed', 'test over');
  });
  const dead: string[] = [];
  p.client.events.on('pathDead', ({ path, reason }) => dead.push(`client ${path.kind}: ${reason}`));
  p.farm.events.on('pathDead', ({ path, reason }) => dead.push(`farm ${path.kind}: ${reason}`));
  /** Moves the clock on by `ms` in 10 ms steps, letting the paths deliver between steps. */
  const run = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) await clock.advance(10);
  };
  /** Runs until `condition` holds (at most `ms`); returns how long that took on the clock. */
  const runUntil = async (condition: () => boolean, ms: number): Promise<number> => {
    const start = clock.monotonic();
    while (!condition()) {
      if (clock.monotonic() - start > ms) throw new Error(`condition not met within ${ms} ms on the clock`);
      await clock.advance(10);
    }
    return clock.monotonic() - start;
  };
  const attachDirect = () => {
    const direct = memoryPathPair({ kind: 'direct' });
    p.client.attach(direct.a);
    p.farm.attach(direct.b);
    return direct;
  };
  return { clock, ...p, dead, run, runUntil, attachDirect };
}

function countFrames(path: { events: { on(e: 'frame', l: (b: Buffer) => void): unknown } }, kind: number) {
  const counter = { n: 0 };
  path.events.on('frame', (buf) => {
    if (buf[0] === kind) counter.n += 1;
  });
  return counter;
}

describe('TunnelSession health and path choice', () => {
  it('goes establishing → active on RESUME, degraded with no path, active on a new one', async () => {
    const { client, farm, relay, run, runUntil } = setup({ relay: false });
    expect(client.info().state).toBe('establishing');
    client.attach(relay.a);
    await run(50);
    expect(client.info()).toMatchObject({ state: 'establishing', path: 'relay' }); // the farm has not attached
    farm.attach(relay.b);
    await runUntil(() => client.info().state === 'active' && farm.info().state === 'active', 100);
    client.detach(relay.a, 'socket closed');
    expect(client.info()).toMatchObject({ state: 'degraded', path: null });
    const next = memoryPathPair({ kind: 'relay', route: 12 });
    client.attach(next.a);
    farm.attach(next.b);
    await runUntil(() => client.info().state === 'active', 100);
    expect(client.info().path).toBe('relay');
  });

  it('pings every attached path each interval and puts the round trip of the path in use into info()', async () => {
    const { client, relay, run } = setup();
    const pongs = countFrames(relay.a, FrameKind.PONG);
    await run(5 * PING + 5);
    expect(pongs.n).toBe(6); // one at attach, one per interval
    expect(client.info().rtt_ms).toEqual(expect.any(Number));
  });

  it('declares a silent path dead at its ping deadline, stops sending on it, and says so once', async () => {
    const { client, farm, relay, dead, run, runUntil, clock } = setup();
    farm.events.on('stream', (s) => s.accept());
    await run(PING);
    relay.blackhole();
    const since = clock.monotonic();
    await runUntil(() => dead.length === 2, 2 * DEADLINE);
    // The deadline runs from the last pong, at most one interval before the silence began.
    expect(clock.monotonic() - since).toBeGreaterThan(DEADLINE - PING - 20);
    expect(clock.monotonic() - since).toBeLessThanOrEqual(DEADLINE + 20);
    expect(dead).toEqual([
      `client relay: relay path: no answer to health pings for ${DEADLINE} ms`,
      `farm relay: relay path: no answer to health pings for ${DEADLINE} ms`,
    ]);
    expect(client.info()).toMatchObject({ state: 'degraded', path: null });
    // Nothing but pings goes on a dead path.
    const sentBefore = relay.a.framesSent;
    const stream = client.openStream();
    stream.write('held until a path is back');
    await run(2 * PING);
    expect(relay.a.framesSent - sentBefore).toBe(2); // the two pings
    expect(dead).toHaveLength(2);
  });

  it('takes a dead path back when it answers again, and says so once', async () => {
    const { client, farm, relay, dead, runUntil, run } = setup();
    const alive: string[] = [];
    client.events.on('pathAlive', ({ path }) => alive.push(`client ${path.kind}`));
    farm.events.on('pathAlive', ({ path }) => alive.push(`farm ${path.kind}`));
    relay.blackhole();
    await runUntil(() => dead.length === 2, 2 * DEADLINE);
    expect(alive).toEqual([]);
    relay.restore();
    // Its RESUMEs were lost in the silence too: they go again with the pings until answered.
    await runUntil(() => client.info().path === 'relay' && client.info().state === 'active', 2 * PING);
    await runUntil(() => alive.length === 2, 2 * PING);
    await run(2 * PING);
    expect(alive.sort()).toEqual(['client relay', 'farm relay']);
  });

  it('moves to direct after the hold; back on the relay within the deadline when direct goes silent', async () => {
    const { client, farm, dead, runUntil, attachDirect } = setup();
    await runUntil(() => client.info().state === 'active', 100);
    const direct = attachDirect();
    const held = await runUntil(() => client.pathInUse === 'direct' && farm.pathInUse === 'direct', 2 * HOLD);
    expect(held).toBeGreaterThanOrEqual(HOLD);
    direct.blackhole();
    const fellBack = await runUntil(() => client.pathInUse === 'relay' && farm.pathInUse === 'relay', 2 * DEADLINE);
    expect(fellBack).toBeLessThanOrEqual(DEADLINE + 20);
    expect(dead.map((d) => d.split(':')[0])).toEqual(['client direct', 'farm direct']);
    const recoveries = client.info().recoveries;
    expect(recoveries.map((r) => r.kind)).toEqual(['direct_up', 'direct_lost']);
    expect(recoveries[1]!.reason).toContain('no answer to health pings');
  });

  it('falls back at once when direct is detached; a flapping direct path waits twice as long each time', async () => {
    const { client, farm, runUntil, attachDirect } = setup();
    await runUntil(() => client.info().state === 'active', 100);
    const holds: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const direct = attachDirect();
      holds.push(await runUntil(() => client.pathInUse === 'direct', 8 * HOLD));
      client.detach(direct.a, 'data channel closed');
      farm.detach(direct.b, 'data channel closed');
      expect(client.pathInUse).toBe('relay');
    }
    // The hold is measured from direct's first answer (one ping round after attach).
    expect(holds[0]).toBeGreaterThanOrEqual(HOLD);
    expect(holds[0]).toBeLessThan(2 * HOLD);
    expect(holds[1]).toBeGreaterThanOrEqual(2 * HOLD);
    expect(holds[1]).toBeLessThan(4 * HOLD);
    expect(holds[2]).toBeGreaterThanOrEqual(4 * HOLD);
    expect(client.info().recoveries.map((r) => r.kind)).toEqual([
      'direct_up',
      'direct_lost',
      'direct_up',
      'direct_lost',
      'direct_up',
      'direct_lost',
    ]);
  });

  it('idleMs() is null while a stream is open and counts from the last stream frame after', async () => {
    const { client, farm, run, runUntil } = setup();
    farm.events.on('stream', (s) => {
      s.accept();
      s.resume();
      s.on('end', () => s.end());
    });
    await run(500);
    expect(client.idleMs()).toBe(500);
    const stream = client.openStream();
    stream.resume();
    expect(client.idleMs()).toBeNull();
    await runUntil(() => farm.info().streams_open === 1, 100);
    stream.end('bye');
    await runUntil(() => client.info().streams_open === 0 && farm.info().streams_open === 0, 500);
    const idle = client.idleMs()!;
    await run(1_000);
    expect(client.idleMs()).toBe(idle + 1_000);
  });

  it('keeps the last 20 recoveries, oldest first, with their time', () => {
    const { client, clock } = setup();
    for (let i = 0; i < 25; i += 1) {
      client.recordRecovery({ kind: 'network_timeout', reason: `drop ${i}`, took_ms: i });
      clock.advanceSync(1);
    }
    const recoveries = client.info().recoveries;
    expect(recoveries).toHaveLength(20);
    expect(recoveries[0]).toEqual({ kind: 'network_timeout', reason: 'drop 5', took_ms: 5, at: recoveries[0]!.at });
    expect(recoveries[19]!.at - recoveries[0]!.at).toBe(19);
  });

  it('stops every timer when closed, and reports closed', async () => {
    const { client, farm, clock, run } = setup();
    const direct = memoryPathPair({ kind: 'direct' });
    client.attach(direct.a);
    await run(100);
    client.close('idle_timeout', 'no stream for 5 minutes');
    farm.close('idle_timeout', 'no stream for 5 minutes');
    await run(10);
    expect(clock.pending).toBe(0);
    expect(client.info()).toMatchObject({ state: 'closed', path: null });
  });

  it('holds DATA while the path pushes back (send() false) and goes on at drain', async () => {
    const { client, farm, relay } = sessionPair({ relay: { highWaterMark: 128 * 1024, bytesPerTurn: 16 * 1024 } });
    cleanups.push(() => {
      client.close('closed', 'test over');
      farm.close('closed', 'test over');
    });
    let peak = 0;
    let refused = 0;
    const send = relay.a.send.bind(relay.a);
    relay.a.send = (frame: Buffer, onReleased?: () => void): boolean => {
      if (relay.a.buffered >= 128 * 1024 && frame[0] === FrameKind.DATA) throw new Error('DATA sent past a false');
      const ok = send(frame, onReleased);
      if (!ok) refused += 1;
      peak = Math.max(peak, relay.a.buffered);
      return ok;
    };
    farm.events.on('stream', (s) => {
      s.accept();
      s.resume();
    });
    const stream = client.openStream();
    await once(stream, 'connect');
    stream.end(Buffer.alloc(4 * 1024 * 1024));
    await until(() => farm.info().bytes_in === 4 * 1024 * 1024, 'all 4 MiB at the farm');
    expect(refused).toBeGreaterThan(0);
    expect(peak).toBeLessThan(128 * 1024 + MAX_DATA_BYTES + 1024);
  });
});
