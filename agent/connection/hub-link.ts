import type { TypedEmitter } from '../../lib/events.js';
import type { AgentMessage, BatchSettings, HubLimits, HubMessage } from '../../protocol/messages.js';
import type { Decoded } from './hub-codec.js';

/** What a link reports. The state machine deals in these and in typed messages, never in frames. */
export interface HubLinkEvents extends Record<string, unknown> {
  /** The hub accepted the upgrade: messages can flow. */
  open: undefined;
  /**
   * A hub message. `bytes` is its share of the frame on the wire, for the stats: a batch frame's
   * size is given with its first message, the others carry 0.
   */
  message: { message: HubMessage; bytes: number };
  /** A frame went out (one message in legacy mode, a batch in enhanced mode), or came in. */
  frame: { direction: 'out' | 'in'; messages: number; bytes: number };
  /** A frame that did not decode to any message this agent knows; the link stays up. */
  undecodable: { bytes: number; decoded: Exclude<Decoded, { ok: true }> };
  /** The answer to a `ping()`. */
  pong: undefined;
  /**
   * Legacy: the hub has read frames that were on the way, and `frameWaitMs()`, Infinity while too
   * many were, is finite again.
   */
  caughtUp: undefined;
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
  /**
   * Encodes and sends — at once in legacy mode; in enhanced mode into the current batch (`urgent`:
   * flushed on the next turn of the event loop). Frames are reported as `frame` events. Throws
   * MESSAGE_TOO_LARGE for a message over the hub's limit.
   */
  send(message: AgentMessage, options?: { urgent?: boolean }): void;
  /** From now on frames carry batches (enhanced mode, after `registered` granted it). */
  useBatches(settings: BatchSettings): void;
  /** The batch settings in use; undefined in legacy mode. */
  readonly batching: BatchSettings | undefined;
  /** Messages queued in the current batch, not on the wire yet. */
  readonly pending: number;
  /**
   * Milliseconds until the hub's rate limit allows another frame (0: now); 0 before `registered`.
   * Infinity in legacy mode while as many frames are unread by the hub as its burst allows: a
   * `caughtUp` event follows once it has read some.
   */
  frameWaitMs(): number;
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
