import type { TypedEmitter } from '../events.js';
import type { TunnelPathKind } from '../../protocol/tunnel.js';

export interface TunnelPathEvents extends Record<string, unknown> {
  /**
   * One binary frame from the peer (protocol/tunnel-frame.ts), for this path's session. The buffer is handed
   * over for good: the session keeps views into it (stream bytes waiting for a slow reader), so a path never
   * reuses a buffer it emitted.
   */
  frame: Buffer;
  /** The path's send buffer fell below its low-water mark: `send` accepts data again. */
  drain: undefined;
  /** The path is gone (its socket closed, its data channel closed); no frame follows. */
  down: { reason: string };
}

/**
 * One way to carry one session's frames: the relay (the tunnel socket to the broker, frames tagged
 * with the session's route) or a direct data channel. The session above it numbers, acknowledges and
 * retransmits, so a path only moves bytes: it may lose what was in flight when it went down.
 */
export interface TunnelPath {
  readonly kind: TunnelPathKind;
  /** The route the path's frames carry (the broker's number for the session; 0 on a direct path). */
  readonly route: number;
  readonly events: TypedEmitter<TunnelPathEvents>;
  /** False once `down` was emitted. */
  readonly isUp: boolean;
  /**
   * Sends one encoded frame whose route field already equals `route`. Returns false when the path's
   * buffer is above its high-water mark: the session sends no more DATA on it until `drain` (the
   * small control frames may still go).
   *
   * `onReleased`, when given, is called exactly once when the path no longer holds `frame` or a view of
   * it: written to the transport (or copied into it), or dropped. The session then reuses the buffer
   * (frame-pool.ts). A path that keeps frames (the in-memory test path) never calls it; that only costs
   * the reuse.
   */
  send(frame: Buffer, onReleased?: () => void): boolean;
  /** Bytes queued on the path and not yet written to the network, for diagnostics. */
  readonly buffered: number;
}
