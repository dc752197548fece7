// What `npm start` runs: builds FarmLink, then runs `farmlink start` in this same process.
//
// package.json says `exec node scripts/start.js`: npm runs a script through a shell (`sh -c` on
// Linux and macOS, cmd.exe on Windows) and sends SIGINT/SIGTERM to that shell only. dash defers
// SIGINT until its child exits and dies of SIGTERM leaving the child behind, so with a shell in
// between `kill -INT <npm>` did nothing and `kill -TERM <npm>` orphaned FarmLink on its ports.
// `exec` makes this script the process npm signals (cmd.exe has no `exec`: exec.cmd beside
// package.json stands in for it; there Ctrl+C reaches every process of the console anyway).
// Running the CLI in-process, rather than as a child, leaves no second process to forward to.
import { spawn } from 'node:child_process';
import process from 'node:process';
import path from 'node:path';
import { setInterval, clearInterval } from 'node:timers';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'bin', 'farmlink.js');
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 };

/** `npm run build`, with SIGINT/SIGTERM passed on to it; resolves with the exit code to use, or 0. */
function build() {
  // FARMLINK_SKIP_BUILD=1: dist/ is known to be fresh (the tests build it once for all of them).
  if (process.env.FARMLINK_SKIP_BUILD === '1') return Promise.resolve(0);
  // npm_execpath is the package manager that runs this script; without it, npm from the PATH
  // (through cmd.exe on Windows, where npm is a .cmd file).
  const viaNpm = process.env.npm_execpath;
  const child = viaNpm
    ? spawn(process.execPath, [viaNpm, 'run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
    : spawn('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  let stoppedBy;
  const forward = (signal) => {
    stoppedBy = signal;
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    const done = (code) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(stoppedBy ? SIGNAL_EXIT[stoppedBy] : code);
    };
    child.once('error', (error) => {
      process.stderr.write(`npm start: could not run the build: ${error.message}\n`);
      done(1);
    });
    child.once('exit', (code, signal) => done(code ?? SIGNAL_EXIT[signal] ?? 1));
  });
}

/**
 * When whatever started us goes away without a signal (npm killed with SIGKILL, its terminal
 * gone), we are re-parented: stop as if told to, rather than holding the hub and panel ports
 * with no one left to stop us. Windows does not re-parent (and its console's Ctrl+C reaches
 * every process), so there is nothing to watch there.
 */
function stopWhenOrphaned() {
  if (process.platform === 'win32') return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, 1000);
  timer.unref();
}

const code = await build();
if (code !== 0) process.exit(code);
stopWhenOrphaned();
process.argv = [process.argv[0], cli, 'start', ...process.argv.slice(2)];
await import(pathToFileURL(cli).href);
