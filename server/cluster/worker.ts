import { AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { FarmlinkError } from '../../lib/errors.js';
import { Hub } from '../hub.js';
import type { HubOptions } from '../hub-options.js';
import { setHubView, type HubView } from '../hub-view.js';
import { IpcEndpoint, type Op, type Results } from './ipc.js';
import { combineMetricsViews } from './metrics-view.js';
import { SessionCountReporter } from './session-peaks.js';

/** Whole-hub questions (agents, health, metrics) go to the primary; it waits at most this for each worker. */
export const IPC_TIMEOUT_MS = 10_000;
/** A routed command waits for the agent's answer, plus this for the trip through the primary. */
const COMMAND_MARGIN_MS = 5000;

/** The environment variable that tells a forked process which worker it is (1…N). */
export const WORKER_ENV = 'FARMLINK_HUB_WORKER';

/** "<hub id>/w<N>": each worker registers agents, logs and answers under an id of its own. */
export function workerHubId(baseId: string, index: number): string {
  return `${baseId}/w${index}`;
}

/**
 * One worker of a multi-process hub (`farmlink hub --workers N`): a Hub of its own listening
 * through the cluster's shared socket, reporting registrations to the primary and answering the
 * admin API, /health and /metrics for the whole hub by asking the primary (server/cluster/primary.ts).
 * Signals are the primary's business: it tells each worker when to drain.
 */
export class HubWorker {
  readonly hub: Hub;
  private readonly endpoint: IpcEndpoint;
  private exitResolve: ((how: 'drained' | 'forced') => void) | undefined;
  /** Resolves when the primary has told this worker to stop and it has. */
  readonly stopped: Promise<'drained' | 'forced'>;

  constructor(
    options: HubOptions,
    readonly index: number,
    private readonly log: Logger,
  ) {
    this.hub = new Hub(options, log);
    // The broker keeps its sessions in this process's memory, and the cluster hands each connection to
    // whichever worker is free: a farm and its client would land on different workers. Refused plainly
    // rather than accepted and then failing with farm_unavailable for no visible reason.
    this.hub.tunnel.refuseAll(
      'this hub runs several worker processes (--workers) and the tunnel needs both ends on one process: ' +
        'point tunnels at a hub started with --workers 1',
    );
    this.stopped = new Promise((resolve) => (this.exitResolve = resolve));
    this.endpoint = new IpcEndpoint({
      peer: 'the hub primary',
      send: (message) => (process.connected && process.send ? process.send(message) : false),
      answer: (op) => this.answer(op),
      onInvalid: (problem) => this.log.error({ problem }, `Ignored an unreadable message on the hub's IPC ${problem}`),
    });
    process.on('message', (message) => this.endpoint.receive(message));
    this.hub.observeRegistry({
      registered: (agentId, sessionId) =>
        this.endpoint.notify({ type: 'registered', agent_id: agentId, session_id: sessionId }),
      unregistered: (agentId, sessionId) =>
        this.endpoint.notify({ type: 'unregistered', agent_id: agentId, session_id: sessionId }),
    });
    const sessions = new SessionCountReporter((counts) => this.endpoint.notify({ type: 'sessions', counts }));
    this.hub.metrics.onSessions((mode, current) => sessions.changed(mode, current));
    setHubView(this.hub, clusterView(this.hub, this.endpoint, options.command_timeout_ms));
    registerWorkerMetrics(this.hub.metrics.registry, `w${index}`, () => this.hub.agents().length);
  }

  async listen(): Promise<{ host: string; port: number; url: string }> {
    const address = await this.hub.listen();
    this.endpoint.notify({ type: 'ready', port: address.port, url: address.url });
    return address;
  }

  /** The primary asks for this worker's own part. */
  private async answer(op: Op): Promise<Results[Op['op']]> {
    const hub = this.hub;
    switch (op.op) {
      case 'agents':
        return hub.agents().map((agent) => ({ ...agent, hub_id: hub.id }));
      case 'agent': {
        const agent = hub.agent(op.agent_id);
        return agent ? { agent, hub_id: hub.id } : null;
      }
      case 'command':
        return hub.command(op.agent_id, op.name, op.args, op.timeout_ms);
      case 'broadcast':
        return hub.broadcast(op.data);
      case 'drain': {
        const started = !hub.draining;
        void hub.drain(op.reason);
        return { started, connections_open: hub.connectionCount() };
      }
      case 'health':
        return {
          draining: hub.draining,
          agents_connected: hub.agents().length,
          connections_open: hub.connectionCount(),
        };
      case 'metrics':
        return [(await hub.metrics.registry.getMetricsAsJSON()) as unknown as Array<Record<string, unknown>>];
      case 'metrics_json':
        return {
          workers: [
            { id: `w${this.index}`, pid: process.pid, view: hub.metricsView(), latency: hub.metrics.latencyTotals() },
          ],
        };
      case 'replace':
        return hub.replaceFromElsewhere(op.agent_id, op.session_id, op.where);
      case 'shutdown':
        void this.stop(op.reason, op.force);
        return null;
    }
  }

  private async stop(reason: string, force: boolean): Promise<void> {
    if (force) {
      this.log.warn({ hub_id: this.hub.id }, `Worker ${this.hub.id}: told to stop at once; closing every connection`);
      await this.hub.close();
      this.exitResolve?.('forced');
      return;
    }
    await this.hub.drain(reason);
    await this.hub.close();
    this.exitResolve?.('drained');
  }
}

/** The whole hub, seen from one worker: what is here is answered here, the rest through the primary. */
function clusterView(hub: Hub, primary: IpcEndpoint, commandTimeoutMs: number): HubView {
  return {
    agents: () => primary.request({ op: 'agents' }, IPC_TIMEOUT_MS),
    agent: async (agentId) => {
      const here = hub.agent(agentId);
      if (here) return { agent: here, hub_id: hub.id };
      return (await primary.request({ op: 'agent', agent_id: agentId }, IPC_TIMEOUT_MS)) ?? undefined;
    },
    command: async (agentId, name, args, timeoutMs) => {
      if (hub.agent(agentId)) return hub.command(agentId, name, args, timeoutMs);
      const wait = timeoutMs ?? commandTimeoutMs;
      const outcome = await primary.request(
        { op: 'command', agent_id: agentId, name, args, timeout_ms: wait },
        wait + COMMAND_MARGIN_MS,
      );
      // Counted here: no worker sent it. Any other outcome was counted by the worker that did.
      if (outcome.status === 'not_connected') hub.metrics.command('not_connected');
      return outcome;
    },
    broadcast: (data) => primary.request({ op: 'broadcast', data }, IPC_TIMEOUT_MS),
    drain: (reason) => primary.request({ op: 'drain', ...(reason !== undefined ? { reason } : {}) }, IPC_TIMEOUT_MS),
    health: () => primary.request({ op: 'health' }, IPC_TIMEOUT_MS),
    metrics: async () => {
      const perWorker = await primary.request({ op: 'metrics' }, IPC_TIMEOUT_MS);
      if (perWorker.length === 0) throw new FarmlinkError('IPC_CLOSED', 'no hub worker answered for its metrics');
      return AggregatorRegistry.aggregate(perWorker);
    },
    metricsView: async () => {
      const parts = await primary.request({ op: 'metrics_json' }, IPC_TIMEOUT_MS);
      if (parts.workers.length === 0) throw new FarmlinkError('IPC_CLOSED', 'no hub worker answered for its metrics');
      return combineMetricsViews(hub.metricsView(), parts);
    },
  };
}

/**
 * Figures that stay per worker in the aggregate (a `worker` label keeps them apart): everything
 * else on /metrics is summed across workers, so the process CPU there is the whole hub's.
 */
function registerWorkerMetrics(registry: Registry, worker: string, agents: () => number): void {
  new Counter({
    name: 'farmlink_worker_cpu_seconds_total',
    help: 'CPU time (user + system) used by this hub worker process; a rate near 1 means it is using a whole core',
    labelNames: ['worker'],
    registers: [registry],
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.labels(worker).inc((user + system) / 1e6);
    },
  });
  new Gauge({
    name: 'farmlink_worker_agents_connected',
    help: 'Agents registered on this hub worker right now',
    labelNames: ['worker'],
    registers: [registry],
    collect() {
      this.labels(worker).set(agents());
    },
  });
}
