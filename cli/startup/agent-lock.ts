import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FarmlinkError } from '../../lib/errors.js';

/** Where the running agent says its panel listens (no key in it), for `farmlink panel-url`; removed when it stops. */
export const PANEL_ADDRESS_FILE = 'panel-address';

/** In the data dir while an agent runs from it: who runs it, and where its panel listens. */
export const AGENT_LOCK_FILE = 'agent.lock';

const LockSchema = z.object({
  pid: z.number().int().positive(),
  /** What runs it: `farmlink agent`, `farmlink start` or the desktop app. */
  runner: z.enum(['agent', 'start', 'desktop']),
  started_at: z.number(),
  /**
   * When the process started, as the OS counts it (Linux: /proc/PID/stat), so a lock left by a
   * crash is not taken for a live agent when its pid has been reused (after a reboot, say). Null
   * where the OS does not tell.
   */
  process_start: z.string().nullable().default(null),
  /** The panel's address without its key (`http://127.0.0.1:PORT`); null until it listens, or with no panel. */
  panel: z.string().nullable(),
});
export type AgentLockInfo = z.infer<typeof LockSchema>;

/** A second agent was asked for on a data dir whose agent runs. Its `code` is stable for scripts. */
export class AgentRunningError extends FarmlinkError {
  constructor(
    readonly running: AgentLockInfo,
    readonly dataDir: string,
  ) {
    super('AGENT_ALREADY_RUNNING', agentRunningMessage(running, dataDir));
    this.name = 'AgentRunningError';
  }
}

/** What started the agent behind a lock, in words: "the desktop app" or "`farmlink start`". */
export function startedBy(info: AgentLockInfo): string {
  return info.runner === 'desktop' ? 'the desktop app' : `\`farmlink ${info.runner}\``;
}

export function agentRunningMessage(running: AgentLockInfo, dataDir: string): string {
  const by = startedBy(running);
  const panel = running.panel
    ? `its panel: ${running.panel} (\`farmlink panel-url\` prints it with its key)`
    : 'it serves no panel';
  return (
    `an agent already runs for the data dir ${dataDir} (pid ${running.pid}, started by ${by}; ${panel}). ` +
    'One agent runs per PC, so no second one was started: two agents with one id push each other off the hub. ' +
    'Stop that one first to run this one, or give this one its own --data-dir (and agent id)'
  );
}

export interface LockDeps {
  pid: number;
  now: () => number;
  /** Whether a process with this id exists (signal 0). */
  isAlive: (pid: number) => boolean;
  /** When the process with this id started, where the OS says (processStart). */
  startOf: (pid: number) => string | null;
}

const systemDeps: LockDeps = { pid: process.pid, now: () => Date.now(), isAlive: processAlive, startOf: processStart };

/** The process's start time in clock ticks since boot (Linux), or null where there is no /proc. */
export function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) is in parentheses and may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The agent whose lock holds this data dir, if one runs; a lock left by a dead process is not one. */
export function runningAgent(dataDir: string, deps: Partial<LockDeps> = {}): AgentLockInfo | undefined {
  const { pid, isAlive, startOf } = { ...systemDeps, ...deps };
  const info = readLock(path.join(dataDir, AGENT_LOCK_FILE));
  if (!info) return undefined;
  // Our own pid in a lock we do not hold: left by an earlier process that had this pid (pid 1 in a
  // container after a restart, say).
  if (info.pid === pid || !isAlive(info.pid)) return undefined;
  // The pid lives, but it is another process than the one that wrote the lock.
  const start = info.process_start === null ? null : startOf(info.pid);
  if (start !== null && start !== info.process_start) return undefined;
  return info;
}

/**
 * This process's exclusive claim on a data dir: taken before the agent starts, released when it
 * stops (or the process exits). The file is written whole beside the lock and then hard-linked
 * into place, which fails if a lock exists: two processes racing cannot both win, and nobody
 * reads a half-written lock. A lock whose process is gone is stale and replaced.
 */
export class AgentLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly file: string,
    private info: AgentLockInfo,
    /** The lock of an agent that died without releasing it, which this claim replaced. */
    readonly replacedStale: AgentLockInfo | undefined,
  ) {
    process.once('exit', this.onExit);
  }

  /** Claims `dataDir` for this process; throws AgentRunningError when a live agent holds it. */
  static claim(dataDir: string, runner: AgentLockInfo['runner'], deps: Partial<LockDeps> = {}): AgentLock {
    const d = { ...systemDeps, ...deps };
    const file = path.join(dataDir, AGENT_LOCK_FILE);
    const info: AgentLockInfo = {
      pid: d.pid,
      runner,
      started_at: d.now(),
      process_start: d.startOf(d.pid),
      panel: null,
    };
    let stale: AgentLockInfo | undefined;
    // Bounded: each round either wins, meets a live agent, or removes one stale lock.
    for (let round = 0; round < 5; round++) {
      if (tryCreate(file, info)) return new AgentLock(file, info, stale);
      const held = runningAgent(dataDir, d);
      if (held) throw new AgentRunningError(held, dataDir);
      const raw = readRaw(file);
      stale = readLock(file) ?? stale;
      removeIfUnchanged(file, raw);
    }
    throw new FarmlinkError(
      'AGENT_LOCK_CONTENDED',
      `Could not claim ${file}: other processes keep taking it; try again`,
    );
  }

  get current(): AgentLockInfo {
    return this.info;
  }

  /** Records where the panel listens, for the desktop app to attach and for the refusal message. */
  setPanel(address: string | null): void {
    if (this.released) return;
    this.info = { ...this.info, panel: address };
    const temp = `${this.file}.${this.info.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(this.info), { mode: 0o600 });
    fs.renameSync(temp, this.file);
  }

  /** Gives the data dir up; only removes the file if it is still this process's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    const now = readLock(this.file);
    if (now?.pid === this.info.pid && now.started_at === this.info.started_at) fs.rmSync(this.file, { force: true });
  }
}

function tryCreate(file: string, info: AgentLockInfo): boolean {
  const temp = `${file}.${info.pid}.${info.started_at}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(info), { mode: 0o600 });
  try {
    fs.linkSync(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function readRaw(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function readLock(file: string): AgentLockInfo | undefined {
  const raw = readRaw(file);
  if (raw === undefined) return undefined;
  try {
    const parsed = LockSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Not JSON: no version of FarmLink writes that, so nothing runs behind it.
    return undefined;
  }
}

/** Removes a stale lock, unless another process replaced it since it was read. */
function removeIfUnchanged(file: string, seen: string | undefined): void {
  if (seen === undefined) return;
  if (readRaw(file) === seen) fs.rmSync(file, { force: true });
}
