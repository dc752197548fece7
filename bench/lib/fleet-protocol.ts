import type { ConnectionTiming } from '../../agent/connection/connection.js';

/** Messages between the bench driver and an agent worker process (bench/agent-worker.ts). */

export interface AgentSpec {
  id: string;
  token: string;
  localAddress: string;
}

export type ToWorker =
  | { cmd: 'start'; servers: string[]; timing: ConnectionTiming; agents: AgentSpec[]; rampMs: number }
  /** Start collecting heartbeat round trips and event-loop delay. */
  | { cmd: 'window-open' }
  | { cmd: 'window-close' }
  | { cmd: 'query'; since: number; server: number }
  | { cmd: 'stop' };

export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

export type FromWorker =
  | { ev: 'ready' }
  /** Sent every STATUS_INTERVAL_MS: how many agents are registered on each server index. */
  | { ev: 'status'; connectedOn: number[]; phases: Record<string, number> }
  | { ev: 'window'; rtt: Float64Array; rttAt: Float64Array; loopDelay: LoopDelay }
  | { ev: 'query'; timeline: Timeline }
  | { ev: 'stopped' }
  | { ev: 'fatal'; message: string };

/**
 * Per-agent times (epoch ms, NaN when it did not happen) of the first of each event at or after
 * the query's `since`, in the order of the worker's agents.
 */
export interface Timeline {
  startedAt: Float64Array;
  /** Registered on the queried server. */
  registeredAt: Float64Array;
  /** Left the 'connected' phase (noticed the loss, or the drain notice). */
  leftAt: Float64Array;
  /** A dial was refused (ECONNREFUSED). */
  refusedAt: Float64Array;
  /** Reason codes of every transition since `since`, counted; socket errors such as EMFILE under their errno. */
  reasons: Record<string, number>;
}

export const STATUS_INTERVAL_MS = 100;
