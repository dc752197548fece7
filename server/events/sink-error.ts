import { FarmlinkError } from '../../lib/errors.js';

/**
 * Why an event sink refused a call, as a stable code:
 * - SINK_UNAVAILABLE: the sink could not be reached (Redis down or not connected yet); nothing of
 *   the call was kept.
 * - SINK_TIMEOUT: no answer in time; the call may or may not have been kept. Sending the same
 *   events again is safe for events with a seq (the sink drops duplicates).
 * - SINK_WRITE_FAILED: the sink answered with an error (out of memory, a key of the wrong type, a
 *   disk that is full or read-only); nothing of the call was kept.
 * - SINK_CLOSED: the hub is shutting down.
 */
export type SinkErrorCode = 'SINK_UNAVAILABLE' | 'SINK_TIMEOUT' | 'SINK_WRITE_FAILED' | 'SINK_CLOSED';

export class SinkError extends FarmlinkError {
  declare readonly code: SinkErrorCode;

  constructor(code: SinkErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SinkError';
  }
}

/** The message of whatever was thrown, for a SinkError's own message. */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
