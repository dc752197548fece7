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
  /** Its working directory (a cluster node's config lives here): kept across kill/restart when it holds anything, removed by stop(). */
  dir: string;
  /** SIGKILL, and wait for the process to exit and the port to close (once exited, only the waiting). */
  kill(): Promise<void>;
  /** Start again on the same port, with the same arguments and directory (after kill). */
  restart(): Promise<RedisProcess>;
  /** SIGSTOP / SIGCONT: Redis stops answering but keeps its connections (a hang, not a crash). */
  pause(): void;
  resume(): void;
  /** kill() and remove the directory: the end of this server for good. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** True when a Redis server answers PING on the port (not merely something accepting TCP). */
async function redisAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

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

const exited = (proc: ChildProcess) => proc.exitCode !== null || proc.signalCode !== null;

export async function startRedis(
  options: { port?: number; args?: string[]; dir?: string } = {},
): Promise<RedisProcess> {
  const port = options.port ?? (await freePort());
  const args = options.args ?? [];
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-redis-'));
  fs.mkdirSync(dir, { recursive: true }); // kill() removed it if it was empty
  dirs.add(dir);
  // Redis logs to stdout: keep the tail (and keep the pipe drained) to explain a failed start.
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--protected-mode',
      'no',
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  running.add(proc);
  const exit = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exit.then(() => running.delete(proc));
  try {
    await waitUntil(
      `redis-server on port ${port}`,
      async () => {
        if (exited(proc))
          throw new Error(
            `redis-server exited (${proc.exitCode ?? proc.signalCode}): ${output.trim().split('\n').slice(-3).join(' | ')}`,
          );
        return redisAnswers(port);
      },
      10_000,
      20,
    );
  } catch (error) {
    proc.kill('SIGKILL');
    await exit;
    if (!options.dir) {
      dirs.delete(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    throw error;
  }
  const kill = async () => {
    if (!exited(proc)) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
    await exit;
    await waitUntil(`redis on ${port} to be gone`, async () => !(await portAnswers(port)), 10_000, 20);
    // An empty directory (no persistence, no cluster config) is not worth keeping for a restart.
    try {
      fs.rmdirSync(dir);
      dirs.delete(dir);
    } catch {
      // not empty (a cluster node's config) or gone already: restart() needs it, stop() removes it
    }
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc,
    dir,
    kill,
    restart: async () => {
      await kill();
      return startRedis({ port, args, dir });
    },
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
    stop: async () => {
      await kill();
      dirs.delete(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  nodes: RedisProcess[];
  seeds: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
}

/**
 * Three masters (and, with `replicas: 1`, a replica of each, which takes over when its master
 * dies), joined with `redis-cli --cluster create`.
 */
export async function startRedisCluster(options: { replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
  const replicas = options.replicas ?? 0;
  const nodes: RedisProcess[] = [];
  const stop = async () => {
    for (const node of nodes) await node.stop();
  };
  try {
    for (let i = 0; i < 3 * (1 + replicas); i += 1) {
      const port = await freePort();
      // The cluster bus port defaults to port + 10000, which may be taken or above 65535 for a
      // port from the ephemeral range: pick a free one explicitly.
      const busPort = await freePort();
      nodes.push(
        await startRedis({
          port,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(busPort),
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      );
    }
    execFileSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { stdio: 'ignore', timeout: 20_000 },
    );
    // Wait until every node agrees the cluster is up.
    await waitUntil(
      'cluster state ok',
      () =>
        nodes.every((n) =>
          execFileSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], {
            encoding: 'utf8',
            timeout: 5000,
          }).includes('cluster_state:ok'),
        ),
      20_000,
      100,
    );
    if (replicas > 0) {
      // A replica that never synced with its master is not eligible to replace it: wait for the links.
      await waitUntil(
        'every replica in sync with its master',
        () =>
          nodes.filter((n) =>
            execFileSync('redis-cli', ['-p', String(n.port), 'info', 'replication'], {
              encoding: 'utf8',
              timeout: 5000,
            }).includes('role:slave'),
          ).length ===
            3 * replicas &&
          nodes.every((n) => {
            const info = execFileSync('redis-cli', ['-p', String(n.port), 'info', 'replication'], {
              encoding: 'utf8',
              timeout: 5000,
            });
            return !info.includes('role:slave') || info.includes('master_link_status:up');
          }),
        20_000,
        100,
      );
    }
    await sleep(200);
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), stop };
}
