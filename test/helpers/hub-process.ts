import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { mintToken } from '../../server/auth.js';
import { waitUntil } from './wait.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const FARMLINK_BIN = path.join(ROOT, 'dist/bin/farmlink.js');
export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop';

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [key: string]: unknown;
}

export interface HubProcess {
  proc: ChildProcess;
  port: number;
  /** http://127.0.0.1:PORT — what goes in server.url. */
  url: string;
  /** ws://127.0.0.1:PORT/api/v1/pc/ws */
  wsUrl: string;
  logs: LogLine[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitForLog(what: string, predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  adminToken(): Promise<string>;
  agentToken(agentId: string): Promise<string>;
  get(path: string, token?: string): Promise<{ status: number; body: unknown; text: string }>;
  post(path: string, body: unknown, token?: string): Promise<{ status: number; body: unknown; text: string }>;
}

export interface StartHubOptions {
  /** A port the test must know in advance (a hub coming back on it); by default the hub picks one and reports it. */
  port?: number;
  args?: string[];
  secret?: string;
  env?: Record<string, string>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** Spawns `farmlink hub` (the built CLI) with JSON logs and waits until it listens. */
export async function startHub(options: StartHubOptions = {}): Promise<HubProcess> {
  // Port 0: the hub binds a free port itself and logs it, so no other process can take it in between.
  let port = options.port ?? 0;
  const secret = options.secret ?? TEST_SECRET;
  const proc = spawn(
    process.execPath,
    [FARMLINK_BIN, 'hub', '--host', '127.0.0.1', '--port', String(port), '--log-format', 'json', '--log-level', 'debug', ...(options.args ?? [])],
    { env: { ...process.env, FARMLINK_HUB_SECRET: secret, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(proc);
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  let buffer = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        stderr.push(`[stdout] ${line}`);
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
  let url = `http://127.0.0.1:${port}`;
  const waitForLog = (what: string, predicate: (line: LogLine) => boolean, timeoutMs = 10_000) =>
    waitUntil(`hub log: ${what}`, () => logs.find(predicate), timeoutMs);
  const request = async (method: string, p: string, body?: unknown, token?: string) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
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
  const hub: HubProcess = {
    proc,
    get port() {
      return port;
    },
    get url() {
      return url;
    },
    get wsUrl() {
      return `ws://127.0.0.1:${port}/api/v1/pc/ws`;
    },
    logs,
    stderr,
    exited,
    waitForLog,
    signal: (signal) => proc.kill(signal),
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
    adminToken: () => mintToken(secret, { role: 'admin', expiresIn: '1h' }),
    agentToken: (agentId) => mintToken(secret, { role: 'agent', agentId }),
    get: (p, token) => request('GET', p, undefined, token),
    post: (p, body, token) => request('POST', p, body, token),
  };
  const listening = await Promise.race([
    waitForLog('listening', (l) => l.event === 'listening', 15_000),
    exited.then(({ code }): never => {
      throw new Error(`hub exited with ${code} before listening: ${stderr.join('')}`);
    }),
  ]);
  port = Number(listening.port);
  url = `http://127.0.0.1:${port}`;
  return hub;
}
