import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FARMLINK_BIN } from './hub-process.js';
import { waitUntil } from './wait.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  proc: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  exited: Promise<CliRun>;
  /** Waits until stdout contains `text` (or matches it). */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/**
 * Starts the built `farmlink` CLI with the given arguments and environment. `via`: a command that runs
 * it, such as `['ip', 'netns', 'exec', NS]` for a farm PC in a network namespace (it execs node, so the
 * child's pid is still the CLI's).
 */
export function spawnCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: { via?: string[] } = {},
): CliProcess {
  const [command, ...prefix] = options.via ?? [process.execPath];
  const nodeArgs = options.via ? [process.execPath, FARMLINK_BIN] : [FARMLINK_BIN];
  const proc = spawn(command ?? process.execPath, [...prefix, ...nodeArgs, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<CliRun>((resolve) => {
    proc.once('close', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    proc,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    waitForOutput: async (text, timeoutMs = 15_000) => {
      try {
        await waitUntil(
          `CLI output ${String(text)}`,
          () => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout)),
          timeoutMs,
        );
      } catch (error) {
        // The output as it is when the wait gives up, not as it was when it began.
        throw new Error(
          `${(error as Error).message} (stdout so far: ${stdout.slice(-500)} / stderr: ${stderr.slice(-500)})`,
        );
      }
    },
    kill: (signal = 'SIGTERM') => proc.kill(signal),
  };
}

/** Runs the CLI to completion (bounded: killed after `timeoutMs`). */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
): Promise<CliRun> {
  const cli = spawnCli(args, env);
  const timer = setTimeout(() => cli.kill('SIGKILL'), timeoutMs);
  const result = await cli.exited;
  clearTimeout(timer);
  return result;
}

/**
 * The panel's full URL from the agent's `event: panel` JSON line: the line holds the address and
 * the token file (no log holds the key itself), the key is read from that file.
 */
export function panelUrlFrom(stdout: string): string {
  const line = stdout.split('\n').find((l) => l.includes('"event":"panel"'));
  if (!line) throw new Error(`no "event":"panel" line in the output: ${stdout.slice(-500)}`);
  const { url, token_file: tokenFile } = JSON.parse(line) as { url: string; token_file: string };
  return `${url}#token=${fs.readFileSync(tokenFile, 'utf8').trim()}`;
}

/**
 * The hub's address from `farmlink hub --port 0 --log-format json`: it binds a free port itself and
 * says which in its `event: listening` line, so no other process can take the port in between.
 */
export async function hubUrlOf(cli: CliProcess, timeoutMs = 20_000): Promise<string> {
  await cli.waitForOutput('"event":"listening"', timeoutMs);
  const line = cli.stdout.split('\n').find((l) => l.includes('"event":"listening"'))!;
  return `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
}

/**
 * An environment with no FarmLink settings of this machine's and a HOME (config, state, data dir)
 * of its own under `parent`, so a spawned CLI picks up nothing real.
 */
export function isolatedEnv(
  parent: string,
  extra: Record<string, string> = {},
): { env: Record<string, string | undefined>; home: string; dataDir: string } {
  const home = fs.mkdtempSync(path.join(parent, 'home-'));
  return {
    home,
    dataDir: path.join(home, 'data'),
    env: {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_STATE_HOME: path.join(home, '.local', 'state'),
      FARMLINK_HUB_SECRET: undefined,
      FARMLINK_CONFIG: undefined,
      FARMLINK_SERVER_URL: undefined,
      FARMLINK_AGENT_TOKEN: undefined,
      FARMLINK_AGENT_ID: undefined,
      FARMLINK_DATA_DIR: undefined,
      ...extra,
    },
  };
}
