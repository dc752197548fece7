import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { FarmlinkError } from '../lib/errors.js';
import { MIN_SECRET_LENGTH } from './secret-strength.js';

export type TokenRole = 'agent' | 'admin';

export interface TokenClaims {
  role: TokenRole;
  /** The agent id for agent tokens; "admin" for admin tokens. */
  subject: string;
  expiresAt: number | null;
}

const ISSUER = 'farmlink';
const ALG = 'HS256';
/**
 * The signing key. Only the length is a hard floor here (HMAC with a few bytes of key is no
 * signature); whether a configured secret is random enough is judged where it is configured
 * (secret-strength.ts), so that tests and tools can still sign with a deliberately poor one.
 */
function keyOf(secret: string): Uint8Array {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new FarmlinkError(
      'SECRET_TOO_SHORT',
      `The hub secret must be at least ${MIN_SECRET_LENGTH} characters (got ${secret.length})`,
    );
  }
  return new TextEncoder().encode(secret);
}

export interface MintOptions {
  role: TokenRole;
  agentId?: string;
  /** jose duration ("12h", "365d") or undefined for a token that does not expire. */
  expiresIn?: string | undefined;
}

/** A JWT signed with the hub secret (HS256). Agent tokens carry the agent id as subject. */
export async function mintToken(secret: string, options: MintOptions): Promise<string> {
  const subject = options.role === 'agent' ? options.agentId : 'admin';
  if (!subject) throw new FarmlinkError('AGENT_ID_REQUIRED', 'An agent token needs an agent id');
  const jwt = new SignJWT({ role: options.role })
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject(subject)
    .setIssuedAt();
  if (options.expiresIn) jwt.setExpirationTime(options.expiresIn);
  return jwt.sign(keyOf(secret));
}

/** Verifies tokens against the hub secret; throws FarmlinkError UNAUTHORIZED with the reason. */
export class TokenVerifier {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = keyOf(secret);
  }

  async verify(token: string): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: [ALG], issuer: ISSUER });
      const role = payload.role;
      if ((role !== 'agent' && role !== 'admin') || typeof payload.sub !== 'string') {
        throw new FarmlinkError('UNAUTHORIZED', 'token has no FarmLink role or subject');
      }
      return { role, subject: payload.sub, expiresAt: payload.exp === undefined ? null : payload.exp * 1000 };
    } catch (error) {
      if (error instanceof FarmlinkError) throw error;
      if (error instanceof joseErrors.JWTExpired)
        throw new FarmlinkError('UNAUTHORIZED', 'token expired', { cause: error });
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
        throw new FarmlinkError('UNAUTHORIZED', "token signature does not match this hub's secret", { cause: error });
      }
      throw new FarmlinkError('UNAUTHORIZED', `token rejected: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** The token from an "Authorization: Bearer …" header, if there is one. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
