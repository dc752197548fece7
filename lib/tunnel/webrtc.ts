import type { PeerConnection, RtcConfig } from 'node-datachannel';

/** What the direct path uses of node-datachannel: a way to make a peer connection. */
export interface WebRtc {
  PeerConnection: new (peerName: string, config: RtcConfig) => PeerConnection;
}

export type WebRtcLoad = { ok: true; webrtc: WebRtc } | { ok: false; reason: string };

let loading: Promise<WebRtcLoad> | undefined;

/**
 * Loads node-datachannel once. Its native binary comes from a per-platform package; where it is
 * missing or does not load (an installer built for another platform, an unusual libc), the answer
 * says why and the tunnel runs on the relay alone instead of failing to start.
 */
export function loadWebRtc(): Promise<WebRtcLoad> {
  loading ??= import('node-datachannel').then(
    (mod): WebRtcLoad => ({ ok: true, webrtc: mod.default }),
    (error: unknown): WebRtcLoad => ({
      ok: false,
      reason: `node-datachannel did not load (${error instanceof Error ? error.message : String(error)}): no direct path, relay only`,
    }),
  );
  return loading;
}
