import type { ConnectionTiming } from '../../agent/connection/connection.js';
import type { ModeFigures } from '../../protocol/agent-host.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';

/** Messages between the bench driver and an agent worker process (bench/agent-worker.ts). */

export interface AgentSpec {
  id: string;
  token: string;
  localAddress: string;
}

export type ToWorker =
  | {
      cmd: 'start';
      servers: string[];
      timing: ConnectionTiming;
      agents: AgentSpec[];
      rampMs: number;
      /** protocol.mode of every agent [legacy: the figures stay comparable with earlier runs]. */
      mode?: ProtocolModeSetting;
      /** Give each agent an outbox (in memory) and delivery, for `emit`. */
      outbox?: boolean;
    }
  /**
   * Every agent accepts events into its outbox at this steady rate for `durationMs`; the reply
   * (`emitted`) comes once everything accepted was delivered, or `settleMs` after the end.
   */
  | { cmd: 'emit'; perAgentPerSecond: number; durationMs: number; settleMs: number }
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
  | {
      ev: 'emitted';
      accepted: number;
      /** Still in the outboxes when the reply was sent. */
      undelivered: number;
      /** Enhanced: accepted → the hub's ack (its sink has it), per event, ms. */
      ackLatency: Float64Array;
      /** Traffic per mode of this worker's agents, from their start. */
      figures: { legacy: ModeFigures; enhanced: ModeFigures };
      /** CPU the worker spent accepting into the outboxes, ms, and how many accepts. */
      acceptCpuMs: number;
    }
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
