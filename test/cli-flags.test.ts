import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isolatedEnv, runCli, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort, portFree } from './helpers/ports.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-flags-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cleanEnv = () => isolatedEnv(tmp, { FARMLINK_HEADLESS: '1' });

const children: Array<CliProcess | HubProcess> = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if ('waitForOutput' in child) {
      child.kill('SIGKILL');
      await child.exited;
    } else {
      await child.kill();
    }
  }
});

/** Runs until registered, then stops it gracefully; resolves with everything it printed. */
async function runUntilRegistered(cli: CliProcess): Promise<string> {
  children.push(cli);
  await cli.waitForOutput('Registered as', 20_000);
  cli.kill('SIGTERM');
  const run = await cli.exited;
  expect(run.code).toBe(0);
  return run.stdout;
}

describe('negated flags, through the real CLI', () => {
  it('farmlink agent --no-panel serves no panel and prints no Panel line; --no-log-file writes no log', async () => {
    const hub = await startHub();
    children.push(hub);
    const panelPort = await freePort();
    const { env, dataDir } = cleanEnv();
    const cli = spawnCli(
      [
        'agent',
        '--server-url',
        hub.url,
        '--agent-id',
        'pc-flags',
        '--token',
        await hub.agentToken('pc-flags'),
        '--data-dir',
        dataDir,
        '--panel-port',
        String(panelPort),
        '--no-panel',
        '--no-log-file',
        '--log-format',
        'json',
      ],
      env,
    );
    children.push(cli);
    await cli.waitForOutput('Registered as', 20_000);
    expect(await portFree(panelPort)).toBe(true);
    const stdout = await runUntilRegistered(cli);
    expect(stdout).not.toContain('"event":"panel"');
    expect(stdout).not.toContain('Panel:');
    expect(fs.existsSync(path.join(dataDir, 'logs'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'panel-token'))).toBe(false);
  });

  it('without them, the same agent serves its panel and writes its log (the flags are what turned them off)', async () => {
    const hub = await startHub();
    children.push(hub);
    const panelPort = await freePort();
    const { env, dataDir } = cleanEnv();
    const cli = spawnCli(
      [
        'agent',
        '--server-url',
        hub.url,
        '--agent-id',
        'pc-flags',
        '--token',
        await hub.agentToken('pc-flags'),
        '--data-dir',
        dataDir,
        '--panel-port',
        String(panelPort),
        '--log-format',
        'json',
      ],
      env,
    );
    children.push(cli);
    await cli.waitForOutput('Registered as', 20_000);
    expect(await portFree(panelPort)).toBe(false);
    const stdout = await runUntilRegistered(cli);
    expect(stdout).toContain('"event":"panel"');
    expect(fs.readdirSync(path.join(dataDir, 'logs')).length).toBeGreaterThan(0);
  });

  it('farmlink start --no-panel --no-log-file: the local hub and agent run, with no panel and no log file', async () => {
    const panelPort = await freePort(); // must be known to check that nothing listens on it
    const { env, dataDir } = cleanEnv();
    const cli = spawnCli(
      [
        'start',
        '--headless',
        '--hub-port',
        '0',
        '--panel-port',
        String(panelPort),
        '--data-dir',
        dataDir,
        '--no-panel',
        '--no-log-file',
        '--log-format',
        'json',
      ],
      env,
    );
    children.push(cli);
    await cli.waitForOutput('Registered as', 20_000);
    expect(await portFree(panelPort)).toBe(true);
    const stdout = await runUntilRegistered(cli);
    expect(stdout).not.toContain('Panel:');
    expect(fs.existsSync(path.join(dataDir, 'logs'))).toBe(false);
  });

  it('"--no-" before a flag that has no negation is refused with exit 2, not read as false', async () => {
    for (const [command, flag] of [
      ['start', '--no-headless'],
      ['agent', '--no-panel-allow-remote'],
      ['agent', '--no-help'],
      ['hub', '--no-per-message-deflate'],
    ] as const) {
      const run = await runCli([command, flag], cleanEnv().env, 15_000);
      expect(run.code, `${command} ${flag}`).toBe(2);
      expect(run.stderr).toContain(`Unknown option '${flag}'`);
    }
  });
});
