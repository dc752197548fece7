/** Wire protocol version spoken by this build. Bumped only for incompatible changes. */
export const PROTOCOL_VERSION = 1;

/** Path of the agent endpoint on every hub; http(s) base URLs in the config are mapped onto it. */
export const AGENT_WS_PATH = '/api/v1/pc/ws';

/**
 * The legacy-only agent endpoint: a hub never offers enhanced mode here, whatever hello asks. For
 * agents (or proxies) that must stay on one JSON message per frame; `AGENT_WS_PATH` negotiates.
 */
export const AGENT_LEGACY_WS_PATH = '/api/v1/pc/legacy/ws';

/**
 * Capabilities are negotiated in hello/registered instead of a protocol number that refuses every
 * mismatch: the agent offers what it can, the hub answers with the subset it grants for this
 * connection, and a capability an old peer does not know is simply not granted.
 */
export const Capability = {
  /**
   * Enhanced mode: after `registered`, every frame both ways is a `batch`; outbox messages carry
   * `seq`; the hub acknowledges them cumulatively (`ack`) once they are durably in its event sink,
   * drops duplicates, and says in `registered.acked_seq` where a reconnecting agent resumes.
   */
  BATCH_V1: 'batch.v1',
} as const;
export type CapabilityName = (typeof Capability)[keyof typeof Capability];
