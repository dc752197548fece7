import { FarmlinkError } from '../../lib/errors.js';
import type { AgentMessage, HubLimits, HubMessage } from '../../protocol/messages.js';
import { HubMessageSchema, describeIssues } from '../../protocol/messages.js';

/** What a frame carried: a hub message, or why it was not one (the link reports it and carries on). */
export type Decoded =
  | { ok: true; message: HubMessage }
  | { ok: false; problem: 'binary' }
  | { ok: false; problem: 'not_json' }
  | { ok: false; problem: 'unknown_message'; type: unknown; detail: string };

/**
 * How protocol messages become frames and back. The link is given one, so a mode with another framing
 * (batches with sequence numbers and acks) replaces this piece alone; the state machine never sees frames.
 */
export interface HubCodec {
  encode(message: AgentMessage): string;
  decode(data: Buffer, isBinary: boolean): Decoded;
}

/** The protocol as it is today (docs/protocol.md): one JSON text frame per message. */
export const jsonCodec: HubCodec = {
  encode: (message) => JSON.stringify(message),
  decode(data, isBinary) {
    if (isBinary) return { ok: false, problem: 'binary' };
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      return { ok: false, problem: 'not_json' };
    }
    const parsed = HubMessageSchema.safeParse(json);
    if (parsed.success) return { ok: true, message: parsed.data };
    const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
    return { ok: false, problem: 'unknown_message', type, detail: describeIssues(parsed.error) };
  },
};

/** Encodes a message, refusing (MESSAGE_TOO_LARGE) one the hub said it would not accept. */
export function encodeWithin(
  codec: HubCodec,
  message: AgentMessage,
  limits: HubLimits | undefined,
): { text: string; bytes: number } {
  const text = codec.encode(message);
  const bytes = Buffer.byteLength(text);
  const limit = limits?.max_payload_bytes;
  if (limit !== undefined && bytes > limit) {
    throw new FarmlinkError('MESSAGE_TOO_LARGE', `${message.type} is ${bytes} bytes; the hub accepts at most ${limit}`);
  }
  return { text, bytes };
}
