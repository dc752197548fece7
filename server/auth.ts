import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { FarmlinkError } from '../lib/errors.js';
import { AgentIdSchema } from '../protocol/messages.js';
import { ClientNameSchema } from '../protocol/tunnel.js';
import { MIN_SECRET_LENGTH } from './secret-strength.js';

/** agent: a farm PC (the agent endpoint, the tunnel's farm end); admin: the admin API; client: a tunnel's remote end. */
export type TokenRole = 'agent' | 'admin' | 'client';

/** A client token's `agents` claim: the farm PCs it may open tunnel sessions to, or every one. */
export type ClientAgents = readonly string[] | '*';

export interface TokenClaims {
  role: TokenRole;
  /** The agent id for agent tokens; "admin" for admin tokens; the client's name for client tokens. */
  subject: string;
  expiresAt: number | null;
  /** Client tokens only: the farm PCs this client may reach. */
  agents?: ClientAgents;
}

/** True when a client token's `agents` claim lets it reach `agentId`. */
export function mayReach(claims: TokenClaims, agentId: string): boolean {
  if (claims.role !== 'client' || claims.agents === undefined) return false;
  return claims.agents === '*' || claims.agents.includes(agentId);
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
  /** Client tokens: the client's name (its subject). */
  clientName?: string;
  /** Client tokens: agent ids, or ['*'] for every farm PC. */
  agents?: readonly string[];
  /** jose duration ("12h", "365d") or undefined for a token that does not expire. */
  expiresIn?: string | undefined;
}

/**
 * A JWT signed with the hub secret (HS256). Agent tokens carry the agent id as subject; client
 * tokens the client's name, and the farm PCs it may reach in `agents`.
 */
export async function mintToken(secret: string, options: MintOptions): Promise<string> {
  const payload: Record<string, unknown> = { role: options.role };
  let subject: string | undefined;
  if (options.role === 'agent') {
    subject = options.agentId;
    if (!subject) throw new FarmlinkError('AGENT_ID_REQUIRED', 'An agent token needs an agent id');
  } else if (options.role === 'client') {
    subject = options.clientName;
    if (!subject || !ClientNameSchema.safeParse(subject).success)
      throw new FarmlinkError('CLIENT_NAME_REQUIRED', 'A client token needs a valid client name');
    const problem = agentsProblem(options.agents);
    if (problem) throw new FarmlinkError('BAD_AGENTS', `A client token's agents: ${problem}`);
    payload.agents = [...(options.agents ?? [])];
  } else {
    subject = 'admin';
  }
  const jwt = new SignJWT(payload)
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
      if ((role !== 'agent' && role !== 'admin' && role !== 'client') || typeof payload.sub !== 'string') {
        throw new FarmlinkError('UNAUTHORIZED', 'token has no FarmLink role or subject');
      }
      const expiresAt = payload.exp === undefined ? null : payload.exp * 1000;
      if (role !== 'client') return { role, subject: payload.sub, expiresAt };
      // A client token that names no farm PCs, or names them wrongly, reaches none: refused outright
      // rather than accepted as a token that can do nothing, so the mistake shows at once.
      const agents = payload.agents;
      const list = Array.isArray(agents) ? (agents as unknown[]) : undefined;
      const problem = list?.every((a) => typeof a === 'string') === true ? agentsProblem(list) : 'missing';
      if (problem) throw new FarmlinkError('UNAUTHORIZED', `client token's agents claim is invalid: ${problem}`);
      if (!ClientNameSchema.safeParse(payload.sub).success)
        throw new FarmlinkError('UNAUTHORIZED', 'client token has an invalid client name as subject');
      const ids = list as string[];
      return { role, subject: payload.sub, expiresAt, agents: ids.includes('*') ? '*' : ids };
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

/**
 * What is wrong with a client token's agent list, or undefined: at least one agent id, each valid,
 * or exactly ["*"] (every farm PC).
 */
export function agentsProblem(agents: readonly string[] | undefined): string | undefined {
  if (agents === undefined || agents.length === 0) return 'expected at least one agent id, or "*" for all';
  if (agents.includes('*')) return agents.length === 1 ? undefined : '"*" (all farm PCs) cannot be combined with ids';
  const bad = agents.find((id) => !AgentIdSchema.safeParse(id).success);
  if (bad !== undefined)
    return `"${bad.slice(0, 64)}" is not a valid agent id (1–128 letters, digits, "_", ".", ":" or "-")`;
  return undefined;
}

/** The token from an "Authorization: Bearer …" header, if there is one. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
