import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cpuMs, rssKb } from '../bench/lib/proc.js';
import { errorInfo } from '../lib/errors.js';
import { hubUrlOf, isolatedEnv, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { ROOT, TEST_SECRET, startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort, portFree } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-lifecycle-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** No FarmLink settings from this machine, a HOME and data dir of its own. */
const cleanEnv = (extra: Record<string, string> = {}) => isolatedEnv(tmp, { FARMLINK_HEADLESS: '1', ...extra });

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track<T extends CliProcess | HubProcess>(child: T): T {
  cleanups.push(async () => {
    if ('waitForOutput' in child) {
      child.kill('SIGKILL');
      await child.exited;
    } else {
      await child.kill();
    }
  });
  return child;
}

/** What `| head -3` does to FarmLink: the reading ends of its stdout and stderr go away. */
function closeConsole(cli: CliProcess): void {
  cli.proc.stdout!.destroy();
  cli.proc.stderr!.destroy();
}

function logText(dataDir: string): string {
  const dir = path.join(dataDir, 'logs');
  if (!fs.existsSync(dir)) return '';
  return fs
    .readdirSync(dir)
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
    .join('');
}

/**
 * Runs `window` (a wait for some sign of life) and asserts the process stayed flat meanwhile: a
 * small share of one core (a hot loop takes all of it) and no steady growth of its memory.
 */
async function expectFlat(pid: number, window: () => Promise<unknown>): Promise<void> {
  const cpu0 = cpuMs(pid);
  const rss0 = rssKb(pid);
  const t0 = performance.now();
  await window();
  const share = (cpuMs(pid) - cpu0) / (performance.now() - t0);
  const growthMb = (rssKb(pid) - rss0) / 1024;
  expect(share, 'share of one core used during the window').toBeLessThan(0.5);
  expect(growthMb, 'RSS growth in MB during the window').toBeLessThan(100);
}

/** The hub's admin API has seen `count` more heartbeats from `agentId`. */
async function heartbeats(
  hub: { get: HubProcess['get']; adminToken: HubProcess['adminToken'] },
  agentId: string,
  count: number,
): Promise<void> {
  const token = await hub.adminToken();
  const seen = new Set<number>();
  await waitUntil(
    `${count} heartbeats from ${agentId}`,
    async () => {
      const { body } = await hub.get('/api/v1/admin/agents', token);
      const agent = (body as { agents: Array<{ agent_id: string; last_heartbeat_at: number | null }> }).agents.find(
        (a) => a.agent_id === agentId,
      );
      if (agent?.last_heartbeat_at) seen.add(agent.last_heartbeat_at);
      return seen.size >= count;
    },
    30_000,
    50,
  );
}

const FAST_HEARTBEAT = ['--set', 'connection.heartbeat_interval=0.2'];

describe('a closed console (stdout and stderr closed by their reader)', () => {
  it('farmlink agent registers, keeps in touch, stays flat in CPU and memory, logs to its file, and stops on SIGTERM', async () => {
    const hub = track(await startHub());
    const { env, dataDir } = cleanEnv();
    const cli = track(
      spawnCli(
        [
          'agent',
          '--server-url',
          hub.url,
          '--agent-id',
          'pc-closed',
          '--token',
          await hub.agentToken('pc-closed'),
          '--data-dir',
          dataDir,
          '--panel-port',
          '0',
          '--log-level',
          'debug',
          ...FAST_HEARTBEAT,
        ],
        env,
      ),
    );
    closeConsole(cli);
    await hub.waitForLog(
      'the agent registered',
      (l) => l.agent_id === 'pc-closed' && /registered from/.test(l.msg),
      20_000,
    );
    await expectFlat(cli.proc.pid!, () => heartbeats(hub, 'pc-closed', 12));
    cli.kill('SIGTERM');
    const run = await cli.exited;
    expect(run.code).toBe(0);
    const log = logText(dataDir);
    expect(log).toContain('The console can no longer be written to (EPIPE)');
    expect(log).toContain('Agent stopped');
    expect(log).not.toContain('Internal error');
  });

  it('farmlink hub serves and stops on SIGTERM', async () => {
    const port = await freePort();
    const { env } = cleanEnv({ FARMLINK_HUB_SECRET: TEST_SECRET });
    const cli = track(spawnCli(['hub', '--port', String(port), '--log-format', 'json', '--log-level', 'debug'], env));
    closeConsole(cli);
    const url = `http://127.0.0.1:${port}`;
    await waitUntil('the hub answering /health', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);
    // Its own helpers, pointed at the hub with the closed console.
    const helper = await startHub();
    track(helper);
    const asThisHub: Pick<HubProcess, 'get' | 'adminToken'> = {
      adminToken: () => helper.adminToken(),
      get: async (p, token) => {
        const res = await fetch(`${url}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        const text = await res.text();
        return { status: res.status, body: JSON.parse(text) as unknown, text };
      },
    };
    const agent = track(
      spawnCli(
        [
          'agent',
          '--server-url',
          url,
          '--agent-id',
          'pc-to-closed-hub',
          '--token',
          await helper.agentToken('pc-to-closed-hub'),
          '--no-log-file',
          '--no-panel',
          ...FAST_HEARTBEAT,
        ],
        cleanEnv().env,
      ),
    );
    await agent.waitForOutput('Registered as', 20_000);
    await expectFlat(cli.proc.pid!, () => heartbeats(asThisHub, 'pc-to-closed-hub', 12));
    agent.kill('SIGTERM');
    await agent.exited;
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
  });

  it('farmlink hub with a generated secret (its export line on the closed stderr) keeps serving and stops on SIGTERM', async () => {
    const port = await freePort();
    const cli = track(spawnCli(['hub', '--port', String(port)], cleanEnv().env));
    closeConsole(cli);
    const url = `http://127.0.0.1:${port}`;
    await waitUntil('the hub answering /health', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);
    await expectFlat(cli.proc.pid!, async () => {
      for (let i = 0; i < 20; i += 1) {
        expect((await fetch(`${url}/health`)).ok).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 100)); // paced: the process is watched over time, not hammered
      }
    });
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
  });

  it('farmlink start (local hub and agent in one process) registers, stays flat and stops on SIGTERM', async () => {
    const { env, dataDir } = cleanEnv();
    const cli = track(
      spawnCli(
        ['start', '--headless', '--hub-port', '0', '--panel-port', '0', '--data-dir', dataDir, ...FAST_HEARTBEAT],
        env,
      ),
    );
    closeConsole(cli);
    await waitUntil(
      'the agent registered with the local hub',
      () => logText(dataDir).includes('Registered as'),
      20_000,
      50,
    );
    const panel = await waitUntil(
      'the panel address',
      () => fs.readFileSync(path.join(dataDir, 'panel-address'), 'utf8').trim(),
      10_000,
      50,
    );
    // Sign of life for the window: the panel answers, again and again.
    await expectFlat(cli.proc.pid!, async () => {
      for (let i = 0; i < 20; i += 1) {
        expect((await fetch(panel)).ok).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 100)); // paced: the process is watched over time, not hammered
      }
    });
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
    expect(logText(dataDir)).toContain('Agent stopped');
  });
});

const REPORT_EXIT = pathToFileURL(path.join(ROOT, 'test', 'fixtures', 'report-exit.js')).href;

/**
 * With process.exit turned into a report (see fixtures/report-exit.js), the graceful path must
 * leave nothing holding the event loop: then the process ends by itself, the moment its work is
 * done. Timing-free: what is asserted is the list of what is still open.
 */
async function expectNothingHeld(cli: CliProcess): Promise<void> {
  const run = await cli.exited;
  const report = /EXIT-REPORT (.*)/.exec(run.stderr)?.[1];
  expect(report, `stderr: ${run.stderr.slice(-1000)}`).toBeDefined();
  expect(JSON.parse(report!)).toEqual([]);
  expect(run.code).toBe(0);
}

describe('exit once the work is done: nothing holds the event loop after the last line', () => {
  it('farmlink agent, connected, on SIGTERM', async () => {
    const hub = track(await startHub());
    const { env, dataDir } = cleanEnv({ NODE_OPTIONS: `--import ${REPORT_EXIT}` });
    const cli = track(
      spawnCli(
        [
          'agent',
          '--server-url',
          hub.url,
          '--agent-id',
          'pc-exit',
          '--token',
          await hub.agentToken('pc-exit'),
          '--data-dir',
          dataDir,
          '--panel-port',
          '0',
          '--log-format',
          'json',
        ],
        env,
      ),
    );
    await cli.waitForOutput('Registered as', 20_000);
    cli.kill('SIGTERM');
    await expectNothingHeld(cli);
    expect(cli.stdout).toContain('Agent stopped');
  });

  it('farmlink hub, draining a connected agent, on SIGTERM', async () => {
    const cli = track(
      spawnCli(
        ['hub', '--port', '0', '--log-format', 'json', '--drain-timeout', '5'],
        cleanEnv({ FARMLINK_HUB_SECRET: TEST_SECRET, NODE_OPTIONS: `--import ${REPORT_EXIT}` }).env,
      ),
    );
    const hubUrl = await hubUrlOf(cli);
    const helper = track(await startHub());
    const agent = track(
      spawnCli(
        [
          'agent',
          '--server-url',
          hubUrl,
          '--agent-id',
          'pc-drained',
          '--token',
          await helper.agentToken('pc-drained'),
          '--no-log-file',
          '--no-panel',
        ],
        cleanEnv().env,
      ),
    );
    await agent.waitForOutput('Registered as', 20_000);
    cli.kill('SIGTERM');
    await expectNothingHeld(cli);
    expect(cli.stdout).toContain('stopped');
  });

  it('farmlink start, on SIGTERM', async () => {
    const { env, dataDir } = cleanEnv({ NODE_OPTIONS: `--import ${REPORT_EXIT}` });
    const cli = track(
      spawnCli(
        ['start', '--headless', '--hub-port', '0', '--panel-port', '0', '--data-dir', dataDir, '--log-format', 'json'],
        env,
      ),
    );
    await cli.waitForOutput('Registered as', 20_000);
    cli.kill('SIGTERM');
    await expectNothingHeld(cli);
    expect(cli.stdout).toContain('Agent stopped');
  });
});

// ---- npm start ----------------------------------------------------------------------------------

interface NpmStart {
  npm: ChildProcess;
  output: () => string;
  farmlinkPid: number;
  ports: number[];
  npmExited: Promise<void>;
}

/**
 * `npm start -- …` as a person runs it, with a HOME, data dir and ports of its own. The build step
 * is skipped (FARMLINK_SKIP_BUILD=1): the test run built dist/ once, and rebuilding it here would
 * rewrite files under the other tests' feet. The signal path — npm, its script shell, FarmLink —
 * is the one `npm start` uses.
 */
async function npmStart(): Promise<NpmStart> {
  const { env, dataDir } = cleanEnv({ FARMLINK_SKIP_BUILD: '1' });
  const ports = [await freePort(), await freePort()];
  const npm = spawn(
    'npm',
    [
      'start',
      '--',
      '--headless',
      '--hub-port',
      String(ports[0]),
      '--panel-port',
      String(ports[1]),
      '--data-dir',
      dataDir,
      '--log-format',
      'json',
      '--no-log-file',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  npm.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  npm.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const npmExited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  let farmlinkPid = 0;
  cleanups.push(async () => {
    npm.kill('SIGKILL');
    if (farmlinkPid && alive(farmlinkPid)) process.kill(farmlinkPid, 'SIGKILL');
    await npmExited;
  });
  await waitUntil('FarmLink registered with its local hub', () => output.includes('Registered as'), 30_000, 50).catch(
    (error: unknown) => {
      throw new Error(`${errorInfo(error).message}; output: ${output.slice(-1500)}`);
    },
  );
  // The node process that runs FarmLink, however deep under npm (npm's own title repeats the arguments).
  const line = execFileSync('ps', ['-o', 'pid=,args=', '-e'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => /^\s*\d+ \S*node /.test(l) && l.includes(`--panel-port ${ports[1]} `));
  farmlinkPid = Number(/^\s*(\d+)/.exec(line ?? '')?.[1]);
  expect(farmlinkPid, 'the FarmLink process').toBeGreaterThan(0);
  return { npm, output: () => output, farmlinkPid, ports, npmExited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function expectStoppedGracefully(run: NpmStart): Promise<void> {
  await waitUntil('FarmLink to say it stopped', () => run.output().includes('Agent stopped'), 30_000, 50).catch(
    (error: unknown) => {
      throw new Error(
        `${errorInfo(error).message}; processes: ${execFileSync('ps', ['-o', 'pid,ppid,stat,args', '--forest', '-e'])
          .toString()
          .split('\n')
          .filter((l) => l.includes(String(run.farmlinkPid)) || l.includes('npm'))
          .join('\n')}`,
      );
    },
  );
  await waitUntil('the FarmLink process to be gone', () => !alive(run.farmlinkPid), 30_000, 50);
  await run.npmExited;
  for (const port of run.ports) expect(await portFree(port), `port ${port} free`).toBe(true);
}

describe('npm start: a signal to npm stops FarmLink', () => {
  it('SIGINT to npm: FarmLink stops gracefully and leaves nothing behind', async () => {
    const run = await npmStart();
    run.npm.kill('SIGINT');
    await expectStoppedGracefully(run);
    expect(run.output()).toContain('SIGINT received');
  });

  it('SIGTERM to npm: FarmLink stops gracefully and leaves nothing behind', async () => {
    const run = await npmStart();
    run.npm.kill('SIGTERM');
    await expectStoppedGracefully(run);
    expect(run.output()).toContain('SIGTERM received');
  });

  it('npm killed outright (SIGKILL): FarmLink notices it is orphaned and stops gracefully', async () => {
    const run = await npmStart();
    run.npm.kill('SIGKILL');
    // npm runs scripts with its own stdio, so FarmLink still writes to this test's pipes.
    await expectStoppedGracefully(run);
    expect(run.output()).toContain('SIGTERM received');
  });
});
