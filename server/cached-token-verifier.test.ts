import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MultiTierCache } from '../lib/cache/cache.js';
import type { Clock } from '../lib/clock.js';
import { TokenVerifier, mintToken, type TokenClaims } from './auth.js';
import { CachedTokenVerifier } from './cached-token-verifier.js';

const SECRET = 'c'.repeat(32);

/** Counts the signature checks that reach the real verifier. */
class CountingVerifier extends TokenVerifier {
  calls = 0;
  override verify(token: string): Promise<TokenClaims> {
    this.calls += 1;
    return super.verify(token);
  }
}

const caches: MultiTierCache[] = [];
afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

function setup() {
  let now = Date.now();
  const clock: Clock = {
    now: () => now,
    monotonic: () => now,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h),
  };
  const cache = MultiTierCache.create({
    name: 'tokens',
    memory: { maxEntries: 100 },
    logger: pino({ level: 'silent' }),
    clock,
  });
  caches.push(cache);
  const inner = new CountingVerifier(SECRET);
  const verifier = new CachedTokenVerifier(inner, cache, () => now);
  return { verifier, inner, cache, advance: (ms: number) => (now += ms) };
}

describe('CachedTokenVerifier', () => {
  it("checks a token's signature once, then answers from memory with the same claims", async () => {
    const { verifier, inner } = setup();
    const token = await mintToken(SECRET, { role: 'agent', agentId: 'pc-1' });
    const first = await verifier.verify(token);
    const second = await verifier.verify(token);
    expect(second).toEqual(first);
    expect(first).toEqual({ role: 'agent', subject: 'pc-1', expiresAt: null });
    expect(inner.calls).toBe(1);
  });

  it('checks again after the cache lifetime (5 minutes)', async () => {
    const { verifier, inner, advance } = setup();
    const token = await mintToken(SECRET, { role: 'admin' });
    await verifier.verify(token);
    advance(5 * 60_000 + 1);
    await verifier.verify(token);
    expect(inner.calls).toBe(2);
  });

  it('never accepts a token from memory past its expiry', async () => {
    const { verifier, inner, advance } = setup();
    const token = await mintToken(SECRET, { role: 'agent', agentId: 'pc-2', expiresIn: '2s' });
    await verifier.verify(token);
    // Both clocks move past exp: the cache's and the one jose checks exp against (new Date()).
    advance(3000);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 3000);
    try {
      await expect(verifier.verify(token)).rejects.toMatchObject({
        code: 'UNAUTHORIZED',
        message: expect.stringMatching(/expired/) as string,
      });
    } finally {
      vi.useRealTimers();
    }
    expect(inner.calls).toBe(2);
  });

  it('remembers a rejection for a short while, with the same reason, then checks again', async () => {
    const { verifier, inner, advance } = setup();
    const forged = await mintToken('d'.repeat(32), { role: 'agent', agentId: 'pc-3' });
    await expect(verifier.verify(forged)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringMatching(/signature/) as string,
    });
    await expect(verifier.verify(forged)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringMatching(/signature/) as string,
    });
    expect(inner.calls).toBe(1);
    advance(10_001);
    await expect(verifier.verify(forged)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(inner.calls).toBe(2);
  });

  it('keeps tokens apart: a cached good token does not vouch for another', async () => {
    const { verifier } = setup();
    const good = await mintToken(SECRET, { role: 'agent', agentId: 'pc-4' });
    await verifier.verify(good);
    await expect(verifier.verify(`${good}x`)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(verifier.verify(await mintToken(SECRET, { role: 'agent', agentId: 'pc-5' }))).resolves.toMatchObject({
      subject: 'pc-5',
    });
  });
});
