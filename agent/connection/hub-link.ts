import type { TypedEmitter } from '../../lib/events.js';
import type { AgentMessage, HubLimits, HubMessage } from '../../protocol/messages.js';
import type { Decoded } from './hub-codec.js';

/** What a link reports. The state machine deals in these and in typed messages, never in frames. */
export interface HubLinkEvents extends Record<string, unknown> {
  /** The hub accepted the upgrade: messages can flow. */
  open: undefined;
  /** A frame that decoded to a hub message; `bytes` is its size on the wire (for the stats). */
  message: { message: HubMessage; bytes: number };
  /** A frame that did not decode to any message this agent knows; the link stays up. */
  undecodable: { bytes: number; decoded: Exclude<Decoded, { ok: true }> };
  /** The answer to a `ping()`. */
  pong: undefined;
  /** A socket-level error; a `close` follows, and the error says why. */
  error: Error;
  /** The server answered the upgrade with an HTTP status; no `close` follows. */
  rejected: { status: number };
  /** The link is gone: the close code and reason (1006 and "" when it ended without a close frame). */
  close: { code: number; reason: string };
}

/**
 * One connection to one hub: the socket, its framing (a codec) and the hub's limits. Dial options,
 * headers and the close handshake live behind it, so a fake one can drive the state machine in tests.
 */
export interface HubLink {
  readonly events: TypedEmitter<HubLinkEvents>;
  /** True while messages can be sent. */
  readonly isOpen: boolean;
  /** What the hub said it accepts (from `registered`); `send` refuses anything larger. */
  limits: HubLimits | undefined;
  /** Encodes and sends; returns the bytes that went out. Throws MESSAGE_TOO_LARGE past the hub's limit. */
  send(message: AgentMessage): number;
  /** A protocol-level ping; its answer is a `pong` event. */
  ping(): void;
  /**
   * Closes with `code`, waiting up to `timeoutMs` for the hub's close frame before cutting the
   * socket; resolves either way.
   */
  close(code: number, reason: string, timeoutMs: number): Promise<void>;
  /** Cuts the link at once, without a close handshake. */
  terminate(): void;
}

/** One dial: where to, and who is calling. */
export interface HubDial {
  url: string;
  /** The agent's version, said in the user agent. */
  version: string;
  /** The agent token, sent at the upgrade. */
  token?: string;
}

/**
 * Opens a link (asynchronously: `open`, or `error`/`rejected`/`close`, follows). Throws when the dial
 * cannot even start (a URL or a header value the socket refuses).
 */
export type HubLinkFactory = (dial: HubDial) => HubLink;
