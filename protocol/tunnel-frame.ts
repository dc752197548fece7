/**
 * The tunnel's binary frames (docs/tunnel.md, "Frames"): the same bytes on the relay (WebSocket
 * binary frames through the broker) and on a direct data channel, so a session moves between paths
 * without re-encoding anything.
 *
 *   offset 0  u8   kind
 *          1  u32  route      the session on this broker (0 on a direct path: the channel is the session's own)
 *          5  u64  seq        session sequence number of a reliable frame; for ACK and RESUME the next seq expected; else 0
 *         13  u32  stream     stream id (0 for session-level frames)
 *         17  …    body       by kind, below
 *
 * Big-endian. seq is a JavaScript safe integer written as two u32 (it never wraps: 2^53 frames).
 *
 * Reliable kinds (OPEN, OPEN_OK, DATA, FIN, RST) carry a seq: the receiver delivers each exactly once
 * and in order whatever path it came on, and the sender keeps it until it is acknowledged, to send it
 * again on another path or after a reconnect. The others are idempotent and carry no seq.
 */

export const FrameKind = {
  /**
   * A new stream (a connection accepted on the client's listener). Client → farm. Body: u32 the client's
   * receive window for the stream.
   */
  OPEN: 1,
  /** The farm reached the service: data may flow. Farm → client. Body: u32 the farm's receive window. */
  OPEN_OK: 2,
  /** Stream bytes. */
  DATA: 3,
  /** The sender will write no more on this stream (TCP half-close). */
  FIN: 4,
  /** The stream is over, abnormally: body u16 code + UTF-8 reason. */
  RST: 5,
  /** Flow control: body f64, the bytes of this stream the receiver has consumed in all (so repeats are harmless). */
  CREDIT: 6,
  /** Every reliable frame below `seq` arrived. */
  ACK: 7,
  /** Sent when a path is attached: "send me everything from `seq` on" (the sender retransmits). */
  RESUME: 8,
  /** Health ping: body u32 id + f64 the sender's monotonic ms; the answer echoes the body. */
  PING: 9,
  PONG: 10,
} as const;
export type FrameKindName = keyof typeof FrameKind;
export type FrameKindValue = (typeof FrameKind)[FrameKindName];

const RELIABLE: ReadonlySet<number> = new Set([
  FrameKind.OPEN,
  FrameKind.OPEN_OK,
  FrameKind.DATA,
  FrameKind.FIN,
  FrameKind.RST,
]);

/** True for the kinds that carry a seq and are delivered exactly once, in order. */
export function isReliableKind(kind: number): boolean {
  return RELIABLE.has(kind);
}

/** Why a stream was reset (RST's code), stable for programs; the reason beside it is for people. */
export const StreamResetCode = {
  /** The farm could not reach the service (refused, unreachable, timed out). */
  CONNECT_FAILED: 1,
  /** A local socket failed on one side (ECONNRESET, EPIPE …). */
  ABORTED: 2,
  /** The session ended (closed, replaced, resume window passed): the reason names which. */
  SESSION_ENDED: 3,
  /** More streams than the session allows. */
  TOO_MANY_STREAMS: 4,
  /** A frame broke the protocol on this stream (data past the credit, an unknown stream). */
  PROTOCOL_ERROR: 5,
} as const;
export type StreamResetCodeValue = (typeof StreamResetCode)[keyof typeof StreamResetCode];

export const FRAME_HEADER_BYTES = 17;
/**
 * Largest DATA body a sender puts in one frame; the broker announces its own (larger) frame limit. Big
 * enough that a sender whose writes queued up (the peer's window was full) sends them as few frames,
 * small enough that header and body stay under a WebRTC data channel's 256 KiB message limit.
 */
export const MAX_DATA_BYTES = 192 * 1024;

export interface TunnelFrame {
  kind: number;
  route: number;
  seq: number;
  stream: number;
  body: Buffer;
}

const TWO_32 = 0x1_0000_0000;

/** A frame body, whole or in pieces (a stream's queued writes, gathered into one frame). */
export type FrameBody = Uint8Array | readonly Uint8Array[];

function bodyLength(body: FrameBody | undefined): number {
  if (body === undefined) return 0;
  if (body instanceof Uint8Array) return body.byteLength;
  let length = 0;
  for (const piece of body) length += piece.byteLength;
  return length;
}

/** A frame's bytes: header, then `body` copied after it. */
export function encodeFrame(kind: number, route: number, seq: number, stream: number, body?: FrameBody): Buffer {
  return encodeFrameInto(Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyLength(body)), kind, route, seq, stream, body);
}

/**
 * The same, written into `target` (a reused buffer at least header + body long); returns the view of
 * `target` that is the frame.
 */
export function encodeFrameInto(
  target: Buffer,
  kind: number,
  route: number,
  seq: number,
  stream: number,
  body?: FrameBody,
): Buffer {
  const length = bodyLength(body);
  const buf = target.length === FRAME_HEADER_BYTES + length ? target : target.subarray(0, FRAME_HEADER_BYTES + length);
  buf.writeUInt8(kind, 0);
  buf.writeUInt32BE(route, 1);
  buf.writeUInt32BE(Math.floor(seq / TWO_32), 5);
  buf.writeUInt32BE(seq % TWO_32, 9);
  buf.writeUInt32BE(stream, 13);
  if (body instanceof Uint8Array) {
    if (length > 0) buf.set(body, FRAME_HEADER_BYTES);
  } else if (body) {
    let at = FRAME_HEADER_BYTES;
    for (const piece of body) {
      buf.set(piece, at);
      at += piece.byteLength;
    }
  }
  return buf;
}

/** The same frame for another route (a resumed session on another broker), without re-encoding the rest. */
export function withRoute(frame: Buffer, route: number): Buffer {
  const copy = Buffer.from(frame);
  copy.writeUInt32BE(route, 1);
  return copy;
}

/** The route of a frame, or undefined when it is too short to have one; all the broker reads. */
export function peekRoute(buf: Buffer): number | undefined {
  return buf.length >= FRAME_HEADER_BYTES ? buf.readUInt32BE(1) : undefined;
}

/** Decodes a frame (the body is a view, not a copy), or says what is wrong with it. */
export function decodeFrame(buf: Buffer): { ok: true; frame: TunnelFrame } | { ok: false; error: string } {
  if (buf.length < FRAME_HEADER_BYTES)
    return { ok: false, error: `frame of ${buf.length} bytes, shorter than the ${FRAME_HEADER_BYTES}-byte header` };
  const kind = buf.readUInt8(0);
  if (kind < FrameKind.OPEN || kind > FrameKind.PONG) return { ok: false, error: `unknown frame kind ${kind}` };
  const seq = buf.readUInt32BE(5) * TWO_32 + buf.readUInt32BE(9);
  if (!Number.isSafeInteger(seq)) return { ok: false, error: 'seq past 2^53' };
  return {
    ok: true,
    frame: {
      kind,
      route: buf.readUInt32BE(1),
      seq,
      stream: buf.readUInt32BE(13),
      body: buf.subarray(FRAME_HEADER_BYTES),
    },
  };
}

/** RST's body: u16 code, then the reason in UTF-8 (at most 256 bytes of it). */
export function resetBody(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 256);
  const body = Buffer.allocUnsafe(2 + text.length);
  body.writeUInt16BE(code, 0);
  text.copy(body, 2);
  return body;
}

export function readResetBody(body: Buffer): { code: number; reason: string } {
  if (body.length < 2) return { code: StreamResetCode.PROTOCOL_ERROR, reason: 'RST without a code' };
  return { code: body.readUInt16BE(0), reason: body.subarray(2).toString('utf8') };
}

/**
 * CREDIT's body: the receiver's total consumed bytes on the stream, then (optional, u32) its receive
 * window now: a receiver whose reader keeps up grows its window, and tells the sender here.
 */
export function creditBody(consumed: number, windowBytes?: number): Buffer {
  const body = Buffer.allocUnsafe(windowBytes === undefined ? 8 : 12);
  body.writeDoubleBE(consumed, 0);
  if (windowBytes !== undefined) body.writeUInt32BE(Math.min(windowBytes, 0xffff_ffff), 8);
  return body;
}

export function readCreditBody(body: Buffer): { consumed: number; windowBytes: number | undefined } | undefined {
  if (body.length < 8) return undefined;
  return { consumed: body.readDoubleBE(0), windowBytes: body.length >= 12 ? body.readUInt32BE(8) : undefined };
}

/** PING/PONG body: an id and the pinger's monotonic time, echoed as they came. */
export function pingBody(id: number, sentAtMs: number): Buffer {
  const body = Buffer.allocUnsafe(12);
  body.writeUInt32BE(id >>> 0, 0);
  body.writeDoubleBE(sentAtMs, 4);
  return body;
}

export function readPingBody(body: Buffer): { id: number; sentAtMs: number } | undefined {
  return body.length >= 12 ? { id: body.readUInt32BE(0), sentAtMs: body.readDoubleBE(4) } : undefined;
}
