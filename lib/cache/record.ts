import v8 from 'node:v8';

/**
 * One cached value with its lifetimes, as every tier keeps it. Times are wall-clock epoch
 * milliseconds because records outlive the process (disk) and cross processes (Redis).
 */
export interface CacheRecord<V = unknown> {
  value: V;
  createdAt: number;
  /** Until then the value is fresh. */
  freshUntil: number;
  /** After freshUntil and until then (the grace period) it is stale: servable while a fresh one is fetched. */
  staleUntil: number;
  /** Tags (namespaces included) and each tag's version when the record was written. */
  tags: string[];
  tagVersions: number[];
}

/** First byte of every encoded record; a record of another format is a miss, never a misread value. */
export const RECORD_FORMAT = 1;

/**
 * The serializer: V8's structured serialization (`node:v8`, the algorithm of structuredClone)
 * behind a one-byte format tag. What it guarantees (record.test.ts checks each point):
 *
 * - Back equal and of the same type: primitives, including NaN, -0, ±Infinity, bigint of any size
 *   and strings with lone surrogates; undefined, also inside objects and arrays (holes stay holes);
 *   Date (invalid ones too); Buffer as Buffer, Uint8Array as Uint8Array, the other typed arrays,
 *   DataView and ArrayBuffer; Map (keys of any type, in order) and Set; RegExp; boxed primitives;
 *   Error and its built-in subclasses (message and kind); plain objects and arrays, nested, with
 *   shared references and cycles kept as such.
 * - Refused: functions, symbols, WeakMap/WeakSet, promises and other values that cannot be cloned
 *   make encodeRecord throw ("… could not be cloned"), anywhere in the value; a cache with a disk or
 *   Redis tier rejects such a set() with CACHE_UNSERIALIZABLE and stores nothing (memory alone keeps
 *   values as they are, never encoded).
 * - Not kept, silently, as with structuredClone: the prototype of class instances (they come back
 *   as plain objects of their own enumerable fields, so `#private` state is lost, and a URL comes
 *   back as {}), properties keyed by symbols, non-enumerable properties, and an Error's own extra
 *   properties (`code`) and custom name. Getters are stored as their current value.
 * - Decoded Buffers and typed arrays are views into the bytes given to decodeRecord, not copies:
 *   those bytes must not be reused afterwards (the disk and Redis tiers read fresh ones each time).
 * - The format is V8's: a record written by a newer Node.js may not decode on an older one; it is
 *   then a miss (decodeRecord answers undefined), never a misread value.
 */
export function encodeRecord(record: CacheRecord): Buffer {
  const body = v8.serialize(record);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = RECORD_FORMAT;
  body.copy(out, 1);
  return out;
}

/** The record, or undefined for bytes of another format or corrupted bytes. */
export function decodeRecord<V = unknown>(bytes: Uint8Array): CacheRecord<V> | undefined {
  if (bytes.length < 2 || bytes[0] !== RECORD_FORMAT) return undefined;
  try {
    const record: unknown = v8.deserialize(bytes.subarray(1));
    const valid =
      typeof record === 'object' && record !== null && 'freshUntil' in record && typeof record.freshUntil === 'number';
    return valid ? (record as CacheRecord<V>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Rough bytes a value holds in memory, for the memory tier's byte bound when a value never went
 * through the serializer. Walks at most `budget` nodes so a huge value cannot stall a set().
 */
export function estimateSize(value: unknown, budget = 2000): number {
  let size = 0;
  let nodes = 0;
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (nodes++ > budget) return;
    switch (typeof v) {
      case 'string':
        size += 16 + v.length * 2;
        return;
      case 'number':
      case 'boolean':
      case 'undefined':
        size += 8;
        return;
      case 'bigint':
        size += 16;
        return;
      case 'object': {
        if (v === null) {
          size += 8;
          return;
        }
        if (seen.has(v)) return;
        seen.add(v);
        if (ArrayBuffer.isView(v)) {
          size += 64 + v.byteLength;
          return;
        }
        if (v instanceof Date) {
          size += 48;
          return;
        }
        size += 48;
        if (v instanceof Map) {
          for (const [k, item] of v) {
            walk(k);
            walk(item);
          }
        } else if (v instanceof Set || Array.isArray(v)) {
          for (const item of v as Iterable<unknown>) walk(item);
        } else {
          for (const key of Object.keys(v)) {
            size += 16 + key.length * 2;
            walk((v as Record<string, unknown>)[key]);
          }
        }
        return;
      }
      default:
        size += 16;
    }
  };
  walk(value);
  return size;
}
