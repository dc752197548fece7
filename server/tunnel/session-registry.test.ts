import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { SessionRegistry, type NewSession, type SessionPeer } from './session-registry.js';

const client: SessionPeer = { address: '127.0.0.1:5000' };

function spec(overrides: Partial<NewSession<SessionPeer>> = {}): NewSession<SessionPeer> {
  return {
    clientName: 'alice',
    clientKey: 'k',
    agentId: 'pc-017',
    service: 'adb',
    client,
    pending: { requestId: 1, resume: false, wait: false },
    ...overrides,
  };
}

describe('SessionRegistry', () => {
  it('gives each session a 128-bit hex id and a route, indexed by id, route, client key and farm', () => {
    const clock = new ManualClock();
    const registry = new SessionRegistry(clock, { perFarm: 10, perClient: 10 });
    const a = registry.create(spec({ clientKey: 'a' }));
    const b = registry.create(spec({ clientKey: 'b', agentId: 'pc-018' }));
    expect(a.id).toMatch(/^[0-9a-f]{32}$/);
    expect(a.id).not.toBe(b.id);
    expect([a.route, b.route]).toEqual([1, 2]);
    expect(a).toMatchObject({
      state: 'establishing',
      createdAt: clock.now(),
      bytesClientToFarm: 0,
      clientAddress: client.address,
    });
    expect(registry.byRouteNumber(2)).toBe(b);
    expect(registry.byClientKey('alice', 'a')).toBe(a);
    expect(registry.byClientKey('bob', 'a')).toBeUndefined();
    expect(registry.ofAgent('pc-017')).toEqual([a]);
    expect(registry.remove(a, 'closed')).toBe(true);
    expect(a.state).toBe('closed');
    expect(registry.remove(a, 'closed')).toBe(false);
    expect(registry.get(a.id)).toBeUndefined();
    expect(registry.byRouteNumber(a.route)).toBeUndefined();
    expect(registry.ofAgent('pc-017')).toEqual([]);
  });

  it('keeps a resumed session its id, and never hands out a live route again, even after the counter wraps', () => {
    const registry = new SessionRegistry(new ManualClock(), { perFarm: 10, perClient: 10 });
    const id = 'ab'.repeat(16);
    expect(registry.create(spec({ id })).id).toBe(id);
    expect(() => registry.create(spec({ id }))).toThrow(/exists/);
    // Jump the counter to the top of the u32 range: it wraps to 1, which is live, so 2 comes next.
    (registry as unknown as { nextRoute: number }).nextRoute = 0xffff_ffff;
    expect(registry.create(spec({ clientKey: 'top' })).route).toBe(0xffff_ffff);
    expect(registry.create(spec({ clientKey: 'wrapped' })).route).toBe(2);
  });

  it('says which limit a new session would break, per farm and per client', () => {
    const registry = new SessionRegistry(new ManualClock(), { perFarm: 2, perClient: 3 });
    registry.create(spec({ clientKey: '1' }));
    expect(registry.limitProblem('pc-017', 'alice')).toBeUndefined();
    const second = registry.create(spec({ clientKey: '2' }));
    expect(registry.limitProblem('pc-017', 'bob')).toMatch(
      /pc-017 already has 2 sessions \(--tunnel-max-sessions-per-farm 2\)/,
    );
    registry.create(spec({ clientKey: '3', agentId: 'pc-018' }));
    expect(registry.limitProblem('pc-019', 'alice')).toMatch(/client alice already has 3 sessions/);
    registry.remove(second, 'closed');
    expect(registry.limitProblem('pc-017', 'bob')).toBeUndefined();
  });

  it('finds active sessions idle past the limit, unless an end reports a stream open; relayed stream frames reset it', async () => {
    const clock = new ManualClock();
    const registry = new SessionRegistry(clock, { perFarm: 10, perClient: 10 });
    const quiet = registry.create(spec({ clientKey: 'quiet' }));
    const streaming = registry.create(spec({ clientKey: 'streaming' }));
    const touched = registry.create(spec({ clientKey: 'touched' }));
    const establishing = registry.create(spec({ clientKey: 'establishing' }));
    for (const s of [quiet, streaming, touched]) s.state = 'active';
    streaming.streamsOpen.farm = 1;
    await clock.advance(900);
    registry.touch(touched);
    expect(registry.idle(1000)).toEqual([]);
    await clock.advance(100);
    expect(registry.idle(1000)).toEqual([quiet]);
    expect(touched.lastActivityAt).toBe(clock.now() - 100);
    expect(establishing.state).toBe('establishing');
    expect(registry.countByState()).toEqual({ establishing: 1, active: 3, degraded: 0, closed: 0 });
  });
});
