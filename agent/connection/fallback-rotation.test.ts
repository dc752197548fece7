import { describe, expect, it } from 'vitest';
import { Backoff } from '../../lib/backoff.js';
import { FallbackRotation } from './fallback-rotation.js';

const rotation = (servers: number) =>
  new FallbackRotation(servers, new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.5 }));

describe('FallbackRotation', () => {
  it('tries the primary, each fallback in order with no wait, then the primary after a backoff', () => {
    const r = rotation(4);
    expect(r.current).toBe(0);
    const steps = Array.from({ length: 9 }, () => r.afterFailure());
    expect(steps.map((s) => [s.index, s.delayMs])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [0, 1000], // round over: back to the primary after backoff #1
      [1, 0],
      [2, 0],
      [3, 0],
      [0, 2000], // backoff #2
      [1, 0],
    ]);
    expect(steps[3]).toMatchObject({ roundComplete: true, backoffStep: 1 });
    expect(steps[7]).toMatchObject({ roundComplete: true, backoffStep: 2 });
  });

  it('with a single server, every failure is a full round and backs off', () => {
    const r = rotation(1);
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => r.afterFailure().delayMs)).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000,
    ]);
  });

  it('after a stable connection is lost, fails over to the next server at once and counts a fresh round', () => {
    const r = rotation(3);
    r.afterFailure(); // primary failed → fallback 1
    r.afterFailure(); // fallback 1 failed → fallback 2
    expect(r.current).toBe(2);
    r.markStable(); // connected on fallback 2 long enough
    expect(r.afterFailure()).toMatchObject({ index: 0, delayMs: 0 }); // lost it: primary next, no wait
    expect(r.afterFailure()).toMatchObject({ index: 1, delayMs: 0 });
    expect(r.afterFailure()).toMatchObject({ index: 0, delayMs: 1000, roundComplete: true }); // all three failed in a row
  });

  it('does not reset the backoff for a connection that drops before it is stable (a flapping hub cannot make it spin)', () => {
    const r = rotation(1);
    expect(r.afterFailure().delayMs).toBe(1000);
    // registered, then dropped at once: no markStable()
    expect(r.afterFailure().delayMs).toBe(2000);
    expect(r.afterFailure().delayMs).toBe(4000);
    r.markStable();
    expect(r.afterFailure().delayMs).toBe(1000);
  });

  it('restartAtPrimary starts a new round at the primary but keeps the backoff', () => {
    const r = rotation(2);
    r.afterFailure();
    r.afterFailure(); // backoff #1
    r.afterFailure();
    r.restartAtPrimary();
    expect(r.current).toBe(0);
    expect(r.afterFailure()).toMatchObject({ index: 1, delayMs: 0 });
    expect(r.afterFailure()).toMatchObject({ index: 0, delayMs: 2000 });
  });

  it('needs at least one server', () => {
    expect(() => rotation(0)).toThrow(RangeError);
  });
});

describe('FallbackRotation.startAt (the server that worked before a restart)', () => {
  it('begins there, goes on in order wrapping past the last fallback, and ends the round at the primary after a backoff', () => {
    const rotation = new FallbackRotation(3, new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.5 }));
    rotation.startAt(2);
    expect(rotation.current).toBe(2);
    expect(rotation.afterFailure()).toMatchObject({ index: 0, delayMs: 0, roundComplete: false });
    expect(rotation.afterFailure()).toMatchObject({ index: 1, delayMs: 0, roundComplete: false });
    const endOfRound = rotation.afterFailure();
    expect(endOfRound).toMatchObject({ index: 0, roundComplete: true });
    expect(endOfRound.delayMs).toBeGreaterThan(0);
  });

  it('refuses an index that is not a configured server', () => {
    const rotation = new FallbackRotation(2, new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.5 }));
    expect(() => rotation.startAt(2)).toThrow(RangeError);
    expect(() => rotation.startAt(-1)).toThrow(RangeError);
  });
});

describe('FallbackRotation with breakers (the gate)', () => {
  /** A gate where the listed servers are open for `ms`. */
  const gate = (open: Record<number, number>) => ({ msUntilRetry: (i: number) => open[i] ?? 0 });
  const backoff = () => new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.5 });

  it('passes over an open server as if it had failed at once, and says which were skipped', () => {
    const r = new FallbackRotation(4, backoff(), gate({ 1: 50_000, 2: 50_000 }));
    expect(r.afterFailure()).toMatchObject({ index: 3, delayMs: 0, skipped: [1, 2], roundComplete: false });
    expect(r.afterFailure()).toMatchObject({ index: 0, delayMs: 1000, roundComplete: true, allOpen: false });
  });

  it('starts the next round past an open primary, and the round still ends after one pass', () => {
    const r = new FallbackRotation(3, backoff(), gate({ 0: 50_000 }));
    r.afterFailure(); // primary refused → 1
    expect(r.afterFailure()).toMatchObject({ index: 2, delayMs: 0 });
    expect(r.afterFailure()).toMatchObject({ index: 1, delayMs: 1000, skipped: [0], roundComplete: true });
    expect(r.afterFailure()).toMatchObject({ index: 2, delayMs: 0 });
    expect(r.afterFailure()).toMatchObject({ index: 1, delayMs: 2000, roundComplete: true });
  });

  it('when every server is open, waits for the earliest probe, never less than the backoff', () => {
    const r = new FallbackRotation(3, backoff(), gate({ 0: 90_000, 1: 30_000, 2: 60_000 }));
    expect(r.afterFailure()).toMatchObject({ index: 1, delayMs: 30_000, allOpen: true, roundComplete: true });
    const soon = new FallbackRotation(2, backoff(), gate({ 0: 10, 1: 20 }));
    expect(soon.afterFailure()).toMatchObject({ index: 0, delayMs: 1000, allOpen: true });
  });

  it('restartAtPrimary returns the first server that may be dialled, or the earliest probe', () => {
    expect(new FallbackRotation(3, backoff(), gate({ 0: 5 })).restartAtPrimary()).toBe(1);
    expect(new FallbackRotation(2, backoff(), gate({ 0: 9, 1: 5 })).restartAtPrimary()).toBe(1);
    expect(new FallbackRotation(2, backoff()).restartAtPrimary()).toBe(0);
  });
});
