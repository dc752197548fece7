import { FarmlinkError } from '../../lib/errors.js';
import type { AgentMessage, HubLimits, HubMessage } from '../../protocol/messages.js';
import { HubBatchSchema, HubMessageSchema, describeIssues } from '../../protocol/messages.js';

/** What a frame carried: hub messages (one, or a batch's), or why it was not that (the link reports it and carries on). */
export type Decoded =
  | { ok: true; messages: HubMessage[] }
  | { ok: false; problem: 'binary' }
  | { ok: false; problem: 'not_json' }
  | { ok: false; problem: 'unknown_message'; type: unknown; detail: string };

/**
 * How protocol messages become frames and back. Legacy frames carry one message; enhanced frames
 * (after `registered` granted `batch.v1`) carry a batch, built by the link's batcher from
 * `encode`d messages. Decoding accepts both, so the state machine never sees frames.
 */
export interface HubCodec {
  encode(message: AgentMessage): string;
  decode(data: Buffer, isBinary: boolean): Decoded;
}

/** JSON text frames: one message, or `{"type":"batch","messages":[…]}`. */
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
    const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
    if (type === 'batch') {
      const batch = HubBatchSchema.safeParse(json);
      if (batch.success) return { ok: true, messages: batch.data.messages };
      return { ok: false, problem: 'unknown_message', type, detail: describeIssues(batch.error) };
    }
    const parsed = HubMessageSchema.safeParse(json);
    if (parsed.success) return { ok: true, messages: [parsed.data] };
    return { ok: false, problem: 'unknown_message', type, detail: describeIssues(parsed.error) };
  },
};

/** Encodes a message, refusing (MESSAGE_TOO_LARGE) one the hub said it would not accept. */
export function encodeWithin(
  codec: HubCodec,
  message: AgentMessage,
  limits: HubLimits | undefined,
  overhead = 0,
): { text: string; bytes: number } {
  const text = codec.encode(message);
  const bytes = Buffer.byteLength(text);
  const limit = limits?.max_payload_bytes;
  if (limit !== undefined && bytes + overhead > limit) {
    throw new FarmlinkError(
      'MESSAGE_TOO_LARGE',
      `${message.type} is ${bytes + overhead} bytes; the hub accepts at most ${limit}`,
    );
  }
  return { text, bytes };
}
