import { z } from 'zod';
import { ResultEnvelopeSchema } from './agent-host.js';

/**
 * The headless panel's WebSocket (`/api/panel` on the agent's panel server): the AgentHost API
 * as JSON text frames. The browser authenticates first with the token from the panel URL's
 * fragment (never sent in a URL to the server, so it stays out of logs).
 */
export const PANEL_WS_PATH = '/api/panel';

export const PanelClientMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('auth'), token: z.string().min(1).max(512) }),
  z.object({
    kind: z.literal('call'),
    id: z.number().int().nonnegative(),
    method: z.string().max(64),
    input: z.unknown(),
  }),
]);
export type PanelClientMessage = z.infer<typeof PanelClientMessageSchema>;

export const PanelServerMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ready') }),
  z.object({ kind: z.literal('result'), id: z.number().int().nonnegative(), result: ResultEnvelopeSchema }),
  z.object({ kind: z.literal('event'), event: z.string(), payload: z.unknown() }),
]);
export type PanelServerMessage = z.infer<typeof PanelServerMessageSchema>;

/** Close codes of the panel socket (same numbering idea as the hub's). */
export const PanelCloseCode = {
  /** A wrong or missing token. */
  UNAUTHORIZED: 4401,
  /** A page from another origin tried to connect. */
  FORBIDDEN_ORIGIN: 4403,
  /** No auth message in time. */
  AUTH_TIMEOUT: 4408,
  /** A frame that is not a valid panel message. */
  INVALID_MESSAGE: 4422,
  /** The agent is shutting down. */
  GOING_AWAY: 1001,
} as const;
