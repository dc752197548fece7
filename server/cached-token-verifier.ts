import { createHash } from 'node:crypto';
import { FarmlinkError } from '../lib/errors.js';
import type { MultiTierCache } from '../lib/cache/cache.js';
import type { TokenClaims, TokenVerifier } from './auth.js';

/** What the hub needs of a verifier: agent sessions and the admin API take either kind. */
export interface Verifier {
  verify(token: string): Promise<TokenClaims>;
}

type Outcome = { ok: true; claims: TokenClaims } | { ok: false; message: string };

/** A verified token is trusted again without checking its signature for this long (or until it expires). */
const ACCEPTED_TTL_MS = 5 * 60_000;
/**
 * A rejected token is rejected from memory for this long: a fleet stuck on a bad token (a rotated
 * secret) retries every few seconds, and each retry would otherwise cost a signature check.
 */
const REJECTED_TTL_MS = 10_000;

/**
 * Token verification with its outcome cached in memory, so an agent that reconnects (every
 * failover, every flap of the uplink) and every admin call does not cost another HMAC check.
 * Keys are SHA-256 of the token: nothing that could be replayed sits in the cache's key space,
 * and the cache is in-process only (never Redis), so no token outcome leaves the hub.
 * Claims are cached no longer than the token lives, so an expired token is never accepted.
 */
export class CachedTokenVerifier implements Verifier {
  constructor(
    private readonly inner: TokenVerifier,
    private readonly cache: MultiTierCache,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(token: string): Promise<TokenClaims> {
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = await this.cache.get<Outcome>(key);
    if (cached) {
      if (!cached.ok) throw new FarmlinkError('UNAUTHORIZED', cached.message);
      if (cached.claims.expiresAt === null || cached.claims.expiresAt > this.now()) return cached.claims;
    }
    let outcome: Outcome;
    try {
      outcome = { ok: true, claims: await this.inner.verify(token) };
    } catch (error) {
      if (!(error instanceof FarmlinkError)) throw error;
      outcome = { ok: false, message: error.message };
    }
    const ttlMs = outcome.ok
      ? Math.min(ACCEPTED_TTL_MS, (outcome.claims.expiresAt ?? Number.POSITIVE_INFINITY) - this.now())
      : REJECTED_TTL_MS;
    if (ttlMs > 0) await this.cache.set(key, outcome, { ttlMs, jitter: 0 });
    if (!outcome.ok) throw new FarmlinkError('UNAUTHORIZED', outcome.message);
    return outcome.claims;
  }
}
