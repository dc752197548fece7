import type { Priority } from '../../protocol/messages.js';
import type { OutboxEntry } from './outbox-store.js';

/**
 * How one outbox message is laid out in the store: a fixed 20-byte header (what the in-memory index
 * needs: priority, times) ahead of the JSON body, so rebuilding the index at open reads the header
 * and never parses a body.
 *
 *   byte 0  format version (1)      byte 1  type (0 event, 1 result)
 *   byte 2  priority (0 high, 1 normal, 2 low)   byte 3  unused
 *   bytes 4–11  acceptedAt (float64 LE, epoch ms)
 *   bytes 12–19 expiresAt (float64 LE, epoch ms; -1: never)
 *   bytes 20–   body as UTF-8 JSON
 */
export const RECORD_HEADER_BYTES = 20;
const FORMAT = 1;
const PRIORITY_CODES: readonly Priority[] = ['high', 'normal', 'low'];
const TYPES = ['event', 'result'] as const;

export interface RecordHeader {
  type: OutboxEntry['type'];
  priority: Priority;
  acceptedAt: number;
  expiresAt: number | null;
}

export function encodeRecord(header: RecordHeader, body: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + json.length);
  out.writeUInt8(FORMAT, 0);
  out.writeUInt8(TYPES.indexOf(header.type), 1);
  out.writeUInt8(PRIORITY_CODES.indexOf(header.priority), 2);
  out.writeUInt8(0, 3);
  out.writeDoubleLE(header.acceptedAt, 4);
  out.writeDoubleLE(header.expiresAt ?? -1, 12);
  json.copy(out, RECORD_HEADER_BYTES);
  return out;
}

/** The header alone; undefined for a record this build cannot read (another format, truncated). */
export function decodeHeader(record: Uint8Array): RecordHeader | undefined {
  if (record.length < RECORD_HEADER_BYTES) return undefined;
  const buf = asBuffer(record);
  if (buf.readUInt8(0) !== FORMAT) return undefined;
  const type = TYPES[buf.readUInt8(1)];
  const priority = PRIORITY_CODES[buf.readUInt8(2)];
  if (type === undefined || priority === undefined) return undefined;
  const expiresAt = buf.readDoubleLE(12);
  return { type, priority, acceptedAt: buf.readDoubleLE(4), expiresAt: expiresAt < 0 ? null : expiresAt };
}

/** The whole message; undefined when unreadable (see decodeHeader) or the body is not a JSON object. */
export function decodeRecord(seq: number, record: Uint8Array): OutboxEntry | undefined {
  const header = decodeHeader(record);
  if (!header) return undefined;
  const buf = asBuffer(record);
  let body: unknown;
  try {
    body = JSON.parse(buf.toString('utf8', RECORD_HEADER_BYTES));
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  return { seq, ...header, body: body as Record<string, unknown>, bytes: record.length };
}

/** lmdb hands out Buffers already; wrapping one again costs more than reading its header (open reads 100,000). */
function asBuffer(record: Uint8Array): Buffer {
  return Buffer.isBuffer(record) ? record : Buffer.from(record.buffer, record.byteOffset, record.byteLength);
}
