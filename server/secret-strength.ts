import { ConfigError } from '../lib/errors.js';

/**
 * How the hub secret is judged. Tokens are HS256 JWTs: anyone who guesses the secret can mint
 * agent and admin tokens, so a secret must be long and random, not merely long ("a" × 32 is
 * 32 characters and no secret at all). Both `farmlink hub` and `farmlink token` judge a secret
 * here, so a secret one accepts the other accepts too.
 */

export const MIN_SECRET_LENGTH = 32;
/** "abababab…" and "passwordpassword…" have length but almost no variety. */
export const MIN_DISTINCT_CHARACTERS = 10;
/**
 * Estimated entropy (length × the Shannon entropy of the secret's own character frequencies) a
 * secret must reach. HS256 wants a key as strong as its 256-bit hash; half of that, measured this
 * way, separates typed-in strings from generated ones: `openssl rand -base64 32` (44 characters)
 * measures about 200 bits, `openssl rand -hex 32` about 250, "changeme-changeme-…" about 100.
 */
export const MIN_ESTIMATED_BITS = 128;

export const SECRET_ADVICE = 'use a random string such as the output of `openssl rand -base64 32`';

/** Why this secret is too weak to sign tokens with, or undefined when it is fine. Never quotes the secret. */
export function secretWeakness(secret: string): string | undefined {
  // Code points, so a character outside the BMP counts once.
  const characters = Array.from(secret);
  if (characters.length < MIN_SECRET_LENGTH) {
    return `too short: ${characters.length} characters, expected at least ${MIN_SECRET_LENGTH}; ${SECRET_ADVICE}`;
  }
  const counts = new Map<string, number>();
  for (const c of characters) counts.set(c, (counts.get(c) ?? 0) + 1);
  if (counts.size < MIN_DISTINCT_CHARACTERS) {
    const what = counts.size === 1 ? 'one character repeated' : `only ${counts.size} different characters`;
    return `too little variety: ${what}, expected at least ${MIN_DISTINCT_CHARACTERS} different characters; ${SECRET_ADVICE}`;
  }
  const bits = estimatedBits(characters.length, counts.values());
  if (bits < MIN_ESTIMATED_BITS) {
    return (
      `too predictable: about ${Math.floor(bits)} bits of entropy estimated from its characters, ` +
      `expected at least ${MIN_ESTIMATED_BITS}; ${SECRET_ADVICE}`
    );
  }
  return undefined;
}

/**
 * Throws a ConfigError (exit 78) naming where the secret came from, e.g.
 * "FARMLINK_HUB_SECRET (environment)", when the secret is too weak.
 */
export function assertStrongSecret(secret: string, source: string): void {
  const weakness = secretWeakness(secret);
  if (weakness) throw new ConfigError([`${source}: weak secret: ${weakness}`]);
}

function estimatedBits(length: number, counts: Iterable<number>): number {
  let perCharacter = 0;
  for (const count of counts) {
    const p = count / length;
    perCharacter -= p * Math.log2(p);
  }
  return perCharacter * length;
}
