import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { mintToken } from '../../server/auth.js';
import { waitUntil } from './wait.js';

/**
 * The repository root. Walked up to rather than fixed, because this module runs both from its
 * source (tests) and compiled into dist/test/helpers/ (the bench imports it).
 */
export const ROOT = findRoot(import.meta.dirname);
export const FARMLINK_BIN = path.join(ROOT, 'dist/bin/farmlink.js');
export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const START_TIMEOUT_MS = 15_000;

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'server'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no FarmLink repository above ${from}`);
  }
}

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [key: string]: unknown;
}

export interface HubProcess {
  proc: ChildProcess;
  readonly pid: number;
  port: number;
  /** http://HOST:PORT (127.0.0.1 unless started with another host) — what goes in server.url. */
  url: string;
  /** ws://HOST:PORT/api/v1/pc/ws */
  wsUrl: string;
  /** `FARMLINK_HUB_SECRET=… node …`: how the hub was started, for a report. */
  commandLine: string;
  /** Every JSON log line, unless started with `keepLogs: false`. */
  logs: LogLine[];
  stderr: string[];
  /** Counts of the hub's warn/error log messages with numbers blanked, so 10k alike lines make one entry. */
  problemCounts: Map<string, number>;
  /** When the hub was found ready: its broadcast and ping timers started just before. */
  readyAt: number;
  readonly alive: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** The node inspector's ws:// address; only with `inspect: true`. */
  inspectorUrl(): string | undefined;
  waitForLog(what: string, predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL and wait for the exit (at once if it has exited already). */
  kill(): Promise<void>;
  /** Value of an unlabelled metric on /metrics, or NaN. */
  metric(name: string): Promise<number>;
  adminToken(): Promise<string>;
  agentToken(agentId: string): Promise<string>;
  get(path: string, token?: string): Promise<{ status: number; body: unknown; text: string }>;
  post(path: string, body: unknown, token?: string): Promise<{ status: number; body: unknown; text: string }>;
}

export interface StartHubOptions {
  /**
   * The address to listen on [127.0.0.1]; `url` and `wsUrl` use it. Another host, such as the host
   * side of a veth pair, lets a farm in a network namespace reach the hub.
   */
  host?: string;
  /** A port the caller must know in advance (a hub coming back on it); by default one is picked. */
  port?: number;
  /** Extra `farmlink hub` flags. */
  args?: string[];
  /**
   * Let the hub adapt to its load (tell agents a slower pace) [false: `--no-adapt`]. On a shared
   * two-core machine a hub's event loop runs late from scheduling noise alone, and a test about
   * something else must not have its agents' heartbeats and batch windows change under it.
   */
  adapt?: boolean;
  secret?: string;
  env?: Record<string, string>;
  /** Adds `--hub-id`. */
  hubId?: string;
  /**
   * 'debug' (default): every line logged, the port and readiness read from the `listening` line.
   * 'warn': the hub stays quiet under load (info would log every registration, costing hub CPU),
   * so readiness is found by polling /health on a port picked beforehand.
   */
  logLevel?: 'debug' | 'warn';
  /** Start node with --inspect on a loopback port, so a GC can be forced through the inspector. */
  inspect?: boolean;
  /** Path of the farmlink CLI; the build in dist/ by default. */
  bin?: string;
  /** false: parse the log only for problemCounts, keeping no lines (a bench hub logs thousands). */
  keepLogs?: boolean;
  /** How long the hub may take to be ready [15 s]; a hub of several worker processes starts each of them. */
  startTimeoutMs?: number;
  /** Called with the child at once, e.g. to register it for killing when the caller is interrupted. */
  onSpawn?: (proc: ChildProcess) => void;
}

const running = new Set<ChildProcess>();
const dataDirs: string[] = [];
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** A data dir of its own for a hub not given one: its event log never lands in the user's home. */
function tempDataDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'farmlink-hub-data-'));
  dataDirs.push(dir);
  return dir;
}

/** Spawns `farmlink hub` with JSON logs on 127.0.0.1 (or `host`) and waits until it is ready. */
export async function startHub(options: StartHubOptions = {}): Promise<HubProcess> {
  const logLevel = options.logLevel ?? 'debug';
  const host = options.host ?? '127.0.0.1';
  // Port 0 at debug level: the hub binds a free port itself and logs it, so no other process can
  // take it in between. At warn level that line is suppressed, so a port is picked beforehand.
  let port = options.port ?? (logLevel === 'warn' ? await closedPort() : 0);
  const secret = options.secret ?? TEST_SECRET;
  const bin = options.bin !== undefined ? path.resolve(options.bin) : FARMLINK_BIN;
  const args = [
    ...(options.inspect === true ? ['--inspect=127.0.0.1:0'] : []),
    bin,
    'hub',
    '--host',
    host,
    '--port',
    String(port),
    ...(options.hubId !== undefined ? ['--hub-id', options.hubId] : []),
    '--log-format',
    'json',
    '--log-level',
    logLevel,
    ...(options.adapt === true ? [] : ['--no-adapt']),
    ...(options.args ?? []),
    ...(options.args?.includes('--data-dir') === true ? [] : ['--data-dir', tempDataDir()]),
  ];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, FARMLINK_HUB_SECRET: secret, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  options.onSpawn?.(proc);
  const commandLine = `FARMLINK_HUB_SECRET=… node ${args.map((a) => (a === bin ? path.relative(ROOT, a) : a)).join(' ')}`;
  const keepLogs = options.keepLogs ?? true;
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  const problemCounts = new Map<string, number>();
  let buffer = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        stderr.push(`[stdout] ${line}`);
        continue;
      }
      if (keepLogs) logs.push(entry);
      if (typeof entry.level === 'number' && entry.level >= 40 && typeof entry.msg === 'string' && entry.msg) {
        const key = entry.msg.replace(/\d+/g, 'N').slice(0, 160);
        problemCounts.set(key, (problemCounts.get(key) ?? 0) + 1);
      }
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal, at: Date.now() });
    });
  });
  const isAlive = () => proc.exitCode === null && proc.signalCode === null;
  let url = `http://${host}:${String(port)}`;
  const waitForLog = (what: string, predicate: (line: LogLine) => boolean, timeoutMs = 10_000) =>
    waitUntil(`hub log: ${what}`, () => logs.find(predicate), timeoutMs);
  const request = async (method: string, p: string, body?: unknown, token?: string) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body: parsed, text };
  };
  const healthy = async (): Promise<boolean> => {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  };
  const kill = async (): Promise<void> => {
    if (isAlive()) proc.kill('SIGKILL');
    await exited;
  };
  const hub: HubProcess = {
    proc,
    get pid() {
      if (proc.pid === undefined) throw new Error('the hub process has no pid (it failed to spawn)');
      return proc.pid;
    },
    get port() {
      return port;
    },
    get url() {
      return url;
    },
    get wsUrl() {
      return `ws://${host}:${String(port)}/api/v1/pc/ws`;
    },
    commandLine,
    logs,
    stderr,
    problemCounts,
    readyAt: Number.NaN,
    get alive() {
      return isAlive();
    },
    exited,
    inspectorUrl: () => /Debugger listening on (ws:\/\/\S+)/.exec(stderr.join(''))?.[1],
    waitForLog,
    signal: (signal) => proc.kill(signal),
    kill,
    metric: async (name) => {
      try {
        const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
        const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(await res.text());
        return match ? Number(match[1]) : Number.NaN;
      } catch {
        return Number.NaN;
      }
    },
    adminToken: () => mintToken(secret, { role: 'admin', expiresIn: '1h' }),
    agentToken: (agentId) => mintToken(secret, { role: 'agent', agentId }),
    get: (p, token) => request('GET', p, undefined, token),
    post: (p, body, token) => request('POST', p, body, token),
  };
  if (logLevel === 'debug') {
    const listening = await Promise.race([
      waitForLog('listening', (l) => l.event === 'listening', options.startTimeoutMs ?? START_TIMEOUT_MS),
      exited.then(({ code }): never => {
        throw new Error(`hub exited with ${String(code)} before listening: ${stderr.join('')}`);
      }),
    ]);
    port = Number(listening.port);
    url = `http://${host}:${String(port)}`;
  } else {
    const deadline = Date.now() + (options.startTimeoutMs ?? START_TIMEOUT_MS);
    while (!(await healthy())) {
      if (!isAlive()) {
        const how = String(proc.exitCode ?? proc.signalCode);
        throw new Error(`hub exited (${how}) before listening: ${stderr.join('').trim()}`);
      }
      if (Date.now() > deadline) {
        await kill();
        const seconds = String((options.startTimeoutMs ?? START_TIMEOUT_MS) / 1000);
        throw new Error(
          `hub on port ${String(port)} did not answer /health within ${seconds} s: ${stderr.join('').trim()}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  hub.readyAt = Date.now();
  return hub;
}

/** A port on 127.0.0.1 with nothing listening on it (it was free a moment ago and is closed again). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}
