import { describe, expect, it } from 'vitest';
import { ManualClock } from '../manual-clock.fixture.js';
import { PathSelector, type PathChange } from './path-selector.js';

function setup(options: { holdMs?: number; maxHoldMs?: number; flapWindowMs?: number } = {}) {
  const clock = new ManualClock();
  const changes: PathChange[] = [];
  const selector = new PathSelector({
    clock,
    directHoldMs: options.holdMs ?? 10_000,
    maxHoldMs: options.maxHoldMs ?? 80_000,
    flapWindowMs: options.flapWindowMs ?? 180_000,
    onChange: (change) => changes.push(change),
  });
  const path = (): string | null => selector.current;
  return { clock, selector, changes, path };
}

/** Direct answers a ping every 100 ms for `ms`. */
function answerFor(clock: ManualClock, selector: PathSelector, ms: number): void {
  for (let t = 0; t < ms; t += 100) {
    selector.directAnswered();
    clock.advanceSync(100);
  }
}

describe('PathSelector', () => {
  it('uses the relay as soon as it is up, and nothing when no path is', () => {
    const { selector, path, changes } = setup();
    expect(path()).toBeNull();
    selector.setRelay(true, 'relay attached');
    expect(path()).toBe('relay');
    selector.setRelay(false, 'relay detached');
    expect(path()).toBeNull();
    expect(changes.map((c) => [c.from, c.to])).toEqual([
      [null, 'relay'],
      ['relay', null],
    ]);
  });

  it('moves to direct only after it has answered for the hold, measured from its first answer', () => {
    const { clock, selector, path, changes } = setup({ holdMs: 10_000 });
    selector.setRelay(true, 'relay attached');
    selector.directAttached('direct attached');
    clock.advanceSync(5_000); // attached but silent: the hold has not started
    expect(path()).toBe('relay');
    selector.directAnswered();
    clock.advanceSync(9_999);
    expect(path()).toBe('relay');
    clock.advanceSync(1);
    expect(path()).toBe('direct');
    expect(changes.at(-1)).toMatchObject({ from: 'relay', to: 'direct', fallback: false });
  });

  it('falls back to the relay at once when direct is lost, and marks it a fallback', () => {
    const { clock, selector, path, changes } = setup({ holdMs: 1_000 });
    selector.setRelay(true, 'relay attached');
    selector.directAttached('direct attached');
    answerFor(clock, selector, 2_000);
    expect(path()).toBe('direct');
    selector.directLost('no answer to health pings');
    expect(path()).toBe('relay');
    expect(changes.at(-1)).toEqual({
      from: 'direct',
      to: 'relay',
      fallback: true,
      reason: 'no answer to health pings',
    });
  });

  it('doubles the hold after each fallback, up to the cap: a flapping direct path cannot flap the session', () => {
    const { clock, selector, path, changes } = setup({ holdMs: 10_000, maxHoldMs: 40_000 });
    selector.setRelay(true, 'relay attached');
    const holds: number[] = [];
    for (let round = 0; round < 4; round += 1) {
      selector.directAttached('direct answers again');
      selector.directAnswered();
      const start = clock.monotonic();
      while (path() !== 'direct') clock.advanceSync(100);
      holds.push(clock.monotonic() - start);
      clock.advanceSync(1_000); // direct for a second, then it drops again
      selector.directLost('no answer to health pings');
    }
    expect(holds).toEqual([10_000, 20_000, 40_000, 40_000]);
    expect(selector.currentHoldMs).toBe(40_000);
    expect(changes.filter((c) => c.fallback)).toHaveLength(4);
  });

  it('starts again from the base hold once fallbacks are further apart than the flap window', () => {
    const { clock, selector, path } = setup({ holdMs: 10_000, flapWindowMs: 60_000 });
    selector.setRelay(true, 'relay attached');
    const cycle = (): number => {
      selector.directAttached('direct attached');
      selector.directAnswered();
      const start = clock.monotonic();
      while (path() !== 'direct') clock.advanceSync(100);
      const hold = clock.monotonic() - start;
      selector.directLost('lost');
      return hold;
    };
    expect(cycle()).toBe(10_000);
    expect(cycle()).toBe(20_000);
    expect(selector.currentHoldMs).toBe(40_000);
    clock.advanceSync(61_000); // a quiet minute: the flapping is over
    expect(selector.currentHoldMs).toBe(10_000);
    expect(cycle()).toBe(10_000);
  });

  it('stays on direct while it lives; uses unproven direct only when there is no relay', () => {
    const { clock, selector, path } = setup({ holdMs: 1_000 });
    selector.directAttached('direct attached');
    expect(path()).toBe('direct'); // no relay: direct unproven beats nothing
    selector.setRelay(true, 'relay attached');
    expect(path()).toBe('direct');
    selector.directLost('lost');
    expect(path()).toBe('relay');
    selector.directAttached('direct again');
    answerFor(clock, selector, 500);
    expect(path()).toBe('relay');
    selector.setRelay(false, 'relay detached');
    expect(path()).toBe('direct');
  });

  it('a silence that restarts the run (lost, then answering again) restarts the hold', () => {
    const { clock, selector, path } = setup({ holdMs: 10_000 });
    selector.setRelay(true, 'relay attached');
    selector.directAttached('direct attached');
    selector.directAnswered();
    clock.advanceSync(8_000);
    selector.directLost('missed the deadline'); // never in use: no fallback, no doubling
    selector.directAttached('answers again');
    selector.directAnswered();
    clock.advanceSync(9_000);
    expect(path()).toBe('relay');
    clock.advanceSync(1_000);
    expect(path()).toBe('direct');
    expect(selector.currentHoldMs).toBe(10_000);
  });

  it('stops its timer when disposed', () => {
    const { clock, selector, path } = setup({ holdMs: 1_000 });
    selector.setRelay(true, 'relay attached');
    selector.directAttached('direct attached');
    selector.directAnswered();
    selector.dispose();
    expect(clock.pending).toBe(0);
    clock.advanceSync(5_000);
    expect(path()).toBe('relay');
  });
});
