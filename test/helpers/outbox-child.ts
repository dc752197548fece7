import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export const OUTBOX_CHILD = path.resolve(import.meta.dirname, '..', 'fixtures', 'outbox-child.js');

export interface OutboxChild {
  child: ChildProcess;
  /** Every JSON line it printed so far. */
  facts: Array<Record<string, unknown>>;
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs test/fixtures/outbox-child.js (the built outbox) with `command` before node (e.g. prlimit). */
export function spawnOutboxChild(args: string[], prefix: string[] = []): OutboxChild {
  const argv = [...prefix, process.execPath, OUTBOX_CHILD, ...args];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const facts: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    facts.push(JSON.parse(line) as Record<string, unknown>);
  });
  readline.createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, facts, stderr, exited };
}
