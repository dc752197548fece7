import fs from 'node:fs';
import path from 'node:path';
import pino, { type Level, type Logger, type StreamEntry } from 'pino';
import pinoRoll from 'pino-roll';
import type { LogLevel } from '../../protocol/config.js';
import { makePrivateDir, tighten } from '../config/private-files.js';
import { consoleSink } from './console-sink.js';
import { processSecrets, type SecretScrubber } from './secrets.js';

export type ConsoleFormat = 'pretty' | 'json' | 'off';

export interface LoggerOptions {
  level: LogLevel;
  /** Shown in pretty console lines ("agent", "hub") so a process hosting both stays readable. */
  component?: string;
  console: ConsoleFormat;
  /** Where pretty/json console lines go (stdout unless told otherwise). */
  consoleStream?: NodeJS.WritableStream;
  /** Rotating JSON-lines file: <dir>/<name>.1.log, .2.log …, the highest number newest. */
  file?: { path: string; maxSizeMb: number; maxFiles: number } | null;
  /** Another destination for the same JSON lines (the panel's in-memory tail). */
  memory?: { write(line: string): void } | undefined;
  /** Blanks secrets in every line before any destination sees it [the process-wide scrubber]. */
  secrets?: SecretScrubber;
}

export interface LoggerHandle {
  logger: Logger;
  /** Flushes and closes the file. */
  close: () => Promise<void>;
}

const LEVEL_LABEL: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'CRITICAL',
};

const pad2 = (n: number) => String(n).padStart(2, '0');

/** "2026-01-03 19:30:00" in local time, as the README's log excerpts show. */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** One JSON log line → "2026-01-03 19:30:00 | INFO     | agent | ✓ Connected to server". */
export function formatPrettyLine(json: string, component?: string): string {
  let entry: { level?: number; time?: number; msg?: string; err?: { message?: string }; component?: string };
  try {
    entry = JSON.parse(json) as typeof entry;
  } catch {
    return json;
  }
  const label = (LEVEL_LABEL[entry.level ?? 30] ?? 'INFO').padEnd(8);
  const who = entry.component ?? component;
  const err = entry.err?.message && !entry.msg?.includes(entry.err.message) ? ` (${entry.err.message})` : '';
  return `${formatLocalTime(entry.time ?? Date.now())} | ${label} | ${who ? `${who} | ` : ''}${entry.msg ?? ''}${err}\n`;
}

/**
 * Structured logs (pino): JSON lines to a size-rotated file, and to the console either as the
 * human lines (the README's excerpts) or as JSON (for log shippers and the tests that read the hub's output).
 */
export async function createLogger(options: LoggerOptions): Promise<LoggerHandle> {
  const level = options.level;
  const streams: StreamEntry[] = [];
  const out = options.console === 'off' ? undefined : consoleSink(options.consoleStream ?? process.stdout);
  if (out && options.console === 'pretty') {
    streams.push({
      level: level as Level,
      stream: { write: (line: string) => out.write(formatPrettyLine(line, options.component)) },
    });
  } else if (out && options.console === 'json') {
    streams.push({ level: level as Level, stream: { write: (line: string) => out.write(line) } });
  }
  if (options.memory) streams.push({ level: level as Level, stream: options.memory });
  let file: Awaited<ReturnType<typeof pinoRoll>> | undefined;
  if (options.file) {
    makePrivateDir(path.dirname(options.file.path));
    tightenLogFiles(options.file.path);
    file = await pinoRoll({
      file: options.file.path,
      size: `${options.file.maxSizeMb}m`,
      limit: { count: Math.max(1, options.file.maxFiles - 1) },
      mkdir: true,
      // Logs say which hubs, ids and addresses a PC uses: the user's alone, whatever the umask.
      mode: 0o600,
    });
    streams.push({ level: level as Level, stream: file });
  }
  const base = options.component ? { component: options.component } : {};
  const secrets = options.secrets ?? processSecrets;
  const logger =
    streams.length === 0
      ? pino({ level: 'silent' })
      : pino(
          {
            level,
            base,
            timestamp: pino.stdTimeFunctions.epochTime,
            hooks: { streamWrite: (line) => secrets.scrub(line) },
          },
          pino.multistream(streams),
        );
  const filePath = file ? options.file?.path : undefined;
  out?.onDropped((error) => {
    logger.warn(
      { err: error, code: (error as NodeJS.ErrnoException).code },
      `The console can no longer be written to (${(error as NodeJS.ErrnoException).code ?? error.message}): ` +
        `console output stops here${filePath !== undefined ? `; the log file ${filePath} goes on` : ''}`,
    );
  });
  return {
    logger,
    close: () =>
      new Promise<void>((resolve) => {
        if (!file || file.destroyed) {
          resolve();
          return;
        }
        file.once('close', () => resolve());
        file.once('error', () => resolve());
        file.end();
      }),
  };
}

/** The log file and its rotated siblings (`agent.1.log`, `agent.2.log` …) written before files were private. */
function tightenLogFiles(file: string): void {
  const dir = path.dirname(file);
  const stem = path.basename(file, path.extname(file));
  for (const name of fs.readdirSync(dir)) {
    if (name === path.basename(file) || (name.startsWith(`${stem}.`) && name.endsWith('.log')))
      tighten(path.join(dir, name), 0o600);
  }
}

const SILENT = pino({ level: 'silent' });

/** A logger that discards everything (unit tests, benchmarks); one shared instance, no destination of its own. */
export function silentLogger(): Logger {
  return SILENT;
}
