import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { sleep, waitUntil } from './wait.js';

/**
 * Real Redis for the tests (Debian's redis-server, installed by .ci/run): started on a free
 * loopback port with no persistence, killed at the end. Never a mock.
 */
export interface RedisProcess {
  port: number;
  url: string;
  proc: ChildProcess;
  /** SIGKILL, and wait for the port to close. */
  kill(): Promise<void>;
  /** Start again on the same port (after kill). */
  restart(): Promise<RedisProcess>;
  /** SIGSTOP / SIGCONT: Redis stops answering but keeps its connections (a hang, not a crash). */
  pause(): void;
  resume(): void;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

async function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(options: { port?: number; args?: string[] } = {}): Promise<RedisProcess> {
  const port = options.port ?? (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', ...(options.args ?? [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  await waitUntil(`redis-server on port ${port}`, () => portAnswers(port), 10_000, 20);
  const handle: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc,
    kill: async () => {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await waitUntil(`redis on ${port} to be gone`, async () => !(await portAnswers(port)), 10_000, 20);
    },
    restart: () => startRedis({ port, args: options.args ?? [] }),
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
  };
  return handle;
}

export interface RedisCluster {
  nodes: RedisProcess[];
  seeds: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
}

/** Three masters, no replicas, joined with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisProcess[] = [];
  for (let i = 0; i < 3; i += 1) {
    const port = await freePort();
    nodes.push(await startRedis({ port, args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'] }));
  }
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore', timeout: 20_000 });
  // Wait until every node agrees the cluster is up.
  await waitUntil('cluster state ok', () =>
    nodes.every((n) => execFileSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok')),
  20_000, 100);
  await sleep(200);
  return {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    stop: async () => {
      for (const node of nodes) await node.kill();
    },
  };
}
