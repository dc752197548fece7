import { runCli } from './cli-process.js';
import { waitUntil } from './wait.js';

/** What one `farmlink event` run was given and how it ended. */
export interface EventAttempt {
  call: number;
  attempt: number;
  /** The event's data: names its call and attempt, so an event in a sink says where it came from. */
  data: { call: number; attempt: number; tag: string };
  code: number | null;
  /** The seqs it printed: accepted (the command prints only what the outbox accepted). */
  seqs: number[];
  stderr: string;
  /** How long the command ran. */
  ms: number;
}

export interface EventProducerOptions {
  /** The running agent's data dir (how `farmlink event` finds it). */
  dataDir: string;
  env: Record<string, string | undefined>;
  name: string;
  calls: number;
  perCall: number;
  /** Calls run at once. */
  lanes: number;
  /** Calls with an index below this may start; the test raises it as its faults happen. */
  allowed: () => number;
  /** True while an agent runs for the data dir: a failed call is retried only then. */
  agentUp: () => boolean;
  /** A call that fails this often in a row fails the run (a real problem, not an agent restart). */
  maxAttempts?: number;
  timeoutMs?: number;
}

/** Exit codes of `farmlink event` that mean "the agent was not there" (retry once it is back). */
const AGENT_GONE = new Set([69, 1]);

/**
 * Runs `farmlink event NAME --count N` calls against the running agent, a few at a time, the way a
 * local program on the PC would: a call that fails because the agent is down (killed, restarting)
 * is tried again once it is back, with data naming the new attempt. Only what a call printed is
 * counted as accepted; what a failed call may have had accepted before its answer was lost is
 * known by its data.
 */
export class EventProducer {
  readonly attempts: EventAttempt[] = [];
  /** seq → the data it was accepted with. */
  readonly accepted = new Map<number, EventAttempt['data']>();
  private next = 0;
  private done = 0;
  private stopped = false;

  constructor(private readonly options: EventProducerOptions) {}

  get callsDone(): number {
    return this.done;
  }

  get acceptedCount(): number {
    return this.accepted.size;
  }

  /** Attempts that did not exit 0: whatever they handed in has an unknown outcome. */
  failedAttempts(): EventAttempt[] {
    return this.attempts.filter((a) => a.code !== 0);
  }

  /** No new call or attempt starts (a failed test's producer must not outlive it). */
  stop(): void {
    this.stopped = true;
  }

  /** A method, not the field: stop() may be called while a lane awaits. */
  private isStopped(): boolean {
    return this.stopped;
  }

  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.lanes }, () => this.lane()));
  }

  /**
   * Starts the calls. `failed` never resolves: it rejects with the producer's error, so a wait
   * raced against it ends at once when the producer fails.
   */
  start(): { finished: Promise<void>; failed: Promise<never> } {
    const finished = this.run();
    const failed = finished.then(
      () => new Promise<never>(() => undefined),
      (error: unknown) => {
        throw error;
      },
    );
    failed.catch(() => undefined);
    return { finished, failed };
  }

  private async lane(): Promise<void> {
    const { calls } = this.options;
    for (;;) {
      const call = this.next;
      if (call >= calls || this.isStopped()) return;
      this.next += 1;
      await waitUntil(
        `permission to start call ${call}`,
        () => this.isStopped() || this.options.allowed() > call,
        240_000,
        20,
      );
      if (this.isStopped()) return;
      await this.runCall(call);
      this.done += 1;
    }
  }

  private async runCall(call: number): Promise<void> {
    const { dataDir, env, name, perCall, maxAttempts = 10, timeoutMs = 60_000 } = this.options;
    for (let attempt = 1; ; attempt += 1) {
      await waitUntil(`an agent to hand call ${call} to`, () => this.isStopped() || this.options.agentUp(), 60_000, 20);
      if (this.isStopped()) return;
      const data = { call, attempt, tag: `lossless-${call}-${attempt}` };
      const begun = Date.now();
      const run = await runCli(
        ['event', name, '--data', JSON.stringify(data), '--count', String(perCall), '--data-dir', dataDir],
        env,
        timeoutMs,
      );
      const seqs = run.stdout
        .split('\n')
        .filter((l) => /^\d+$/.test(l.trim()))
        .map(Number);
      this.attempts.push({ call, attempt, data, code: run.code, seqs, stderr: run.stderr, ms: Date.now() - begun });
      for (const seq of seqs) this.accepted.set(seq, data);
      if (run.code === 0) {
        if (seqs.length !== perCall) {
          throw new Error(`call ${call} exited 0 but printed ${seqs.length} seqs, not ${perCall}: ${run.stderr}`);
        }
        return;
      }
      if (!AGENT_GONE.has(run.code ?? -1) || attempt >= maxAttempts) {
        throw new Error(
          `farmlink event (call ${call}, attempt ${attempt}) exited ${String(run.code ?? run.signal)}: ${run.stderr.trim()}`,
        );
      }
      // The agent was killed or is starting again: the next attempt waits until it is back.
    }
  }
}
