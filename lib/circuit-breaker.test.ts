import { describe, expect, it } from 'vitest';
import { BreakerStatusSchema } from '../protocol/connection-state.js';
import { Breaker, BREAKER_DEFAULTS, BreakerOpenError, type BreakerTransition } from './circuit-breaker.js';
import { FarmlinkError } from './errors.js';
import { ManualClock } from './manual-clock.fixture.js';

function setup(options: { failures?: number; windowMs?: number; recoveryMs?: number } = {}) {
  const clock = new ManualClock();
  const breaker = new Breaker({
    name: 'test',
    failures: options.failures ?? BREAKER_DEFAULTS.failures,
    windowMs: options.windowMs ?? BREAKER_DEFAULTS.windowMs,
    recoveryMs: options.recoveryMs ?? BREAKER_DEFAULTS.recoveryMs,
    clock,
  });
  const transitions: BreakerTransition[] = [];
  breaker.events.on('state', (t) => transitions.push(t));
  return { clock, breaker, transitions };
}

function fail(breaker: Breaker, times: number, reason = 'refused'): void {
  for (let i = 0; i < times; i += 1) breaker.failure(reason);
}

describe('Breaker', () => {
  it('starts closed and lets every call through', () => {
    const { breaker } = setup();
    expect(breaker.state).toBe('closed');
    for (let i = 0; i < 100; i += 1) expect(breaker.allow()).toBe(true);
    expect(breaker.status()).toEqual({ state: 'closed', failures: 0, reason: null, opened_at: null, retry_at: null });
  });

  it('opens at the threshold within the window (10 failures in 60 s), with the reason and the retry time', () => {
    const { clock, breaker, transitions } = setup();
    for (let i = 0; i < 9; i += 1) {
      breaker.failure(`refusal ${String(i)}`);
      clock.advanceSync(6_000); // 9 failures over 54 s
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.status().failures).toBe(9);
    breaker.failure('4401 UNAUTHORIZED');
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    expect(breaker.opens).toBe(1);
    expect(transitions).toEqual([{ from: 'closed', to: 'open', reason: '4401 UNAUTHORIZED' }]);
    const status = breaker.status();
    expect(BreakerStatusSchema.parse(status)).toEqual(status);
    expect(status).toEqual({
      state: 'open',
      failures: 10,
      reason: '4401 UNAUTHORIZED',
      opened_at: clock.now(),
      retry_at: clock.now() + 120_000,
    });
    expect(breaker.msUntilRetry()).toBe(120_000);
  });

  it('does not open when the failures are spread wider than the window', () => {
    const { clock, breaker } = setup();
    for (let i = 0; i < 50; i += 1) {
      breaker.failure('refused');
      clock.advanceSync(6_700); // the 1st and the 10th are 60.3 s apart: never 10 within one window
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.status().failures).toBeLessThan(10);
  });

  it('a success while closed clears the count', () => {
    const { breaker } = setup();
    fail(breaker, 9);
    breaker.success();
    fail(breaker, 9);
    expect(breaker.state).toBe('closed');
    breaker.failure('refused');
    expect(breaker.state).toBe('open');
  });

  it('goes half-open once the recovery time has passed, and lets exactly one probe through', () => {
    const { clock, breaker, transitions } = setup();
    fail(breaker, 10);
    clock.advanceSync(119_999);
    expect(breaker.allow()).toBe(false);
    expect(breaker.state).toBe('open');
    clock.advanceSync(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.status()).toMatchObject({ state: 'half-open', retry_at: null, reason: 'refused' });
    expect(breaker.msUntilRetry()).toBe(0);
    expect(breaker.allow()).toBe(true); // the probe
    expect(breaker.allow()).toBe(false); // only one at a time
    expect(breaker.allow()).toBe(false);
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open']);
  });

  it('a probe that succeeds closes it', () => {
    const { clock, breaker, transitions } = setup();
    fail(breaker, 10);
    clock.advanceSync(120_000);
    expect(breaker.allow()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.status()).toEqual({ state: 'closed', failures: 0, reason: null, opened_at: null, retry_at: null });
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed']);
    // and it counts afresh: 9 more failures do not open it
    fail(breaker, 9);
    expect(breaker.state).toBe('closed');
  });

  it('a probe that fails opens it again for another recovery time', () => {
    const { clock, breaker, transitions } = setup();
    fail(breaker, 10);
    clock.advanceSync(120_000);
    expect(breaker.allow()).toBe(true);
    breaker.failure('still refused');
    expect(breaker.state).toBe('open');
    expect(breaker.opens).toBe(2);
    expect(breaker.status()).toMatchObject({ state: 'open', reason: 'still refused', retry_at: clock.now() + 120_000 });
    expect(transitions.at(-1)).toEqual({ from: 'half-open', to: 'open', reason: 'still refused' });
    clock.advanceSync(119_999);
    expect(breaker.allow()).toBe(false);
    clock.advanceSync(1);
    expect(breaker.allow()).toBe(true);
  });

  it('runs on monotonic time: a wall-clock jump neither opens nor recovers it', () => {
    const { clock, breaker } = setup({ failures: 2, windowMs: 1_000, recoveryMs: 5_000 });
    breaker.failure('a');
    clock.jumpWall(10_000);
    breaker.failure('b');
    expect(breaker.state).toBe('open');
    clock.jumpWall(60_000);
    expect(breaker.allow()).toBe(false);
  });

  describe('execute', () => {
    it('passes results and errors through, counting them', async () => {
      const { breaker } = setup({ failures: 2 });
      await expect(breaker.execute(() => Promise.resolve(42))).resolves.toBe(42);
      const boom = new FarmlinkError('SINK_DOWN', 'the sink is down');
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
      expect(breaker.status().failures).toBe(1);
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
      expect(breaker.status()).toMatchObject({ state: 'open', reason: 'SINK_DOWN: the sink is down' });
    });

    it('fails fast with BREAKER_OPEN and retryAt while open, without calling fn', async () => {
      const { clock, breaker } = setup({ failures: 1, recoveryMs: 30_000 });
      breaker.failure('down');
      let called = false;
      const error: unknown = await breaker
        .execute(() => {
          called = true;
          return Promise.resolve();
        })
        .catch((e: unknown) => e);
      expect(called).toBe(false);
      expect(error).toBeInstanceOf(BreakerOpenError);
      expect(error).toBeInstanceOf(FarmlinkError);
      expect(error).toMatchObject({ code: 'BREAKER_OPEN', retryAt: clock.now() + 30_000, breaker: 'test' });
      expect((error as Error).message).toContain('test: circuit breaker open (down)');
    });

    it('lets one probe through after recovery; concurrent calls fail fast until its outcome', async () => {
      const { clock, breaker } = setup({ failures: 1, recoveryMs: 1_000 });
      breaker.failure('down');
      await clock.advance(1_000);
      let finish: (v: string) => void = () => {};
      const probe = breaker.execute(() => new Promise<string>((resolve) => (finish = resolve)));
      await expect(breaker.execute(() => Promise.resolve('other'))).rejects.toMatchObject({ code: 'BREAKER_OPEN' });
      finish('ok');
      await expect(probe).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
      await expect(breaker.execute(() => Promise.resolve('after'))).resolves.toBe('after');
    });
  });

  it('reset() closes it at once', () => {
    const { breaker } = setup({ failures: 1 });
    breaker.failure('down');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
  });

  it('refuses nonsense settings', () => {
    const clock = new ManualClock();
    expect(() => new Breaker({ name: 'x', failures: 0, windowMs: 1, recoveryMs: 1, clock })).toThrow(/failures/);
    expect(() => new Breaker({ name: 'x', failures: 1, windowMs: 0, recoveryMs: 1, clock })).toThrow(/windowMs/);
  });
});
