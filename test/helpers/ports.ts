import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/*
 * Ports that a test must know before the process under test starts (a port that must be refused,
 * a chaos proxy's target, a hub that has to come back on the same port, Redis). Anything that can
 * listen on port 0 and report its port should do that instead (startHub does).
 *
 * "Bind port 0, read it, close it" is a race: the OS hands the same ephemeral port to the next
 * caller (another vitest fork, an agent's outgoing connection, another worktree's suite) before
 * the test binds it. So ports come from below the ephemeral range, in a slice per vitest worker,
 * are never handed out twice in one process, are reserved machine-wide by an exclusive lock file
 * (other suites running at the same time share the worker ids), and are checked free by binding.
 */

/** Below Linux's ephemeral range (32768+), so port-0 listeners and outgoing sockets never take them. */
const FIRST_PORT = 20_000;
const SLICE = 1_500;
const SLICES = 8;
const LOCK_DIR = path.join(os.tmpdir(), 'farmlink-test-ports');

const workerId = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1) || 1;
const sliceStart = FIRST_PORT + ((workerId - 1) % SLICES) * SLICE;
const handedOut = new Set<number>();
const locks = new Set<string>();
let next = 0;

process.on('exit', () => {
  for (const lock of locks) fs.rmSync(lock, { force: true });
});

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the machine-wide reservation of `port`; a lock left by a dead process is cleared for a later round. */
function reserve(port: number): boolean {
  const lock = path.join(LOCK_DIR, String(port));
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
    locks.add(lock);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const owner = Number(fs.readFileSync(lock, 'utf8'));
    if (owner && owner !== process.pid && !pidAlive(owner)) fs.rmSync(lock, { force: true });
    return false;
  }
}

/** Whether a listener could bind `port` on `host` right now (it is closed again at once). */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on `host` that nothing listens on, reserved for this test process: no other caller
 * of freePort (in this process, another vitest worker or another suite on the machine) gets it.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  fs.mkdirSync(LOCK_DIR, { recursive: true });
  for (let tried = 0; tried < SLICE; tried += 1) {
    const port = sliceStart + (next++ % SLICE);
    if (handedOut.has(port)) continue;
    if (!reserve(port)) continue;
    handedOut.add(port);
    if (await portFree(port, host)) return port;
    // Held by something outside the tests: keep it marked as handed out so it is not retried.
  }
  throw new Error(`freePort: no free port left in ${sliceStart}-${sliceStart + SLICE - 1} (worker ${workerId})`);
}
