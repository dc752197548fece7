import { startRedis as startRealRedis } from '../../test/helpers/redis-server.js';

/**
 * A real redis-server (Debian's) for the bench: the tests' helper (loopback only, a free port, no
 * persistence, its own temporary directory, SIGKILLed when the process exits), behind one handle
 * that stays valid across kill and restart.
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

export async function startRedis(): Promise<BenchRedis> {
  let current = await startRealRedis();
  return {
    port: current.port,
    url: current.url,
    get pid() {
      return current.proc.pid ?? -1;
    },
    kill: () => current.kill(),
    restart: async () => {
      current = await current.restart();
    },
    pause: () => current.pause(),
    resume: () => current.resume(),
    stop: () => current.stop(),
  };
}
