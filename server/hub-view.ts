import type { Registry } from 'prom-client';
import type { CommandOutcome } from './command-dispatcher.js';
import type { AgentSummary, Hub, MetricsView } from './hub.js';

/** An agent as the admin API lists it; `hub_id` names the worker holding it when the hub runs several. */
export type AgentListing = AgentSummary & { hub_id?: string };

/**
 * The hub as the admin API, /health and /metrics answer for it. One process answers for itself
 * (localView); a hub of several worker processes answers for all of them from whichever worker a
 * request lands on (server/cluster/cluster-view.ts).
 */
export interface HubView {
  agents(): Promise<AgentListing[]>;
  /** The agent and the hub (worker) holding it; undefined when no process of this hub has it. */
  agent(agentId: string): Promise<{ agent: AgentSummary; hub_id: string } | undefined>;
  command(
    agentId: string,
    name: string,
    args: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<CommandOutcome | { status: 'not_connected' }>;
  broadcast(data: Record<string, unknown>): Promise<number>;
  drain(reason?: string): Promise<{ started: boolean; connections_open: number }>;
  health(): Promise<HealthFigures>;
  /** A registry holding every metric of the hub (summed across workers where there are several). */
  metrics(): Promise<Registry>;
  /** The JSON view of /metrics (with several workers: summed, and each worker's own part). */
  metricsView(): Promise<MetricsView>;
}

export interface HealthFigures {
  draining: boolean;
  agents_connected: number;
  connections_open: number;
}

const views = new WeakMap<Hub, HubView>();

/** Makes `view` what the admin API of `hub` answers from (a worker of a multi-process hub). */
export function setHubView(hub: Hub, view: HubView): void {
  views.set(hub, view);
}

export function hubView(hub: Hub): HubView {
  let view = views.get(hub);
  if (!view) {
    view = localView(hub);
    views.set(hub, view);
  }
  return view;
}

/** This process only: the hub as it always was. */
export function localView(hub: Hub): HubView {
  return {
    agents: () => Promise.resolve(hub.agents()),
    agent: (agentId) => {
      const agent = hub.agent(agentId);
      return Promise.resolve(agent ? { agent, hub_id: hub.id } : undefined);
    },
    command: (agentId, name, args, timeoutMs) => hub.command(agentId, name, args, timeoutMs),
    broadcast: (data) => Promise.resolve(hub.broadcast(data)),
    drain: (reason) => {
      const started = !hub.draining;
      void hub.drain(reason);
      return Promise.resolve({ started, connections_open: hub.connectionCount() });
    },
    health: () =>
      Promise.resolve({
        draining: hub.draining,
        agents_connected: hub.agents().length,
        connections_open: hub.connectionCount(),
      }),
    metrics: () => Promise.resolve(hub.metrics.registry),
    metricsView: () => Promise.resolve(hub.metricsView()),
  };
}
