import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';

function setup(options: { failureThreshold?: number; cooldownMs?: number; maxCooldownMs?: number } = {}) {
  const time = { now: 10_000 };
  const breaker = new CircuitBreaker({
    failureThreshold: options.failureThreshold ?? 3,
    cooldownMs: options.cooldownMs ?? 100,
    maxCooldownMs: options.maxCooldownMs ?? 1000,
    now: () => time.now,
  });
  /** Runs to the end of the current cooldown and lets the probe through. */
  const probeAfter = (ms: number) => {
    time.now += ms - 1;
    expect(breaker.allow()).toBe(false);
    expect(breaker.state).toBe('open');
    time.now += 1;
    expect(breaker.allow()).toBe(true);
    expect(breaker.state).toBe('half-open');
  };
  return { breaker, time, probeAfter };
}

describe('CircuitBreaker', () => {
  it('starts closed and lets every call through', () => {
    const { breaker } = setup();
    expect(breaker.state).toBe('closed');
    for (let i = 0; i < 100; i += 1) expect(breaker.allow()).toBe(true);
    expect(breaker.opens).toBe(0);
  });

  it('opens after failureThreshold consecutive failures and then refuses calls', () => {
    const { breaker } = setup({ failureThreshold: 3 });
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.opens).toBe(1);
    expect(breaker.allow()).toBe(false);
    expect(breaker.allow()).toBe(false);
  });

  it('needs the failures to be consecutive: a success in between starts the count again', () => {
    const { breaker } = setup({ failureThreshold: 3 });
    for (let round = 0; round < 10; round += 1) {
      breaker.failure();
      breaker.failure();
      breaker.success();
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.opens).toBe(0);
    breaker.failure();
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('open');
  });

  it('after the cooldown lets exactly one probe through (half-open)', () => {
    const { breaker, time, probeAfter } = setup({ cooldownMs: 100 });
    for (let i = 0; i < 3; i += 1) breaker.failure();
    probeAfter(100);
    // While the probe is out, nobody else goes.
    expect(breaker.allow()).toBe(false);
    time.now += 10_000;
    expect(breaker.allow()).toBe(false);
    expect(breaker.state).toBe('half-open');
  });

  it('closes when the probe succeeds, and then lets everything through', () => {
    const { breaker, probeAfter } = setup();
    for (let i = 0; i < 3; i += 1) breaker.failure();
    probeAfter(100);
    breaker.success();
    expect(breaker.state).toBe('closed');
    for (let i = 0; i < 10; i += 1) expect(breaker.allow()).toBe(true);
    // And it takes a whole new run of failures to open again.
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.opens).toBe(2);
  });

  it('reopens when the probe fails, doubling the cooldown up to maxCooldownMs', () => {
    const { breaker, probeAfter } = setup({ cooldownMs: 100, maxCooldownMs: 700 });
    for (let i = 0; i < 3; i += 1) breaker.failure();
    const cooldowns = [100, 200, 400, 700, 700, 700];
    for (const cooldown of cooldowns) {
      probeAfter(cooldown);
      breaker.failure();
      expect(breaker.state).toBe('open');
      expect(breaker.allow()).toBe(false);
    }
    expect(breaker.opens).toBe(1 + cooldowns.length);
  });

  it('starts again from the first cooldown once closed', () => {
    const { breaker, probeAfter } = setup({ cooldownMs: 100, maxCooldownMs: 10_000 });
    for (let i = 0; i < 3; i += 1) breaker.failure();
    probeAfter(100);
    breaker.failure();
    probeAfter(200);
    breaker.failure();
    probeAfter(400);
    breaker.success();
    for (let i = 0; i < 3; i += 1) breaker.failure();
    probeAfter(100);
  });

  it('reset() closes at once, without waiting out the cooldown, and forgets the longer cooldown', () => {
    const { breaker, probeAfter } = setup({ cooldownMs: 100 });
    for (let i = 0; i < 3; i += 1) breaker.failure();
    probeAfter(100);
    breaker.failure();
    expect(breaker.allow()).toBe(false);
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    for (let i = 0; i < 3; i += 1) breaker.failure();
    probeAfter(100);
  });

  it('a threshold of one opens on the first failure', () => {
    const { breaker } = setup({ failureThreshold: 1 });
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
  });
});
