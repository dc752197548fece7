import { describe, expect, it } from 'vitest';
import { TokenVerifier, bearerToken, mintToken } from './auth.js';

const SECRET = 'a'.repeat(32);

describe('tokens', () => {
  it('mints agent and admin tokens the verifier accepts', async () => {
    const verifier = new TokenVerifier(SECRET);
    await expect(verifier.verify(await mintToken(SECRET, { role: 'agent', agentId: 'pc-7' }))).resolves.toEqual({
      role: 'agent',
      subject: 'pc-7',
      expiresAt: null,
    });
    const admin = await verifier.verify(await mintToken(SECRET, { role: 'admin', expiresIn: '1h' }));
    expect(admin.role).toBe('admin');
    expect(admin.expiresAt).toBeGreaterThan(Date.now());
  });

  it("rejects another secret's token, garbage and expired tokens, saying why", async () => {
    const verifier = new TokenVerifier(SECRET);
    await expect(
      verifier.verify(await mintToken('b'.repeat(32), { role: 'agent', agentId: 'x' })),
    ).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringContaining('secret') as string,
    });
    await expect(verifier.verify('not.a.jwt')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const expired = await mintToken(SECRET, { role: 'agent', agentId: 'x', expiresIn: '-1s' });
    await expect(verifier.verify(expired)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: 'token expired' });
  });

  it('refuses a short secret', () => {
    expect(() => new TokenVerifier('short')).toThrow(/at least 32/);
  });

  it('reads a Bearer header', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer  xyz ')).toBe('xyz');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
