import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ConnectionTiming } from '../../agent/connection/connection.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import { mintToken } from '../../server/auth.js';
import { stopChild, track } from './children.js';
import type { AgentSpec, FromWorker, LoopDelay, Timeline, ToWorker } from './fleet-protocol.js';
import { BENCH_SECRET } from './bench-hub.js';
import { TimeoutError, waitFor, withTimeout } from './time.js';

const WORKER = path.join(import.meta.dirname, '..', 'agent-worker.js');

type Ev = FromWorker['ev'];
type Msg<E extends Ev> = Extract<FromWorker, { ev: E }>;

class Worker {
  connectedOn: number[] = [];
  phases: Record<string, number> = {};
  failure: string | undefined;
  private readonly waiters: Array<{ ev: Ev; resolve: (m: FromWorker) => void }> = [];

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromWorker) => {
      if (m.ev === 'status') {
        this.connectedOn = m.connectedOn;
        this.phases = m.phases;
        return;
      }
      if (m.ev === 'fatal') this.failure = m.message;
      const i = this.waiters.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
    });
    child.once('exit', (code, signal) => {
      this.failure ??= `agent worker ${child.pid} exited (${code ?? signal})`;
    });
  }

  send(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  next<E extends Ev>(ev: E, timeoutMs: number): Promise<Msg<E>> {
    const reply = new Promise<Msg<E>>((resolve) =>
      this.waiters.push({ ev, resolve: resolve as (m: FromWorker) => void }),
    );
    const died = new Promise<never>((_, reject) => {
      const check = setInterval(() => {
        if (this.failure) {
          clearInterval(check);
          reject(new Error(this.failure));
        }
      }, 50);
      void reply.finally(() => clearInterval(check));
    });
    return withTimeout(`"${ev}" from agent worker ${this.child.pid}`, Promise.race([reply, died]), timeoutMs);
  }
}

export interface WindowResult {
  rtt: Float64Array;
  rttAt: Float64Array;
  /** Event-loop delay of each worker during the window. */
  loopDelay: LoopDelay[];
}

/**
 * The simulated agents, split over worker processes of at most `perProcess` agents each. Every
 * agent is a real AgentConnection; the driver sees them only through IPC.
 */
export class Fleet {
  private constructor(
    private readonly workers: Worker[],
    private readonly shares: AgentSpec[][],
  ) {}

  static async spawn(agents: AgentSpec[], perProcess: number): Promise<Fleet> {
    const shares: AgentSpec[][] = [];
    const count = Math.ceil(agents.length / perProcess);
    // Even shares, so no worker is the lone straggler.
    const size = Math.ceil(agents.length / count);
    for (let i = 0; i < agents.length; i += size) shares.push(agents.slice(i, i + size));
    const workers = shares.map(
      () =>
        new Worker(
          track(fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })),
        ),
    );
    const fleet = new Fleet(workers, shares);
    try {
      await Promise.all(workers.map((w) => w.next('ready', 15_000)));
    } catch (error) {
      await fleet.kill();
      throw error;
    }
    return fleet;
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid!);
  }

  get size(): number {
    return this.shares.reduce((n, s) => n + s.length, 0);
  }

  /** Starts every agent: all at once (rampMs 0) or spread evenly over rampMs in each worker. */
  start(
    servers: string[],
    timing: ConnectionTiming,
    rampMs: number,
    extra: { mode?: ProtocolModeSetting; outbox?: boolean } = {},
  ): void {
    this.workers.forEach((w, i) =>
      w.send({ cmd: 'start', servers, timing, agents: this.shares[i]!, rampMs, ...extra }),
    );
  }

  /** Every agent sends events at a steady rate; resolves with each worker's figures once delivered. */
  async emit(perAgentPerSecond: number, durationMs: number, settleMs: number): Promise<Array<Msg<'emitted'>>> {
    return Promise.all(
      this.workers.map((w) => {
        const reply = w.next('emitted', durationMs + settleMs + 30_000);
        w.send({ cmd: 'emit', perAgentPerSecond, durationMs, settleMs });
        return reply;
      }),
    );
  }

  /** Agents registered on server `index` as of the workers' last status reports. */
  connectedOn(index: number): number {
    this.throwIfFailed();
    return this.workers.reduce((n, w) => n + (w.connectedOn[index] ?? 0), 0);
  }

  phases(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.workers) for (const [k, v] of Object.entries(w.phases)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  /** Waits until every agent is registered on server `index`; false (not a throw) on timeout. */
  async allConnectedOn(index: number, timeoutMs: number): Promise<boolean> {
    try {
      await waitFor(
        `all ${this.size} agents registered on server #${index}`,
        () => this.connectedOn(index) >= this.size,
        timeoutMs,
        20,
      );
      return true;
    } catch (error) {
      if (error instanceof TimeoutError) return false;
      throw error;
    }
  }

  openWindow(): void {
    for (const w of this.workers) w.send({ cmd: 'window-open' });
  }

  async closeWindow(): Promise<WindowResult> {
    const replies = await Promise.all(
      this.workers.map((w) => {
        const reply = w.next('window', 30_000);
        w.send({ cmd: 'window-close' });
        return reply;
      }),
    );
    const total = replies.reduce((n, r) => n + r.rtt.length, 0);
    const rtt = new Float64Array(total);
    const rttAt = new Float64Array(total);
    let offset = 0;
    for (const r of replies) {
      rtt.set(r.rtt, offset);
      rttAt.set(r.rttAt, offset);
      offset += r.rtt.length;
    }
    return { rtt, rttAt, loopDelay: replies.map((r) => r.loopDelay) };
  }

  /** Per-agent times of the first events at or after `since`; see Timeline. */
  async timeline(since: number, server: number): Promise<Timeline> {
    const replies = await Promise.all(
      this.workers.map((w) => {
        const reply = w.next('query', 30_000);
        w.send({ cmd: 'query', since, server });
        return reply;
      }),
    );
    const cat = (pick: (t: Timeline) => Float64Array) =>
      Float64Array.from(replies.flatMap((r) => Array.from(pick(r.timeline))));
    const reasons: Record<string, number> = {};
    for (const r of replies)
      for (const [k, v] of Object.entries(r.timeline.reasons)) reasons[k] = (reasons[k] ?? 0) + v;
    return {
      startedAt: cat((t) => t.startedAt),
      registeredAt: cat((t) => t.registeredAt),
      leftAt: cat((t) => t.leftAt),
      refusedAt: cat((t) => t.refusedAt),
      reasons,
    };
  }

  /** Graceful stop of every agent (bounded), then the workers exit; SIGKILL for any that do not. */
  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        try {
          const stopped = w.next('stopped', 20_000);
          w.send({ cmd: 'stop' });
          await stopped;
        } catch {
          // killed below
        }
        await stopChild(w.child, 'SIGKILL', 3000).catch(() => undefined);
      }),
    );
  }

  async kill(): Promise<void> {
    await Promise.all(this.workers.map((w) => stopChild(w.child, 'SIGKILL', 1000)));
  }

  private throwIfFailed(): void {
    const failed = this.workers.find((w) => w.failure);
    if (failed) throw new Error(failed.failure);
  }
}

const tokenCache = new Map<string, string>();

/** Agent specs `bench-00001`…, one minted token per id, spread over the given source addresses. */
export async function agentSpecs(count: number, addresses: string[], perAddress: number): Promise<AgentSpec[]> {
  const specs: AgentSpec[] = [];
  for (let i = 0; i < count; i += 1) {
    const id = `bench-${String(i + 1).padStart(5, '0')}`;
    let token = tokenCache.get(id);
    if (!token) {
      token = await mintToken(BENCH_SECRET, { role: 'agent', agentId: id });
      tokenCache.set(id, token);
    }
    specs.push({ id, token, localAddress: addresses[Math.floor(i / perAddress)]! });
  }
  return specs;
}
