/**
 * WebSocket close codes used between agent and hub. 1000–1015 are RFC 6455 / IANA codes;
 * 4000–4999 are ours, numbered after the nearest HTTP status so they read at a glance.
 * Every close the hub initiates carries one of these codes and a short reason (≤ 123 bytes) —
 * except 1009, which the WebSocket layer sends as soon as a frame header announces a payload over
 * the limit, before reading (let alone buffering) it; the limit itself is announced in
 * `registered.limits.max_payload_bytes`.
 */
export const CloseCode = {
  /** Graceful disconnect (the agent sent `disconnect` first). */
  NORMAL: 1000,
  /** The hub is shutting down or draining and refuses new connections; or the agent is stopping. */
  GOING_AWAY: 1001,
  /** A binary frame: the protocol is JSON text frames only. */
  UNSUPPORTED_DATA: 1003,
  /** A frame larger than the hub's max payload (sent by ws itself, without a reason: see above). */
  MESSAGE_TOO_BIG: 1009,
  /** The hub failed while handling a message. */
  INTERNAL_ERROR: 1011,
  /**
   * The hub is at its limit of authenticated connections (--max-connections), counted when the
   * token is verified: at the upgrade for a token in the Authorization header, at hello otherwise.
   */
  TRY_AGAIN_LATER: 1013,
  /** A text frame that is not valid JSON. */
  INVALID_JSON: 4400,
  /** No token, a token that does not verify, or an expired one. */
  UNAUTHORIZED: 4401,
  /** A valid token for another agent id, or a token of the wrong role. */
  FORBIDDEN: 4403,
  /** No `hello` within the hello timeout. */
  HELLO_TIMEOUT: 4408,
  /** Another connection registered with the same agent id; the older one is closed. */
  REPLACED: 4409,
  /** JSON that does not match the message schema, or a message out of order. */
  INVALID_MESSAGE: 4422,
  /** The agent speaks a protocol version the hub does not. */
  UNSUPPORTED_PROTOCOL: 4426,
  /**
   * The token the agent registered with expired while it was connected (the hub sends
   * `token_expired` first). Like 4401, a new token is needed.
   */
  TOKEN_EXPIRED: 4440,
  /** More messages than the per-connection rate limit allows. */
  RATE_LIMITED: 4429,
  /** The hub's send buffer for this connection grew past its bound: the peer is not reading. */
  SLOW_CONSUMER: 4508,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

const NAMES = new Map<number, CloseCodeName>(
  Object.entries(CloseCode).map(([name, code]) => [code, name as CloseCodeName]),
);

/** Name of a close code for logs ("REPLACED"), or "CODE_<n>" for codes we do not define. */
export function closeCodeName(code: number): string {
  return NAMES.get(code) ?? `CODE_${code}`;
}

/**
 * Close codes after which trying the same hub again cannot help until someone changes
 * configuration (token, agent id, version). The agent still retries — with backoff — but logs them as errors.
 */
export const CONFIGURATION_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.UNAUTHORIZED,
  CloseCode.FORBIDDEN,
  CloseCode.TOKEN_EXPIRED,
  CloseCode.UNSUPPORTED_PROTOCOL,
  CloseCode.INVALID_MESSAGE,
]);

/**
 * HTTP statuses with which the hub refuses a WebSocket upgrade before any WebSocket exists — the
 * cheapest answer, for requests that should not cost the hub a connection. The body is a sentence
 * saying why.
 */
export const UpgradeRefusal = {
  /** An upgrade to a path that is not the agent endpoint. */
  WRONG_PATH: 404,
  /**
   * This source address (IPv6: its /64) already holds --max-unauthenticated-per-address
   * connections without a valid token. Carries Retry-After.
   */
  UNAUTHENTICATED_PER_ADDRESS: 429,
  /** The hub already holds --max-unauthenticated connections without a valid token. Carries Retry-After. */
  UNAUTHENTICATED_TOTAL: 503,
} as const;
