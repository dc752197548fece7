import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flagOverrides, loadAgentConfig } from '../agent/config/load-config.js';
import { AgentHost, type EventInput } from '../agent/host/agent-host.js';
import { routeCall } from '../agent/host/call-router.js';
import { LogBuffer } from '../agent/host/log-buffer.js';
import { silentLogger } from '../agent/log/logger.js';
import { MemoryOutbox } from '../agent/outbox/memory-outbox.js';
import { ExitCode } from '../cli/exit-codes.js';
import { isolatedEnv, runCli, type CliRun } from './helpers/cli-process.js';
import { FARMLINK_BIN, ROOT, startHub, type HubProcess } from './helpers/hub-process.js';
import { waitUntil } from './helpers/wait.js';

/**
 * `farmlink event` against a real headless agent on a real hub, found through its data dir. The
 * agent is `farmlink agent`'s own start-up path run by test/fixtures/agent-with-test-sender.js,
 * whose one stand-in is the outbox behind sendEvents: it numbers events from 1, journals them to
 * <data dir>/sent-events.jsonl and refuses events named refuse.full / refuse.unavailable.
 */

const AGENT_ID = 'pc-017';
let hub: HubProcess;
let parent: string;
let dataDir: string;
let env: Record<string, string | undefined>;
let agent: ChildProcess;
let agentOutput = '';

beforeAll(async () => {
  hub = await startHub();
  parent = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-event-'));
  ({ env, dataDir } = isolatedEnv(parent));
  const args = [
    '--server-url',
    hub.url,
    '--agent-id',
    AGENT_ID,
    '--token',
    await hub.agentToken(AGENT_ID),
    '--data-dir',
    dataDir,
    '--panel-port',
    '0',
    '--no-log-file',
    '--log-format',
    'json',
  ];
  agent = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/agent-with-test-sender.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  agent.stdout?.setEncoding('utf8').on('data', (chunk: string) => (agentOutput += chunk));
  agent.stderr?.setEncoding('utf8').on('data', (chunk: string) => (agentOutput += chunk));
  await waitUntil('the agent to serve its panel', () => agentOutput.includes('"event":"panel"'), 20_000).catch(
    (error: unknown) => {
      throw new Error(`${(error as Error).message}; agent output: ${agentOutput.slice(-1000)}`);
    },
  );
  await hub.waitForLog(`${AGENT_ID} registered`, (l) => l.agent_id === AGENT_ID && l.msg.includes('registered from'));
});

afterAll(async () => {
  if (agent.exitCode === null) {
    const exited = new Promise((resolve) => agent.once('close', resolve));
    agent.kill('SIGTERM');
    await exited;
  }
  await hub.kill();
  fs.rmSync(parent, { recursive: true, force: true });
});

interface Journaled extends EventInput {
  seq: number;
}

function journal(): Journaled[] {
  const file = path.join(dataDir, 'sent-events.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Journaled);
}

const event = (args: string[]) => runCli(['event', ...args, '--data-dir', dataDir], env, 60_000);

/** The stdout of a run as numbers, one per line. */
const seqsOf = (run: CliRun) => run.stdout.split('\n').filter(Boolean).map(Number);

/** `farmlink event … | head -1` in a shell that reports farmlink's own exit code (pipefail). */
function throughHead(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const quoted = [FARMLINK_BIN, 'event', ...args, '--data-dir', dataDir].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve) => {
    const shell = spawn('bash', ['-c', `set -o pipefail; '${process.execPath}' ${quoted} | head -1`], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    shell.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    shell.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    shell.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('farmlink event', () => {
  it('hands events to the running agent and prints their sequence numbers once accepted', async () => {
    const before = journal().length;
    const run = await event(['job.finished', '--data', '{"job":7,"ok":true}', '--count', '3', '--priority', 'high']);
    expect(run.stderr).toMatch(/^Accepted 3 events \(seq \d+–\d+\) into the outbox of pc-017\n$/);
    expect(run.code).toBe(ExitCode.OK);
    const seqs = seqsOf(run);
    const sent = journal().slice(before);
    expect(sent.map((e) => e.seq)).toEqual(seqs);
    expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2]);
    expect(run.stderr).toContain(`(seq ${seqs[0]}–${seqs[2]})`);
    for (const e of sent) {
      expect(e).toEqual({ seq: e.seq, name: 'job.finished', data: { job: 7, ok: true }, priority: 'high' });
    }
  });

  it('sends data null at normal priority by default, and a lifetime given with --ttl', async () => {
    const before = journal().length;
    const run = await event(['door.opened', '--ttl', '2.5']);
    expect(run.code).toBe(ExitCode.OK);
    expect(run.stderr).toMatch(/^Accepted 1 event \(seq \d+\) into the outbox of pc-017\n$/);
    expect(journal().slice(before)).toEqual([
      { seq: seqsOf(run)[0], name: 'door.opened', data: null, priority: 'normal', ttlMs: 2500 },
    ]);
  });

  it('sends a large count in calls of at most 10,000, every one accepted and printed in order', async () => {
    const before = journal().length;
    const run = await event(['tick', '--count', '25000', '--priority', 'low']);
    expect(run.code).toBe(ExitCode.OK);
    const seqs = seqsOf(run);
    expect(seqs).toHaveLength(25_000);
    expect(seqs.every((seq, i) => seq === seqs[0]! + i)).toBe(true);
    expect(
      journal()
        .slice(before)
        .map((e) => e.seq),
    ).toEqual(seqs);
    expect(run.stderr).toContain(`Accepted 25000 events (seq ${seqs[0]}–${seqs.at(-1)}) into the outbox of pc-017`);
  });

  it('exits 75 with the outbox’s own message when it refuses the events', async () => {
    const before = journal().length;
    const full = await event(['refuse.full']);
    expect(full.code).toBe(ExitCode.OUTBOX_REFUSED);
    expect(full.stdout).toBe('');
    expect(full.stderr).toContain(
      "the agent's outbox refused the events: The outbox is full (10 of 10 messages, all high priority) [OUTBOX_FULL]. None was accepted.",
    );
    const unwritable = await event(['refuse.unavailable', '--count', '2']);
    expect(unwritable.code).toBe(ExitCode.OUTBOX_REFUSED);
    expect(unwritable.stderr).toContain('ENOSPC: no space left on device [OUTBOX_UNAVAILABLE]');
    expect(journal().length).toBe(before);
  });

  it('exits 64 naming the flag for bad arguments, and sends nothing', async () => {
    const before = journal().length;
    // Each run is a process of its own: started together, they cost one start-up's wait.
    const [badJson, badPriority, noName, badCount, unknownFlag] = await Promise.all([
      event(['job', '--data', '{oops']),
      event(['job', '--priority', 'urgent']),
      event(['--count', '2']),
      event(['job', '--count', '0']),
      event(['job', '--colour', 'red']),
    ]);
    expect(badJson.code).toBe(ExitCode.BAD_ARGUMENTS);
    expect(badJson.stderr).toMatch(/^farmlink event: --data: not valid JSON \(.*JSON.*\): \{oops\n/);
    expect(badPriority.code).toBe(ExitCode.BAD_ARGUMENTS);
    expect(badPriority.stderr).toContain('--priority: expected one of high, normal, low, got "urgent"');
    expect(noName.code).toBe(ExitCode.BAD_ARGUMENTS);
    expect(noName.stderr).toContain('expected the event name');
    expect(badCount.code).toBe(ExitCode.BAD_ARGUMENTS);
    expect(badCount.stderr).toContain('--count: expected a whole number ≥ 1, got "0"');
    expect(unknownFlag.code).toBe(ExitCode.BAD_ARGUMENTS);
    expect(unknownFlag.stderr).toContain("Unknown option '--colour'");
    expect(journal().length).toBe(before);
  });

  it('exits 69 saying which data dir it looked at and how to start an agent when none runs', async () => {
    const empty = path.join(parent, 'no-agent-here');
    const run = await runCli(['event', 'job', '--data-dir', empty], env);
    expect(run.code).toBe(ExitCode.UNAVAILABLE);
    expect(run.stderr).toContain(`no agent runs for the data dir ${empty}`);
    expect(run.stderr).toContain('farmlink agent');
    expect(run.stderr).toContain('--data-dir');
  });

  it('keeps sending when its reader goes away (| head -1): every event accepted, exit 0, no crash', async () => {
    for (const count of [1000, 30_000]) {
      const before = journal().length;
      const run = await throughHead(['piped', '--count', String(count)]);
      expect(run.stderr).toMatch(
        new RegExp(`^Accepted ${count} events \\(seq \\d+–\\d+\\) into the outbox of pc-017\\n$`),
      );
      expect(run.code).toBe(ExitCode.OK);
      const sent = journal().slice(before);
      expect(sent).toHaveLength(count);
      expect(run.stdout).toBe(`${sent[0]!.seq}\n`);
    }
  });

  it('prints its help', async () => {
    const run = await runCli(['event', '--help'], env);
    expect(run.code).toBe(ExitCode.OK);
    expect(run.stdout).toContain('Usage: farmlink event NAME');
    const top = await runCli(['--help'], env);
    expect(top.stdout).toMatch(/^ {2}event {4}/m);
  });
});

describe('AgentHost sendEvents', () => {
  function host(events?: { send(inputs: EventInput[]): Promise<number[]> }, outbox?: MemoryOutbox) {
    const dir = fs.mkdtempSync(path.join(parent, 'host-'));
    const overrides = flagOverrides({ serverUrl: 'http://127.0.0.1:1', agentId: 'pc-host', logFile: false });
    const { config } = loadAgentConfig({ file: undefined, overrides });
    return new AgentHost({
      config,
      configFile: undefined,
      defaultConfigFile: path.join(dir, 'agent.yaml'),
      overrides,
      dataDir: dir,
      logger: silentLogger(),
      logs: new LogBuffer(),
      cache: false,
      ...(events ? { events } : {}),
      ...(outbox ? { outbox } : {}),
    });
  }

  it('answers OUTBOX_UNAVAILABLE without an outbox', async () => {
    const result = await routeCall(host().handlers(), 'sendEvents', { events: [{ name: 'x' }] });
    expect(result).toMatchObject({ ok: false, error: { code: 'OUTBOX_UNAVAILABLE' } });
  });

  it('hands the events to its sender as they came, and answers with their seqs and the agent id', async () => {
    const handed: EventInput[][] = [];
    const h = host({
      send: (inputs) => {
        handed.push(inputs);
        return Promise.resolve(inputs.map((_, i) => 41 + i));
      },
    });
    const result = await routeCall(h.handlers(), 'sendEvents', {
      events: [{ name: 'a', data: { n: 1 }, priority: 'high', ttl_ms: 500 }, { name: 'b' }],
    });
    expect(result).toEqual({ ok: true, value: { seqs: [41, 42], agent_id: 'pc-host' } });
    expect(handed).toEqual([
      [
        { name: 'a', data: { n: 1 }, priority: 'high', ttlMs: 500 },
        { name: 'b', data: null, priority: 'normal' },
      ],
    ]);
  });

  it('without a sender, puts the events in its outbox through the agent, stamped, in order', async () => {
    const outbox = new MemoryOutbox(() => 1_700_000_000_000);
    const before = Date.now();
    const result = await routeCall(host(undefined, outbox).handlers(), 'sendEvents', {
      events: [{ name: 'a', data: [1], priority: 'low', ttl_ms: 60_000 }, { name: 'b' }],
    });
    expect(result).toEqual({ ok: true, value: { seqs: [1, 2], agent_id: 'pc-host' } });
    expect(
      outbox.entries.map((e) => ({ seq: e.seq, type: e.type, priority: e.priority, expiresAt: e.expiresAt })),
    ).toEqual([
      { seq: 1, type: 'event', priority: 'low', expiresAt: 1_700_000_060_000 },
      { seq: 2, type: 'event', priority: 'normal', expiresAt: null },
    ]);
    expect(outbox.entries[0]!.body).toEqual({ name: 'a', data: [1], timestamp: expect.any(Number) as number });
    expect(outbox.entries[1]!.body).toMatchObject({ name: 'b', data: null });
    expect(outbox.entries[0]!.body.timestamp).toBeGreaterThanOrEqual(before);
  });

  it('answers the outbox’s own refusal (OUTBOX_UNAVAILABLE: disk full) as it is', async () => {
    const outbox = new MemoryOutbox();
    outbox.failNext = 'ENOSPC: no space left on device';
    const result = await routeCall(host(undefined, outbox).handlers(), 'sendEvents', { events: [{ name: 'x' }] });
    expect(result).toEqual({
      ok: false,
      error: { code: 'OUTBOX_UNAVAILABLE', message: 'ENOSPC: no space left on device' },
    });
  });
});
