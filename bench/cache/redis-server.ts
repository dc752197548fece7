import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { exited, track } from '../lib/children.js';
import { sleep } from '../lib/time.js';
import { removeTempDir, tempDir } from './common.js';

/**
 * A real redis-server (Debian's) for the bench: loopback only, a free port, no persistence, its
 * own temporary directory. Tracked so it is SIGKILLed when the bench exits for any reason.
 */
export interface BenchRedis {
  port: number;
  url: string;
  pid: number;
  /** SIGKILL (after SIGCONT, in case it is paused); resolves when the port no longer answers. */
  kill(): Promise<void>;
  /** A new redis-server on the same port (after kill). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: Redis stops answering but its connections stay open (a hang, not a crash). */
  pause(): void;
  resume(): void;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(20);
  }
}

export async function startRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const dir = tempDir('redis');
  let proc: ChildProcess;
  const launch = async () => {
    proc = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no'], { stdio: 'ignore' }));
    const failed = new Promise<never>((_, reject) => proc.once('error', reject));
    await Promise.race([until(`redis-server on 127.0.0.1:${port}`, () => answers(port), 10_000), failed]);
  };
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await exited(proc);
    await until(`port ${port} to close`, async () => !(await answers(port)), 10_000);
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return proc.pid ?? -1;
    },
    kill,
    restart: launch,
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
    stop: async () => {
      await kill();
      removeTempDir(dir);
    },
  };
}
