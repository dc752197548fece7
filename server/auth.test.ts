import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { TokenVerifier, agentsProblem, bearerToken, mayReach, mintToken } from './auth.js';

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

  it('mints client tokens with their agents claim; mayReach follows the list or "*"', async () => {
    const verifier = new TokenVerifier(SECRET);
    const alice = await verifier.verify(
      await mintToken(SECRET, { role: 'client', clientName: 'alice@lab', agents: ['pc-017', 'pc-018'] }),
    );
    expect(alice).toEqual({ role: 'client', subject: 'alice@lab', expiresAt: null, agents: ['pc-017', 'pc-018'] });
    expect(mayReach(alice, 'pc-017')).toBe(true);
    expect(mayReach(alice, 'pc-019')).toBe(false);
    const all = await verifier.verify(await mintToken(SECRET, { role: 'client', clientName: 'ops', agents: ['*'] }));
    expect(all.agents).toBe('*');
    expect(mayReach(all, 'anything')).toBe(true);
    // An agent token is never a client, whatever its subject.
    const agent = await verifier.verify(await mintToken(SECRET, { role: 'agent', agentId: 'pc-017' }));
    expect(mayReach(agent, 'pc-017')).toBe(false);
  });

  it('refuses to mint or accept a client token without a valid agents list or name', async () => {
    await expect(mintToken(SECRET, { role: 'client', clientName: 'bob', agents: [] })).rejects.toMatchObject({
      code: 'BAD_AGENTS',
    });
    await expect(mintToken(SECRET, { role: 'client', clientName: ' bad', agents: ['*'] })).rejects.toMatchObject({
      code: 'CLIENT_NAME_REQUIRED',
    });
    expect(agentsProblem(['*', 'pc-1'])).toMatch(/cannot be combined/);
    expect(agentsProblem(['pc 1'])).toMatch(/not a valid agent id/);
    expect(agentsProblem(['pc-1', 'pc-2'])).toBeUndefined();
    const verifier = new TokenVerifier(SECRET);
    const key = new TextEncoder().encode(SECRET);
    const forged = (claims: Record<string, unknown>) =>
      new SignJWT({ role: 'client', ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('farmlink')
        .setSubject('carol')
        .sign(key);
    await expect(verifier.verify(await forged({}))).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringContaining('agents claim') as string,
    });
    await expect(verifier.verify(await forged({ agents: 'pc-1' }))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(verifier.verify(await forged({ agents: [1] }))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
