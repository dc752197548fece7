import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LogBuffer } from '../agent/host/log-buffer.js';
import { AGENT_LOCK_FILE } from '../cli/startup/agent-lock.js';
import { DesktopAgent } from '../cli/startup/desktop-agent.js';
import { ExitCode } from '../cli/exit-codes.js';
import { isolatedEnv, runCli, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { startHub, type HubProcess, type LogLine } from './helpers/hub-process.js';
import { waitUntil } from './helpers/wait.js';

/**
 * One agent per PC: a headless agent (the built CLI) and the desktop app's start-up logic (run
 * here in Node, without Electron) on one data dir give one agent on the hub, never two that push
 * each other off (4409).
 */

let hub: HubProcess;
let parent: string;
const cleanup: Array<() => Promise<unknown> | undefined> = [];

beforeAll(async () => {
  hub = await startHub();
  parent = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-one-agent-'));
});
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});
afterAll(async () => {
  await hub.kill();
  fs.rmSync(parent, { recursive: true, force: true });
});

const registrations = (id: string) => hub.logs.filter((l) => l.agent_id === id && l.msg.includes('registered from'));
const replacements = (id: string) =>
  hub.logs.filter((l: LogLine) => l.agent_id === id && (l.msg.includes('connected again') || l.kind === 'replaced'));

/** The hub keeps one entry per agent id: this says the id is connected, the logs say how often it registered. */
async function connectedAgents(id: string): Promise<number> {
  const { body } = await hub.get('/api/v1/admin/agents', await hub.adminToken());
  return (body as { agents: Array<{ agent_id: string }> }).agents.filter((a) => a.agent_id === id).length;
}

async function headlessAgent(
  id: string,
  dataDir: string,
  env: Record<string, string | undefined>,
): Promise<CliProcess> {
  const args = [
    'agent',
    '--server-url',
    hub.url,
    '--agent-id',
    id,
    '--token',
    await hub.agentToken(id),
    '--data-dir',
    dataDir,
  ];
  const cli = spawnCli([...args, '--panel-port', '0', '--no-log-file', '--log-format', 'json'], env);
  cleanup.push(async () => {
    cli.kill('SIGTERM');
    await cli.exited;
  });
  await cli.waitForOutput('"event":"panel"');
  await hub.waitForLog(`${id} registered`, (l) => l.agent_id === id && l.msg.includes('registered from'));
  return cli;
}

function desktop(
  dataDir: string,
  env: Record<string, string | undefined>,
  extra: Record<string, string | boolean> = {},
) {
  const lines: Array<{ msg: string; [key: string]: unknown }> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  const open = DesktopAgent.open({
    values: { 'data-dir': dataDir, 'no-log-file': true, ...extra },
    logger,
    hubLogger: logger,
    logs: new LogBuffer(),
    env: { ...process.env, ...env },
    retryMs: 100,
  });
  return { open, lines };
}

describe('one agent per PC', () => {
  it('the desktop start-up finds a running headless agent, attaches to it and starts no second agent; its calls reach that agent', async () => {
    const { env, dataDir } = isolatedEnv(parent);
    const id = 'pc-attach';
    const headless = await headlessAgent(id, dataDir, env);

    const { open, lines } = desktop(dataDir, env);
    const app = await open;
    cleanup.push(() => app.stop());
    expect(app.mode).toBe('attached');
    expect(app.agentPid).toBe(headless.proc.pid);
    expect(app.snapshot()).toMatchObject({
      agent: { id },
      agent_process: { pid: headless.proc.pid, runs_in: 'headless', attached: true },
    });
    expect(lines.map((l) => l.msg).join('\n')).toContain(
      `Attached to the agent running on this PC (pid ${String(headless.proc.pid)})`,
    );
    expect(fs.readFileSync(path.join(dataDir, AGENT_LOCK_FILE), 'utf8')).toContain(
      `"pid":${String(headless.proc.pid)}`,
    );

    // "Reconnect now" through the attachment: the running agent drops its connection and registers again.
    await app.reconnectNow('Reconnect requested from the tray');
    await headless.waitForOutput('Reconnect requested from the panel');
    await waitUntil('a second registration', () => registrations(id).length >= 2);
    // A setting call answers as the agent answers it (the mode it already has: nothing to reconnect).
    await expect(app.setMode('auto')).resolves.toBe('auto');

    // One agent on the hub: its first registration and the one after the reconnect, no other, and
    // no connection ever replaced another of the same id.
    expect(await connectedAgents(id)).toBe(1);
    expect(registrations(id)).toHaveLength(2);
    expect(replacements(id)).toEqual([]);
  });

  it('with no agent running, the desktop start-up hosts one (holding the data dir), and a headless agent then is refused', async () => {
    const { env, dataDir } = isolatedEnv(parent);
    const id = 'pc-host';
    const { open, lines } = desktop(dataDir, env, {
      'server-url': hub.url,
      'agent-id': id,
      token: await hub.agentToken(id),
    });
    const app = await open;
    cleanup.push(() => app.stop());
    expect(app.mode).toBe('hosted');
    expect(app.snapshot().agent_process).toEqual({ pid: process.pid, runs_in: 'desktop', attached: false });
    expect(lines.map((l) => l.msg).join('\n')).toContain('this app runs the agent');
    await hub.waitForLog(`${id} registered`, (l) => l.agent_id === id && l.msg.includes('registered from'));

    const second = await runCli(
      [
        'agent',
        '--server-url',
        hub.url,
        '--agent-id',
        id,
        '--token',
        await hub.agentToken(id),
        '--data-dir',
        dataDir,
        '--no-log-file',
      ],
      env,
    );
    expect(second.code).toBe(ExitCode.ALREADY_RUNNING);
    expect(second.stderr).toContain(
      `an agent already runs for the data dir ${dataDir} (pid ${String(process.pid)}, started by the desktop app`,
    );
    expect(await connectedAgents(id)).toBe(1);
    expect(registrations(id)).toHaveLength(1);
    expect(replacements(id)).toEqual([]);
  });

  it('a second headless agent on the same data dir is refused with exit 75 naming the first; `start` points at it and exits 0', async () => {
    const { env, dataDir } = isolatedEnv(parent);
    const id = 'pc-twice';
    const first = await headlessAgent(id, dataDir, env);
    const panel = JSON.parse(first.stdout.split('\n').find((l) => l.includes('"event":"panel"'))!) as { url: string };

    const second = await runCli(
      [
        'agent',
        '--server-url',
        hub.url,
        '--agent-id',
        id,
        '--token',
        await hub.agentToken(id),
        '--data-dir',
        dataDir,
        '--no-log-file',
      ],
      env,
    );
    expect(second.code).toBe(ExitCode.ALREADY_RUNNING);
    expect(second.stderr).toContain(
      `pid ${String(first.proc.pid)}, started by \`farmlink agent\`; its panel: ${panel.url}`,
    );
    expect(second.stderr).toContain('[AGENT_ALREADY_RUNNING]');

    const start = await runCli(
      ['start', '--headless', '--hub-port', '0', '--data-dir', dataDir, '--no-log-file', '--log-format', 'json'],
      env,
    );
    expect(start.code).toBe(ExitCode.OK);
    expect(start.stdout).toContain('"event":"already_running"');
    expect(start.stdout).toContain(`pid ${String(first.proc.pid)}`);

    expect(await connectedAgents(id)).toBe(1);
    expect(registrations(id)).toHaveLength(1);
    expect(replacements(id)).toEqual([]);
  });

  it('a lock left by a process that is gone does not block a start', async () => {
    const { env, dataDir } = isolatedEnv(parent);
    const id = 'pc-stale';
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = dead.pid!;
    await new Promise((resolve) => dead.once('exit', resolve));
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(
      path.join(dataDir, AGENT_LOCK_FILE),
      JSON.stringify({ pid: deadPid, runner: 'agent', started_at: 1, panel: 'http://127.0.0.1:1' }),
    );

    const cli = await headlessAgent(id, dataDir, env);
    expect(fs.readFileSync(path.join(dataDir, AGENT_LOCK_FILE), 'utf8')).toContain(`"pid":${String(cli.proc.pid)}`);
    await cli.waitForOutput(`(pid ${String(deadPid)}, started by \`farmlink agent\``);
    await cli.waitForOutput('ended without stopping cleanly');
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(ExitCode.OK);
    // Stopped gracefully: the data dir is free again.
    expect(fs.existsSync(path.join(dataDir, AGENT_LOCK_FILE))).toBe(false);
  });

  it('when the attached agent goes away, the desktop decides again: it runs the agent itself and says so', async () => {
    const { env, dataDir } = isolatedEnv(parent);
    const id = 'pc-handover';
    const headless = await headlessAgent(id, dataDir, env);
    const { open, lines } = desktop(dataDir, env, {
      'server-url': hub.url,
      'agent-id': id,
      token: await hub.agentToken(id),
    });
    const app = await open;
    cleanup.push(() => app.stop());
    expect(app.mode).toBe('attached');
    const decided = new Promise<void>((resolve) => app.onDecided(resolve));

    headless.kill('SIGTERM');
    expect((await headless.exited).code).toBe(ExitCode.OK);
    await decided;
    expect(app.mode).toBe('hosted');
    const said = lines.map((l) => l.msg).join('\n');
    expect(said).toContain(`The agent this app was attached to (pid ${String(headless.proc.pid)}) went away`);
    expect(said).toContain('this app runs the agent');
    await waitUntil("the app's agent registered", () => registrations(id).length >= 2);
    expect(await connectedAgents(id)).toBe(1);
    expect(registrations(id)).toHaveLength(2);
    expect(replacements(id)).toEqual([]);
  });
});
