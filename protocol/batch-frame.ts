/**
 * Enhanced mode's frame on the wire, built from messages already encoded as JSON (so a message is
 * serialised once, and a broadcast once for every agent). Both sides build it here.
 */
export function batchFrame(encoded: readonly string[]): string {
  return `{"type":"batch","messages":[${encoded.join(',')}]}`;
}

/** The bytes a batch frame adds around its messages: `{"type":"batch","messages":[` … `]}`. */
export const BATCH_OVERHEAD_BYTES = Buffer.byteLength(batchFrame([]));
