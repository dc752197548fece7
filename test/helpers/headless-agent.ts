import fs from 'node:fs';
import { PanelAttachment } from '../../cli/startup/panel-attachment.js';
import type { Snapshot } from '../../protocol/agent-host.js';
import { spawnCli, type CliProcess } from './cli-process.js';

/**
 * A headless `farmlink agent` (the built CLI) started from a config file, with JSON logs, its
 * panel on a free port, and the test attached to that panel the way the desktop app attaches, so
 * the test reads the agent's own snapshot (connection, mode, outbox) rather than guessing from logs.
 */
export interface HeadlessAgent {
  cli: CliProcess;
  readonly pid: number;
  readonly alive: boolean;
  /** A fresh snapshot, asked for (pushed snapshots are coalesced and not sent on every acknowledgement). */
  snapshot(): Promise<Snapshot>;
  /** SIGKILL: no graceful path, the outbox's files stay as the kill left them. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

export interface StartHeadlessAgentOptions {
  configFile: string;
  dataDir: string;
  env: Record<string, string | undefined>;
  timeoutMs?: number;
}

export async function startHeadlessAgent(options: StartHeadlessAgentOptions): Promise<HeadlessAgent> {
  const cli = spawnCli(
    [
      'agent',
      '--config',
      options.configFile,
      '--data-dir',
      options.dataDir,
      '--panel-port',
      '0',
      '--no-log-file',
      '--log-format',
      'json',
    ],
    options.env,
  );
  let exited = false;
  void cli.exited.then(() => {
    exited = true;
  });
  let panel: PanelAttachment;
  try {
    await cli.waitForOutput('"event":"panel"', options.timeoutMs ?? 20_000);
    const line = cli.stdout.split('\n').find((l) => l.includes('"event":"panel"'))!;
    const { url, token_file: tokenFile } = JSON.parse(line) as { url: string; token_file: string };
    panel = await PanelAttachment.open({ address: url, token: fs.readFileSync(tokenFile, 'utf8').trim() });
  } catch (error) {
    cli.kill('SIGKILL');
    await cli.exited;
    throw error;
  }
  const handlers = panel.handlers();
  return {
    cli,
    get pid() {
      if (cli.proc.pid === undefined) throw new Error('the agent process has no pid (it failed to spawn)');
      return cli.proc.pid;
    },
    get alive() {
      return !exited;
    },
    snapshot: async () => await handlers.getSnapshot({}),
    kill: async () => {
      panel.close();
      cli.kill('SIGKILL');
      await cli.exited;
    },
    stop: async () => {
      panel.close();
      cli.kill('SIGTERM');
      await cli.exited;
    },
  };
}
