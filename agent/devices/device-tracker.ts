import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../../lib/clock.js';
import type { Priority } from '../../protocol/messages.js';
import { diffDevices, type DeviceChange } from './device-diff.js';
import { TrackDevicesParser, type TrackedDevice } from './track-devices-parser.js';

/** The event a device change becomes (docs/protocol.md → device events). */
export const DEVICE_EVENT = 'device';

export interface DeviceTrackerOptions {
  /** adb.path: the adb executable. */
  adbPath: string;
  /**
   * Hands one `device` event to the outbox; resolves once it is accepted. Called one at a time, in
   * order: the next waits for the one before.
   */
  emit: (name: typeof DEVICE_EVENT, data: DeviceChange, options: { priority: Priority }) => Promise<unknown>;
  logger: Logger;
  clock?: Clock;
  /** adb's environment (ANDROID_ADB_SERVER_PORT picks the adb server's port) [process.env]. */
  env?: NodeJS.ProcessEnv;
  /** The first wait before starting adb again after it exited; it doubles up to `restartMaxMs` [1 s, 60 s]. */
  restartMinMs?: number;
  restartMaxMs?: number;
  /** A run of adb this long starts the next wait from `restartMinMs` again [60 s]. */
  stableMs?: number;
  /** Between looks for an adb that could not be started (not installed, not executable) [5 min]. */
  missingRetryMs?: number;
  /** How long adb may take to exit when stopped before it is killed [2 s]. */
  stopTimeoutMs?: number;
  /** The list known before this tracker (from an earlier run), so its phones are not announced again [none]. */
  known?: readonly TrackedDevice[];
}

/** The wait before the restart after `failures` exits in a row (0: the first). */
export function restartDelay(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
}

/**
 * Follows `adb track-devices -l` and emits a `device` event (priority high) for each phone that
 * comes, goes or changes state. Each list adb sends is diffed against the last one known — also
 * the first list after adb (re)starts — so a restart of adb announces nothing again, and a phone
 * unplugged while adb was down is announced once. adb exiting (its server killed, adb upgraded) is
 * logged and adb is started again after a backoff; adb missing is said once, with what to do, and
 * looked for again slowly. Nothing here throws into the agent.
 */
export class DeviceTracker {
  private readonly clock: Clock;
  private readonly log: Logger;
  private known: TrackedDevice[];
  private child: ChildProcess | undefined;
  private childClosed: Promise<void> = Promise.resolve();
  private timer: TimerHandle | undefined;
  private started = false;
  private stopping = false;
  private failures = 0;
  private missingSaid = false;
  private runs = 0;
  private emitting: Promise<void> = Promise.resolve();

  constructor(private readonly options: DeviceTrackerOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ component: 'devices' });
    this.known = [...(options.known ?? [])];
  }

  /** The devices adb listed last (kept while adb is down). */
  devices(): TrackedDevice[] {
    return this.known.map((d) => ({ ...d, properties: { ...d.properties } }));
  }

  /** Whether adb track-devices runs now. */
  get tracking(): boolean {
    return this.child !== undefined;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.run();
  }

  /** Stops adb (SIGTERM, then SIGKILL) and waits for the events already handed to `emit`. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.started = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (child) {
      const killer = this.clock.setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 2000);
      child.kill('SIGTERM');
      await this.childClosed;
      this.clock.clearTimeout(killer);
    }
    await this.emitting;
  }

  private run(): void {
    const { adbPath } = this.options;
    const startedAt = this.clock.monotonic();
    const run = ++this.runs;
    const parser = new TrackDevicesParser();
    let stderr = '';
    let spawnError: NodeJS.ErrnoException | undefined;
    let lists = 0;
    const child = spawn(adbPath, ['track-devices', '-l'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.options.env ?? process.env,
      windowsHide: true,
    });
    this.child = child;
    this.childClosed = new Promise((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.child === child) this.child = undefined;
        resolve();
        if (this.stopping) return;
        const ranMs = this.clock.monotonic() - startedAt;
        if (spawnError) this.couldNotStart(spawnError);
        else this.exited(code, signal, withoutDaemonChatter(stderr), ranMs, lists);
      });
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    child.once('spawn', () => {
      if (this.missingSaid) this.log.info({ adb: adbPath }, `adb found at "${adbPath}": tracking devices now`);
      this.missingSaid = false;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      const result = parser.push(chunk);
      for (const list of result.lists) {
        lists += 1;
        if (lists === 1) this.firstList(run, list);
        this.update(list);
      }
      if (result.error !== undefined) {
        this.log.warn({ adb: adbPath, error: result.error }, `adb track-devices sent ${result.error}; restarting it`);
        child.kill('SIGKILL');
      }
    });
  }

  private firstList(run: number, list: TrackedDevice[]): void {
    const count = `${list.length} device${list.length === 1 ? '' : 's'} attached`;
    if (run === 1) this.log.info({ devices: list.length }, `Tracking devices with adb track-devices (${count})`);
    else
      this.log.info({ devices: list.length }, `adb track-devices runs again (${count}); announcing only what changed`);
  }

  private update(list: TrackedDevice[]): void {
    const changes = diffDevices(this.known, list);
    this.known = list;
    for (const change of changes) {
      this.log.info(
        { device: change },
        `Device ${change.serial} ${change.change.replace('_', ' ')}` +
          (change.change === 'state_changed' ? ` (${change.previous_state ?? '?'} → ${change.state ?? '?'})` : '') +
          (change.state !== null && change.change === 'connected' ? ` (${change.state})` : ''),
      );
      this.emitting = this.emitting.then(() => this.emitOne(change));
    }
  }

  private async emitOne(change: DeviceChange): Promise<void> {
    try {
      await this.options.emit(DEVICE_EVENT, change, { priority: 'high' });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.error(
        { err: error, device: change },
        `The ${change.change} event of device ${change.serial} was not accepted (${message}); it is not sent`,
      );
    }
  }

  private exited(
    code: number | null,
    signal: NodeJS.Signals | null,
    stderr: string,
    ranMs: number,
    lists: number,
  ): void {
    if (ranMs >= (this.options.stableMs ?? 60_000)) this.failures = 0;
    const delay = restartDelay(this.failures, this.options.restartMinMs ?? 1000, this.options.restartMaxMs ?? 60_000);
    this.failures += 1;
    const how = signal !== null ? `on ${signal}` : `with code ${String(code)}`;
    this.log.warn(
      {
        adb: this.options.adbPath,
        code,
        signal,
        stderr: stderr || undefined,
        ran_ms: Math.round(ranMs),
        lists,
        restart_in_ms: delay,
      },
      `adb track-devices exited ${how}${stderr ? ` (${lastLine(stderr)})` : ''} (its server stopped, or adb was ` +
        `replaced); starting it again in ${formatMs(delay)}, then announcing only what changed meanwhile`,
    );
    this.later(delay);
  }

  private couldNotStart(error: NodeJS.ErrnoException): void {
    const { adbPath } = this.options;
    const retryMs = this.options.missingRetryMs ?? 5 * 60_000;
    if (this.missingSaid) {
      this.log.debug(
        { adb: adbPath, code: error.code },
        `adb still cannot be started; looking again in ${formatMs(retryMs)}`,
      );
    } else {
      this.missingSaid = true;
      const what =
        error.code === 'ENOENT'
          ? `adb is not installed, or not at "${adbPath}"`
          : `adb at "${adbPath}" cannot be started (${error.code ?? error.message})`;
      this.log.error(
        { adb: adbPath, code: error.code },
        `${what}: no device events until it can be. Install Android's platform-tools (Debian/Ubuntu: ` +
          `apt install adb) or set adb.path to the adb executable (adb.track_devices: false turns tracking ` +
          `off); looking again every ${formatMs(retryMs)}`,
      );
    }
    this.later(retryMs);
  }

  private later(ms: number): void {
    // Not unref'd: between two runs of adb the tracker is as alive as while adb runs; stop() clears it.
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.stopping && this.started) this.run();
    }, ms);
  }
}

/** adb's stderr without the lines it prints when it starts its server ("* daemon started successfully"). */
function withoutDaemonChatter(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('* '))
    .join('\n')
    .trim();
}

function lastLine(text: string): string {
  return text.split('\n').filter(Boolean).at(-1) ?? text;
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 60_000)} min`;
}
