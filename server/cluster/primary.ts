import type { Serializable } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { FarmlinkError } from '../../lib/errors.js';
import { IpcEndpoint, IpcError, type Op, type OpName, type OpOf, type Results } from './ipc.js';
import { RestartPolicy, type RestartPolicyOptions } from './restart-policy.js';
import { HubSessionPeaks } from './session-peaks.js';
import { IPC_TIMEOUT_MS, WORKER_ENV, workerHubId } from './worker.js';

/** After the drain timeout, workers still running get this long to close before they are killed. */
const DRAIN_GRACE_MS = 15_000;
/** A forced stop: workers close every connection at once, and are killed if not gone after this. */
const FORCE_GRACE_MS = 5000;

export interface HubPrimaryOptions {
  workers: number;
  /** The hub's id; worker N is "<hubId>/wN". */
  hubId: string;
  drainTimeoutMs: number;
  /** Added to each worker's environment (the secret, when this run generated one). */
  env: Record<string, string>;
  logger: Logger;
  restart?: Omit<RestartPolicyOptions, 'now'>;
}

interface Slot {
  index: number;
  hubId: string;
  worker: Worker | undefined;
  endpoint: IpcEndpoint | undefined;
  /** Its hub is listening. */
  ready: boolean;
  policy: RestartPolicy;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * The primary of a multi-process hub: it forks the workers (each a Hub sharing the listening
 * socket through Node's cluster, which hands connections round-robin), keeps where each agent is
 * registered, answers the workers' whole-hub questions by asking every worker, routes a command
 * to the worker holding the agent, restarts a worker that dies, and drains them all on shutdown.
 * It holds no agent connection itself.
 */
export class HubPrimary {
  private readonly slots: Slot[] = [];
  /** agent id → the worker slot holding it and the session there. */
  private readonly agents = new Map<string, { slot: Slot; sessionId: string }>();
  private readonly log: Logger;
  private readonly sessionPeaks = new HubSessionPeaks();
  private readonly startedAt = performance.now();
  private started = false;
  private draining = false;
  private stopping: 'drain' | 'force' | undefined;
  private onAllExited: (() => void) | undefined;
  private startup:
    { resolve: (address: { port: number; url: string }) => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly options: HubPrimaryOptions) {
    this.log = options.logger;
    for (let index = 1; index <= options.workers; index++) {
      this.slots.push({
        index,
        hubId: workerHubId(options.hubId, index),
        worker: undefined,
        endpoint: undefined,
        ready: false,
        policy: new RestartPolicy({ ...options.restart, now: () => performance.now() }),
        restartTimer: undefined,
      });
    }
  }

  /** Forks every worker; resolves once all of them listen, rejects when one exits before it does. */
  start(): Promise<{ port: number; url: string }> {
    // Structured clone on the IPC channel: metric values such as Infinity survive the trip.
    cluster.setupPrimary({ serialization: 'advanced' });
    this.log.info(
      { hub_id: this.options.hubId, workers: this.options.workers },
      `Starting hub ${this.options.hubId} with ${this.options.workers} worker processes sharing one port`,
    );
    return new Promise((resolve, reject) => {
      this.startup = { resolve, reject };
      for (const slot of this.slots) this.fork(slot);
    });
  }

  /**
   * Drains every worker (or, with force, closes every connection now) and resolves when all of
   * them have exited; workers still running past the drain timeout are killed.
   */
  shutdown(reason: string, force: boolean): Promise<void> {
    const how = force ? 'force' : 'drain';
    if (this.stopping === 'force' || this.stopping === how) return this.allExited();
    this.stopping = how;
    this.draining = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
    }
    const live = this.slots.filter((slot) => slot.worker);
    this.log.info(
      { workers: live.length, force },
      force
        ? `Telling ${live.length} worker(s) to close every connection now`
        : `Draining all ${live.length} worker(s): each tells its agents to move and refuses new connections with 1001`,
    );
    for (const slot of live) {
      if (!slot.ready) {
        // Still starting: it holds no agent, and may not be listening for orders yet.
        slot.worker?.process.kill('SIGKILL');
        continue;
      }
      slot.endpoint?.request({ op: 'shutdown', reason, force }, IPC_TIMEOUT_MS).catch((error: unknown) => {
        this.log.warn(
          { err: error, worker: slot.hubId },
          `Worker ${slot.hubId} did not take the stop order; it is killed if still running at the deadline`,
        );
      });
    }
    const graceMs = force ? FORCE_GRACE_MS : this.options.drainTimeoutMs + DRAIN_GRACE_MS;
    const killer = setTimeout(() => {
      for (const slot of this.slots) {
        if (!slot.worker) continue;
        this.log.warn({ worker: slot.hubId }, `Worker ${slot.hubId} still running past its deadline: killing it`);
        slot.worker.process.kill('SIGKILL');
      }
    }, graceMs);
    killer.unref();
    return this.allExited().finally(() => clearTimeout(killer));
  }

  private allExited(): Promise<void> {
    if (this.slots.every((slot) => !slot.worker)) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.onAllExited;
      this.onAllExited = () => {
        previous?.();
        resolve();
      };
    });
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork({ ...this.options.env, [WORKER_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.ready = false;
    this.log.info(
      { event: 'worker_started', worker: slot.hubId, pid: worker.process.pid },
      `Worker ${slot.hubId} started (pid ${String(worker.process.pid)})`,
    );
    const endpoint = new IpcEndpoint({
      peer: `worker ${slot.hubId}`,
      send: (message) => (worker.isConnected() ? worker.send(message as Serializable) : false),
      answer: (op) => this.answer(slot, op),
      onNotice: (notice) => {
        switch (notice.type) {
          case 'ready':
            this.onReady(slot, notice.port, notice.url);
            return;
          case 'registered':
            this.onRegistered(slot, notice.agent_id, notice.session_id);
            return;
          case 'unregistered':
            if (this.agents.get(notice.agent_id)?.sessionId === notice.session_id) this.agents.delete(notice.agent_id);
            return;
          case 'sessions':
            this.sessionPeaks.report(slot.index, notice.counts);
            return;
        }
      },
      onInvalid: (problem) => this.log.error({ problem }, `Ignored an unreadable message on the hub's IPC ${problem}`),
    });
    slot.endpoint = endpoint;
    worker.on('message', (message) => endpoint.receive(message));
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.onExit(slot, worker, code, signal));
  }

  private onReady(slot: Slot, port: number, url: string): void {
    slot.ready = true;
    if (this.started) {
      this.log.info({ event: 'worker_ready', worker: slot.hubId }, `Worker ${slot.hubId} is back and serving`);
      // Started again during an admin drain: it drains as its siblings do.
      if (this.draining && !this.stopping) void this.ask(slot, { op: 'drain', reason: 'hub is draining' });
      return;
    }
    if (this.slots.every((s) => s.ready)) {
      this.started = true;
      this.startup?.resolve({ port, url });
      this.startup = undefined;
    }
  }

  private onRegistered(slot: Slot, agentId: string, sessionId: string): void {
    const previous = this.agents.get(agentId);
    this.agents.set(agentId, { slot, sessionId });
    // Each worker replaces an agent's older connection to itself; one on a sibling is replaced from here.
    if (previous && previous.slot !== slot) {
      void this.ask(previous.slot, {
        op: 'replace',
        agent_id: agentId,
        session_id: previous.sessionId,
        where: slot.hubId,
      });
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    slot.endpoint?.closeAll(`worker ${slot.hubId} exited`);
    slot.endpoint = undefined;
    for (const [agentId, where] of this.agents) if (where.slot === slot) this.agents.delete(agentId);
    this.sessionPeaks.workerGone(slot.index);
    const how = signal ? `signal ${signal}` : `code ${String(code)}`;
    if (this.stopping) {
      this.log.info({ worker: slot.hubId, code, signal }, `Worker ${slot.hubId} exited (${how})`);
      if (this.slots.every((s) => !s.worker)) {
        this.log.info('Every hub worker has exited');
        const done = this.onAllExited;
        this.onAllExited = undefined;
        done?.();
      }
      return;
    }
    if (!this.started) {
      // Not listening yet: the same failure would recur (a port in use, say); stop rather than loop.
      this.log.error(
        { worker: slot.hubId, code, signal },
        `Worker ${slot.hubId} exited (${how}) before its hub was listening; stopping the other workers`,
      );
      const reject = this.startup?.reject;
      this.startup = undefined;
      void this.shutdown('a worker failed to start', true).then(() =>
        reject?.(new FarmlinkError('WORKER_START_FAILED', `hub worker ${slot.hubId} exited (${how}) before listening`)),
      );
      return;
    }
    const { delayMs, recentDeaths } = slot.policy.recordDeath();
    this.log.error(
      { worker: slot.hubId, code, signal, restart_in_ms: delayMs, recent_deaths: recentDeaths },
      `Worker ${slot.hubId} died unexpectedly (${how}); its agents reconnect as to any lost hub; ` +
        `starting it again in ${delayMs} ms (${recentDeaths} death(s) in the last minute)`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.fork(slot);
    }, delayMs);
  }

  /** A worker asks for the whole hub. */
  private async answer(from: Slot, op: Op): Promise<Results[OpName]> {
    switch (op.op) {
      case 'agents':
        return (await this.gather(op)).flat();
      case 'agent': {
        const where = this.agents.get(op.agent_id);
        return where ? this.ask(where.slot, op) : null;
      }
      case 'command':
        return this.routeCommand(op);
      case 'broadcast':
        return (await this.gather(op)).reduce((sum, n) => sum + n, 0);
      case 'drain': {
        const started = !this.draining;
        this.draining = true;
        if (started)
          this.log.info(
            { from: from.hubId, reason: op.reason },
            `Drain requested through the admin API of ${from.hubId}: draining every worker`,
          );
        const answers = await this.gather(op);
        return { started, connections_open: answers.reduce((sum, a) => sum + a.connections_open, 0) };
      }
      case 'health': {
        const answers = await this.gather(op);
        return {
          draining: this.draining || answers.some((a) => a.draining),
          agents_connected: answers.reduce((sum, a) => sum + a.agents_connected, 0),
          connections_open: answers.reduce((sum, a) => sum + a.connections_open, 0),
        };
      }
      case 'metrics':
        return (await this.gather(op)).flat();
      case 'metrics_json':
        return {
          workers: (await this.gather(op)).flatMap((answer) => answer.workers),
          peak_connections: this.sessionPeaks.peak,
          uptime_s: Math.round((performance.now() - this.startedAt) / 1000),
          draining: this.draining,
        };
      case 'replace':
      case 'shutdown':
        throw new FarmlinkError(
          'IPC_BAD_REQUEST',
          `"${op.op}" is an order for a worker, not a question for the primary`,
        );
    }
  }

  private async routeCommand(op: OpOf<'command'>): Promise<Results['command']> {
    const where = this.agents.get(op.agent_id);
    if (!where) return { status: 'not_connected' };
    try {
      return await this.ask(where.slot, op, (op.timeout_ms ?? 0) + IPC_TIMEOUT_MS);
    } catch (error) {
      // The worker holding the agent died or hung: for the caller, the agent went away unanswered.
      this.log.warn({ err: error, agent_id: op.agent_id, worker: where.slot.hubId }, 'Routing a command failed');
      return { status: 'agent_gone' };
    }
  }

  private ask<K extends OpName>(slot: Slot, op: OpOf<K>, timeoutMs = IPC_TIMEOUT_MS): Promise<Results[K]> {
    const endpoint = slot.endpoint;
    if (!endpoint) return Promise.reject(new IpcError('IPC_CLOSED', `worker ${slot.hubId} is not running`));
    return endpoint.request(op, timeoutMs);
  }

  /** Every listening worker's answer; one that fails to answer is logged and left out. */
  private async gather<K extends OpName>(op: OpOf<K>): Promise<Array<Results[K]>> {
    const ready = this.slots.filter((slot) => slot.ready);
    const settled = await Promise.allSettled(ready.map((slot) => this.ask(slot, op)));
    const answers: Array<Results[K]> = [];
    settled.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') answers.push(outcome.value);
      else
        this.log.warn(
          { err: outcome.reason, worker: ready[i]?.hubId, op: op.op },
          `Worker ${ready[i]?.hubId ?? '?'} did not answer "${op.op}"; the answer leaves it out`,
        );
    });
    return answers;
  }
}
