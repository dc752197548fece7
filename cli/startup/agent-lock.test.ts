import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_LOCK_FILE, AgentLock, AgentRunningError, processStart, runningAgent } from './agent-lock.js';

const dirs: string[] = [];
function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-lock-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const alive = (pids: number[]) => (pid: number) => pids.includes(pid);
const noStart = () => null;
const lockOf = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, AGENT_LOCK_FILE), 'utf8')) as Record<string, unknown>;

describe('AgentLock: one agent per data dir', () => {
  it('claims a free data dir, says where the panel listens, and gives it up on release', () => {
    const dir = dataDir();
    const lock = AgentLock.claim(dir, 'agent', { pid: 100, now: () => 5, startOf: noStart, isAlive: alive([100]) });
    expect(lockOf(dir)).toEqual({ pid: 100, runner: 'agent', started_at: 5, process_start: null, panel: null });
    lock.setPanel('http://127.0.0.1:41001');
    expect(runningAgent(dir, { pid: 200, startOf: noStart, isAlive: alive([100]) })).toMatchObject({
      pid: 100,
      panel: 'http://127.0.0.1:41001',
    });
    lock.release();
    expect(fs.existsSync(path.join(dir, AGENT_LOCK_FILE))).toBe(false);
    expect(runningAgent(dir, { pid: 200, startOf: noStart, isAlive: alive([100]) })).toBeUndefined();
  });

  it('refuses a second claim while the first process lives, naming it', () => {
    const dir = dataDir();
    const first = AgentLock.claim(dir, 'start', {
      pid: 100,
      now: () => 5,
      startOf: noStart,
      isAlive: alive([100, 200]),
    });
    first.setPanel('http://127.0.0.1:41002');
    let refusal: unknown;
    try {
      AgentLock.claim(dir, 'agent', { pid: 200, now: () => 6, startOf: noStart, isAlive: alive([100, 200]) });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(AgentRunningError);
    const error = refusal as AgentRunningError;
    expect(error.code).toBe('AGENT_ALREADY_RUNNING');
    expect(error.running).toMatchObject({ pid: 100, runner: 'start' });
    expect(error.message).toContain('pid 100');
    expect(error.message).toContain('http://127.0.0.1:41002');
    expect(error.message).toContain(dir);
    expect(lockOf(dir)).toMatchObject({ pid: 100 });
    first.release();
  });

  it('replaces a stale lock: a dead process, our own pid from an earlier life, or a file that is not a lock', () => {
    const dir = dataDir();
    const file = path.join(dir, AGENT_LOCK_FILE);
    fs.writeFileSync(file, JSON.stringify({ pid: 999, runner: 'agent', started_at: 1, panel: 'http://127.0.0.1:1' }));
    const afterDead = AgentLock.claim(dir, 'agent', {
      pid: 100,
      now: () => 5,
      startOf: noStart,
      isAlive: alive([100]),
    });
    // What it replaced is kept, so the start-up can say an agent ended without stopping cleanly.
    expect(afterDead.replacedStale).toMatchObject({ pid: 999, runner: 'agent' });
    afterDead.release();
    const clean = AgentLock.claim(dir, 'agent', { pid: 100, now: () => 5, startOf: noStart, isAlive: alive([100]) });
    expect(clean.replacedStale).toBeUndefined();
    clean.release();

    fs.writeFileSync(file, JSON.stringify({ pid: 100, runner: 'agent', started_at: 1, panel: null }));
    const own = AgentLock.claim(dir, 'agent', { pid: 100, now: () => 6, startOf: noStart, isAlive: alive([100]) });
    expect(lockOf(dir)).toMatchObject({ pid: 100, started_at: 6 });
    own.release();

    fs.writeFileSync(file, 'not json');
    AgentLock.claim(dir, 'desktop', { pid: 100, now: () => 7, startOf: noStart, isAlive: alive([100]) }).release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a live pid that belongs to another process than the one that wrote the lock (reused after a crash) is stale', () => {
    const dir = dataDir();
    const started = new Map([
      [100, '500'],
      [200, '900'],
    ]);
    const startOf = (pid: number) => started.get(pid) ?? null;
    AgentLock.claim(dir, 'agent', { pid: 100, now: () => 5, isAlive: alive([100, 200]), startOf });
    expect(lockOf(dir)).toMatchObject({ pid: 100, process_start: '500' });
    // The same process still runs: refused.
    expect(() =>
      AgentLock.claim(dir, 'agent', { pid: 200, now: () => 6, isAlive: alive([100, 200]), startOf }),
    ).toThrow(AgentRunningError);
    // Pid 100 now is a process that started later: the lock is stale.
    started.set(100, '7000');
    const next = AgentLock.claim(dir, 'agent', { pid: 200, now: () => 7, isAlive: alive([100, 200]), startOf });
    expect(lockOf(dir)).toMatchObject({ pid: 200, process_start: '900' });
    next.release();
  });

  it("reads this process's start time where the OS gives it", () => {
    const start = processStart(process.pid);
    if (process.platform === 'linux') expect(start).toMatch(/^\d+$/);
    else expect(start).toBeNull();
    expect(processStart(2 ** 22 + 1)).toBeNull();
  });

  it('release leaves a lock that another process has taken since', () => {
    const dir = dataDir();
    const lock = AgentLock.claim(dir, 'agent', { pid: 100, now: () => 5, startOf: noStart, isAlive: alive([100]) });
    fs.writeFileSync(
      path.join(dir, AGENT_LOCK_FILE),
      JSON.stringify({ pid: 300, runner: 'agent', started_at: 9, panel: null }),
    );
    lock.release();
    expect(lockOf(dir)).toMatchObject({ pid: 300 });
  });
});
