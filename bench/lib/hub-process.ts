import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { exited, stopChild, track } from './children.js';
import { Inspector, type HeapReading } from './inspector.js';
import { sleep } from './time.js';

export const ROOT = path.resolve(import.meta.dirname, '../../..');
const FARMLINK_BIN = path.join(ROOT, 'dist/bin/farmlink.js');
export const BENCH_SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuv';
const START_TIMEOUT_MS = 15_000;

export interface HubSettings {
  /** Extra `farmlink hub` flags (limits, intervals). */
  args: string[];
  hubId: string;
  /** Start node with --inspect on a loopback port, so memoryAfterGc() can force a GC. */
  inspect?: boolean;
  /** Path of the farmlink CLI; the build in dist/ by default. */
  bin?: string | undefined;
}

/** A `farmlink hub` child process on 127.0.0.1, started and answering /health. */
export class HubProcess {
  /** Counts of the hub's warn/error log messages with numbers blanked, so 10k alike lines make one entry. */
  readonly problemCounts = new Map<string, number>();
  /** When /health first answered: the hub's broadcast and ping timers started just before. */
  readyAt = Number.NaN;
  private stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly commandLine: string,
  ) {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        this.onLogLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stderr.length < 20_000) this.stderr += chunk;
    });
  }

  static async start(settings: HubSettings): Promise<HubProcess> {
    // Not --port 0: the hub announces its port only in an info line, which --log-level warn
    // suppresses, and info level would log every registration — thousands of lines costing hub CPU.
    const port = await closedPort();
    const nodeFlags = settings.inspect ? ['--inspect=127.0.0.1:0'] : [];
    const bin = settings.bin ? path.resolve(settings.bin) : FARMLINK_BIN;
    const args = [...nodeFlags, bin, 'hub', '--host', '127.0.0.1', '--port', String(port), '--hub-id', settings.hubId, '--log-format', 'json', '--log-level', 'warn', ...settings.args];
    const child = track(spawn(process.execPath, args, { env: { ...process.env, FARMLINK_HUB_SECRET: BENCH_SECRET }, stdio: ['ignore', 'pipe', 'pipe'] }));
    const commandLine = `FARMLINK_HUB_SECRET=… node ${args.map((a) => (a === bin ? path.relative(ROOT, a) : a)).join(' ')}`;
    const hub = new HubProcess(child, port, commandLine);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await hub.healthy())) {
      if (!hub.alive) throw new Error(`hub exited (${child.exitCode ?? child.signalCode}) before listening: ${hub.stderr.trim()}`);
      if (Date.now() > deadline) {
        await hub.stop();
        throw new Error(`hub on port ${port} did not answer /health within ${START_TIMEOUT_MS / 1000} s: ${hub.stderr.trim()}`);
      }
      await sleep(50);
    }
    hub.readyAt = Date.now();
    return hub;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  exited(): Promise<void> {
    return exited(this.child);
  }

  stop(): Promise<void> {
    return stopChild(this.child, 'SIGKILL', 2000);
  }

  /**
   * Memory after a forced full GC; needs `inspect: true`. The inspector session is closed again
   * at once, so none is attached while anything is being timed.
   */
  async memoryAfterGc(): Promise<HeapReading> {
    const url = /Debugger listening on (ws:\/\/\S+)/.exec(this.stderr)?.[1];
    if (!url) throw new Error('the hub was not started with inspect: true');
    const inspector = await Inspector.connect(url);
    try {
      return await inspector.memoryAfterGc();
    } finally {
      inspector.close();
    }
  }

  /** Value of an unlabelled metric on /metrics, or NaN. */
  async metric(name: string): Promise<number> {
    try {
      const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
      const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(await res.text());
      return match ? Number(match[1]) : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }

  private async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  private onLogLine(line: string): void {
    let entry: { msg?: string; level?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if ((entry.level ?? 0) < 40 || !entry.msg) return;
    const key = entry.msg.replace(/\d+/g, 'N').slice(0, 160);
    this.problemCounts.set(key, (this.problemCounts.get(key) ?? 0) + 1);
  }
}

/** A port on 127.0.0.1 with nothing listening on it (it was free a moment ago and is closed again). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
